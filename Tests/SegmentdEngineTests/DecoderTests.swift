import Testing
@testable import SegmentdEngine

@Suite("Decoding: both shapes and every bad-input class")
struct DecoderTests {
    var decoder = EventDecoder(model: .defaultModel(), maxRecordBytes: 2048)

    mutating func reason(_ s: String) -> String {
        switch decoder.decode(Array(s.utf8)) {
        case .bad(let e): return e.reason.rawValue
        case .ignored(let r): return "ignored:" + r.rawValue
        case .events: return "ok"
        }
    }

    @Test("bad records get a typed reason")
    mutating func badClasses() {
        let ts = #""ts": "2026-03-02T09:00:00Z""#
        let cases: [(String, String)] = [
            ("not json", "invalid_json"),
            (#"{"contact_id": "c", "type": "page_view", \#(ts),}"#, "invalid_json"),
            (#"{'contact_id': 'c'}"#, "invalid_json"),
            (#"{"contact_id": "c", "type": "email_open", "ts": NaN}"#, "invalid_json"),
            ("[1, 2]", "not_an_object"),
            ("null", "not_an_object"),
            (#"{"type": "page_view", \#(ts)}"#, "missing_field"),
            (#"{"contact_id": 7, "type": "page_view", \#(ts)}"#, "wrong_type"),
            (#"{"contact_id": "", "type": "page_view", \#(ts)}"#, "invalid_contact_id"),
            (#"{"contact_id": "\#(String(repeating: "x", count: 257))", "type": "page_view", \#(ts)}"#, "invalid_contact_id"),
            (#"{"contact_id": "c", \#(ts)}"#, "missing_field"),
            (#"{"contact_id": "c", "type": 3, \#(ts)}"#, "wrong_type"),
            (#"{"contact_id": "c", "type": "page_viewed", \#(ts)}"#, "unknown_type"),
            (#"{"contact_id": "c", "type": "Track", \#(ts)}"#, "unknown_type"),
            (#"{"contact_id": "c", "type": "page_view"}"#, "missing_field"),
            (#"{"contact_id": "c", "type": "page_view", "ts": "2026-02-30T09:00:00Z"}"#, "invalid_time"),
            (#"{"contact_id": "c", "type": "page_view", "ts": "2026-03-02 09:00:00Z"}"#, "invalid_time"),
            (#"{"contact_id": "c", "type": "page_view", "ts": "2026-03-02T09:00:60Z"}"#, "invalid_time"),
            (#"{"contact_id": "c", "type": "page_view", "ts": "2026-03-02T09:00:00"}"#, "invalid_time"),
            (#"{"contact_id": "c", "type": "page_view", \#(ts), "event_id": 5}"#, "wrong_type"),
            (#"{"contact_id": "c", "type": "page_view", \#(ts), "props": "{}"}"#, "wrong_type"),
            (#"{"contact_id": "c", "type": "crm_stage", \#(ts), "props": {"stage": 5}}"#, "wrong_type"),
            (#"{"contact_id": "c", "type": "crm_stage", \#(ts)}"#, "missing_field"),
            (#"{"type": "identify", "userId": "u", "timestamp": "2026-03-02T09:00:00Z", "traits": {"lifecycle_stage": 3}}"#, "wrong_type"),
            (#"{"type": "page", "userId": "u", "timestamp": "2026-03-02T09:00:00Z", "properties": "/pricing"}"#, "wrong_type"),
            (#"{"type": "track", "userId": "u", "timestamp": "2026-03-02T09:00:00Z"}"#, "missing_field"),
            (#"{"contact_id": "c", "type": "page_view", \#(ts), "pad": "\#(String(repeating: "x", count: 2100))"}"#, "too_large"),
        ]
        for (line, want) in cases {
            #expect(reason(line) == want, "\(line.prefix(80))")
        }
        #expect({ var d = decoder; return d.decode([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]) }().isBad)
    }

    @Test("ignored Segment calls")
    mutating func ignored() {
        let t = #""timestamp": "2026-03-02T09:00:00Z""#
        #expect(reason(#"{"type": "page", "anonymousId": "a", \#(t)}"#) == "ignored:anonymous")
        #expect(reason(#"{"type": "page", "userId": "", \#(t)}"#) == "ignored:anonymous")
        #expect(reason(#"{"type": "track", "event": "Email Delivered", "userId": "u", \#(t)}"#) == "ignored:unmapped_track_event")
        #expect(reason(#"{"type": "screen", "userId": "u", \#(t)}"#) == "ignored:unsupported_call")
        #expect(reason(#"{"type": "alias", "userId": "u", \#(t)}"#) == "ignored:unsupported_call")
    }

    @Test("times: offsets, fractions truncated, epoch milliseconds")
    func times() {
        #expect(EventTime.parseRFC3339("2026-03-02T14:30:00.250+05:30") == EventTime.parseRFC3339("2026-03-02T09:00:00.250Z"))
        #expect(EventTime.parseRFC3339("2026-03-02T09:00:00.999999Z")! % 1000 == 999)
        #expect(EventTime.parseRFC3339("2026-03-02T09:00:00.000-00:00") == 1_772_442_000_000)
        #expect(EventTime.parseRFC3339("2024-02-29T00:00:00Z") != nil)
        #expect(EventTime.parseRFC3339("2025-02-29T00:00:00Z") == nil)
        #expect(EventTime.parseRFC3339("2026-03-02T09:00:00+0530") == nil)
        #expect(EventTime.format(1_772_442_000_250) == "2026-03-02T09:00:00.250Z")
        #expect(DurationSpec(parsing: "500ms")?.millis == 500)
        #expect(DurationSpec(parsing: "30d")?.millis == 2_592_000_000)
        #expect(DurationSpec(parsing: "1.5h") == nil)
    }

    @Test("Segment mapping: track renames, page path from url, identify traits then crm_stage")
    mutating func segment() {
        let t = #""timestamp": "2026-03-02T09:00:00Z""#
        guard case let .events(e, nil, .segment) = decoder.decode(Array(#"{"type": "track", "event": "Email Link Clicked", "userId": "u", "messageId": "m", \#(t), "properties": {"link_url": "https://x/case-study"}}"#.utf8)) else {
            Issue.record("not decoded"); return
        }
        #expect(CanonicalTypes.all[Int(e.type)] == "email_click")
        let hi = decoder.model.filterNames.firstIndex(of: "high_intent")!
        #expect(e.filterMask & (1 << UInt64(hi)) != 0)
        #expect(EventDecoder.pathOfURL("https://www.example.com/pricing?plan=team#faq") == "/pricing")
        #expect(EventDecoder.pathOfURL("https://www.example.com") == nil)
        guard case let .events(a, b?, _) = decoder.decode(Array(#"{"type": "identify", "userId": "u", \#(t), "traits": {"employees": 300, "lifecycle_stage": "customer"}}"#.utf8)) else {
            Issue.record("identify not decoded into two events"); return
        }
        #expect(CanonicalTypes.all[Int(a.type)] == "traits")
        #expect(a.attributes.contains { if case .int(300) = $0.1 { return true }; return false })
        #expect(CanonicalTypes.all[Int(b.type)] == "crm_stage")
        #expect(b.attributes.contains { if case .string(let s) = $0.1 { return Array(s) == Array("customer".utf8) }; return false })
    }

    @Test("contact ids are byte-exact: NFC and NFD are two contacts; an escape equals the literal")
    func contactIds() {
        let nfc = "caf\u{e9}", nfd = "cafe\u{301}"
        let out = replay([ev(nfc, "email_open", "2026-03-02T09:00:00Z"), ev(nfd, "email_open", "2026-03-02T09:00:00Z"),
                          #"{"contact_id": "caf\u00e9", "type": "email_open", "ts": "2026-03-03T09:00:00Z"}"#])
        let contacts = Set(out.map { Array($0.contact.utf8) })
        #expect(contacts.count == 2)
    }
}

extension DecodeResult {
    var isBad: Bool { if case .bad = self { return true }; return false }
}

@Suite("Decoding: JSON edge cases")
struct JSONEdgeTests {
    @Test("a repeated key means its last value, as in most JSON parsers")
    func repeatedKey() {
        var d = EventDecoder(model: .defaultModel())
        guard case let .events(e, nil, _) = d.decode(Array(#"{"contact_id":"a","type":"email_open","ts":1,"contact_id":"b"}"#.utf8)) else {
            Issue.record("not decoded"); return
        }
        #expect(Array(e.contactId) == Array("b".utf8))
    }
}

@Suite("Filter masks: the per-type tables give what evaluating every filter gives")
struct FilterMaskTests {
    @Test("per-type mask equals the reference over every type and many property values")
    func perTypeMaskIsExact() {
        let model = Model.defaultModel()
        let program = FilterProgram(model: model)
        let masks = FilterMasks(program)
        defer { masks.deallocate() }
        let keys = model.propKeys.count
        // Property values: absent, null, bools, ints, and every string literal of the filters
        // (plus prefixes and extensions of them), put in every key and in one key at a time.
        var bytes: [UInt8] = []
        var values: [Prop] = [Prop()]
        var p = Prop(); p.kind = .null; values.append(p)
        p = Prop(); p.kind = .bool; p.bool = true; values.append(p)
        p.bool = false; values.append(p)
        p = Prop(); p.kind = .int; p.int = 0; values.append(p)
        p.int = 500; values.append(p)
        for l in program.lits where l.kind == .string {
            let s = Array(program.litBytes[Int(l.start)..<Int(l.end)])
            for v in [s, s + Array("/x".utf8), Array(s.dropLast()), Array("a".utf8) + s] {
                var q = Prop(); q.kind = .string
                q.start = Int32(bytes.count); bytes.append(contentsOf: v); q.end = Int32(bytes.count)
                values.append(q)
            }
        }
        var checked = 0
        bytes.withUnsafeBufferPointer { b in
            for t in 0..<CanonicalTypes.all.count {
                for v in values {
                    var cases = [[Prop](repeating: v, count: keys)]
                    for k in 0..<keys { var one = [Prop](repeating: Prop(), count: keys); one[k] = v; cases.append(one) }
                    for props in cases {
                        props.withUnsafeBufferPointer { pb in
                            let a = masks.mask(type: UInt8(t), props: pb, bytes: b)
                            let r = program.maskReference(type: UInt8(t), props: pb, bytes: b)
                            #expect(a == r, "type \(CanonicalTypes.all[t])")
                            checked += 1
                        }
                    }
                }
            }
        }
        #expect(checked > 1000)
    }
}

@Suite("JSON strings: the eight-bytes-at-a-time scan sees every special byte")
struct JSONStringScanTests {
    @Test("the word test flags first exactly the first special byte, for every byte at every offset")
    func specialBytesWordTest() {
        func isSpecial(_ b: UInt8) -> Bool { b < 0x20 || b == 34 || b == 92 || b >= 0x80 }
        // Plain backgrounds, and ones with special bytes above the tested offset (a borrow
        // from below must not hide the first one, a flag above it may be anything).
        let backgrounds: [[UInt8]] = [Array(repeating: 97, count: 8), Array(repeating: 0x20, count: 8), Array(repeating: 0x21, count: 8),
                                      Array(repeating: 0x23, count: 8), Array(repeating: 0x7F, count: 8), [34, 92, 0, 0xFF, 1, 34, 0x80, 92]]
        var checked = 0
        for background in backgrounds {
            for offset in 0..<8 {
                for value in 0...255 {
                    var bytes = background
                    for i in 0..<offset where isSpecial(bytes[i]) { bytes[i] = 97 }
                    bytes[offset] = UInt8(value)
                    let word = bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
                    let flags = JSONTape.specialBytes(word)
                    let expected = bytes.firstIndex(where: isSpecial)
                    if let expected {
                        #expect(flags != 0 && flags.trailingZeroBitCount >> 3 == expected, "bytes \(bytes)")
                    } else {
                        #expect(flags == 0, "bytes \(bytes)")
                    }
                    checked += 1
                }
            }
        }
        #expect(checked == backgrounds.count * 8 * 256)
    }

    @Test("a control byte, invalid UTF-8, an escape or non-ASCII at every offset")
    func specialByteAtEveryOffset() {
        var decoder = EventDecoder(model: .defaultModel())
        func contact(_ id: [UInt8]) -> String {
            let rec = Array(#"{"type":"email_open","ts":1,"contact_id":""#.utf8) + id + Array(#""}"#.utf8)
            switch decoder.decode(rec) {
            case let .events(e, _, _): return "ok:" + String(decoding: e.contactId, as: UTF8.self)
            case .bad(let e): return e.reason.rawValue
            case .ignored(let r): return r.rawValue
            }
        }
        for len in 1...24 {
            for p in 0..<len {
                let pre = [UInt8](repeating: 97, count: p), post = [UInt8](repeating: 98, count: len - p - 1)
                let plain = String(decoding: pre, as: UTF8.self), tail = String(decoding: post, as: UTF8.self)
                #expect(contact(pre + [1] + post) == "invalid_json")
                #expect(contact(pre + [0x1F] + post) == "invalid_json")
                #expect(contact(pre + [0xFF] + post) == "invalid_json")
                #expect(contact(pre + [0xC3] + post) == "invalid_json")
                #expect(contact(pre + [0xC3, 0xA9] + post) == "ok:" + plain + "é" + tail)
                #expect(contact(pre + Array(#"\""#.utf8) + post) == "ok:" + plain + "\"" + tail)
                #expect(contact(pre + Array(#"\u0041"#.utf8) + post) == "ok:" + plain + "A" + tail)
                #expect(contact(pre + [0x7F, 0x20, 0x21] + post) == "ok:" + plain + "\u{7F} !" + tail)
            }
        }
    }
}

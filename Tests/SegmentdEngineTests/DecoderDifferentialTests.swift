import Testing
@testable import SegmentdEngine

/// The decoder's fast path against its generic path: for every record, the fast path either
/// declines or gives exactly the generic path's result, and `decode` (fast path, else generic)
/// always gives the generic path's result, bad-record details included.
@Suite("Decoding: the fast path agrees with the generic path")
struct DecoderDifferentialTests {
    /// Checks one record; returns whether the fast path decoded it.
    @discardableResult
    static func check(_ record: [UInt8], _ fast: inout EventDecoder, _ generic: inout EventDecoder, _ both: inout EventDecoder) -> Bool {
        let want = generic.decodeGeneric(record).description
        let quick = fast.decodeFast(record)?.description
        if let quick {
            #expect(quick == want, "fast path differs on \(String(decoding: record, as: UTF8.self))")
        }
        let got = both.decode(record).description
        #expect(got == want, "decode differs on \(String(decoding: record, as: UTF8.self))")
        return quick != nil
    }

    static func decoders(_ model: Model = .defaultModel()) -> (EventDecoder, EventDecoder, EventDecoder) {
        (EventDecoder(model: model, maxRecordBytes: 4096), EventDecoder(model: model, maxRecordBytes: 4096), EventDecoder(model: model, maxRecordBytes: 4096))
    }

    /// Records of both shapes and every type, as a stream has them.
    static func generated(_ count: Int, seed: UInt64) -> [[UInt8]] {
        var rng = SplitMix(state: seed)
        var out: [[UInt8]] = []
        let types = CanonicalTypes.all
        let propsChoices = [
            "", #","props":{"machine_open":true}"#, #","props":{"machine_open":"true"}"#, #","props":{"url":"https://example.com/case-studies/acme"}"#,
            #","props":{"path":"/pricing/team"}"#, #","props":{"path":"/docs"}"#, #","props":{"form":"demo"}"#, #","props":{"kind":"hard"}"#,
            #","props":{"kind":"soft"}"#, #","props":{"kind":null}"#, #","props":{"stage":"customer"}"#, #","props":{"stage":"Lead"}"#,
            #","props":{"industry":"Software","company_size":300,"country":"de"}"#, #","props":{"industry":"SaaS","company_size":"51","country":"US"}"#,
            #","props":{"company_size":"12a"}"#, #","props":{"company_size":-4}"#, #","props":{"asset":"whitepaper","nested":{"a":[1,2,{"b":null}]}}"#,
            #","props":{}"#, #","props":null"#,
        ]
        let tracks = ["Email Opened", "Email Link Clicked", "Email Bounced", "Form Submitted", "Signed Up", "Email Delivered", "Meeting Booked"]
        for i in 0..<count {
            let ts = 1_767_225_600_000 + Int64(rng.below(10_000_000_000))
            let time = rng.below(2) == 0 ? String(ts) : "\"\(EventTime.format(ts))\""
            let contact = "c-\(rng.below(50))"
            let id = rng.below(5) == 0 ? "" : #","event_id":"e-\#(rng.below(100))""#
            if rng.below(4) == 0 {
                let messageId = rng.below(5) == 0 ? "" : #","messageId":"m-\#(i)""#
                let user = rng.below(10) == 0 ? "" : #","userId":"\#(contact)""#
                let stamp = #","timestamp":\#(time)"#
                switch rng.below(5) {
                case 0:
                    let props = [#"{"machine_open":true}"#, #"{"link_url":"https://x/case-study"}"#, #"{"bounce_type":"soft"}"#, #"{"form_id":null,"form":"demo"}"#, #"{"form_id":"demo"}"#, "null", "{}"][rng.below(7)]
                    out.append(Array(#"{"type":"track","event":"\#(tracks[rng.below(tracks.count)])"\#(user)\#(messageId)\#(stamp),"properties":\#(props)}"#.utf8))
                case 1:
                    let props = [#"{"url":"https://example.com/pricing?plan=team#faq"}"#, #"{"path":"/blog","url":"https://e.com/x"}"#, #"{"path":"","url":"https://e.com"}"#, #"{"url":"/relative?q"}"#, #"{"path":7}"#][rng.below(5)]
                    out.append(Array(#"{"type":"page"\#(user)\#(messageId)\#(stamp),"properties":\#(props),"context":{"ip":"1.2.3.4","page":{"referrer":""}}}"#.utf8))
                case 2:
                    let traits = [#"{"industry":"SaaS","employees":300,"country":"us","lifecycle_stage":"customer"}"#, #"{"company_size":null,"employees":"40"}"#, #"{"company_size":12,"employees":40,"lifecycle_stage":"lead"}"#, #"{"lifecycle_stage":null}"#, "{}"][rng.below(5)]
                    out.append(Array(#"{"type":"identify"\#(user)\#(messageId)\#(stamp),"traits":\#(traits)}"#.utf8))
                default:
                    out.append(Array(#"{"type":"\#(["screen", "group", "alias"][rng.below(3)])"\#(user)\#(messageId)\#(stamp)}"#.utf8))
                }
            } else {
                let type = types[rng.below(types.count)]
                out.append(Array(#"{"contact_id":"\#(contact)","type":"\#(type)","ts":\#(time)\#(id)\#(propsChoices[rng.below(propsChoices.count)])}"#.utf8))
            }
        }
        return out
    }

    /// Hostile variants of a record: escapes, non-ASCII, wrong JSON types, repeated keys, deep
    /// nesting, odd numbers, whitespace, truncation, a BOM, bytes that are not UTF-8.
    static func hostile(_ record: [UInt8], _ rng: inout SplitMix) -> [[UInt8]] {
        let text = String(decoding: record, as: UTF8.self)
        var out: [[UInt8]] = []
        // Every string: one character escaped (\u, \", \/), or made non-ASCII.
        var quotes: [Int] = []
        for (i, c) in record.enumerated() where c == 34 { quotes.append(i) }
        var q = 0
        while q + 1 < quotes.count {
            let (open, close) = (quotes[q], quotes[q + 1])
            if close > open + 1 {
                for replacement in [Array(#"\u0063"#.utf8), Array(#"\/"#.utf8), Array("é".utf8), Array("😀".utf8), [0xff], [0xc3], [0x09]] {
                    var r = record
                    r.replaceSubrange((open + 1)..<(open + 2), with: replacement)
                    out.append(r)
                }
                var appended = record
                appended.insert(contentsOf: Array(#"\""#.utf8), at: close)
                out.append(appended)
            }
            q += 2
        }
        // Every value replaced by each JSON type, and every key given twice.
        let values = ["1", "-0", "1.5", "1e3", "123456789012345678901234567890", "9223372036854775807", "-9223372036854775808", "true", "false", "null", #""""#, #""x""#, "{}", "[]", #"{"a":{"b":[1,{"c":2}]}}"#, "[1,[2,[3]]]", #""2026-03-02T09:00:00+05:30""#, "1772442000000.9", "-62167219200001", "253402300800000"]
        for key in ["type", "contact_id", "ts", "event_id", "props", "userId", "timestamp", "messageId", "properties", "traits", "event", "machine_open", "url", "path", "kind", "form", "stage", "industry", "company_size", "country", "employees", "lifecycle_stage", "link_url", "form_id", "bounce_type"] {
            guard let range = text.range(of: "\"\(key)\":") else { continue }
            let valueStart = range.upperBound
            var end = valueStart
            var depth = 0, inString = false, escaped = false
            while end < text.endIndex {
                let c = text[end]
                if inString {
                    if escaped { escaped = false } else if c == "\\" { escaped = true } else if c == "\"" { inString = false }
                } else if c == "\"" { inString = true } else if c == "{" || c == "[" { depth += 1 } else if c == "}" || c == "]" {
                    if depth == 0 { break }
                    depth -= 1
                } else if c == "," && depth == 0 { break }
                end = text.index(after: end)
            }
            for v in values.shuffled(using: &rng).prefix(6) {
                out.append(Array((text[..<valueStart] + v + text[end...]).utf8))
            }
            let member = String(text[range.lowerBound..<end])
            out.append(Array((text.dropLast() + "," + member + "}").utf8))
            out.append(Array((text.dropLast() + ",\"\(key)\":" + values[rng.below(values.count)] + "}").utf8))
        }
        // Whitespace everywhere, a BOM, a tail, truncations.
        var spaced = ""
        for c in text { spaced.append(c); if ",:{}[]".contains(c) { spaced.append([" ", "\t", "\r", "\n", "  "][rng.below(5)]) } }
        out.append(Array(spaced.utf8))
        out.append(Array(("  \t" + text + " \r\n").utf8))
        out.append([0xef, 0xbb, 0xbf] + record)
        out.append(record + Array(" x".utf8))
        out.append(record + Array(",".utf8))
        out.append(record + [0])
        for cut in [1, 2, record.count / 2, record.count - 1, record.count - 2] where cut > 0 && cut < record.count {
            out.append(Array(record[..<cut]))
        }
        for _ in 0..<4 {
            var r = record
            r[rng.below(r.count)] = UInt8(rng.below(256))
            out.append(r)
        }
        return out
    }

    @Test("generated records of both shapes: same result, and the fast path takes most")
    func generatedRecords() {
        var (fast, generic, both) = DecoderDifferentialTests.decoders()
        let records = DecoderDifferentialTests.generated(20_000, seed: 7)
        var taken = 0
        for r in records where DecoderDifferentialTests.check(r, &fast, &generic, &both) { taken += 1 }
        #expect(taken * 10 > records.count * 9, "the fast path decoded \(taken) of \(records.count)")
    }

    @Test("hostile variants of generated records: same result")
    func hostileRecords() {
        var (fast, generic, both) = DecoderDifferentialTests.decoders()
        var rng = SplitMix(state: 11)
        var checked = 0
        for r in DecoderDifferentialTests.generated(300, seed: 3) {
            for h in DecoderDifferentialTests.hostile(r, &rng) {
                DecoderDifferentialTests.check(h, &fast, &generic, &both)
                checked += 1
            }
        }
        #expect(checked > 10_000)
    }

    @Test("records of odd shapes: empty, not objects, deep, long, too large")
    func oddShapes() {
        var (fast, generic, both) = DecoderDifferentialTests.decoders()
        let deep = String(repeating: "[", count: 40) + String(repeating: "]", count: 40)
        let cases: [String] = [
            "", " ", "{", "}", "{}", "[]", "null", "\"x\"", "1", "{\"type\":\"page_view\"}",
            #"{"contact_id":"c","type":"page_view","ts":1,"props":{"x":\#(deep)}}"#,
            #"{"contact_id":"c","type":"page_view","ts":1,"x":\#(String(repeating: "[", count: 70) + String(repeating: "]", count: 70))}"#,
            #"{"contact_id":"\#(String(repeating: "a", count: 256))","type":"page_view","ts":1}"#,
            #"{"contact_id":"\#(String(repeating: "a", count: 257))","type":"page_view","ts":1}"#,
            #"{"contact_id":"c","type":"page_view","ts":1,"pad":"\#(String(repeating: "x", count: 5000))"}"#,
            #"{"contact_id":"c","type":"page_view","ts":1,"props":{"path":"/a","url":"/b","stage":1,"lifecycle_stage":2}}"#,
            #"{"contact_id":"c","type":"crm_stage","ts":1,"properties":{"stage":"lead"}}"#,
            #"{"contact_id":"c","type":"crm_stage","ts":1,"props":{"stage":"lead"},"traits":{}}"#,
            #"{"type":"identify","userId":"u","timestamp":1,"traits":{"lifecycle_stage":"lead"},"properties":{"x":1}}"#,
            #"{"type":"identify","userId":"u","timestamp":1,"properties":{"lifecycle_stage":"lead"}}"#,
            #"{"type":"track","userId":"u","timestamp":1,"event":"Email Opened","traits":{"machine_open":true}}"#,
            #"{"type":"page","userId":"u","timestamp":1,"properties":{"url":"https://e.com/a?b#c","path":null}}"#,
            #"{"contact_id":"c","type":"traits","ts":1,"props":{"company_size":"99999999999999999999","industry":"ÄB"}}"#,
            #"{"contact_id":"c","type":"traits","ts":1,"props":{"company_size":1e2,"industry":"A\u0042"}}"#,
            #"{"contact_id":"c","type":"page_view","ts":1772442000000.5}"#,
            #"{"contact_id":"c","type":"page_view","ts":"2026-03-02T09:00:00.123456789-23:59"}"#,
            #"{"contact_id":"c","type":"page_view","ts":"0000-01-01T00:30:00+01:00"}"#,
            #"{"contact_id":"c","type":"page_view","ts":-62167219200000}"#,
            #"{"contact_id":"c","type":"page_view","ts":253402300799999}"#,
            #"{"contact_id":"c","type":"page_view","ts":253402300800000}"#,
            #"{"contact_id":"c","type":"Page_View","ts":1}"#,
            #"{"contact_id":"c","type":"","ts":1}"#,
            #"{"contact_id":"c","type":"track","ts":1}"#,
            #"{"event_id":"","contact_id":"c","type":"email_open","ts":1}"#,
        ]
        for c in cases { DecoderDifferentialTests.check(Array(c.utf8), &fast, &generic, &both) }
    }

    @Test("numbers and strings of every length up to 24, at the record's end and inside it")
    func everyLength() {
        var (fast, generic, both) = DecoderDifferentialTests.decoders()
        var taken = 0
        for length in 1...24 {
            let digits = String((0..<length).map { Character(String(($0 * 7 + 1) % 10)) })
            let nines = String(repeating: "9", count: length)
            let text = String((0..<length).map { Character(UnicodeScalar(UInt8(97 + $0 % 26))) })
            for number in [digits, nines, "-" + digits, digits + ".5", digits + "e2", "0" + digits] {
                for record in [#"{"contact_id":"c","type":"traits","ts":\#(number)}"#, #"{"ts":\#(number),"contact_id":"c","type":"traits"}"#,
                               #"{"contact_id":"c","type":"traits","ts":1,"props":{"company_size":\#(number)}}"#,
                               #"{"contact_id":"c","type":"traits","ts":1,"props":{"company_size":\#(number)} }"#] {
                    if DecoderDifferentialTests.check(Array(record.utf8), &fast, &generic, &both) { taken += 1 }
                }
            }
            for record in [#"{"type":"page_view","ts":1,"contact_id":"\#(text)"}"#, #"{"type":"page_view","ts":1,"contact_id":"\#(text)","#,
                           #"{"type":"page_view","ts":1,"contact_id":"\#(text)"#, #"{"type":"page_view","ts":1,"\#(text)":"\#(text)"}"#] {
                DecoderDifferentialTests.check(Array(record.utf8), &fast, &generic, &both)
            }
        }
        for length in 1...7 {
            // Records shorter than a word.
            for record in [String(repeating: "1", count: length), "{" + String(repeating: " ", count: length - 1), #"{"a":1}"#.prefix(length).description] {
                DecoderDifferentialTests.check(Array(record.utf8), &fast, &generic, &both)
            }
        }
        #expect(taken > 150, "the fast path decoded \(taken)")
    }

    @Test("learned key orders: a key is recognised by its bytes only, whatever came before")
    func learnedKeyOrders() {
        var (fast, generic, both) = DecoderDifferentialTests.decoders()
        // Train the predictions on one order of each shape, then vary every key against them.
        let native = #"{"event_id":"e-1","contact_id":"c-1","type":"email_open","ts":1767225635413,"props":{"machine_open":true}}"#
        let segment = #"{"type":"track","event":"Email Opened","userId":"c-2","messageId":"m-1","timestamp":"2026-01-01T00:10:41.766Z","properties":{"machine_open":false}}"#
        for _ in 0..<3 {
            #expect(DecoderDifferentialTests.check(Array(native.utf8), &fast, &generic, &both))
            #expect(DecoderDifferentialTests.check(Array(segment.utf8), &fast, &generic, &both))
        }
        let variants = [
            // Whitespace before or after a learned key, and before its colon.
            #"{ "event_id":"e-1","contact_id":"c-1","type":"email_open","ts":1,"props":{"machine_open":true}}"#,
            #"{"event_id": "e-1","contact_id" :"c-1","type":"email_open","ts":1,"props":{ "machine_open" : true }}"#,
            // A learned key given twice; a key that extends or shortens a learned one.
            #"{"event_id":"e-1","event_id":"e-2","contact_id":"c-1","type":"email_open","ts":1}"#,
            #"{"event_id":"e-1","contact_id":"c-1","type":"email_open","ts":1,"props":{"machine_open":true,"machine_open":false}}"#,
            #"{"event_ids":"e-1","contact_id":"c-1","type":"email_open","ts":1}"#,
            #"{"event_i":"e-1","contact_id":"c-1","type":"email_open","ts":1}"#,
            #"{"event_id":"e-1","contact_id":"c-1","types":"email_open","type":"email_open","ts":1}"#,
            // An escaped key spelling a learned one, and a key whose bytes differ past its 8th.
            #"{"event_id":"e-1","contact_id":"c-1","type":"email_open","ts":1}"#,
            #"{"event_id":"e-1","contact_iX":"c-1","contact_id":"c-1","type":"email_open","ts":1}"#,
            // Learned keys in other orders and levels; a property name at the root.
            #"{"ts":1,"props":{"machine_open":true},"type":"email_open","contact_id":"c-1","event_id":"e-1"}"#,
            #"{"machine_open":true,"event_id":"e-1","contact_id":"c-1","type":"email_open","ts":1}"#,
            #"{"event_id":"e-1","contact_id":"c-1","type":"email_open","ts":1,"props":{"event_id":"x","machine_open":true}}"#,
            // Keys near the record's end (fewer than 16 bytes left), and cut short there.
            #"{"contact_id":"c-1","type":"email_open","ts":1}"#,
            #"{"contact_id":"c-1","type":"email_open","ts""#,
            #"{"event_id":"e-1","contact_id":"c-1","type":"email_open","ts":1,"props":{"machine_open""#,
        ]
        for _ in 0..<2 {
            for variant in variants {
                DecoderDifferentialTests.check(Array(variant.utf8), &fast, &generic, &both)
                // The trained order still decodes after each variant.
                #expect(DecoderDifferentialTests.check(Array(native.utf8), &fast, &generic, &both))
            }
        }
    }

    @Test("a model whose filters and attributes read other properties")
    func otherModel() throws {
        let yaml = """
        version: diff
        filters:
          big: {type: traits, prop: seats, equals: 10}
          named: {type: [page_view, email_click], prop: title, contains: "Pro"}
          flagged: {any: [{prop: flag, equals: true}, {prop: flag, in: [null, "yes", 3]}]}
        attributes:
          plan: {from: traits, prop: plan, kind: string, case_insensitive: true}
          seats: {from: traits, prop: seats, kind: integer}
          owner: {from: crm_stage, prop: owner, kind: string}
        groups:
          - name: g
            flag: {attribute: seats, between: [5, 50]}
        segment:
          track:
            Upgraded: {type: traits, props: {plan: [plan_name, plan], seats: seats}}
        """
        let model = try Model.load(yaml: yaml, file: "diff.yaml")
        var (fast, generic, both) = DecoderDifferentialTests.decoders(model)
        var rng = SplitMix(state: 5)
        let records = [
            #"{"contact_id":"c","type":"traits","ts":1,"props":{"plan":"PRO","seats":10,"flag":true}}"#,
            #"{"contact_id":"c","type":"page_view","ts":1,"props":{"title":"The Pro plan","flag":"yes"}}"#,
            #"{"contact_id":"c","type":"crm_stage","ts":1,"props":{"stage":"x","owner":"Ann"}}"#,
            #"{"type":"track","event":"Upgraded","userId":"u","timestamp":1,"properties":{"plan_name":null,"plan":"Team","seats":"7"}}"#,
        ].map { Array($0.utf8) }
        for r in records {
            #expect(DecoderDifferentialTests.check(r, &fast, &generic, &both))
            for h in DecoderDifferentialTests.hostile(r, &rng) { DecoderDifferentialTests.check(h, &fast, &generic, &both) }
        }
    }
}

/// SplitMix64, for reproducible test data.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}

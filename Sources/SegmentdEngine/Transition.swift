/// One change of segment membership (contract section 2).
public struct Transition: Sendable, Equatable {
    public enum Cause: Sendable, Equatable {
        /// An event changed membership.
        case event(eventId: String?, type: UInt8)
        /// Time passing did (a window expired, an age was reached).
        case time
        /// A model change did: the contact was re-evaluated under the new rules (live reload
        /// or a restart under another model). Carries the version of the model before.
        case model(previousVersion: String)
    }

    public var contactId: [UInt8]
    public var group: Int
    /// Segment index in the group, or nil for "not in any segment of the group".
    public var from: Int?
    public var to: Int?
    public var at: Millis
    /// How many earlier transitions the contact had in this group at this same instant.
    public var n: Int
    public var cause: Cause

    public init(contactId: [UInt8], group: Int, from: Int?, to: Int?, at: Millis, n: Int, cause: Cause) {
        self.contactId = contactId
        self.group = group
        self.from = from
        self.to = to
        self.at = at
        self.n = n
        self.cause = cause
    }
}

extension Transition {
    /// Calls `body` with a view of this transition (valid only during the call).
    public func withView<R>(_ body: (TransitionView) throws -> R) rethrows -> R {
        try contactId.withUnsafeBufferPointer { contact in
            switch cause {
            case .time:
                return try body(TransitionView(contactId: contact, group: group, from: from, to: to, at: at, n: n, cause: .time))
            case let .event(eventId, type):
                guard var eventId else {
                    return try body(TransitionView(contactId: contact, group: group, from: from, to: to, at: at, n: n, cause: .event(eventId: nil, type: type)))
                }
                return try eventId.withUTF8 { id in
                    try body(TransitionView(contactId: contact, group: group, from: from, to: to, at: at, n: n, cause: .event(eventId: id, type: type)))
                }
            case let .model(previousVersion):
                var version = previousVersion
                return try version.withUTF8 { v in
                    try body(TransitionView(contactId: contact, group: group, from: from, to: to, at: at, n: n, cause: .model(previousVersion: v)))
                }
            }
        }
    }
}

/// A transition borrowed from where it is kept (the engine's contact arena and cause bytes):
/// plain values and pointers, no reference counting. Its pointers are valid only inside the
/// call that hands it out (`SegmentEngine.drainTransitions`, `Transition.withView`).
public struct TransitionView {
    public enum Cause {
        case event(eventId: UnsafeBufferPointer<UInt8>?, type: UInt8)
        case time
        case model(previousVersion: UnsafeBufferPointer<UInt8>)
    }

    public let contactId: UnsafeBufferPointer<UInt8>
    public let group: Int
    public let from: Int?
    public let to: Int?
    public let at: Millis
    public let n: Int
    public let cause: Cause

    /// An owned copy, for callers that keep transitions past the call.
    public var transition: Transition {
        let owned: Transition.Cause
        switch cause {
        case .time: owned = .time
        case let .event(eventId, type): owned = .event(eventId: eventId.map { String(decoding: $0, as: UTF8.self) }, type: type)
        case let .model(previousVersion): owned = .model(previousVersion: String(decoding: previousVersion, as: UTF8.self))
        }
        return Transition(contactId: Array(contactId), group: group, from: from, to: to, at: at, n: n, cause: owned)
    }
}

/// Writes transitions as CloudEvents 1.0 structured-mode JSON, byte for byte deterministic.
///
/// Every constant piece (the header with the group's source, group and segment names as JSON
/// strings, event type names, the model version) is encoded once at init; per transition only
/// the id, times, contact id, event id and cause are written, straight into `out`.
public struct TransitionEncoder: Sendable {
    public let model: Model
    private let groupNames: [[UInt8]]
    private let segmentNames: [[[UInt8]]]
    /// `{"specversion":…,"source":"segmentd/<group>","id":"` per group.
    private let heads: [[UInt8]]
    /// `","group":"<group>"` per group (after the contact id).
    private let groupFields: [[UInt8]]
    /// Segment names as JSON strings, per group.
    private let segmentJSON: [[[UInt8]]]
    /// `,"event_type":"<type>"},"model_version":"<version>"}` per canonical type: the end of
    /// an event-caused document after its event id, in one piece.
    private let eventTails: [[UInt8]]
    /// `"time"},"model_version":"<version>"}`: the end of a time-caused document.
    private let timeTail: [UInt8]
    /// `,"model_version":"<version>"}`.
    private let versionTail: [UInt8]

    public init(model: Model) {
        self.model = model
        groupNames = model.groups.map { Array($0.name.utf8) }
        segmentNames = model.groups.map { $0.segments.map { Array($0.name.utf8) } }
        var heads: [[UInt8]] = []
        var groupFields: [[UInt8]] = []
        for g in model.groups {
            var h: [UInt8] = Array(#"{"specversion":"1.0","type":"segment.transition","source":"segmentd/"#.utf8)
            JSONWriter.raw(Array(g.name.utf8), to: &h)
            h.append(contentsOf: #"","id":""#.utf8)
            heads.append(h)
            var f: [UInt8] = Array(#","group":"#.utf8)
            JSONWriter.string(Array(g.name.utf8), to: &f)
            f.append(contentsOf: #","from":"#.utf8)
            groupFields.append(f)
        }
        self.heads = heads
        self.groupFields = groupFields
        segmentJSON = model.groups.map { g in
            g.segments.map { s in
                var o: [UInt8] = []
                JSONWriter.string(Array(s.name.utf8), to: &o)
                return o
            }
        }
        var v: [UInt8] = Array(#","model_version":"#.utf8)
        JSONWriter.string(Array(model.version.utf8), to: &v)
        v.append(contentsOf: "}".utf8)
        versionTail = v
        eventTails = CanonicalTypes.all.map { Array(#","event_type":""#.utf8) + Array($0.utf8) + Array(#""}"#.utf8) + v }
        timeTail = Array(#""time"}"#.utf8) + v
    }

    /// The deterministic id: a 128-bit hash of (contact_id, group, from, to, at, n), in hex.
    public func id(of t: Transition) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(32)
        t.withView { appendId($0, to: &out) }
        return String(decoding: out, as: UTF8.self)
    }

    private struct IdHasher {
        var h1: UInt64 = 0xcbf2_9ce4_8422_2325
        var h2: UInt64 = 0x6c62_272e_07bb_0142

        @inline(__always) mutating func feed(_ bytes: UnsafeBufferPointer<UInt8>) {
            for c in bytes {
                h1 = (h1 ^ UInt64(c)) &* 0x0000_0100_0000_01B3
                h2 = (h2 ^ UInt64(c)) &* 0x0000_0100_0000_01B3 &+ 0x9e37_79b9
            }
            // A length marker keeps ("ab","c") and ("a","bc") apart.
            h1 = (h1 ^ UInt64(bytes.count) ^ 0xff) &* 0x0000_0100_0000_01B3
            h2 = (h2 ^ UInt64(bytes.count) ^ 0xfe) &* 0x0000_0100_0000_01B3
        }

        mutating func feed(_ bytes: [UInt8]) { bytes.withUnsafeBufferPointer { feed($0) } }

        /// Feeds the decimal digits of `v`, as `String(v)` writes them.
        mutating func feed(decimal v: Int64) {
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { buf in
                var i = 20
                var m = v.magnitude
                repeat {
                    i -= 1
                    buf[i] = UInt8(48 + m % 10)
                    m /= 10
                } while m != 0
                if v < 0 { i -= 1; buf[i] = 45 }
                feed(UnsafeBufferPointer(rebasing: buf[i..<20]))
            }
        }
    }

    private func appendId(_ t: TransitionView, to out: inout [UInt8]) {
        var h = IdHasher()
        h.feed(t.contactId)
        h.feed(groupNames[t.group])
        if let f = t.from { h.feed(segmentNames[t.group][f]) } else { h.feed(TransitionEncoder.noSegment) }
        if let to = t.to { h.feed(segmentNames[t.group][to]) } else { h.feed(TransitionEncoder.noSegment) }
        h.feed(decimal: t.at)
        h.feed(decimal: Int64(t.n))
        func mix(_ x0: UInt64) -> UInt64 {
            var x = x0
            x ^= x >> 30; x = x &* 0xbf58_476d_1ce4_e5b9
            x ^= x >> 27; x = x &* 0x94d0_49bb_1331_11eb
            x ^= x >> 31
            return x
        }
        let a = mix(h.h1), b = mix(h.h2 ^ a)
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { digits in
            TransitionEncoder.hex(a, into: digits.baseAddress!)
            TransitionEncoder.hex(b, into: digits.baseAddress! + 16)
            out.append(contentsOf: UnsafeBufferPointer(digits))
        }
    }

    /// What the id hash is fed for "no segment" (a byte no segment name has alone).
    private static let noSegment: [UInt8] = [0]

    /// 16 lower-case hex digits, zero-padded, written at `p`.
    @inline(__always)
    private static func hex(_ v: UInt64, into p: UnsafeMutablePointer<UInt8>) {
        for k in 0..<16 {
            let d = UInt8((v >> UInt64(60 - 4 * k)) & 15)
            p[k] = d < 10 ? 48 + d : 87 + d
        }
    }

    public func groupName(_ t: Transition) -> String { model.groups[t.group].name }

    public func segmentName(group: Int, _ s: Int?) -> String? { s.map { model.groups[group].segments[$0].name } }

    /// Appends one CloudEvents document (no trailing newline).
    public func encode(_ t: Transition, to out: inout [UInt8]) {
        t.withView { encode($0, to: &out) }
    }

    /// Appends one CloudEvents document (no trailing newline).
    public func encode(_ t: TransitionView, to out: inout [UInt8]) {
        // Grow geometrically: `reserveCapacity(count + n)` alone allocates exactly that, so a
        // buffer that is not flushed between transitions would be copied for every one of them.
        let need = out.count + 512 + 2 * t.contactId.count
        if out.capacity < need { out.reserveCapacity(max(need, 2 * out.capacity)) }
        out.append(contentsOf: heads[t.group])
        appendId(t, to: &out)
        // `time` and `data.at` are the same instant: formatted once, written twice.
        EventTime.withFormatted(t.at) { at in
            JSONWriter.staticString(#"","time":""#, to: &out)
            out.append(contentsOf: at)
            JSONWriter.staticString(#"","subject":"#, to: &out)
            JSONWriter.string(t.contactId, to: &out)
            JSONWriter.staticString(#","datacontenttype":"application/json","data":"#, to: &out)
            encodeData(t, at: at, to: &out)
        }
        out.append(125)  // }
    }

    /// Appends the CloudEvent's `data` object alone: the record value in CloudEvents binary
    /// mode, where the other attributes travel as `ce_` headers (`binaryHeaders`).
    public func encodeData(_ t: Transition, to out: inout [UInt8]) {
        t.withView { view in EventTime.withFormatted(t.at) { encodeData(view, at: $0, to: &out) } }
    }

    private func encodeData(_ t: TransitionView, at: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
        JSONWriter.staticString(#"{"contact_id":"#, to: &out)
        JSONWriter.string(t.contactId, to: &out)
        out.append(contentsOf: groupFields[t.group])
        segment(t.from, t.group, &out)
        JSONWriter.staticString(#","to":"#, to: &out)
        segment(t.to, t.group, &out)
        JSONWriter.staticString(#","at":""#, to: &out)
        out.append(contentsOf: at)
        JSONWriter.staticString(#"","cause":{"kind":"#, to: &out)
        switch t.cause {
        case .time:
            out.append(contentsOf: timeTail)
        case let .model(previousVersion):
            JSONWriter.staticString(#""model","previous_model_version":"#, to: &out)
            JSONWriter.string(previousVersion, to: &out)
            out.append(125)  // }
            out.append(contentsOf: versionTail)
        case let .event(eventId, type):
            if let eventId {
                JSONWriter.staticString(#""event","event_id":"#, to: &out)
                JSONWriter.string(eventId, to: &out)
            } else {
                JSONWriter.staticString(#""event""#, to: &out)
            }
            out.append(contentsOf: eventTails[Int(type)])
        }
    }

    /// CloudEvents Kafka protocol binding, binary mode: the attributes as headers.
    public func binaryHeaders(_ t: Transition) -> [(String, [UInt8])] {
        var time: [UInt8] = []
        EventTime.append(t.at, to: &time)
        return [
            ("ce_specversion", Array("1.0".utf8)),
            ("ce_type", Array("segment.transition".utf8)),
            ("ce_source", Array("segmentd/".utf8) + groupNames[t.group]),
            ("ce_id", Array(id(of: t).utf8)),
            ("ce_time", time),
            ("ce_subject", t.contactId),
            ("content-type", Array("application/json".utf8)),
        ]
    }

    public func encode(_ t: Transition) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(400)
        encode(t, to: &out)
        return out
    }

    private func segment(_ s: Int?, _ g: Int, _ out: inout [UInt8]) {
        if let s { out.append(contentsOf: segmentJSON[g][s]) } else { JSONWriter.staticString("null", to: &out) }
    }
}

/// Minimal JSON string writing for the encoders.
/// JSON string writing: the one escaper every encoder of segmentd uses.
public enum JSONWriter {
    static func string(_ b: [UInt8], to out: inout [UInt8]) {
        b.withUnsafeBufferPointer { string($0, to: &out) }
    }

    static func string(_ b: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
        out.append(34)
        raw(b, to: &out)
        out.append(34)
    }

    @inline(__always)
    static func staticString(_ s: StaticString, to out: inout [UInt8]) {
        out.append(contentsOf: UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }

    /// The escaped contents of a string, without quotes.
    static func raw(_ b: [UInt8], to out: inout [UInt8]) {
        b.withUnsafeBufferPointer { raw($0, to: &out) }
    }

    /// The escaped contents of a string, without quotes. Runs of bytes that need no escape
    /// are copied in one go.
    static func raw(_ b: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
        var runStart = 0
        var i = 0
        let n = b.count
        while i < n {
            let c = b[i]
            if c >= 32 && c != 34 && c != 92 && c != 127 { i += 1; continue }
            if i > runStart { out.append(contentsOf: UnsafeBufferPointer(rebasing: b[runStart..<i])) }
            switch c {
            case 34: out.append(92); out.append(34)
            case 92: out.append(92); out.append(92)
            case 10: out.append(92); out.append(110)
            case 13: out.append(92); out.append(114)
            case 9: out.append(92); out.append(116)
            default:
                let hexd: StaticString = "0123456789abcdef"
                out.append(92); out.append(117); out.append(48); out.append(48)
                out.append(hexd.utf8Start[Int(c >> 4)]); out.append(hexd.utf8Start[Int(c & 15)])
            }
            i += 1
            runStart = i
        }
        if n > runStart { out.append(contentsOf: UnsafeBufferPointer(rebasing: b[runStart..<n])) }
    }

    public static func string(_ s: String, to out: inout [UInt8]) { string(Array(s.utf8), to: &out) }
}

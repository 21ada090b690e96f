/// One change of segment membership (contract section 2).
public struct Transition: Sendable, Equatable {
    public enum Cause: Sendable, Equatable {
        /// An event changed membership.
        case event(eventId: String?, type: UInt8)
        /// Time passing did (a window expired, an age was reached).
        case time
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

/// Writes transitions as CloudEvents 1.0 structured-mode JSON, byte for byte deterministic.
public struct TransitionEncoder: Sendable {
    public let model: Model
    private let groupNames: [[UInt8]]
    private let segmentNames: [[[UInt8]]]
    private let versionJSON: [UInt8]

    public init(model: Model) {
        self.model = model
        groupNames = model.groups.map { Array($0.name.utf8) }
        segmentNames = model.groups.map { $0.segments.map { Array($0.name.utf8) } }
        var v: [UInt8] = []
        JSONWriter.string(Array(model.version.utf8), to: &v)
        versionJSON = v
    }

    /// The deterministic id: a 128-bit hash of (contact_id, group, from, to, at, n), in hex.
    public func id(of t: Transition) -> String {
        var h1: UInt64 = 0xcbf2_9ce4_8422_2325
        var h2: UInt64 = 0x6c62_272e_07bb_0142
        @inline(__always) func feed(_ bytes: [UInt8]) {
            for c in bytes {
                h1 = (h1 ^ UInt64(c)) &* 0x0000_0100_0000_01B3
                h2 = (h2 ^ UInt64(c)) &* 0x0000_0100_0000_01B3 &+ 0x9e37_79b9
            }
            // A length marker keeps ("ab","c") and ("a","bc") apart.
            h1 = (h1 ^ UInt64(bytes.count) ^ 0xff) &* 0x0000_0100_0000_01B3
            h2 = (h2 ^ UInt64(bytes.count) ^ 0xfe) &* 0x0000_0100_0000_01B3
        }
        feed(t.contactId)
        feed(groupNames[t.group])
        feed(t.from.map { segmentNames[t.group][$0] } ?? [0])
        feed(t.to.map { segmentNames[t.group][$0] } ?? [0])
        feed(Array(String(t.at).utf8))
        feed(Array(String(t.n).utf8))
        func mix(_ x0: UInt64) -> UInt64 {
            var x = x0
            x ^= x >> 30; x = x &* 0xbf58_476d_1ce4_e5b9
            x ^= x >> 27; x = x &* 0x94d0_49bb_1331_11eb
            x ^= x >> 31
            return x
        }
        let a = mix(h1), b = mix(h2 ^ a)
        return hex(a) + hex(b)
    }

    private func hex(_ v: UInt64) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }

    public func groupName(_ t: Transition) -> String { model.groups[t.group].name }

    public func segmentName(group: Int, _ s: Int?) -> String? { s.map { model.groups[group].segments[$0].name } }

    /// Appends one CloudEvents document (no trailing newline).
    public func encode(_ t: Transition, to out: inout [UInt8]) {
        let g = groupNames[t.group]
        out.append(contentsOf: #"{"specversion":"1.0","type":"segment.transition","source":"segmentd/"#.utf8)
        JSONWriter.raw(g, to: &out)
        out.append(contentsOf: #"","id":""#.utf8)
        out.append(contentsOf: id(of: t).utf8)
        out.append(contentsOf: #"","time":""#.utf8)
        EventTime.append(t.at, to: &out)
        out.append(contentsOf: #"","subject":"#.utf8)
        JSONWriter.string(t.contactId, to: &out)
        out.append(contentsOf: #","datacontenttype":"application/json","data":{"contact_id":"#.utf8)
        JSONWriter.string(t.contactId, to: &out)
        out.append(contentsOf: #","group":"#.utf8)
        JSONWriter.string(g, to: &out)
        out.append(contentsOf: #","from":"#.utf8)
        segment(t.from, t.group, &out)
        out.append(contentsOf: #","to":"#.utf8)
        segment(t.to, t.group, &out)
        out.append(contentsOf: #","at":""#.utf8)
        EventTime.append(t.at, to: &out)
        out.append(contentsOf: #"","cause":{"kind":"#.utf8)
        switch t.cause {
        case .time:
            out.append(contentsOf: #""time"}"#.utf8)
        case let .event(eventId, type):
            out.append(contentsOf: #""event""#.utf8)
            if let eventId {
                out.append(contentsOf: #","event_id":"#.utf8)
                JSONWriter.string(Array(eventId.utf8), to: &out)
            }
            out.append(contentsOf: #","event_type":""#.utf8)
            out.append(contentsOf: CanonicalTypes.all[Int(type)].utf8)
            out.append(contentsOf: #""}"#.utf8)
        }
        out.append(contentsOf: #","model_version":"#.utf8)
        out.append(contentsOf: versionJSON)
        out.append(contentsOf: "}}".utf8)
    }

    public func encode(_ t: Transition) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(400)
        encode(t, to: &out)
        return out
    }

    private func segment(_ s: Int?, _ g: Int, _ out: inout [UInt8]) {
        if let s { JSONWriter.string(segmentNames[g][s], to: &out) } else { out.append(contentsOf: "null".utf8) }
    }
}

/// Minimal JSON string writing for the encoders.
enum JSONWriter {
    static func string(_ b: [UInt8], to out: inout [UInt8]) {
        out.append(34)
        raw(b, to: &out)
        out.append(34)
    }

    /// The escaped contents of a string, without quotes.
    static func raw(_ b: [UInt8], to out: inout [UInt8]) {
        let hexd: [UInt8] = Array("0123456789abcdef".utf8)
        for c in b {
            switch c {
            case 34: out.append(92); out.append(34)
            case 92: out.append(92); out.append(92)
            case 10: out.append(92); out.append(110)
            case 13: out.append(92); out.append(114)
            case 9: out.append(92); out.append(116)
            case 0..<32, 127:
                out.append(contentsOf: [92, 117, 48, 48, hexd[Int(c >> 4)], hexd[Int(c & 15)]])
            default: out.append(c)
            }
        }
    }

    static func string(_ s: String, to out: inout [UInt8]) { string(Array(s.utf8), to: &out) }
}

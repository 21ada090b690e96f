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
/// strings, event type names, the model version) is encoded once at init into one table.
/// A document is assembled through a `RawWriter` in a scratch buffer sized for the worst case
/// and appended to the output in one piece: no per-field appends, no allocation per transition.
public final class TransitionEncoder: Sendable {
    public let model: Model
    private let groupNames: [[UInt8]]
    /// The constant pieces, back to back, and where each is (`Piece`).
    private let pieces: [UInt8]
    private let pieceStarts: [Int32]
    /// Piece indices: per group its header and group field, then per group its segments' names
    /// (segment s: its JSON string at `segmentPiece[g] + 2 * s`, its bytes as the id hashes
    /// them next), per canonical type the end of an event-caused document, then the group
    /// names as the id hashes them.
    private let headPiece: Int, groupFieldPiece: Int, segmentPiece: [Int], eventTailPiece: Int
    private let timeTailPiece: Int, versionTailPiece: Int, groupNamePiece: Int
    /// The longest a document can be besides its contact id and cause text (escaped).
    private let constantBound: Int

    public init(model: Model) {
        self.model = model
        groupNames = model.groups.map { Array($0.name.utf8) }
        var table: [[UInt8]] = []
        // `{"specversion":…,"source":"segmentd/<group>","id":"` per group.
        headPiece = 0
        for g in model.groups {
            var h: [UInt8] = Array(#"{"specversion":"1.0","type":"segment.transition","source":"segmentd/"#.utf8)
            JSONWriter.raw(Array(g.name.utf8), to: &h)
            h.append(contentsOf: #"","id":""#.utf8)
            table.append(h)
        }
        // `,"group":"<group>","from":` per group (after the contact id).
        groupFieldPiece = table.count
        for g in model.groups {
            var f: [UInt8] = Array(#","group":"#.utf8)
            JSONWriter.string(Array(g.name.utf8), to: &f)
            f.append(contentsOf: #","from":"#.utf8)
            table.append(f)
        }
        var segmentPiece: [Int] = []
        for g in model.groups {
            segmentPiece.append(table.count)
            for segment in g.segments {
                var o: [UInt8] = []
                JSONWriter.string(Array(segment.name.utf8), to: &o)
                table.append(o)
                table.append(Array(segment.name.utf8))
            }
        }
        self.segmentPiece = segmentPiece
        var v: [UInt8] = Array(#","model_version":"#.utf8)
        JSONWriter.string(Array(model.version.utf8), to: &v)
        v.append(contentsOf: "}".utf8)
        // `,"event_type":"<type>"},"model_version":"<version>"}` per canonical type: the end
        // of an event-caused document after its event id, in one piece.
        eventTailPiece = table.count
        for type in model.eventTypes { table.append(Array(#","event_type":""#.utf8) + Array(type.utf8) + Array(#""}"#.utf8) + v) }
        timeTailPiece = table.count
        table.append(Array(#""time"}"#.utf8) + v)
        versionTailPiece = table.count
        table.append(v)
        groupNamePiece = table.count
        table += groupNames
        var starts: [Int32] = [0]
        for piece in table { starts.append(starts.last! + Int32(piece.count)) }
        pieces = table.flatMap { $0 }
        pieceStarts = starts
        // Header + id + time twice + the fixed field names, the longest group field, two
        // segment names, cause kind and tail, with room to spare.
        let longest = { (range: Range<Int>) in range.map { table[$0].count }.max() ?? 0 }
        constantBound = longest(0..<model.groups.count) + longest(groupFieldPiece..<(groupFieldPiece + model.groups.count))
            + 2 * max(4, longest((segmentPiece.first ?? eventTailPiece)..<eventTailPiece)) + longest(eventTailPiece..<groupNamePiece)
            + 32 + 2 * EventTime.formattedLength + 256
    }

    /// The deterministic id: a 128-bit hash of (contact_id, group, from, to, at, n), in hex.
    public func id(of t: Transition) -> String {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { digits in
            t.withView { view in
                withWriter(at: digits.baseAddress!) { w in writeId(view, &w) }
            }
            return String(decoding: digits, as: UTF8.self)
        }
    }

    /// Writes the 32 hex digits of the id.
    @inline(__always)
    private func writeId(_ t: TransitionView, _ w: inout RawWriter) {
        var h = CloudEventIdHasher()
        h.feed(t.contactId)
        h.feed(w.pieceBytes(groupNamePiece + t.group))
        let segments = segmentPiece[t.group]
        if let f = t.from { h.feed(w.pieceBytes(segments + 2 * f + 1)) } else { h.feedNoSegment() }
        if let to = t.to { h.feed(w.pieceBytes(segments + 2 * to + 1)) } else { h.feedNoSegment() }
        h.feed(decimal: t.at)
        h.feed(decimal: Int64(t.n))
        let (a, b) = h.finish()
        TransitionEncoder.hex(a, into: UnsafeMutableRawPointer(w.cursor))
        TransitionEncoder.hex(b, into: UnsafeMutableRawPointer(w.cursor + 16))
        w.advance(32)
    }

    /// A writer at `start` over this encoder's constant pieces (valid only during the call).
    @inline(__always)
    private func withWriter<R>(at start: UnsafeMutablePointer<UInt8>, _ body: (inout RawWriter) -> R) -> R {
        pieces.withUnsafeBufferPointer { table in
            pieceStarts.withUnsafeBufferPointer { starts in
                var w = RawWriter(start: start, table: table, starts: starts)
                return body(&w)
            }
        }
    }

    /// 16 lower-case hex digits, zero-padded, written at `p`: each half's nibbles spread to
    /// one byte each and turned into digits eight at a time (no loop over the digits).
    @inline(__always)
    static func hex(_ v: UInt64, into p: UnsafeMutableRawPointer) {
        p.storeBytes(of: hexDigits(UInt32(truncatingIfNeeded: v >> 32)), as: UInt64.self)
        (p + 8).storeBytes(of: hexDigits(UInt32(truncatingIfNeeded: v)), as: UInt64.self)
    }

    /// The 8 hex digits of `x`, the most significant in the lowest byte of memory.
    @inline(__always)
    static func hexDigits(_ x: UInt32) -> UInt64 {
        var nibbles = UInt64(x)
        nibbles = ((nibbles & 0xFFFF_0000) << 16) | (nibbles & 0xFFFF)
        nibbles = ((nibbles & 0x0000_FF00_0000_FF00) << 8) | (nibbles & 0x0000_00FF_0000_00FF)
        nibbles = ((nibbles & 0x00F0_00F0_00F0_00F0) << 4) | (nibbles & 0x000F_000F_000F_000F)
        // Byte i holds nibble i (the least significant in byte 0): 1 in each byte of 10 or more.
        let letters = ((nibbles &+ 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101
        let digits = nibbles &+ 0x3030_3030_3030_3030 &+ letters &* 39
        return digits.bigEndian
    }

    public func groupName(_ t: Transition) -> String { model.groups[t.group].name }

    public func segmentName(group: Int, _ s: Int?) -> String? { s.map { model.groups[group].segments[$0].name } }

    /// Appends one CloudEvents document (no trailing newline).
    public func encode(_ t: Transition, to out: inout [UInt8]) {
        t.withView { encode($0, to: &out) }
    }

    /// The most bytes a document (or its data object) for `t` can take: every byte of the
    /// contact id (written twice) and of the cause text escaped to at most 6.
    private func bound(_ t: TransitionView) -> Int {
        var causeText = 0
        switch t.cause {
        case .time: break
        case let .event(eventId, _): causeText = eventId?.count ?? 0
        case let .model(previousVersion): causeText = previousVersion.count
        }
        return constantBound + 12 * t.contactId.count + 6 * causeText
    }

    /// Assembles a document of at most `bound` bytes in scratch memory (on the stack when
    /// small) and appends it to `out` in one piece.
    @inline(__always)
    private func assemble(bound: Int, to out: inout [UInt8], _ body: (inout RawWriter) -> Void) {
        // Grow geometrically: `reserveCapacity(count + n)` alone allocates exactly that, so a
        // buffer that is not flushed between transitions would be copied for every one of them.
        let need = out.count + bound
        if out.capacity < need { out.reserveCapacity(max(need, 2 * out.capacity)) }
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: bound) { scratch in
            let count = withWriter(at: scratch.baseAddress!) { w in
                body(&w)
                return w.count
            }
            out.append(contentsOf: UnsafeBufferPointer(start: scratch.baseAddress!, count: count))
        }
    }

    /// Appends one CloudEvents document (no trailing newline).
    public func encode(_ t: TransitionView, to out: inout [UInt8]) {
        assemble(bound: bound(t), to: &out) { w in writeDocument(t, &w) }
    }

    /// Appends one CloudEvents document and a newline (a line of NDJSON).
    public func encodeLine(_ t: TransitionView, to out: inout [UInt8]) {
        assemble(bound: bound(t) + 1, to: &out) { w in
            writeDocument(t, &w)
            w.byte(10)
        }
    }

    /// Appends one CloudEvents document and a newline, written in place at the end of `out`.
    /// A transition at the instant of the one before it in `out` (the transitions of one
    /// evaluation) copies that instant's characters instead of formatting it again.
    public func encodeLine(_ t: TransitionView, to out: inout OutputBytes) {
        let at = out.tail(reserving: bound(t) + 1)
        let last = out.lastInstant
        let formatted = last.offset >= 0 && last.at == t.at ? UnsafePointer(out.start + last.offset) : nil
        let (count, instant) = withWriter(at: at) { w in
            let instant = writeDocument(t, &w, formatted: formatted)
            w.byte(10)
            return (w.count, instant)
        }
        out.lastInstant = (t.at, out.count + (instant - at))
        out.advance(by: count)
    }

    /// Writes the document; returns where its instant's characters are. `formatted`: those
    /// characters, already written for an earlier document.
    @inline(__always)
    @discardableResult
    private func writeDocument(_ t: TransitionView, _ w: inout RawWriter, formatted: UnsafePointer<UInt8>? = nil) -> UnsafeMutablePointer<UInt8> {
        w.piece(headPiece + t.group)
        writeId(t, &w)
        // `time` and `data.at` are the same instant: formatted once, copied once.
        w.staticString(#"","time":""#)
        let at = w.cursor
        if let formatted {
            ShortCopy.copy(formatted, to: at, count: EventTime.formattedLength)
        } else {
            EventTime.write(t.at, into: at)
        }
        w.advance(EventTime.formattedLength)
        w.staticString(#"","subject":"#)
        let subject = w.cursor
        w.jsonString(t.contactId)
        let contact = UnsafeBufferPointer(start: subject, count: w.cursor - subject)
        w.staticString(#","datacontenttype":"application/json","data":"#)
        writeData(t, at: UnsafeBufferPointer(start: at, count: EventTime.formattedLength), contact: contact, &w)
        w.byte(125)  // }
        return at
    }

    /// Appends the CloudEvent's `data` object alone: the record value in CloudEvents binary
    /// mode, where the other attributes travel as `ce_` headers (`binaryHeaders`).
    public func encodeData(_ t: Transition, to out: inout [UInt8]) {
        t.withView { view in
            assemble(bound: bound(view), to: &out) { w in
                EventTime.withFormatted(t.at) { writeData(view, at: $0, contact: nil, &w) }
            }
        }
    }

    /// `contact`: the contact id as a JSON string already written (the document's subject),
    /// copied rather than escaped again.
    private func writeData(_ t: TransitionView, at: UnsafeBufferPointer<UInt8>, contact: UnsafeBufferPointer<UInt8>?, _ w: inout RawWriter) {
        w.staticString(#"{"contact_id":"#)
        if let contact { w.bytes(contact) } else { w.jsonString(t.contactId) }
        w.piece(groupFieldPiece + t.group)
        segment(t.from, t.group, &w)
        w.staticString(#","to":"#)
        segment(t.to, t.group, &w)
        w.staticString(#","at":""#)
        w.bytes(at)
        w.staticString(#"","cause":{"kind":"#)
        switch t.cause {
        case .time:
            w.piece(timeTailPiece)
        case let .model(previousVersion):
            w.staticString(#""model","previous_model_version":"#)
            w.jsonString(previousVersion)
            w.byte(125)  // }
            w.piece(versionTailPiece)
        case let .event(eventId, type):
            if let eventId {
                w.staticString(#""event","event_id":"#)
                w.jsonString(eventId)
            } else {
                w.staticString(#""event""#)
            }
            w.piece(eventTailPiece + Int(type))
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

    private func segment(_ s: Int?, _ g: Int, _ w: inout RawWriter) {
        if let s { w.piece(segmentPiece[g] + 2 * s) } else { w.staticString("null") }
    }
}

/// Writes bytes through a pointer into memory the caller sized for the worst case: no bounds
/// or capacity checks per byte, no reference counting.
struct RawWriter {
    private let start: UnsafeMutablePointer<UInt8>
    private(set) var cursor: UnsafeMutablePointer<UInt8>
    /// The encoder's constant pieces and where each begins (piece i: starts[i] ..< starts[i + 1]).
    private let table: UnsafeBufferPointer<UInt8>
    private let starts: UnsafeBufferPointer<Int32>

    init(start: UnsafeMutablePointer<UInt8>, table: UnsafeBufferPointer<UInt8>, starts: UnsafeBufferPointer<Int32>) {
        self.start = start
        self.cursor = start
        self.table = table
        self.starts = starts
    }

    var count: Int { cursor - start }

    @inline(__always) mutating func advance(_ n: Int) { cursor += n }

    @inline(__always) mutating func byte(_ c: UInt8) {
        cursor.pointee = c
        cursor += 1
    }

    @inline(__always) mutating func bytes(_ b: UnsafeBufferPointer<UInt8>) {
        guard let base = b.baseAddress else { return }
        ShortCopy.copy(base, to: cursor, count: b.count)
        cursor += b.count
    }

    @inline(__always) mutating func piece(_ i: Int) { bytes(pieceBytes(i)) }

    /// Constant piece `i`.
    @inline(__always) func pieceBytes(_ i: Int) -> UnsafeBufferPointer<UInt8> {
        let lo = Int(starts[i]), hi = Int(starts[i + 1])
        return UnsafeBufferPointer(rebasing: table[lo..<hi])
    }

    @inline(__always) mutating func staticString(_ s: StaticString) {
        bytes(UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }

    /// A JSON string: quotes around the bytes escaped by `JSONWriter.escape`. Most strings
    /// (ids) need no escape: copied as words as they are checked (`copyIfPlain`), escaped only
    /// when a byte may need it.
    mutating func jsonString(_ b: UnsafeBufferPointer<UInt8>) {
        byte(34)
        if let base = b.baseAddress, RawWriter.copyIfPlain(base, count: b.count, to: cursor) {
            cursor += b.count
        } else {
            JSONWriter.escape(b, run: { bytes($0) }, byte: { byte($0) })
        }
        byte(34)
    }
}

extension RawWriter {
    /// Copies `count` bytes from `source` to `destination` if none of them may need escaping
    /// (`mayNeedEscaping`; below 4 bytes, byte by byte by `JSONWriter.escapes`) and says whether it
    /// did; when not, some may have been written. Like `ShortCopy`: 8-byte words, the last of
    /// which may overlap the one before, or two 4-byte words that may overlap; no byte outside
    /// either range is read or written. An id of 4 to 16 bytes is two loads, one test and two
    /// stores.
    @inline(__always)
    static func copyIfPlain(_ source: UnsafePointer<UInt8>, count: Int, to destination: UnsafeMutablePointer<UInt8>) -> Bool {
        let from = UnsafeRawPointer(source), to = UnsafeMutableRawPointer(destination)
        if count >= 8 {
            var offset = 0
            while offset &+ 8 < count {
                let word = from.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
                if mayNeedEscaping(word) { return false }
                to.storeBytes(of: word, toByteOffset: offset, as: UInt64.self)
                offset &+= 8
            }
            let last = from.loadUnaligned(fromByteOffset: count &- 8, as: UInt64.self)
            if mayNeedEscaping(last) { return false }
            to.storeBytes(of: last, toByteOffset: count &- 8, as: UInt64.self)
            return true
        }
        if count >= 4 {
            let head = from.loadUnaligned(as: UInt32.self), tail = from.loadUnaligned(fromByteOffset: count &- 4, as: UInt32.self)
            if mayNeedEscaping(UInt64(head) | UInt64(tail) << 32) { return false }
            to.storeBytes(of: head, as: UInt32.self)
            to.storeBytes(of: tail, toByteOffset: count &- 4, as: UInt32.self)
            return true
        }
        var i = 0
        while i < count {
            let c = source[i]
            guard !JSONWriter.escapes(c) else { return false }
            destination[i] = c
            i &+= 1
        }
        return true
    }

    /// Whether any byte of `word` is one `jsonString` escapes (or non-ASCII, which it copies
    /// but the test below flags): `JSONTape.specialBytes`, plus DEL. False only when none is.
    @inline(__always)
    static func mayNeedEscaping(_ word: UInt64) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let del = word ^ (ones &* 0x7F)
        return JSONTape.specialBytes(word) | ((del &- ones) & ~del & (ones &* 0x80)) != 0
    }
}

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

    /// The escaped contents of a string, without quotes.
    static func raw(_ b: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
        escape(b, run: { out.append(contentsOf: $0) }, byte: { out.append($0) })
    }

    /// Whether `escape` writes byte `c` as an escape: `"`, `\`, control bytes and DEL (every
    /// other byte, UTF-8 included, is written as is).
    @inline(__always)
    static func escapes(_ c: UInt8) -> Bool { c < 32 || c == 34 || c == 92 || c == 127 }

    /// Escapes `b` for the inside of a JSON string, handing runs of bytes that need no escape
    /// to `run` in one piece and each byte of an escape to `byte`: `"`, `\`, `\n`, `\r`, `\t`
    /// by name, other control bytes and DEL as `\u00XX`; everything else (UTF-8 included) as is.
    @inline(__always)
    static func escape(_ b: UnsafeBufferPointer<UInt8>, run: (UnsafeBufferPointer<UInt8>) -> Void, byte: (UInt8) -> Void) {
        var runStart = 0
        var i = 0
        let n = b.count
        while i < n {
            let c = b[i]
            if !escapes(c) { i += 1; continue }
            if i > runStart { run(UnsafeBufferPointer(rebasing: b[runStart..<i])) }
            switch c {
            case 34: byte(92); byte(34)
            case 92: byte(92); byte(92)
            case 10: byte(92); byte(110)
            case 13: byte(92); byte(114)
            case 9: byte(92); byte(116)
            default:
                let hexDigits: StaticString = "0123456789abcdef"
                byte(92); byte(117); byte(48); byte(48)
                byte(hexDigits.utf8Start[Int(c >> 4)]); byte(hexDigits.utf8Start[Int(c & 15)])
            }
            i += 1
            runStart = i
        }
        if n > runStart { run(UnsafeBufferPointer(rebasing: b[runStart..<n])) }
    }

    public static func string(_ s: String, to out: inout [UInt8]) { string(Array(s.utf8), to: &out) }
}

/// The deterministic CloudEvents `id` of segmentd's records: a 128-bit FNV-1a variant over the
/// fields that identify the record, each followed by a length marker, then mixed (SplitMix64
/// finalizers), as 32 hex digits. Transitions hash (contact, group, from, to, at, n);
/// `segment.snapshot` records ("segment.snapshot", contact, group, segment, at).
public struct CloudEventIdHasher {
    var h1: UInt64 = 0xcbf2_9ce4_8422_2325
    var h2: UInt64 = 0x6c62_272e_07bb_0142

    /// What the hash is fed for "no segment" (a byte no segment name has alone).
    public static let noSegment: [UInt8] = [0]

    public init() {}

    @inline(__always) public mutating func feed(_ bytes: UnsafeBufferPointer<UInt8>) {
        // An empty buffer may have no address: nothing is read from it.
        feed(bytes.baseAddress ?? UnsafePointer(bitPattern: 1)!, bytes.count)
    }

    /// Feeds `p[0 ..< count]`, two bytes per turn of the loop (the same hash as one at a time).
    @inline(__always) mutating func feed(_ p: UnsafePointer<UInt8>, _ count: Int) {
        var a = h1, b = h2
        var i = 0
        while i &+ 2 <= count {
            let c0 = UInt64(p[i]), c1 = UInt64(p[i &+ 1])
            a = (a ^ c0) &* 0x0000_0100_0000_01B3
            b = (b ^ c0) &* 0x0000_0100_0000_01B3 &+ 0x9e37_79b9
            a = (a ^ c1) &* 0x0000_0100_0000_01B3
            b = (b ^ c1) &* 0x0000_0100_0000_01B3 &+ 0x9e37_79b9
            i &+= 2
        }
        if i < count {
            let c = UInt64(p[i])
            a = (a ^ c) &* 0x0000_0100_0000_01B3
            b = (b ^ c) &* 0x0000_0100_0000_01B3 &+ 0x9e37_79b9
        }
        h1 = a
        h2 = b
        endField(count)
    }

    /// Feeds the low `count` bytes of `word`, the first in the lowest byte (no length marker).
    @inline(__always) mutating func feedBytes(of word: UInt64, count: Int) {
        var a = h1, b = h2, rest = word
        for _ in 0..<count {
            let c = rest & 0xFF
            rest >>= 8
            a = (a ^ c) &* 0x0000_0100_0000_01B3
            b = (b ^ c) &* 0x0000_0100_0000_01B3 &+ 0x9e37_79b9
        }
        h1 = a
        h2 = b
    }

    /// The end of a field of `count` bytes: a length marker keeps ("ab","c") and ("a","bc") apart.
    @inline(__always) mutating func endField(_ count: Int) {
        h1 = (h1 ^ UInt64(count) ^ 0xff) &* 0x0000_0100_0000_01B3
        h2 = (h2 ^ UInt64(count) ^ 0xfe) &* 0x0000_0100_0000_01B3
    }

    public mutating func feed(_ bytes: [UInt8]) { bytes.withUnsafeBufferPointer { feed($0) } }

    /// Feeds "no segment" (`noSegment`).
    @inline(__always) public mutating func feedNoSegment() {
        feedBytes(of: 0, count: 1)
        endField(1)
    }

    /// Feeds the decimal digits of `v`, as `String(v)` writes them: from registers for 0 up to
    /// 10¹⁶ − 1 (every instant from 1970 to the year 9999 in milliseconds), else from the text.
    @inline(__always) public mutating func feed(decimal v: Int64) {
        guard v >= 0 && v < 10_000_000_000_000_000 else {
            var text = String(v)
            text.withUTF8 { feed($0) }
            return
        }
        let digits = DecimalDigits.ascii(UInt64(v))
        feedBytes(of: digits.lead, count: digits.leadCount)
        if digits.restCount > 0 { feedBytes(of: digits.rest, count: 8) }
        endField(digits.leadCount + digits.restCount)
    }

    /// The two mixed halves of the id.
    @inline(__always) public func finish() -> (UInt64, UInt64) {
        func mix(_ x0: UInt64) -> UInt64 {
            var x = x0
            x ^= x >> 30; x = x &* 0xbf58_476d_1ce4_e5b9
            x ^= x >> 27; x = x &* 0x94d0_49bb_1331_11eb
            x ^= x >> 31
            return x
        }
        let a = mix(h1)
        return (a, mix(h2 ^ a))
    }

    /// The id as its 32 hex digits.
    public func hex() -> String {
        let (a, b) = finish()
        return String(unsafeUninitializedCapacity: 32) { buf in
            TransitionEncoder.hex(a, into: UnsafeMutableRawPointer(buf.baseAddress!))
            TransitionEncoder.hex(b, into: UnsafeMutableRawPointer(buf.baseAddress! + 16))
            return 32
        }
    }
}

/// The byte encodings of contact snapshots (see `EngineCore.snapshot(contact:tag:format:)`).
///
/// Formats 1 and 2 write every field as 8 little-endian bytes. Format 3 (compact) writes each
/// field as a variable-length integer (LEB128, 7 bits per byte, low bits first) and most times
/// relative to the contact's newest event time, so an empty slot takes one byte and a recent
/// time two to five: a snapshot is a fifth of format 2's size. Format 4 (the one written now)
/// is format 3 with the remembered event ids as one list after the pairs, each a 4-byte
/// fingerprint and its stamp, instead of two (hash, stamp) pairs in the row and the rest in
/// that list with 8-byte hashes.
enum SnapshotCodec {
    /// How formats 3 and 4 write a row slot (derived once per model from the layout).
    enum SlotKind: UInt8 {
        /// Written as itself (segments, flags, days, summed values, event-id fingerprints).
        case plain
        /// An instant, written relative to the newest event time.
        case time
        /// A scored event (`ScoredEvent`, time << 15 | points), relative to the newest time so.
        case scored
        /// Not written: the newest time (in the header), the timer (always unscheduled in a
        /// snapshot) and the latest-of and attribute slots (written out in full after the slots).
        case skipped
    }

    static func slotKinds(_ layout: StateLayout, pairSlots: [(offset: Int, isString: Bool, isDate: Bool)]) -> [SlotKind] {
        var kinds = [SlotKind](repeating: .plain, count: layout.logicalStride)
        kinds[StateLayout.lastTransition] = .time
        kinds[StateLayout.maxTs] = .skipped
        kinds[StateLayout.firstSeen] = .time
        kinds[StateLayout.cursor] = .time
        kinds[StateLayout.scheduled] = .skipped
        for l in layout.lists { for k in 0..<l.capacity { kinds[l.logicalOffset + k] = .time } }
        for l in layout.sumLists { for k in 0..<l.capacity { kinds[l.logicalOffset + 2 * k] = .time } }
        for l in layout.scoreLists { for k in 0..<l.capacity { kinds[l.logicalOffset + k] = .scored } }
        for (offset, _, isDate) in pairSlots {
            let logical = layout.logicalOffset(ofSlot: offset)
            kinds[logical] = .skipped
            if isDate { kinds[logical + 1] = .skipped }
        }
        // The remembered ids are written as a list (format 4) or as (hash, stamp) pairs (format 3).
        for k in 0..<StateLayout.dedupSlots { kinds[layout.logicalDedupOffset + k] = .skipped }
        return kinds
    }

    /// Whether the bytes are `expected` (the generic `elementsEqual` costs hundreds of
    /// instructions for a model version, and restore compares one per contact).
    @inline(__always)
    static func equal(_ bytes: UnsafeRawBufferPointer, _ expected: [UInt8]) -> Bool {
        guard bytes.count == expected.count else { return false }
        return expected.withUnsafeBufferPointer { e in
            for i in 0..<e.count where bytes[i] != e[i] { return false }
            return true
        }
    }

    /// The first 8 bytes of a format 3 or 4 snapshot: -3 or -4, little-endian (format 2 starts
    /// with -2, format 1 with a non-negative length).
    static let compactMarkers: ClosedRange<Int64> = -4 ... -3

    /// The caller's tag of a format 3 or 4 snapshot (see `SegmentEngine.snapshot(contact:tag:)`),
    /// read without decoding the rest; nil for another format or a truncated snapshot.
    static func tag(of snapshot: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        var r = SnapshotReader(snapshot, compact: true)
        guard let marker = r.fixed(), compactMarkers.contains(marker) else { return nil }
        return r.bytes()
    }
}

/// LEB128 variable-length integers: 7 bits per byte, low bits first, the high bit set on every
/// byte but the last. Used by compact snapshots and the changelog's contact records.
public enum VarInt {
    /// The most bytes a 64-bit value takes.
    public static let maxBytes = 10

    /// Writes `v` at `out + at` and advances `at`.
    @inline(__always)
    public static func write(_ v: UInt64, to out: UnsafeMutableRawPointer, at: inout Int) {
        var v = v
        while v >= 0x80 {
            out.storeBytes(of: UInt8(truncatingIfNeeded: v) | 0x80, toByteOffset: at, as: UInt8.self)
            at += 1
            v >>= 7
        }
        out.storeBytes(of: UInt8(v), toByteOffset: at, as: UInt8.self)
        at += 1
    }

    /// Reads a value at `at` and advances it; nil when the bytes end first or the value does
    /// not fit 64 bits.
    @inline(__always)
    public static func read(_ b: UnsafeRawBufferPointer, at: inout Int) -> UInt64? {
        // Most values of a compact snapshot take one byte.
        if at < b.count {
            let first = b.load(fromByteOffset: at, as: UInt8.self)
            if first < 0x80 {
                at += 1
                return UInt64(first)
            }
        }
        return readLong(b, at: &at)
    }

    @inline(never)
    static func readLong(_ b: UnsafeRawBufferPointer, at: inout Int) -> UInt64? {
        var v: UInt64 = 0
        var shift: UInt64 = 0
        while at < b.count {
            let byte = b[at]
            at += 1
            if shift == 63 && byte > 1 { return nil }
            v |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 { return v }
            shift += 7
            if shift > 63 { return nil }
        }
        return nil
    }

    /// Signed values as unsigned ones with small magnitudes small (0, -1, 1, -2 … → 0, 1, 2, 3 …).
    @inline(__always) public static func zigzag(_ v: Int64) -> UInt64 { UInt64(bitPattern: (v << 1) ^ (v >> 63)) }
    @inline(__always) public static func unzigzag(_ u: UInt64) -> Int64 { Int64(bitPattern: u >> 1) ^ -Int64(bitPattern: u & 1) }
}

/// Writes a snapshot into memory of a size bounded in advance. In the compact format a word is
/// 0 for none (`SegmentEngine.none`), 1 then 8 raw bytes for a value too far from its base, or
/// else 2 + the zigzag of its difference from `base`; formats 1 and 2 write every word as 8 bytes.
struct SnapshotWriter {
    let out: UnsafeMutableRawPointer
    let compact: Bool
    private(set) var position = 0

    init(_ out: UnsafeMutableRawPointer, compact: Bool) {
        self.out = out
        self.compact = compact
    }

    /// The most bytes `words` words take, in either format.
    static func bound(words: Int) -> Int { words * VarInt.maxBytes }

    mutating func fixed(_ v: Int64) {
        out.storeBytes(of: v.littleEndian, toByteOffset: position, as: Int64.self)
        position += 8
    }

    mutating func word(_ v: Int64, base: Int64 = 0) {
        guard compact else { return fixed(v) }
        if v == SegmentEngine.none { return VarInt.write(0, to: out, at: &position) }
        let z = VarInt.zigzag(v &- base)
        if z <= UInt64.max - 2 { return VarInt.write(z + 2, to: out, at: &position) }
        VarInt.write(1, to: out, at: &position)
        fixed(v)
    }

    mutating func fixed32(_ v: UInt32) {
        out.storeBytes(of: v.littleEndian, toByteOffset: position, as: UInt32.self)
        position += 4
    }

    mutating func count(_ n: Int) {
        if compact { VarInt.write(UInt64(n), to: out, at: &position) } else { fixed(Int64(n)) }
    }

    mutating func bytes(_ b: UnsafeRawBufferPointer) {
        count(b.count)
        if let base = b.baseAddress, !b.isEmpty { (out + position).copyMemory(from: base, byteCount: b.count) }
        position += b.count
    }
}

/// Reads what `SnapshotWriter` wrote, in the snapshot's format; every read returns nil when the
/// bytes end first.
struct SnapshotReader {
    let data: UnsafeRawBufferPointer
    let compact: Bool
    var pos = 0

    init(_ data: UnsafeRawBufferPointer, compact: Bool) {
        self.data = data
        self.compact = compact
    }

    @inline(__always)
    mutating func fixed() -> Int64? {
        guard pos + 8 <= data.count else { return nil }
        defer { pos += 8 }
        return Int64(littleEndian: data.loadUnaligned(fromByteOffset: pos, as: Int64.self))
    }

    @inline(__always)
    mutating func word(base: Int64 = 0) -> Int64? {
        guard compact else { return fixed() }
        guard let u = VarInt.read(data, at: &pos) else { return nil }
        switch u {
        case 0: return SegmentEngine.none
        case 1: return fixed()
        default: return base &+ VarInt.unzigzag(u - 2)
        }
    }

    @inline(__always)
    mutating func fixed32() -> UInt32? {
        guard pos + 4 <= data.count else { return nil }
        defer { pos += 4 }
        return UInt32(littleEndian: data.loadUnaligned(fromByteOffset: pos, as: UInt32.self))
    }

    /// A count or length (negative in formats 1 and 2 only when corrupt: callers check).
    @inline(__always)
    mutating func count() -> Int64? {
        guard compact else { return fixed() }
        guard let u = VarInt.read(data, at: &pos), u <= UInt64(Int64.max) else { return nil }
        return Int64(u)
    }

    mutating func bytes() -> UnsafeRawBufferPointer? {
        guard let n = count(), n >= 0, n <= Int64(data.count - pos) else { return nil }
        defer { pos += Int(n) }
        return UnsafeRawBufferPointer(rebasing: data[pos..<(pos + Int(n))])
    }
}

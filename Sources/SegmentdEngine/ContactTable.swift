/// Contact ids, byte for byte, mapped to dense indices.
///
/// Ids live back to back in one byte arena and the hash table holds only 32-bit indices, so a
/// contact costs its id bytes plus about 14 bytes here, with no allocation per contact. Ids
/// are compared as bytes (as Kafka compares keys): no Unicode normalization.
public struct ContactTable: Sendable {
    private var arena: [UInt8] = []
    private var offsets: [UInt32] = [0]
    private var hashes: [UInt32] = []
    private var table: [Int32]
    private var mask: Int

    public init(capacity: Int = 1024) {
        var cap = 16
        while cap < capacity * 2 { cap <<= 1 }
        table = Array(repeating: -1, count: cap)
        mask = cap - 1
    }

    public var count: Int { hashes.count }

    /// Bytes of the arena and table, for memory accounting.
    public var footprintBytes: Int {
        arena.capacity + offsets.capacity * 4 + hashes.capacity * 4 + table.capacity * 4
    }

    @inline(__always)
    static func hash(_ b: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for c in b { h = (h ^ UInt64(c)) &* 0x0000_0100_0000_01B3 }
        h ^= h >> 29
        h = h &* 0xbf58_476d_1ce4_e5b9
        h ^= h >> 32
        return h
    }

    public func id(_ index: Int) -> [UInt8] {
        Array(arena[Int(offsets[index])..<Int(offsets[index + 1])])
    }

    public func idString(_ index: Int) -> String {
        String(decoding: arena[Int(offsets[index])..<Int(offsets[index + 1])], as: UTF8.self)
    }

    /// The ids as borrowed bytes, for reading many of them without copies.
    public struct Ids {
        let arena: UnsafeBufferPointer<UInt8>
        let offsets: UnsafeBufferPointer<UInt32>
        @inline(__always)
        public func id(_ index: Int) -> UnsafeBufferPointer<UInt8> {
            UnsafeBufferPointer(rebasing: arena[Int(offsets[index])..<Int(offsets[index + 1])])
        }
    }

    /// Calls `body` with every id borrowed (valid only during the call).
    public func withIds<R>(_ body: (Ids) throws -> R) rethrows -> R {
        try arena.withUnsafeBufferPointer { a in
            try offsets.withUnsafeBufferPointer { o in try body(Ids(arena: a, offsets: o)) }
        }
    }

    public func find(_ key: [UInt8]) -> Int? {
        key.withUnsafeBufferPointer { find($0) }
    }

    public func find(_ kb: UnsafeBufferPointer<UInt8>) -> Int? {
        let h = ContactTable.hash(kb)
        let h32 = UInt32(truncatingIfNeeded: h)
        var i = Int(truncatingIfNeeded: h) & mask
        while true {
            let s = table[i]
            if s < 0 { return nil }
            if hashes[Int(s)] == h32 && equal(Int(s), kb) { return Int(s) }
            i = (i + 1) & mask
        }
    }

    /// The index of `key`, inserting it when new. `inserted` tells which.
    public mutating func findOrInsert(_ key: [UInt8]) -> (index: Int, inserted: Bool) {
        key.withUnsafeBufferPointer { findOrInsert($0) }
    }

    public mutating func findOrInsert(_ kb: UnsafeBufferPointer<UInt8>) -> (index: Int, inserted: Bool) {
        if (hashes.count + 1) * 10 > table.count * 7 { grow() }
        let h = ContactTable.hash(kb)
        let h32 = UInt32(truncatingIfNeeded: h)
        var i = Int(truncatingIfNeeded: h) & mask
        while true {
            let s = table[i]
            if s < 0 { break }
            if hashes[Int(s)] == h32 && equal(Int(s), kb) { return (Int(s), false) }
            i = (i + 1) & mask
        }
        let idx = hashes.count
        table[i] = Int32(idx)
        hashes.append(h32)
        arena.append(contentsOf: kb)
        offsets.append(UInt32(arena.count))
        return (idx, true)
    }

    @inline(__always)
    private func equal(_ idx: Int, _ kb: UnsafeBufferPointer<UInt8>) -> Bool {
        let lo = Int(offsets[idx]), hi = Int(offsets[idx + 1])
        guard hi - lo == kb.count else { return false }
        return arena.withUnsafeBufferPointer { a in
            kb.count == 0 || memcmp(a.baseAddress! + lo, kb.baseAddress!, kb.count) == 0
        }
    }

    /// Grows the table once so that `n` ids fit without growing again.
    public mutating func reserve(_ n: Int) {
        var cap = table.count
        while (n + 1) * 10 > cap * 7 { cap <<= 1 }
        if cap > table.count { grow(to: cap) }
    }

    private mutating func grow() { grow(to: table.count * 2) }

    private mutating func grow(to cap: Int) {
        var t = [Int32](repeating: -1, count: cap)
        let m = cap - 1
        for idx in 0..<hashes.count {
            let h = arena.withUnsafeBufferPointer { a in
                ContactTable.hash(UnsafeBufferPointer(rebasing: a[Int(offsets[idx])..<Int(offsets[idx + 1])]))
            }
            var i = Int(truncatingIfNeeded: h) & m
            while t[i] >= 0 { i = (i + 1) & m }
            t[i] = Int32(idx)
        }
        table = t
        mask = m
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

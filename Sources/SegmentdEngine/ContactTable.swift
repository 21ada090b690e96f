import CPrefetch

/// Contact ids, byte for byte, mapped to dense indices.
///
/// Ids live back to back in one byte arena; a slot of the hash table holds a contact's index
/// and 32 bits of its id's hash in one word, so a lookup reads one slot and, when the hash
/// bits match, the id's bytes: no third memory access (at 100k contacts and more, each is a
/// likely cache miss). A contact costs its id bytes, a 4-byte offset and 11 to 16 bytes of
/// table here, with no allocation per contact. Ids are compared as bytes (as Kafka compares
/// keys): no Unicode normalization.
public struct ContactTable: Sendable {
    private var arena: [UInt8] = []
    private var offsets: [UInt32] = [0]
    /// `Slot` words: open addressing with linear probing. The table has any size (a multiple
    /// of 8 slots, one cache line), at most three quarters full; it grows to twice its count,
    /// so its load stays between a half and three quarters (a power-of-two size with load at
    /// most 0.7 sat between 0.35 and 0.7: at 1M contacts, 16.8 bytes of table a contact
    /// where it is now 11.4).
    private var table: [UInt64]
    private var _count = 0

    /// A table slot: the contact's index in the low 32 bits, 32 bits of its id's hash above
    /// them; `empty` (all ones: index 2^32 - 1 is never used) when free.
    private enum Slot {
        static let empty = UInt64.max
        @inline(__always) static func make(hash: UInt32, index: Int) -> UInt64 { UInt64(hash) << 32 | UInt64(UInt32(index)) }
        @inline(__always) static func index(_ slot: UInt64) -> Int { Int(UInt32(truncatingIfNeeded: slot)) }
        @inline(__always) static func hash(_ slot: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: slot >> 32) }
    }

    public init(capacity: Int = 1024) {
        table = Array(repeating: Slot.empty, count: ContactTable.size(for: capacity))
    }

    /// A table size for `count` ids: twice the count, rounded up to a whole cache line.
    static func size(for count: Int) -> Int { (2 * max(count, 8) + 7) & ~7 }

    /// Whether a table of `size` slots holds `count` ids (at most three quarters full).
    @inline(__always)
    static func holds(_ count: Int, size: Int) -> Bool { count * 4 <= size * 3 }

    /// The slot where the probe for hash `h` starts among `size`: the hash's high 32 bits, the
    /// slot's tag, scaled to the size (a multiply and a shift, for a size that is not a power
    /// of two). Since the tag says where its probe starts, growing the table moves every slot
    /// from the slot alone, without reading or hashing any id again.
    @inline(__always)
    static func home(_ h: UInt64, size: Int) -> Int { home(tag: UInt32(truncatingIfNeeded: h >> 32), size: size) }

    @inline(__always)
    static func home(tag: UInt32, size: Int) -> Int { Int(truncatingIfNeeded: (UInt64(tag) &* UInt64(size)) >> 32) }

    /// The slot a probe visits after `slot`: the next one, the table's first after its last.
    @inline(__always)
    static func after(_ slot: Int, size: Int) -> Int { slot + 1 == size ? 0 : slot + 1 }

    public var count: Int { _count }

    /// The table's slots (tests check its load).
    var slotCount: Int { table.count }

    /// Bytes of the arena and table, for memory accounting.
    public var footprintBytes: Int {
        arena.capacity + offsets.capacity * 4 + table.capacity * 8
    }

    /// A contact id's hash, eight bytes at a time: the words of the id (the last one
    /// overlapping the one before when the length is not a multiple of 8; an id of 4 to 7
    /// bytes as two overlapping 4-byte halves of one word, a shorter one byte by byte), each
    /// mixed in by a multiply and a shift after a seed from the length, then a last multiply
    /// and shift, so that the high 32 bits (the slot's tag and the probe's start) depend on
    /// every byte. Only this table sees it: ids are always compared whole.
    @inline(__always)
    static func hash(_ b: UnsafeBufferPointer<UInt8>) -> UInt64 {
        @inline(__always) func mix(_ h: UInt64, _ word: UInt64) -> UInt64 {
            let z = (h ^ word) &* 0xbf58_476d_1ce4_e5b9
            return z ^ (z >> 31)
        }
        let count = b.count
        var h = 0xcbf2_9ce4_8422_2325 ^ (UInt64(truncatingIfNeeded: count) &* 0x9e37_79b9_7f4a_7c15)
        if count >= 8, let base = b.baseAddress {
            let raw = UnsafeRawPointer(base)
            var at = 0
            while at < count - 8 {
                h = mix(h, raw.loadUnaligned(fromByteOffset: at, as: UInt64.self))
                at += 8
            }
            h = mix(h, raw.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self))
        } else if count >= 4, let base = b.baseAddress {
            let raw = UnsafeRawPointer(base)
            let low = raw.loadUnaligned(fromByteOffset: 0, as: UInt32.self)
            let high = raw.loadUnaligned(fromByteOffset: count - 4, as: UInt32.self)
            h = mix(h, UInt64(low) | UInt64(high) << 32)
        } else {
            var word: UInt64 = 0
            var k = 0
            while k < count {
                word |= UInt64(b[k]) << UInt64(8 * k)
                k += 1
            }
            h = mix(h, word)
        }
        h = (h ^ (h >> 27)) &* 0x94d0_49bb_1331_11eb
        return h ^ (h >> 31)
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

        /// Asks for where id `index` starts (`prefetchBytes` then reads it).
        @inline(__always)
        func prefetchStart(_ index: Int) {
            if index < offsets.count { segmentd_prefetch(offsets.baseAddress! + index) }
        }

        /// Asks for the first bytes of id `index`.
        @inline(__always)
        func prefetchBytes(_ index: Int) {
            if index < offsets.count, let base = arena.baseAddress { segmentd_prefetch(base + Int(offsets[index])) }
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
        probe(kb, hash: ContactTable.hash(kb)).index
    }

    /// Where the id with hash `h` is: its index, or nil and the free slot where it would go.
    @inline(__always)
    private func probe(_ kb: UnsafeBufferPointer<UInt8>, hash h: UInt64) -> (index: Int?, freeSlot: Int) {
        let h32 = UInt32(truncatingIfNeeded: h >> 32)
        let size = table.count
        var i = ContactTable.home(h, size: size)
        while true {
            let slot = table[i]
            if slot == Slot.empty { return (nil, i) }
            if Slot.hash(slot) == h32 && equal(Slot.index(slot), kb) { return (Slot.index(slot), i) }
            i = ContactTable.after(i, size: size)
        }
    }

    /// The index of `key`, inserting it when new. `inserted` tells which.
    public mutating func findOrInsert(_ key: [UInt8]) -> (index: Int, inserted: Bool) {
        key.withUnsafeBufferPointer { findOrInsert($0) }
    }

    public mutating func findOrInsert(_ kb: UnsafeBufferPointer<UInt8>) -> (index: Int, inserted: Bool) {
        findOrInsert(kb, hash: ContactTable.hash(kb))
    }

    /// `findOrInsert` for an id whose `hash(_:)` is known (computed when it was prefetched).
    mutating func findOrInsert(_ kb: UnsafeBufferPointer<UInt8>, hash h: UInt64) -> (index: Int, inserted: Bool) {
        if !ContactTable.holds(_count + 1, size: table.count) { grow(to: ContactTable.size(for: _count + 1)) }
        let (found, freeSlot) = probe(kb, hash: h)
        if let found { return (found, false) }
        // Index 2^32 - 1 would read as an empty slot; the arena's 32-bit offsets run out first.
        precondition(_count < Int(UInt32.max), "contact table full")
        let idx = _count
        table[freeSlot] = Slot.make(hash: UInt32(truncatingIfNeeded: h >> 32), index: idx)
        _count += 1
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

    // MARK: prefetching, for lookups of many ids in a row (see `Pipeline.process(batch:)`)

    /// Asks for the table slot where the lookup of an id with hash `h` starts.
    @inline(__always)
    func prefetchSlot(hash h: UInt64) {
        table.withUnsafeBufferPointer { segmentd_prefetch($0.baseAddress! + ContactTable.home(h, size: $0.count)) }
    }

    /// The index the lookup of an id with hash `h` is likely to find (the first slot with its
    /// hash bits; the id itself is not compared), and asks for where that id's bytes start.
    /// Nil when no slot has the hash bits (a new contact, most likely).
    @inline(__always)
    func likelyIndex(hash h: UInt64) -> Int? {
        let h32 = UInt32(truncatingIfNeeded: h >> 32)
        return table.withUnsafeBufferPointer { slots -> Int? in
            var i = ContactTable.home(h, size: slots.count)
            while true {
                let slot = slots[i]
                if slot == Slot.empty { return nil }
                if Slot.hash(slot) == h32 {
                    let index = Slot.index(slot)
                    offsets.withUnsafeBufferPointer { segmentd_prefetch($0.baseAddress! + index) }
                    return index
                }
                i = ContactTable.after(i, size: slots.count)
            }
        }
    }

    /// Asks for the bytes of contact `index`'s id (its offset was asked for by `likelyIndex`).
    @inline(__always)
    func prefetchId(_ index: Int) {
        let start = Int(offsets[index])
        arena.withUnsafeBufferPointer { bytes in
            if let base = bytes.baseAddress { segmentd_prefetch(base + start) }
        }
    }

    /// Grows the table once so that `n` ids fit without growing again.
    public mutating func reserve(_ n: Int) {
        if !ContactTable.holds(n + 1, size: table.count) { grow(to: ContactTable.size(for: n + 1)) }
    }

    /// Moves every slot into a table of `size` slots, by its tag (`home(tag:size:)`).
    private mutating func grow(to size: Int) {
        var t = [UInt64](repeating: Slot.empty, count: size)
        for slot in table where slot != Slot.empty {
            var i = ContactTable.home(tag: Slot.hash(slot), size: size)
            while t[i] != Slot.empty { i = ContactTable.after(i, size: size) }
            t[i] = slot
        }
        table = t
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

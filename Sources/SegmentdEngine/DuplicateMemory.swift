import CPrefetch

/// The event-id fingerprints a contact remembers beyond the two slots of its row.
///
/// Each contact with more live ids than its row holds owns a chain of fixed blocks taken
/// from one pool: no allocation per contact or per event, no hashing of the contact, and a
/// contact's entries can be listed (snapshots) and replaced (restore, model change). An entry
/// is `(hash, stamp)`, hash 0 meaning empty; an entry whose stamp fell out of the horizon is
/// dead and its place is reused; a block left with no live entry goes back to the pool for
/// any contact, so the pool holds about the blocks of the contacts busy within the horizon.
struct DuplicateOverflow {
    static let entriesPerBlock = 6
    private static let slotsPerBlock = 2 * entriesPerBlock

    /// Block b's entries: slots `b * slotsPerBlock ..<` as (hash, stamp) pairs.
    private var slots: [Int64] = []
    /// The block after block b in its contact's chain, or -1.
    private var next: [Int32] = []
    /// The first block of each contact's chain, or -1.
    private var heads: [Int32] = []
    /// Blocks no contact holds, linked through `next` (-1: none); new blocks come from here first.
    private var freeBlocks: Int32 = -1

    var footprintBytes: Int { slots.capacity * 8 + next.capacity * 4 + heads.capacity * 4 }
    /// Blocks taken from memory so far (held by contacts or waiting in the pool).
    var blockCount: Int { next.count }

    /// Makes room for the contact just added (its index is the current count).
    mutating func addContact() { heads.append(-1) }

    /// Whether `contact` remembers `hash` with a stamp after `liveAfter`.
    func contains(contact: Int, hash: UInt64, liveAfter: Millis) -> Bool {
        var block = heads[contact]
        if block < 0 { return false }
        let key = Int64(bitPattern: hash)
        return slots.withUnsafeBufferPointer { s in
            while block >= 0 {
                let base = Int(block) * DuplicateOverflow.slotsPerBlock
                var k = 0
                while k < DuplicateOverflow.slotsPerBlock {
                    if s[base + k] == key && s[base + k + 1] > liveAfter { return true }
                    k += 2
                }
                block = next[Int(block)]
            }
            return false
        }
    }

    /// Remembers `hash` with `stamp` in an empty or dead entry of the contact's chain, or in a
    /// new block at its head; blocks of the chain left with no live entry go back to the pool.
    mutating func remember(contact: Int, hash: UInt64, stamp: Millis, liveAfter: Millis) {
        if sweep(contact: contact, liveAfter: liveAfter, placing: (Int64(bitPattern: hash), stamp)) { return }
        let fresh: Int32
        if freeBlocks >= 0 {
            fresh = freeBlocks
            freeBlocks = next[Int(fresh)]
            let base = Int(fresh) * DuplicateOverflow.slotsPerBlock
            for k in 0..<DuplicateOverflow.slotsPerBlock { slots[base + k] = 0 }
            slots[base] = Int64(bitPattern: hash)
            slots[base + 1] = stamp
        } else {
            fresh = Int32(next.count)
            // Grow by a quarter, not by doubling: blocks are a sizeable part of the engine's memory.
            if slots.count == slots.capacity { slots.reserveCapacity(slots.count + slots.count / 4 + 16 * DuplicateOverflow.slotsPerBlock) }
            slots.append(Int64(bitPattern: hash))
            slots.append(stamp)
            for _ in 2..<DuplicateOverflow.slotsPerBlock { slots.append(0) }
            next.append(-1)
        }
        next[Int(fresh)] = heads[contact]
        heads[contact] = fresh
    }

    /// Asks for the contact's chain head, read by every record with an event id.
    @inline(__always)
    func prefetch(contact: Int) {
        heads.withUnsafeBufferPointer { segmentd_prefetch($0.baseAddress! + contact) }
    }

    /// Asks for the first block of the contact's chain (its head was asked for by `prefetch`):
    /// every cache line of its 96 bytes.
    @inline(__always)
    func prefetchFirstBlock(contact: Int) {
        let block = heads[contact]
        if block < 0 { return }
        slots.withUnsafeBufferPointer { all in
            let start = UnsafeRawPointer(all.baseAddress! + Int(block) * DuplicateOverflow.slotsPerBlock)
            segmentd_prefetch(start)
            segmentd_prefetch(start + 64)
            segmentd_prefetch(start + (DuplicateOverflow.slotsPerBlock * 8 - 1))
        }
        next.withUnsafeBufferPointer { segmentd_prefetch($0.baseAddress! + Int(block)) }
    }

    /// Whether the contact has blocks (only then has `release` anything to do).
    func hasBlocks(contact: Int) -> Bool { heads[contact] >= 0 }

    /// Returns the contact's blocks that hold no live entry to the pool: once a busy spell's
    /// ids have left the horizon, its blocks serve other contacts (the pool's size follows the
    /// contacts busy at once, not every contact that was ever busy).
    mutating func release(contact: Int, liveAfter: Millis) {
        _ = sweep(contact: contact, liveAfter: liveAfter, placing: nil)
    }

    /// Walks the contact's chain: writes `placing` into the first empty or dead entry, if
    /// given, and unlinks into the pool every block left with no live entry. Returns whether
    /// `placing` was written.
    private mutating func sweep(contact: Int, liveAfter: Millis, placing: (hash: Int64, stamp: Millis)?) -> Bool {
        var placed = placing == nil
        var previous: Int32 = -1
        var block = heads[contact]
        while block >= 0 {
            let base = Int(block) * DuplicateOverflow.slotsPerBlock
            let following = next[Int(block)]
            var holdsLive = false
            var k = 0
            while k < DuplicateOverflow.slotsPerBlock {
                if slots[base + k] != 0 && slots[base + k + 1] > liveAfter {
                    holdsLive = true
                } else if !placed, let placing {
                    slots[base + k] = placing.hash
                    slots[base + k + 1] = placing.stamp
                    placed = true
                    holdsLive = true
                }
                k += 2
            }
            if holdsLive {
                previous = block
            } else {
                if previous < 0 { heads[contact] = following } else { next[Int(previous)] = following }
                next[Int(block)] = freeBlocks
                freeBlocks = block
            }
            block = following
        }
        return placing != nil && placed
    }

    /// The contact's live entries (stamp after `liveAfter`).
    func entries(contact: Int, liveAfter: Millis) -> [(hash: UInt64, stamp: Millis)] {
        var out: [(hash: UInt64, stamp: Millis)] = []
        var block = heads[contact]
        while block >= 0 {
            let base = Int(block) * DuplicateOverflow.slotsPerBlock
            for k in stride(from: 0, to: DuplicateOverflow.slotsPerBlock, by: 2)
            where slots[base + k] != 0 && slots[base + k + 1] > liveAfter {
                out.append((UInt64(bitPattern: slots[base + k]), slots[base + k + 1]))
            }
            block = next[Int(block)]
        }
        return out
    }

    /// Replaces the contact's entries: the chain's blocks are emptied and returned, then `entries` fill new ones.
    mutating func replace(contact: Int, with entries: [(hash: UInt64, stamp: Millis)]) {
        var block = heads[contact]
        while block >= 0 {
            let base = Int(block) * DuplicateOverflow.slotsPerBlock
            for k in 0..<DuplicateOverflow.slotsPerBlock { slots[base + k] = 0 }
            block = next[Int(block)]
        }
        release(contact: contact, liveAfter: .min)
        // The chain is gone: each entry goes into a block from the pool.
        for e in entries { remember(contact: contact, hash: e.hash, stamp: e.stamp, liveAfter: .min) }
    }
}

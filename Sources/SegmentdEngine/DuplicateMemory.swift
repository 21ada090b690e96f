/// The event-id fingerprints a contact remembers beyond the two slots of its row.
///
/// Each contact with more live ids than its row holds owns a chain of fixed blocks taken
/// from one pool: no allocation per contact or per event, no hashing of the contact, and a
/// contact's entries can be listed (snapshots) and replaced (restore, model change). An entry
/// is `(hash, stamp)`, hash 0 meaning empty; an entry whose stamp fell out of the horizon is
/// dead and its place is reused, so a chain never grows beyond the contact's most live ids.
struct DuplicateOverflow {
    static let entriesPerBlock = 6
    private static let slotsPerBlock = 2 * entriesPerBlock

    /// Block b's entries: slots `b * slotsPerBlock ..<` as (hash, stamp) pairs.
    private var slots: [Int64] = []
    /// The block after block b in its contact's chain, or -1.
    private var next: [Int32] = []
    /// The first block of each contact's chain, or -1.
    private var heads: [Int32] = []

    var footprintBytes: Int { slots.capacity * 8 + next.capacity * 4 + heads.capacity * 4 }

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
    /// new block at its head.
    mutating func remember(contact: Int, hash: UInt64, stamp: Millis, liveAfter: Millis) {
        var block = heads[contact]
        while block >= 0 {
            let base = Int(block) * DuplicateOverflow.slotsPerBlock
            var k = 0
            while k < DuplicateOverflow.slotsPerBlock {
                if slots[base + k] == 0 || slots[base + k + 1] <= liveAfter {
                    slots[base + k] = Int64(bitPattern: hash)
                    slots[base + k + 1] = stamp
                    return
                }
                k += 2
            }
            block = next[Int(block)]
        }
        let fresh = Int32(next.count)
        // Grow by a quarter, not by doubling: blocks are a sizeable part of the engine's memory.
        if slots.count == slots.capacity { slots.reserveCapacity(slots.count + slots.count / 4 + 16 * DuplicateOverflow.slotsPerBlock) }
        slots.append(Int64(bitPattern: hash))
        slots.append(stamp)
        for _ in 2..<DuplicateOverflow.slotsPerBlock { slots.append(0) }
        next.append(heads[contact])
        heads[contact] = fresh
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

    /// Replaces the contact's entries: the chain's entries are emptied, then `entries` fill it.
    mutating func replace(contact: Int, with entries: [(hash: UInt64, stamp: Millis)]) {
        var block = heads[contact]
        while block >= 0 {
            let base = Int(block) * DuplicateOverflow.slotsPerBlock
            for k in 0..<DuplicateOverflow.slotsPerBlock { slots[base + k] = 0 }
            block = next[Int(block)]
        }
        // Every entry is empty now, so each goes into the first empty place.
        for e in entries { remember(contact: contact, hash: e.hash, stamp: e.stamp, liveAfter: .min) }
    }
}

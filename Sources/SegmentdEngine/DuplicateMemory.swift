import CPrefetch

/// An event id a contact remembers for duplicate detection, in one word: a 32-bit fingerprint
/// of the id in the high half (never 0, so the word 0 is an empty place) and the low 32 bits of
/// its stamp in the low half. The stamp is the contact's newest event time when the id was
/// applied.
///
/// The stamp's high bits are not kept: they are those of the contact's newest time, since
/// `newest - stamp` is exact from the low halves alone while the stamp is less than 2^32 ms
/// (49.7 days) behind the newest time. The engine keeps that true: whenever a contact's
/// newest time crosses a multiple of 2^31 ms (`EngineCore.forgetDeadIds`), every id outside the
/// horizon (at most 2^31 ms) is dropped, so no id left is more than 2^31 ms + the horizon
/// behind. A remembered id is therefore exactly as live as with its full stamp; only the
/// fingerprint is shorter than the 64-bit hash it replaced (a false duplicate needs two ids of
/// one contact, live at once, with equal 32-bit fingerprints; see the README).
struct RememberedId: Equatable {
    var word: UInt64

    static let empty = RememberedId(word: 0)

    @inline(__always) init(word: UInt64) { self.word = word }

    @inline(__always) init(slot: Int64) { word = UInt64(bitPattern: slot) }

    @inline(__always)
    init(fingerprint: UInt32, stamp: Millis) {
        word = UInt64(fingerprint) << 32 | UInt64(UInt32(truncatingIfNeeded: stamp))
    }

    var slot: Int64 { Int64(bitPattern: word) }
    var isEmpty: Bool { word == 0 }

    /// The row's last id place holds an id, or, while the contact has more live ids than its
    /// row holds, the first block of its overflow chain (`DuplicateOverflow`): a word whose
    /// high half, an id's fingerprint, is 0. `chain(-1)` is the empty place.
    @inline(__always)
    static func chain(_ block: Int32) -> RememberedId { RememberedId(word: block < 0 ? 0 : UInt64(block) + 1) }

    /// The first block of the chain this place names, or -1 (an id or an empty place).
    @inline(__always)
    var chainHead: Int32 { word >> 32 == 0 ? Int32(truncatingIfNeeded: Int64(word) - 1) : -1 }
    var fingerprint: UInt32 { UInt32(truncatingIfNeeded: word >> 32) }

    /// The id's full stamp, given the contact's newest time (exact while the stamp is less than
    /// 2^32 ms behind it).
    @inline(__always)
    func stamp(newest: Millis) -> Millis { newest - Int64(age(newest: newest)) }

    /// How long before `newest` the id was stamped, modulo 2^32 ms.
    @inline(__always)
    func age(newest: Millis) -> UInt32 { UInt32(truncatingIfNeeded: newest) &- UInt32(truncatingIfNeeded: word) }

    /// The 32-bit fingerprint of an event id: FNV-1a over its bytes, folded to 32 bits.
    static func fingerprint(of eventId: UnsafeBufferPointer<UInt8>) -> UInt32 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in eventId { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        hash ^= hash >> 31
        return fingerprint(folding: hash == 0 ? 1 : hash)
    }

    /// The fingerprint of a 64-bit id hash as snapshots of formats 1 to 3 hold it (the FNV-1a
    /// hash above before its fold). A value below 2^32 folds to itself, so a fingerprint
    /// written where such a hash was expected reads back unchanged.
    @inline(__always)
    static func fingerprint(folding hash: UInt64) -> UInt32 {
        let folded = UInt32(truncatingIfNeeded: hash ^ (hash >> 32))
        return folded == 0 ? 1 : folded
    }
}

/// Which remembered ids are live for a contact: those stamped less than `horizon` before its
/// newest event time.
struct IdHorizon {
    let newest: Millis
    /// At most 2^32: every id is then live (an empty place or a chain's place never is).
    let horizon: UInt64

    /// Every id that is not empty counts as live.
    static let everyId = IdHorizon(newest: 0, horizon: 1 << 32)
    /// No id counts as live.
    static let noId = IdHorizon(newest: 0, horizon: 0)

    @inline(__always)
    func isLive(_ id: RememberedId) -> Bool { id.fingerprint != 0 && UInt64(id.age(newest: newest)) < horizon }

    /// Whether `id` is live and is the id with `fingerprint` (never 0).
    @inline(__always)
    func holds(_ id: RememberedId, fingerprint: UInt32) -> Bool { id.fingerprint == fingerprint && UInt64(id.age(newest: newest)) < horizon }

    /// This horizon as seen from `newest` of the ids live at `later`: an id stamped before
    /// `newest` is live at `later` exactly when it is live here under the shorter horizon.
    func seenFrom(later: Millis) -> IdHorizon {
        let shift = later - newest
        if shift <= 0 { return self }
        return IdHorizon(newest: newest, horizon: shift >= Int64(horizon) ? 0 : horizon - UInt64(shift))
    }
}

/// The event ids a contact remembers beyond the slots of its row.
///
/// Each contact with more live ids than its row holds owns a chain of fixed blocks taken
/// from one pool: no allocation per contact or per event, no hashing of the contact, and a
/// contact's entries can be listed (snapshots) and released (restore, model change). The
/// chain's first block is named in the contact's row (`RememberedId.chain`), so a contact with
/// no chain costs nothing here and a lookup reads no other per-contact memory. A block is 4
/// ids of 8 bytes, half a cache line: most contacts that spill hold 1 to 4 more ids, so blocks
/// of 8 were mostly empty places. An id no longer live is dead and its place is reused; a
/// block left with no live id goes back to the pool for any contact, so the pool holds about
/// the blocks of the contacts busy within the horizon.
///
/// A chain is named by its first block, -1 for none; every call that may change the chain
/// returns its new first block, which the caller stores back in the row.
struct DuplicateOverflow {
    static let idsPerBlock = 4

    /// Block b's ids: `b * idsPerBlock ..<`.
    private var ids: [RememberedId] = []
    /// The block after block b in its chain, or -1.
    private var next: [Int32] = []
    /// Blocks no contact holds, linked through `next` (-1: none); new blocks come from here first.
    private var freeBlocks: Int32 = -1

    var footprintBytes: Int { ids.capacity * 8 + next.capacity * 4 }
    /// Blocks taken from memory so far (held by contacts or waiting in the pool).
    var blockCount: Int { next.count }

    /// Whether the chain from `chain` holds a live id with `fingerprint`.
    func contains(chain: Int32, fingerprint: UInt32, live: IdHorizon) -> Bool {
        var block = chain
        if block < 0 { return false }
        return ids.withUnsafeBufferPointer { all in
            while block >= 0 {
                let base = Int(block) * DuplicateOverflow.idsPerBlock
                for k in 0..<DuplicateOverflow.idsPerBlock where live.holds(all[base + k], fingerprint: fingerprint) { return true }
                block = next[Int(block)]
            }
            return false
        }
    }

    /// Remembers `id` in an empty or dead place of the chain from `chain` (-1: a new chain), or
    /// in a new block at its head; blocks of the chain left with no live id go back to the
    /// pool. Returns the chain's first block.
    mutating func remember(chain: Int32, _ id: RememberedId, live: IdHorizon) -> Int32 {
        let (head, placed) = sweep(chain: chain, live: live, placing: id)
        if placed { return head }
        let fresh: Int32
        if freeBlocks >= 0 {
            fresh = freeBlocks
            freeBlocks = next[Int(fresh)]
            let base = Int(fresh) * DuplicateOverflow.idsPerBlock
            for k in 0..<DuplicateOverflow.idsPerBlock { ids[base + k] = .empty }
            ids[base] = id
        } else {
            fresh = Int32(next.count)
            // Grow by a quarter, not by doubling: blocks are a sizeable part of the engine's memory.
            if ids.count == ids.capacity { ids.reserveCapacity(ids.count + ids.count / 4 + 16 * DuplicateOverflow.idsPerBlock) }
            ids.append(id)
            for _ in 1..<DuplicateOverflow.idsPerBlock { ids.append(.empty) }
            next.append(-1)
        }
        next[Int(fresh)] = head
        return fresh
    }

    /// Asks for the first block of the chain from `chain`, read by every record with an event id.
    @inline(__always)
    func prefetch(chain: Int32) {
        if chain < 0 { return }
        ids.withUnsafeBufferPointer { all in
            let start = UnsafeRawPointer(all.baseAddress! + Int(chain) * DuplicateOverflow.idsPerBlock)
            segmentd_prefetch(start)
            segmentd_prefetch(start + (DuplicateOverflow.idsPerBlock * 8 - 1))
        }
        next.withUnsafeBufferPointer { segmentd_prefetch($0.baseAddress! + Int(chain)) }
    }

    /// Empties the chain's places that hold no live id, and returns its blocks left with no
    /// live id to the pool: once a busy spell's ids have left the horizon, its blocks serve
    /// other contacts (the pool's size follows the contacts busy at once, not every contact
    /// that was ever busy). Returns the chain's first block (-1: none left).
    mutating func release(chain: Int32, live: IdHorizon) -> Int32 {
        sweep(chain: chain, live: live, placing: nil).head
    }

    /// Walks the chain from `chain`: empties every place whose id is not live, writes
    /// `placing`, if given, into the first such place, and unlinks into the pool every block
    /// left with no live id. Returns the chain's first block and whether `placing` was written.
    private mutating func sweep(chain: Int32, live: IdHorizon, placing: RememberedId?) -> (head: Int32, placed: Bool) {
        var pending = placing
        var head = chain
        var previous: Int32 = -1
        var block = chain
        while block >= 0 {
            let base = Int(block) * DuplicateOverflow.idsPerBlock
            let following = next[Int(block)]
            var holdsLive = false
            for k in 0..<DuplicateOverflow.idsPerBlock {
                if live.isLive(ids[base + k]) {
                    holdsLive = true
                } else if let id = pending {
                    ids[base + k] = id
                    pending = nil
                    holdsLive = true
                } else if !ids[base + k].isEmpty {
                    ids[base + k] = .empty
                }
            }
            if holdsLive {
                previous = block
            } else {
                if previous < 0 { head = following } else { next[Int(previous)] = following }
                next[Int(block)] = freeBlocks
                freeBlocks = block
            }
            block = following
        }
        return (head, placing != nil && pending == nil)
    }

    /// The chain's live ids (every id it holds, with `live` nil).
    func entries(chain: Int32, live: IdHorizon?) -> [RememberedId] {
        var out: [RememberedId] = []
        forEach(chain: chain, live: live ?? .everyId) { out.append($0) }
        return out
    }

    /// Calls `body` with each live id of the chain.
    @inline(__always)
    func forEach(chain: Int32, live: IdHorizon, _ body: (RememberedId) -> Void) {
        var block = chain
        while block >= 0 {
            let base = Int(block) * DuplicateOverflow.idsPerBlock
            for k in 0..<DuplicateOverflow.idsPerBlock where live.isLive(ids[base + k]) { body(ids[base + k]) }
            block = next[Int(block)]
        }
    }
}

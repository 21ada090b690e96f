import Testing
@testable import SegmentdEngine

/// The duplicate memory beyond a row's two slots: what it remembers, and that a busy spell's
/// blocks serve other contacts once its ids have left the horizon.
@Suite("Duplicate memory: overflow blocks and their pool")
struct DuplicateMemoryTests {
    static let day: Int64 = 86_400_000
    static let horizon = 7 * day

    @Test("ids beyond a block's six are all caught, and a dead block is reused before memory grows")
    func blocksReturnToThePool() {
        var overflow = DuplicateOverflow()
        for _ in 0..<3 { overflow.addContact() }
        let t0: Int64 = 1_767_225_600_000
        // Contact 0: a busy spell of 10 ids, two blocks.
        for id in 1...10 { overflow.remember(contact: 0, hash: UInt64(id), stamp: t0, liveAfter: t0 - DuplicateMemoryTests.horizon) }
        #expect(overflow.blockCount == 2)
        for id in 1...10 { #expect(overflow.contains(contact: 0, hash: UInt64(id), liveAfter: t0 - DuplicateMemoryTests.horizon)) }
        #expect(!overflow.contains(contact: 0, hash: 11, liveAfter: t0 - DuplicateMemoryTests.horizon))
        #expect(!overflow.contains(contact: 1, hash: 1, liveAfter: t0 - DuplicateMemoryTests.horizon))
        // Eight days on, the spell's ids have left the horizon: contact 0's blocks go back.
        let t1 = t0 + 8 * DuplicateMemoryTests.day
        #expect(overflow.hasBlocks(contact: 0))
        overflow.release(contact: 0, liveAfter: t1 - DuplicateMemoryTests.horizon)
        #expect(!overflow.hasBlocks(contact: 0))
        #expect(!overflow.contains(contact: 0, hash: 3, liveAfter: t1 - DuplicateMemoryTests.horizon))
        // Contact 1's busy spell takes them: no new memory.
        for id in 100..<112 { overflow.remember(contact: 1, hash: UInt64(id), stamp: t1, liveAfter: t1 - DuplicateMemoryTests.horizon) }
        #expect(overflow.blockCount == 2)
        for id in 100..<112 { #expect(overflow.contains(contact: 1, hash: UInt64(id), liveAfter: t1 - DuplicateMemoryTests.horizon)) }
        // A third spell while both blocks are held needs a new one.
        overflow.remember(contact: 2, hash: 7, stamp: t1, liveAfter: t1 - DuplicateMemoryTests.horizon)
        #expect(overflow.blockCount == 3)
    }

    @Test("remembering frees the chain's dead blocks and keeps its live ones")
    func rememberSweeps() {
        var overflow = DuplicateOverflow()
        overflow.addContact()
        let t0: Int64 = 1_767_225_600_000
        let t1 = t0 + 3 * DuplicateMemoryTests.day
        // Six ids at t0 fill one block, six at t1 a second (at the chain's head).
        for id in 1...6 { overflow.remember(contact: 0, hash: UInt64(id), stamp: t0, liveAfter: t0 - DuplicateMemoryTests.horizon) }
        for id in 7...12 { overflow.remember(contact: 0, hash: UInt64(id), stamp: t1, liveAfter: t1 - DuplicateMemoryTests.horizon) }
        #expect(overflow.blockCount == 2)
        // At t0 + 8 days the first six are dead: one more id frees their block and the
        // entries of t1 stay caught.
        let t2 = t0 + 8 * DuplicateMemoryTests.day
        overflow.remember(contact: 0, hash: 13, stamp: t2, liveAfter: t2 - DuplicateMemoryTests.horizon)
        for id in 7...13 { #expect(overflow.contains(contact: 0, hash: UInt64(id), liveAfter: t2 - DuplicateMemoryTests.horizon)) }
        #expect(overflow.entries(contact: 0, liveAfter: t2 - DuplicateMemoryTests.horizon).count == 7)
        // The freed block is in the pool: a new block for another id comes from it.
        for id in 14...20 { overflow.remember(contact: 0, hash: UInt64(id), stamp: t2, liveAfter: t2 - DuplicateMemoryTests.horizon) }
        #expect(overflow.blockCount == 3)
        #expect(overflow.entries(contact: 0, liveAfter: t2 - DuplicateMemoryTests.horizon).count == 14)
    }
}

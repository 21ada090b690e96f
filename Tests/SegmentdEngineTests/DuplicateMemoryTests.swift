import Testing
@testable import SegmentdEngine

/// The duplicate memory: ids as one word each (32-bit fingerprint, 32 bits of stamp), what the
/// overflow blocks remember, that a busy spell's blocks serve other contacts once its ids have
/// left the horizon, and that stamps stay exact however far a contact's time moves.
@Suite("Duplicate memory: remembered ids, overflow blocks and their pool")
struct DuplicateMemoryTests {
    static let day: Int64 = 86_400_000
    static let horizon = 7 * day

    static func live(at newest: Millis) -> IdHorizon { IdHorizon(newest: newest, horizon: UInt64(horizon)) }
    static func id(_ fingerprint: UInt32, _ stamp: Millis) -> RememberedId { RememberedId(fingerprint: fingerprint, stamp: stamp) }

    @Test("ids beyond a block's places are all caught, and a dead block is reused before memory grows")
    func blocksReturnToThePool() {
        let perBlock = DuplicateOverflow.idsPerBlock
        var overflow = DuplicateOverflow()
        let t0: Int64 = 1_767_225_600_000
        let live0 = DuplicateMemoryTests.live(at: t0)
        // Chain 0: a busy spell of a block and a half of ids, two blocks.
        var chain0: Int32 = -1, chain1: Int32 = -1, chain2: Int32 = -1
        let spell = perBlock + perBlock / 2
        for n in 1...spell { chain0 = overflow.remember(chain: chain0, DuplicateMemoryTests.id(UInt32(n), t0), live: live0) }
        #expect(overflow.blockCount == 2)
        for n in 1...spell { #expect(overflow.contains(chain: chain0, fingerprint: UInt32(n), live: live0)) }
        #expect(!overflow.contains(chain: chain0, fingerprint: UInt32(spell + 1), live: live0))
        #expect(!overflow.contains(chain: chain1, fingerprint: 1, live: live0))
        // Eight days on, the spell's ids have left the horizon: chain 0's blocks go back.
        let t1 = t0 + 8 * DuplicateMemoryTests.day
        let live1 = DuplicateMemoryTests.live(at: t1)
        #expect(chain0 >= 0)
        chain0 = overflow.release(chain: chain0, live: live1)
        #expect(chain0 == -1)
        #expect(!overflow.contains(chain: chain0, fingerprint: 3, live: live1))
        // Chain 1's busy spell of two full blocks takes them: no new memory.
        for n in 100..<(100 + 2 * perBlock) { chain1 = overflow.remember(chain: chain1, DuplicateMemoryTests.id(UInt32(n), t1), live: live1) }
        #expect(overflow.blockCount == 2)
        for n in 100..<(100 + 2 * perBlock) { #expect(overflow.contains(chain: chain1, fingerprint: UInt32(n), live: live1)) }
        // A third spell while both blocks are held needs a new one.
        chain2 = overflow.remember(chain: chain2, DuplicateMemoryTests.id(7, t1), live: live1)
        #expect(overflow.blockCount == 3)
        #expect(overflow.contains(chain: chain2, fingerprint: 7, live: live1))
        #expect(!overflow.contains(chain: chain1, fingerprint: 7, live: live1))
        // Releasing a chain returns all its blocks; a new chain then comes from the pool.
        chain1 = overflow.release(chain: chain1, live: .noId)
        #expect(chain1 == -1)
        chain1 = overflow.remember(chain: chain1, DuplicateMemoryTests.id(500, t1), live: live1)
        #expect(overflow.entries(chain: chain1, live: nil) == [DuplicateMemoryTests.id(500, t1)])
        #expect(overflow.blockCount == 3)
    }

    @Test("remembering frees the chain's dead blocks and keeps its live ones")
    func rememberSweeps() {
        let perBlock = DuplicateOverflow.idsPerBlock
        var overflow = DuplicateOverflow()
        var chain: Int32 = -1
        let t0: Int64 = 1_767_225_600_000
        let t1 = t0 + 3 * DuplicateMemoryTests.day
        // A block's worth of ids at t0 fill one block, as many at t1 a second (at the chain's head).
        for n in 1...perBlock { chain = overflow.remember(chain: chain, DuplicateMemoryTests.id(UInt32(n), t0), live: DuplicateMemoryTests.live(at: t0)) }
        for n in (perBlock + 1)...(2 * perBlock) { chain = overflow.remember(chain: chain, DuplicateMemoryTests.id(UInt32(n), t1), live: DuplicateMemoryTests.live(at: t1)) }
        #expect(overflow.blockCount == 2)
        // At t0 + 8 days the first block's ids are dead: one more id takes their block's first
        // place, its other places are emptied, and the ids of t1 stay caught.
        let t2 = t0 + 8 * DuplicateMemoryTests.day
        let live2 = DuplicateMemoryTests.live(at: t2)
        let next = 2 * perBlock + 1
        chain = overflow.remember(chain: chain, DuplicateMemoryTests.id(UInt32(next), t2), live: live2)
        for n in (perBlock + 1)...next { #expect(overflow.contains(chain: chain, fingerprint: UInt32(n), live: live2)) }
        #expect(!overflow.contains(chain: chain, fingerprint: 1, live: live2))
        #expect(overflow.entries(chain: chain, live: live2).count == perBlock + 1)
        // The emptied places are filled before a new block is taken.
        for n in (next + 1)...(next + perBlock) { chain = overflow.remember(chain: chain, DuplicateMemoryTests.id(UInt32(n), t2), live: live2) }
        #expect(overflow.blockCount == 3)
        #expect(overflow.entries(chain: chain, live: live2).count == 2 * perBlock + 1)
    }

    @Test("a row's last id place names a chain with a word no id has: never live, never an id's match, and back to empty for no chain")
    func chainPlace() {
        for block: Int32 in [0, 1, 4095, Int32.max - 1] {
            let place = RememberedId.chain(block)
            #expect(place.chainHead == block)
            #expect(place.fingerprint == 0 && !place.isEmpty)
            #expect(!IdHorizon.everyId.isLive(place))
            for newest: Int64 in [0, Int64(block) + 1, 1_767_225_600_000] {
                #expect(!DuplicateMemoryTests.live(at: newest).isLive(place))
                #expect(!DuplicateMemoryTests.live(at: newest).holds(place, fingerprint: 1))
            }
        }
        #expect(RememberedId.chain(-1) == .empty)
        #expect(RememberedId.empty.chainHead == -1)
        #expect(DuplicateMemoryTests.id(1, 0).chainHead == -1)
        #expect(DuplicateMemoryTests.id(0xFFFF_FFFF, 0xFFFF_FFFF).chainHead == -1)
    }

    @Test("a remembered id's age is exact from 32 bits of stamp within 2^32 ms, and a fingerprint never 0")
    func ids() {
        let newest: Int64 = 1_767_225_600_000
        for age: Int64 in [0, 1, DuplicateMemoryTests.horizon - 1, DuplicateMemoryTests.horizon, 1 << 31, (1 << 32) - 1] {
            let id = DuplicateMemoryTests.id(0xDEAD_BEEF, newest - age)
            #expect(id.stamp(newest: newest) == newest - age)
            #expect(id.fingerprint == 0xDEAD_BEEF)
            #expect(DuplicateMemoryTests.live(at: newest).isLive(id) == (age < DuplicateMemoryTests.horizon))
        }
        // 2^32 ms behind wraps: what `EngineCore.forgetDeadIds` exists to prevent.
        #expect(DuplicateMemoryTests.id(1, newest - (1 << 32)).age(newest: newest) == 0)
        // Seen from an earlier newest time: live at `later` exactly when live there.
        let later = newest + 5 * DuplicateMemoryTests.day
        let seen = DuplicateMemoryTests.live(at: newest).seenFrom(later: later)
        for age: Int64 in [0, DuplicateMemoryTests.day, 2 * DuplicateMemoryTests.day - 1, 2 * DuplicateMemoryTests.day, 3 * DuplicateMemoryTests.day] {
            #expect(seen.isLive(DuplicateMemoryTests.id(9, newest - age)) == (later - (newest - age) < DuplicateMemoryTests.horizon))
        }
        #expect(DuplicateMemoryTests.live(at: newest).seenFrom(later: newest + (1 << 40)).horizon == 0)
        // Hashes below 2^32 fold to themselves (fingerprints written where formats 1 to 3
        // expected a hash read back unchanged); 0 never comes out.
        #expect(RememberedId.fingerprint(folding: 0x1234_5678) == 0x1234_5678)
        #expect(RememberedId.fingerprint(folding: 0x1234_5678_1234_5678) == 1)
        for n in 0..<2000 {
            let bytes = Array("event-\(n)".utf8)
            #expect(bytes.withUnsafeBufferPointer { RememberedId.fingerprint(of: $0) } != 0)
        }
    }

    @Test("a contact's chain survives snapshot, restore over itself and a model change: every id caught, no block lost",
          arguments: [1, 2, 3, 9])
    func chainsAcrossSnapshotsAndModels(idCount: Int) throws {
        let t0: Int64 = 1_767_225_600_000
        let source = Pipeline(model: .defaultModel())
        // Ids a minute apart on two contacts, so chains of different contacts interleave.
        for n in 0..<idCount {
            for contact in ["c", "d"] {
                #expect(source.process(DuplicateMemoryTests.record(contact, t0 + Int64(n) * 60_000, "\(contact)-\(n)")) == .applied)
            }
        }
        let snap = source.engine.snapshot(contact: 0)
        let target = Pipeline(model: .defaultModel())
        try target.engine.restore(contactId: Array("c".utf8), snapshot: snap)
        #expect(target.engine.snapshot(contact: 0) == snap)
        // Restored again and again over the same contact: its old chain goes back each time.
        let held = target.engine.footprint.duplicateOverflow
        for _ in 0..<200 { try target.engine.restore(contactId: Array("c".utf8), snapshot: snap) }
        #expect(target.engine.footprint.duplicateOverflow == held)
        #expect(target.engine.snapshot(contact: 0) == snap)
        for n in 0..<idCount { #expect(target.process(DuplicateMemoryTests.record("c", t0, "c-\(n)")) == .duplicate) }
        #expect(target.process(DuplicateMemoryTests.record("c", t0, "c-new")) == .applied)
        // A model change moves both contacts' ids: each still catches its own and only its own.
        _ = source.engine.takeTransitions()
        source.migrate(to: .defaultModel())
        for n in 0..<idCount {
            #expect(source.process(DuplicateMemoryTests.record("c", t0, "c-\(n)")) == .duplicate)
            #expect(source.process(DuplicateMemoryTests.record("d", t0, "d-\(n)")) == .duplicate)
        }
        #expect(source.process(DuplicateMemoryTests.record("c", t0, "d-0")) == .applied)
        #expect(source.process(DuplicateMemoryTests.record("d", t0, "c-0")) == .applied)
    }

    /// Records of contact `c` at `ts` (ms since the epoch) with event id `id`.
    static func record(_ contact: String, _ ts: Millis, _ id: String) -> [UInt8] {
        Array(ev(contact, "email_open", EventTime.format(ts), id: id).utf8)
    }

    @Test("a contact whose time moves on by 2^32 ms or more does not catch an id from that far back",
          arguments: [2, 6])
    func stampsDoNotWrap(idsBefore: Int) {
        // 2026-01-01, just below a multiple of 2^31 ms so the first step crosses one.
        let t0: Int64 = (1_767_225_600_000 >> 31) << 31 + (1 << 31) - 10
        let p = Pipeline(model: .defaultModel())
        // `idsBefore` ids at t0 (six do not fit the row: the overflow keeps some).
        for n in 0..<idsBefore { #expect(p.process(DuplicateMemoryTests.record("c", t0, "old-\(n)")) == .applied) }
        // Ids stay caught across a crossing within the horizon.
        #expect(p.process(DuplicateMemoryTests.record("c", t0 + 20, "step")) == .applied)
        for n in 0..<idsBefore { #expect(p.process(DuplicateMemoryTests.record("c", t0, "old-\(n)")) == .duplicate) }
        // Exactly 2^32 ms after the first ids (49.7 days, past a crossing), and a little after:
        // the old ids are 2^32 ms behind, which their 32 bits of stamp alone would call age 0.
        for delta: Int64 in [1 << 32, (1 << 32) + 1000] {
            #expect(p.process(DuplicateMemoryTests.record("c", t0 + delta, "new-\(delta)")) == .applied)
        }
        for n in 0..<idsBefore { #expect(p.process(DuplicateMemoryTests.record("c", t0 + (1 << 32) + 2000, "old-\(n)")) == .applied) }
        // And the newest ids are caught.
        #expect(p.process(DuplicateMemoryTests.record("c", t0 + (1 << 32) + 3000, "new-\(Int64(1) << 32)")) == .duplicate)
        #expect(p.counters.duplicates == idsBefore + 1)
    }

    @Test("a contact busy over months catches exactly the ids of its last 7 days (or of the horizon set: 24h, 24.8 days), in the row and in overflow",
          arguments: [DuplicateMemoryTests.horizon, DuplicateMemoryTests.day, 1 << 31])
    func monthsOfIds(horizon: Millis) {
        let p = Pipeline(model: .defaultModel(), duplicateHorizon: horizon)
        let start: Int64 = 1_767_225_600_000
        // Each id's stamp: the contact's newest time when it was last applied.
        var stamps: [String: Millis] = [:]
        var ids: [String] = []
        var newest = Int64.min
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> UInt64 {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            return state
        }
        // 400 ids over about 200 days, each followed by a redelivery of an id seen before.
        var ts = start
        for n in 0..<400 {
            ts += Int64(next() % UInt64(DuplicateMemoryTests.day))
            let id = "e\(n)"
            #expect(p.process(DuplicateMemoryTests.record("c", ts, id)) == .applied)
            newest = max(newest, ts)
            stamps[id] = newest
            ids.append(id)
            let back = ids[Int(next() % UInt64(ids.count))]
            let expected: RecordOutcome = newest - stamps[back]! < horizon ? .duplicate : .applied
            let outcome = p.process(DuplicateMemoryTests.record("c", ts, back))
            #expect(outcome == expected, "id \(back) stamped \(stamps[back]!), newest \(newest)")
            if outcome == .applied { stamps[back] = newest }
        }
    }
}

/// Snapshots written before ids became fingerprints (formats 3 and 2, 64-bit id hashes), as
/// an earlier segmentd wrote them for one contact with event ids p1, o1 and r1.
@Suite("Duplicate memory: snapshots of earlier versions")
struct LegacySnapshotTests {
    static let format3 = bytes(
        "fdffffffffffffff000964656661756c742d312182d4e7ced16702819a9da80102888490808080808004819a9da80102" +
        "81f0b252000002c1b6dea4010020f7ffffdfe5a401d9ffffecbcc90200000000000000ec92f6cdf4c1cbd511c1b6dea4" +
        "01e6ebaec3f4c18bb01181f0b252819a9da801020081e0e5a40108736f66747761726581e0e5a401920381e0e5a40102" +
        "75730163e1c2a40783dc080200")
    static let format2 = bytes(
        "feffffffffffffff090000000000000064656661756c742d31210000000000000000f5ec8c9e01000000f5ec8c9e0100" +
        "00804e69829e01000000f5ec8c9e010000ffffffffffffff7f0301020000000002804e69829e01000000f5ec8c9e0100" +
        "000099c6879e0100000000000000000080000000000000008000f5ec8c9e0100006027a1829e01000000000000000000" +
        "800f00807a7646cf000500804ce343cf001400b0935041cf000000000000000080000000000000008000000000000000" +
        "800000000000000080000000000000008000000000000000800000000000000080000000e89426e81900000000000000" +
        "80000000d0032ae819c80000d0032ae819030000d0032ae819b5c4dea40797d5086027a1829e010000f2da35a40717b0" +
        "080099c6879e010000804e69829e01000000000000000000000000000000000080003da0829e01000008000000000000" +
        "00736f667477617265003da0829e010000c800000000000000003da0829e010000020000000000000075730100000000" +
        "00000063e1c2a40783dc0800f5ec8c9e0100000000000000000000")

    static func bytes(_ hex: String) -> [UInt8] {
        let digits = Array(hex.utf8)
        return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(decoding: digits[$0..<($0 + 2)], as: UTF8.self), radix: 16)! }
    }

    @Test("a contact restored from a snapshot with 64-bit id hashes still catches its ids", arguments: [0, 1])
    func legacyIds(which: Int) throws {
        let p = Pipeline(model: .defaultModel())
        try p.engine.restore(contactId: Array("c".utf8), snapshot: which == 0 ? LegacySnapshotTests.format3 : LegacySnapshotTests.format2)
        for id in ["p1", "o1", "r1"] {
            #expect(p.process(Array(ev("c", "email_open", "2026-06-04T10:00:00.000Z", id: id).utf8)) == .duplicate)
        }
        #expect(p.process(Array(ev("c", "email_open", "2026-06-04T10:00:00.000Z", id: "x1").utf8)) == .applied)
        // Written again in today's format, and read back: the same state.
        let again = Pipeline(model: .defaultModel())
        let restored = Pipeline(model: .defaultModel())
        try restored.engine.restore(contactId: Array("c".utf8), snapshot: which == 0 ? LegacySnapshotTests.format3 : LegacySnapshotTests.format2)
        try again.engine.restore(contactId: Array("c".utf8), snapshot: restored.engine.snapshot(contact: 0))
        #expect(again.engine.snapshot(contact: 0) == restored.engine.snapshot(contact: 0))
        #expect(again.process(Array(ev("c", "email_open", "2026-06-04T10:00:00.000Z", id: "r1").utf8)) == .duplicate)
    }
}

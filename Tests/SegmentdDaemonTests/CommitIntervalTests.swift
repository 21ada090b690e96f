import Foundation
import SegmentdEngine
import SegmentdKafka
import Testing
@testable import SegmentdDaemon

/// Transactions that span polls: records produced as they are processed, commits on
/// `commit_interval` or `commit_max_records`.
@Suite("Commit interval", .serialized)
struct CommitIntervalTests {
    typealias Harness = DaemonTests.Harness
    typealias RunningDaemon = DaemonTests.RunningDaemon

    @Test("a transaction spans polls until commit_max_records; each changed contact gets one changelog record per commit; output equals replay")
    func sizeBound() throws {
        let h = try Harness()
        try h.produce(3000, seed: 301)
        var c = h.config
        // One thread: commit_max_records counts each thread's own transaction.
        c.threads = 1
        c.batchSize = 100
        c.commitInterval = 4_000
        c.commitMaxRecords = 1000
        let d = try h.runDaemon(c, until: { $0.status.records >= 3000 })
        #expect(d.status.records == 3000)
        #expect(d.status.transactions == 3, "30 polls of 100 records, a commit every 1000")
        let (actual, dups) = try h.actual()
        #expect(dups == 0)
        #expect(actual == (try h.expected()))
        // Between two checkpoints of a partition, a contact's snapshot appears at most once.
        var sinceCheckpoint: [Int32: Set<[UInt8]>] = [:]
        var checkpoints = 0
        for r in try h.read(h.config.changelogTopic) {
            guard let key = r.key else { continue }
            if key == Changelog.checkpointKey {
                sinceCheckpoint[r.partition] = []
                checkpoints += 1
            } else if key != Changelog.modelKey {
                #expect(sinceCheckpoint[r.partition, default: []].insert(key).inserted, "contact written twice in one commit")
            }
        }
        #expect(checkpoints >= 4 && checkpoints <= 3 * 4, "at most one checkpoint per partition and commit")
    }

    @Test("commit_interval bounds how long a transaction stays open; the setting is checked")
    func interval() throws {
        let h = try Harness()
        try h.produce(2000, seed: 311)
        var c = h.config
        c.batchSize = 50
        try c.set("commit_interval", "400ms", origin: "test")
        #expect(c.commitInterval == 400)
        let d = try h.runDaemon(c, until: { $0.status.records >= 2000 })
        #expect(d.status.records == 2000)
        #expect(d.status.transactions < 40, "fewer transactions than the 40 polls")
        #expect(try h.actual().perContact == (try h.expected()))
        #expect(throws: ConfigError.self) { try c.set("commit_interval", "2m", origin: "flag --commit-interval") }
        #expect(throws: ConfigError.self) { try c.set("commit_interval", "soon", origin: "flag --commit-interval") }
        #expect(throws: ConfigError.self) { try c.set("commit_max_records", "0", origin: "flag --commit-max-records") }
    }

    @Test("records processed while the previous transaction commits go out with the next one; a commit that fails drops them with it; output equals replay")
    func processingDuringCommit() throws {
        let h = try Harness()
        try h.produce(2000, seed: 321)
        var c = h.config
        c.threads = 1
        c.batchSize = 50
        c.commitInterval = 0  // a commit after every poll: the next poll is processed while it runs
        // Slow round trips, so every commit is still running when the next batch is processed.
        try h.broker.cluster.setBrokerRtt(1, ms: 20)
        // The first commit (EndTxn) fails while the next batch waits for it: both are read again.
        try h.broker.cluster.pushRequestErrors(apiKey: 26, errors: [59 /* UNKNOWN_PRODUCER_ID */])
        let r = RunningDaemon(c)
        r.wait(until: { d in d.status.records >= 2000 && d.status.aborts > 0 && d.status.consecutiveAborts == 0 }, timeout: 120)
        let d = try r.stop()
        #expect(d.status.records == 2000)
        #expect(d.status.aborts >= 1)
        #expect(d.status.recordsDuringCommit > 0, "batches processed while the previous transaction committed")
        #expect(d.metrics.exposition().contains("segmentd_records_during_commit_total \(d.status.recordsDuringCommit)"))
        let expected = try h.expected()
        #expect(d.status.transitions == expected.values.map(\.count).reduce(0, +), "transitions counted once, by committed transactions")
        // The aborted transaction's records stay visible on the mock (no read_committed), as
        // duplicates by transition id; `actual` counts each transition id once.
        let (actual, _) = try h.actual()
        #expect(actual == expected)
    }

    @Test("at_least_once: each commit flushes and commits the offsets on the processing thread; output equals replay; a restart resumes after them")
    func atLeastOnce() throws {
        let h = try Harness()
        try h.produce(1000, seed: 331)
        var c = h.config
        try c.set("processing_guarantee", "at_least_once", origin: "test")
        let first = try h.runDaemon(c, until: { $0.status.records >= 1000 })
        #expect(first.status.records == 1000)
        #expect(first.status.transactions > 0)
        #expect(first.status.recordsDuringCommit == 0, "nothing overlaps a commit without transactions")
        try h.produce(500, seed: 332, start: DaemonTests.start + 1000 * 600_000)
        // The next instance starts where the committed offsets and checkpoints say.
        let second = try h.runDaemon(c, until: { $0.status.records >= 500 })
        #expect(second.status.records == 500)
        #expect(second.status.restoredContacts > 0)
        let (actual, _) = try h.actual()
        #expect(actual == (try h.expected()))
    }
}

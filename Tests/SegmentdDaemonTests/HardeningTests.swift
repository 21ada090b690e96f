import Foundation
import SegmentdEngine
import SegmentdKafka
import Synchronization
import Testing
@testable import SegmentdDaemon

/// Hostile input and failures (issue 8), end to end through the mock broker.
@Suite("Daemon hardening", .serialized)
struct HardeningTests {
    typealias Harness = DaemonTests.Harness
    typealias RunningDaemon = DaemonTests.RunningDaemon

    /// Produces `records` in order; `large` raises the test producer's limits for records of
    /// over 1 MB (then batches are as large too).
    func send(_ h: Harness, _ records: [(key: [UInt8], value: [UInt8])], large: Bool = false) throws {
        var props: KafkaConfig = ["bootstrap.servers": h.config.brokers, "partitioner": "murmur2_random"]
        if large {
            props["message.max.bytes"] = "10000000"
            props["batch.size"] = "10000000"
        }
        let p = try KafkaProducer(config: props)
        for r in records { try p.produce(topic: h.config.inputTopic, key: r.key, value: r.value) }
        try p.close()
    }

    func headers(_ r: KafkaRecord) -> [String: String] {
        Dictionary(r.headers.map { ($0.key, String(decoding: $0.value, as: UTF8.self)) }, uniquingKeysWith: { a, _ in a })
    }

    func checkpoints(_ h: Harness) throws -> [Changelog.Checkpoint] {
        try h.read(h.config.changelogTopic).filter { $0.key == Changelog.checkpointKey }.compactMap { Changelog.Checkpoint.decode($0.value) }
    }

    @Test("a far-future record is dead-lettered as invalid_time and moves neither stream time nor watermark")
    func farFuture() throws {
        let h = try Harness(partitions: 1)
        try send(h, [
            (Array("c-clock".utf8), Array(#"{"event_id":"f1","contact_id":"c-clock","type":"page_view","ts":"9999-12-31T23:59:59Z","props":{"path":"/pricing"}}"#.utf8)),
            (Array("c-new".utf8), Array(#"{"event_id":"p1","contact_id":"c-new","type":"page_view","ts":"2026-03-10T09:00:00Z","props":{"path":"/pricing"}}"#.utf8)),
        ])
        let d = try h.runDaemon(until: { $0.status.records >= 2 && $0.status.transactions > 0 })
        #expect(d.status.records == 2)
        let dead = try h.read(h.config.deadLetterTopic)
        #expect(dead.count == 1)
        let dh = dead.first.map(headers) ?? [:]
        #expect(dh["error.reason"] == "invalid_time")
        #expect(dh["error.detail"]?.contains("ahead of the clock") == true, "\(dh)")
        let out = try h.actual().perContact.values.flatMap { $0 }
        #expect(out.contains { $0.hasPrefix("lifecycle null->active_evaluator 2026-03-10T09:00:00.000Z event") }, "\(out)")
        #expect(!out.contains { $0.contains("inactive") }, "\(out)")
        #expect(!out.contains { $0.contains("9999-") }, "\(out)")
        let cps = try checkpoints(h)
        #expect(!cps.isEmpty)
        let limit = Daemon.wallMs() + h.config.maxFuture
        for cp in cps {
            #expect(cp.watermark < limit && cp.streamTime < limit, "checkpoint \(cp)")
        }
        #expect(cps.last?.streamTime == EventTime.parseRFC3339("2026-03-10T09:00:00Z"))
    }

    @Test("records of about 1 MiB are dead-lettered whole; one Kafka refuses whole is stored truncated; the partition keeps committing")
    func largeDeadLetters() throws {
        let h = try Harness(partitions: 1)
        let invalid = Array("{".utf8) + [UInt8](repeating: UInt8(ascii: "x"), count: 1_020_000)   // 1,020,001 bytes, not JSON
        let pad = String(repeating: "p", count: 1_048_664 - 96)
        var tooLarge = Array(#"{"contact_id":"c-big","type":"page_view","ts":"2026-03-10T09:00:00Z","props":{"pad":"\#(pad)"}}"#.utf8)
        tooLarge += [UInt8](repeating: UInt8(ascii: " "), count: 1_048_664 - tooLarge.count)
        #expect(tooLarge.count == 1_048_664)
        let hugeKey = [UInt8](repeating: UInt8(ascii: "k"), count: 1_500_000)  // the dead letter cannot fit whole
        try send(h, [
            (Array("c-a".utf8), invalid),
            (Array("c-b".utf8), tooLarge),
            (hugeKey, Array("not json".utf8)),
            (Array("c-after".utf8), Array(#"{"event_id":"s1","contact_id":"c-after","type":"subscribed","ts":"2026-03-11T09:00:00Z"}"#.utf8)),
        ], large: true)
        let d = try h.runDaemon(until: { $0.status.records >= 4 && $0.status.transactions > 0 })
        #expect(d.status.records == 4)
        #expect(d.status.aborts == 0)
        #expect(d.status.truncatedDeadLetters == 1)
        let dead = try h.read(h.config.deadLetterTopic).sorted { Int(headers($0)["error.source.offset"] ?? "") ?? 0 < Int(headers($1)["error.source.offset"] ?? "") ?? 0 }
        #expect(dead.count == 3)
        guard dead.count == 3 else { return }
        #expect(headers(dead[0])["error.reason"] == "invalid_json")
        #expect(dead[0].value == invalid)
        #expect(headers(dead[1])["error.reason"] == "too_large")
        #expect(dead[1].value == tooLarge)
        #expect(headers(dead[2])["error.reason"] == "invalid_json")
        #expect(headers(dead[2])["error.truncated"] == "8")
        #expect(headers(dead[2])["error.truncated.key"] == "1500000")
        #expect(dead[2].key?.count == 1024)
        #expect(headers(dead[2])["error.source.offset"] == "2")
        let out = try h.actual().perContact.values.flatMap { $0 }
        #expect(out.contains { $0.hasPrefix("lifecycle null->new_subscriber 2026-03-11T09:00:00.000Z") }, "\(out)")
        #expect(try checkpoints(h).last?.offset == 4)
        #expect(d.metrics.exposition().contains("segmentd_dead_letters_truncated_total 1"))
    }

    @Test("commits stopped while input waits: /healthz fails with the reason; aborts show in metrics")
    func stalledCommits() throws {
        let h = try Harness(partitions: 1)
        var c = h.config
        c.stallTimeout = 1_000
        try h.produce(50, seed: 81)
        let r = RunningDaemon(c)
        r.wait(until: { $0.status.records >= 50 && $0.status.transactions > 0 }, timeout: 60)
        #expect(r.daemon.isAlive, "\(r.daemon.livenessProblem ?? "")")
        // From now on every transaction fails (AddPartitionsToTxn refused), so nothing commits.
        try h.broker.cluster.pushRequestErrors(apiKey: 24, errors: Array(repeating: 29 /* TOPIC_AUTHORIZATION_FAILED */, count: 2000))
        try h.produce(50, seed: 82, start: DaemonTests.start + 50 * 600_000)
        r.wait(until: { !$0.isAlive }, timeout: 60)
        let problem = r.daemon.livenessProblem
        #expect(problem?.contains("nothing committed") == true, "\(problem ?? "alive")")
        #expect(r.daemon.status.consecutiveAborts > 0)
        let text = r.daemon.metrics.exposition()
        #expect(text.contains("segmentd_transactions_total{result=\"abort\"}"))
        #expect(!text.contains("segmentd_transaction_aborts_in_a_row 0"))
        r.daemon.stop()
        while !r.finished.load(ordering: .sequentiallyConsistent) { usleep(20_000) }
    }

    @Test("an offset reset of a checkpointed position is counted and logged, and fatal with on_offset_reset: fail")
    func offsetReset() throws {
        let h = try Harness(partitions: 1)
        try h.produce(200, seed: 91)
        _ = try h.runDaemon(until: { $0.status.records >= 200 && $0.status.transactions > 0 })
        #expect(try checkpoints(h).last?.offset == 200)
        // Overflow the partition's retention (the mock keeps about 5 MiB): offsets up to the
        // checkpoint are dropped.
        let pad = String(repeating: "x", count: 10_000)
        var big: [(key: [UInt8], value: [UInt8])] = []
        for i in 0..<700 {
            big.append((Array("c-pad".utf8), Array(#"{"contact_id":"c-pad","type":"page_view","ts":\#(DaemonTests.start + 200 * 600_000 + Int64(i)),"props":{"path":"/x","pad":"\#(pad)"}}"#.utf8)))
        }
        try send(h, big)
        let low = try TopicReader(config: ["bootstrap.servers": h.config.brokers], topic: h.config.inputTopic).watermarks(partition: 0).low
        #expect(low > 200, "retention did not drop the checkpointed position")

        var fail = h.config
        fail.failOnOffsetReset = true
        let lines = Mutex<[String]>([])
        let r1 = RunningDaemon(daemon: Daemon(config: fail, model: .defaultModel(), log: { l in lines.withLock { $0.append(l) } }))
        r1.wait(until: { _ in false }, timeout: 60)
        #expect(throws: DaemonError.self) { _ = try r1.stop() }
        #expect(r1.daemon.status.offsetResets == 1)
        #expect(lines.withLock { $0 }.contains { $0.contains("ERROR: partition 0") && $0.contains("offset reset from 200 to \(low)") })

        let r2 = RunningDaemon(h.config)
        r2.wait(until: { $0.status.records >= 900 - Int(low) }, timeout: 60)
        let d = try r2.stop()
        #expect(d.status.offsetResets == 1)
        #expect(d.metrics.exposition().contains("segmentd_offset_resets_total 1"))
        #expect(try checkpoints(h).last?.offset == 900)
    }
}

extension HardeningTests {
    @Test("an aborted transaction on the embedded broker (aborted records visible) loses nothing: the rewind restores only what committed")
    func abortOnEmbeddedBroker() throws {
        let h = try Harness(partitions: 1)
        try h.produce(300, seed: 111)
        // The first EndTxn (commit) fails after every record of the transaction landed, its
        // changelog checkpoint included: the mock shows them although the transaction aborts.
        try h.broker.cluster.pushRequestErrors(apiKey: 26, errors: [59 /* UNKNOWN_PRODUCER_ID */])
        let lines = Mutex<[String]>([])
        let r = RunningDaemon(daemon: Daemon(config: h.config, model: .defaultModel(), log: { l in lines.withLock { $0.append(l) } }))
        r.wait(until: { $0.status.records >= 300 && $0.status.aborts > 0 && $0.status.consecutiveAborts == 0 && $0.status.transactions > 0 }, timeout: 60)
        let d = try r.stop()
        #expect(d.status.aborts >= 1, "\(lines.withLock { $0 })")
        let expected = try h.expected()
        // Transitions counted by committed transactions: the batch was processed again.
        #expect(d.status.transitions == expected.values.map(\.count).reduce(0, +), "\(lines.withLock { $0 })")
        let (actual, _) = try h.actual()
        #expect(actual == expected)
        #expect(try checkpoints(h).last?.offset == 300)
    }
}

import Foundation
@testable import SegmentdEngine
import SegmentdKafka
import Testing
@testable import SegmentdDaemon

/// Restarts and fencing: static membership, the transaction timeout, the restore gate.
@Suite("Restarts and fencing", .serialized)
struct RestartTests {
    typealias Harness = DaemonTests.Harness

    @Test("group_instance_id (off, auto = the transactional id, an id), transaction.timeout.ms 10 s, commit_interval checked against it")
    func settings() throws {
        var c = DaemonConfig()
        #expect(c.groupInstanceId == nil)
        #expect(c.consumerProperties()["group.instance.id"] == nil)
        #expect(c.producerProperties()["transaction.timeout.ms"] == "10000")
        try c.apply(yaml: "group_instance_id: auto\ntransactional_id: segmentd-a\n", file: "s.yaml")
        #expect(c.groupInstanceId == "segmentd-a", "auto follows the transactional id, whatever the order")
        #expect(c.consumerProperties()["group.instance.id"] == "segmentd-a")
        try c.set("group_instance_id", "node-7", origin: "test")
        #expect(c.consumerProperties()["group.instance.id"] == "node-7")
        try c.set("group_instance_id", "off", origin: "test")
        #expect(c.consumerProperties()["group.instance.id"] == nil)
        #expect(throws: ConfigError.self) { try c.set("group_instance_id", "has space", origin: "test") }
        try c.set("producer.transaction.timeout.ms", "30000", origin: "test")
        #expect(c.producerProperties()["transaction.timeout.ms"] == "30000")
        try c.set("brokers", "127.0.0.1:9092", origin: "test")
        try c.set("commit_interval", "20s", origin: "test")
        #expect(throws: ConfigError.self) { try c.checkConsistency() }
        try c.set("commit_interval", "100ms", origin: "test")
        try c.checkConsistency()
    }

    @Test("a changelog of the previous format (8-byte snapshots with headers), then compact records, a tombstone and an uncommitted tail: restore gives each contact's latest committed state")
    func changelogFormats() throws {
        let h = try Harness(partitions: 2)
        let model = Model.defaultModel()
        let source = Pipeline(model: model)
        var stream = SyntheticStream(contacts: 300, start: DaemonTests.start, step: 600_000, seed: 431, badFraction: 0)
        for _ in 0..<3000 { _ = source.process(stream.nextRecord().value) }
        _ = source.engine.takeTransitions()
        let engine = source.engine
        let n = engine.contactCount
        #expect(n > 200)
        let producer = try KafkaProducer(config: ["bootstrap.servers": h.config.brokers, "linger.ms": "5"])
        let topic = h.config.changelogTopic
        func checkpoint(_ p: Int32, _ offset: Int64) throws {
            let r = Changelog.checkpointRecord(Changelog.Checkpoint(offset: offset, streamTime: engine.checkpoint.streamTime, watermark: engine.checkpoint.watermark,
                                                                    modelVersion: model.version, modelFingerprint: model.fingerprint))
            try producer.produce(topic: topic, partition: p, key: r.key, value: r.value, headers: r.headers)
        }
        func compact(_ p: Int32, _ i: Int, _ offset: Int64, state: Int? = nil) throws {
            let tag = Changelog.contactTag(reflects: Changelog.Position(input: offset))
            let value = tag.withUnsafeBytes { engine.snapshot(contact: state ?? i, tag: $0) }
            try producer.produce(topic: topic, partition: p, key: engine.contactId(at: i), value: value)
        }
        let tombstoned = 120
        for p in Int32(0)..<2 {
            let m = Changelog.modelRecord(model)
            try producer.produce(topic: topic, partition: p, key: m.key, value: m.value, headers: m.headers)
            // As written before compact snapshots: format 2 with the contact headers, for the
            // first half, each with another contact's state (the later records replace it).
            let legacy = Changelog.contactHeaders(reflects: Changelog.Position(input: 10))
            for i in 0..<(n / 2) {
                let state = i < 100 ? i : (i + 1) % n
                try producer.produce(topic: topic, partition: p, key: engine.contactId(at: i), value: engine.snapshot(contact: state, format: 2), headers: legacy)
            }
            try checkpoint(p, 10)
            // Compact records for the contacts from 100 on (their own state), committed.
            for i in 100..<n { try compact(p, i, 20) }
            if p == 1 {
                // A tombstone (bootstrap --force): the contact has no state any more.
                try producer.produce(topic: topic, partition: p, key: engine.contactId(at: tombstoned), value: [],
                                     headers: Changelog.contactHeaders(reflects: Changelog.Position(input: 20)))
            }
            try checkpoint(p, 20)
            // The tail of a transaction killed before its checkpoint: not restored.
            for i in 0..<50 { try compact(p, i, 30, state: n - 1) }
        }
        try producer.close()
        let d = Daemon(config: h.config, model: model, log: { _ in })
        let worker = Worker(index: 0, instance: d, config: h.config.forThread(0), model: model, log: { _ in }, debug: { _ in }, error: { _ in })
        let starts = try worker.restore(partitions: [0, 1])
        #expect(starts == [0: 20, 1: 20])
        for (p, restored) in worker.enginesByPartition() {
            var expected: [[UInt8]: [UInt8]] = [:]
            for i in 0..<n where !(p == 1 && i == tombstoned) { expected[engine.contactId(at: i)] = engine.snapshot(contact: i) }
            var actual: [[UInt8]: [UInt8]] = [:]
            for j in 0..<restored.contactCount { actual[restored.contactId(at: j)] = restored.snapshot(contact: j) }
            let missing = Set(expected.keys).subtracting(actual.keys).map { String(decoding: $0, as: UTF8.self) }.sorted()
            let extra = Set(actual.keys).subtracting(expected.keys).map { String(decoding: $0, as: UTF8.self) }.sorted()
            let differing = expected.keys.filter { actual[$0] != nil && actual[$0] != expected[$0] }.map { String(decoding: $0, as: UTF8.self) }.sorted()
            #expect(missing.isEmpty && extra.isEmpty && differing.isEmpty,
                    "partition \(p): \(actual.count) contacts of \(expected.count); missing \(missing.prefix(5)), extra \(extra.prefix(5)), differing \(differing.count): \(differing.prefix(5))")
            #expect(restored.checkpoint.watermark == engine.checkpoint.watermark)
        }
    }

    @Test("restore waits for no open transaction on the changelog: none here, so it proceeds at once")
    func restoreGate() throws {
        let h = try Harness()
        try h.produce(500, seed: 401)
        _ = try h.runDaemon(until: { $0.status.records >= 500 })
        var cfg = KafkaConfig(["bootstrap.servers": h.config.brokers])
        cfg["isolation.level"] = "read_committed"
        let t0 = Daemon.wallMs()
        let waited = try Changelog.awaitNoOpenTransaction(config: cfg, topic: h.config.changelogTopic, partitions: [0, 1, 2, 3],
                                                          timeoutMs: 1_000, log: { _ in })
        #expect(waited.isEmpty)
        #expect(Daemon.wallMs() - t0 < 1_000)
        // And the ends agree with the partitions' own watermarks.
        let reader = try TopicReader(config: ["bootstrap.servers": h.config.brokers], topic: h.config.changelogTopic)
        let ends = try reader.ends(partitions: [0, 1, 2, 3])
        for p in Int32(0)..<4 { #expect(ends[p] == (try reader.watermarks(partition: p)).high) }
    }

    @Test("SIGKILLed under static membership and restarted with the same identity: processes again, output equals replay")
    func staticMembershipRestart() throws {
        let h = try Harness()
        try h.produce(1000, seed: 411)
        let bin = repoRoot.appendingPathComponent(".build/debug/segmentd").path
        func launch(_ i: Int) throws -> Process {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: bin)
            p.arguments = ["run", "--brokers", h.config.brokers, "--group-id", h.config.groupId, "--idle-advance", "off",
                           "--batch-size", "200", "--transactional-id", h.config.transactionalId, "--group-instance-id", "auto", "--threads", "2",
                           "--http-address", "127.0.0.1:0", "--kafka", "session.timeout.ms=6000", "--kafka", "heartbeat.interval.ms=500"]
            let log = FileManager.default.temporaryDirectory.appendingPathComponent("segmentd-static-\(i).log")
            _ = FileManager.default.createFile(atPath: log.path, contents: nil)
            p.standardError = try FileHandle(forWritingTo: log)
            try p.run()
            return p
        }
        func checkpointed() throws -> Int64 {
            var reached: [Int32: Int64] = [:]
            for r in try h.read(h.config.changelogTopic) where r.key == Changelog.checkpointKey {
                reached[r.partition] = Changelog.Checkpoint.decode(r.value)?.offset
            }
            return reached.values.reduce(0, +)
        }
        let first = try launch(0)
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, try checkpointed() < 1000 { usleep(100_000) }
        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()
        let before = try checkpointed()
        #expect(before == 1000)
        try h.produce(2000, seed: 412, start: DaemonTests.start + 1000 * 600_000)
        let restartedAt = Date()
        let second = try launch(1)
        var processingAgainAfter: Double?
        let deadline2 = Date().addingTimeInterval(90)
        while Date() < deadline2 {
            let now = try checkpointed()
            if processingAgainAfter == nil && now > before { processingAgainAfter = Date().timeIntervalSince(restartedAt) }
            if now == 3000 { break }
            usleep(100_000)
        }
        kill(second.processIdentifier, SIGTERM)
        second.waitUntilExit()
        #expect(second.terminationStatus == 0)
        print("static membership restart on the embedded broker: processing again \(processingAgainAfter.map { String(format: "%.1f", $0) } ?? "never") s after the relaunch")
        #expect(processingAgainAfter != nil)
        let (actual, _) = try h.actual()
        #expect(actual == (try h.expected()))
    }

    @Test("two threads, SIGKILLed several times mid-stream: every thread held partitions, output equals replay per partition")
    func repeatedKillsWithTwoThreads() throws {
        let h = try Harness(partitions: 4)
        let total = 12000
        try h.produce(total, seed: 421)
        let bin = repoRoot.appendingPathComponent(".build/debug/segmentd").path
        #expect(FileManager.default.isExecutableFile(atPath: bin), "build the segmentd binary first (swift build)")
        var logs: [URL] = []
        func launch() throws -> Process {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: bin)
            p.arguments = ["run", "--brokers", h.config.brokers, "--group-id", h.config.groupId, "--idle-advance", "off",
                           // Small transactions (a commit per poll of 20 records): slow enough that each
                           // kill lands mid-stream, however fast the machine.
                           "--batch-size", "20", "--commit-interval", "0ms", "--transactional-id", h.config.transactionalId, "--threads", "2",
                           "--http-address", "127.0.0.1:0", "--kafka", "session.timeout.ms=6000", "--kafka", "heartbeat.interval.ms=500"]
            let log = FileManager.default.temporaryDirectory.appendingPathComponent("segmentd-kills-\(UUID().uuidString).log")
            _ = FileManager.default.createFile(atPath: log.path, contents: nil)
            logs.append(log)
            p.standardError = try FileHandle(forWritingTo: log)
            try p.run()
            return p
        }
        /// Input records covered by each partition's last checkpoint, summed.
        func checkpointed() throws -> Int64 {
            var reached: [Int32: Int64] = [:]
            for r in try h.read(h.config.changelogTopic) where r.key == Changelog.checkpointKey {
                reached[r.partition] = Changelog.Checkpoint.decode(r.value)?.offset
            }
            return reached.values.reduce(0, +)
        }
        func bothThreadsHold(_ log: URL) -> Bool {
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            return (0..<2).allSatisfy { text.contains("thread \($0): partition ") }
        }
        // Three instances killed as soon as both threads hold partitions and the instance
        // committed more of the input; the fourth runs to the end.
        var killedAt: [Int64] = []
        for _ in 1...3 {
            let p = try launch()
            let before = killedAt.last ?? 0
            let deadline = Date().addingTimeInterval(90)
            while Date() < deadline, try !bothThreadsHold(logs.last!) || (checkpointed() <= before && checkpointed() < Int64(total)) { usleep(20_000) }
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            killedAt.append(try checkpointed())
        }
        print("two threads, SIGKILLed at \(killedAt) of \(total) input records checkpointed")
        // On a loaded machine one thread may run through the rest of the input before the other
        // joins: then the last kill lands after the end. At least two must land mid-stream.
        #expect(killedAt.filter { $0 < Int64(total) }.count >= 2, "killed mid-stream: \(killedAt)")
        #expect(zip(killedAt, killedAt.dropFirst()).allSatisfy { $0 < $1 || $1 == Int64(total) }, "each instance committed more before it was killed: \(killedAt)")
        let last = try launch()
        let deadline = Date().addingTimeInterval(180)
        while Date() < deadline, try !bothThreadsHold(logs.last!) || checkpointed() < Int64(total) { usleep(200_000) }
        kill(last.processIdentifier, SIGTERM)
        last.waitUntilExit()
        #expect(last.terminationStatus == 0)
        #expect(try checkpointed() == Int64(total))
        // Both threads of every instance held partitions (a thread with none would be no test).
        for log in logs {
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            for t in 0..<2 { #expect(text.contains("thread \(t): partition "), "thread \(t) restored no partition: \(log.path)") }
        }
        let (actual, _) = try h.actual()
        let expected = try h.expected()
        let differing = expected.keys.filter { actual[$0] != expected[$0] }.sorted()
        #expect(differing.isEmpty, "\(differing.count) contacts differ; first: \(differing.first.map { "\($0)\nexpected \(expected[$0]!)\nactual   \(actual[$0] ?? [])" } ?? "")")
        #expect(actual.count == expected.count)
    }
}

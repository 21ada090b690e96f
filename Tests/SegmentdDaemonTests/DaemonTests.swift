import Foundation
import SegmentdEngine
import SegmentdKafka
import Synchronization
import Testing
@testable import SegmentdDaemon

/// End to end through a broker over TCP: the mock cluster speaks the Kafka protocol on
/// 127.0.0.1, and the daemon, the test's producer and readers connect to it as to any broker.
@Suite("Daemon end to end", .serialized)
struct DaemonTests {
    static let start: Millis = 1_767_225_600_000  // 2026-01-01

    /// A broker with the daemon's topics, a config pointing at it, and helpers.
    final class Harness: @unchecked Sendable {
        let broker: EmbeddedBroker
        var config: DaemonConfig

        init(partitions: Int32 = 4, threads: Int = 2) throws {
            var c = DaemonConfig()
            c.threads = threads
            c.idleAdvance = nil
            c.batchSize = 500
            c.groupId = "g-\(UInt32.random(in: 0...UInt32.max))"
            c.transactionalId = "t-\(UInt32.random(in: 0...UInt32.max))"
            c.consumer = ["session.timeout.ms": "6000", "heartbeat.interval.ms": "500"]
            broker = try EmbeddedBroker(config: c, partitions: partitions)
            c.brokers = broker.bootstrapServers
            config = c
        }

        deinit { broker.close() }

        /// Produces `n` synthetic records (keyed by contact, so partitioned by contact).
        func produce(_ n: Int, seed: UInt64 = 7, bad: Double = 0.01, start: Millis = DaemonTests.start, step: Millis = 600_000) throws {
            let p = try KafkaProducer(config: ["bootstrap.servers": config.brokers, "partitioner": "murmur2_random", "linger.ms": "5"])
            var s = SyntheticStream(contacts: 300, start: start, step: step, seed: seed, badFraction: bad)
            for _ in 0..<n {
                let r = s.nextRecord()
                try p.produce(topic: config.inputTopic, key: r.key ?? Array("malformed".utf8), value: r.value)
            }
            try p.close()
        }

        func read(_ topic: String) throws -> [KafkaRecord] {
            try TopicReader(config: ["bootstrap.servers": config.brokers], topic: topic).readAll(timeoutMs: 60_000)
        }

        /// What `segmentd replay` gives over each input partition in offset order: the
        /// contract's result, per contact.
        func expected() throws -> [String: [String]] {
            var byPartition: [Int32: [KafkaRecord]] = [:]
            for r in try read(config.inputTopic) { byPartition[r.partition, default: []].append(r) }
            var out: [String: [String]] = [:]
            for (_, recs) in byPartition {
                let p = Pipeline(model: .defaultModel(), duplicateHorizon: config.duplicateHorizon)
                for r in recs.sorted(by: { $0.offset < $1.offset }) {
                    _ = p.process(r.value)
                    for t in p.engine.takeTransitions() { add(p.encoder.encode(t), to: &out) }
                }
            }
            return out
        }

        /// The output topic per contact, de-duplicated by transition id; and how many
        /// duplicates were dropped.
        func actual() throws -> (perContact: [String: [String]], duplicates: Int) {
            var seen = Set<String>()
            var out: [String: [String]] = [:]
            var dups = 0
            for r in try read(config.outputTopic) {
                let obj = try JSONSerialization.jsonObject(with: Data(r.value)) as! [String: Any]
                guard seen.insert(obj["id"] as! String).inserted else { dups += 1; continue }
                add(r.value, to: &out)
            }
            return (out, dups)
        }

        func add(_ value: [UInt8], to out: inout [String: [String]]) {
            let obj = try! JSONSerialization.jsonObject(with: Data(value)) as! [String: Any]
            let d = obj["data"] as! [String: Any]
            let c = d["cause"] as! [String: Any]
            let key = (d["contact_id"] as! String).utf8.map { String($0) }.joined(separator: ".")
            func s(_ v: Any?) -> String { (v as? String) ?? "null" }
            out[key, default: []].append("\(s(d["group"])) \(s(d["from"]))->\(s(d["to"])) \(s(d["at"])) \(s(c["kind"])) \(s(c["event_id"]))")
        }

        /// Runs an in-process daemon on its own thread until `done` holds (or the timeout).
        func runDaemon(_ config: DaemonConfig? = nil, until done: @escaping @Sendable (Daemon) -> Bool, timeout: Double = 60) throws -> Daemon {
            let r = RunningDaemon(config ?? self.config)
            r.wait(until: done, timeout: timeout)
            return try r.stop()
        }
    }

    /// A daemon on its own thread, like `segmentd run` in a process.
    final class RunningDaemon: @unchecked Sendable {
        let daemon: Daemon
        let failed = Mutex<String?>(nil)
        let finished = Atomic<Bool>(false)

        convenience init(_ config: DaemonConfig) {
            self.init(daemon: Daemon(config: config, model: .defaultModel(), log: { _ in }))
        }

        init(daemon: Daemon) {
            self.daemon = daemon
            let d = daemon
            Thread.detachNewThread { [self] in
                do { try d.run() } catch { self.failed.withLock { $0 = "\(error)" } }
                self.finished.store(true, ordering: .sequentiallyConsistent)
            }
        }

        func wait(until done: (Daemon) -> Bool, timeout: Double) {
            let deadline = Date().addingTimeInterval(timeout)
            while !done(daemon) && Date() < deadline && !finished.load(ordering: .sequentiallyConsistent) { usleep(50_000) }
        }

        func stop() throws -> Daemon {
            daemon.stop()
            while !finished.load(ordering: .sequentiallyConsistent) { usleep(20_000) }
            if let f = failed.withLock({ $0 }) { throw DaemonError(description: f) }
            return daemon
        }
    }

    @Test("output equals replay per partition; bad records are dead-lettered with reasons; exactly once", arguments: [1, 2])
    func endToEnd(threads: Int) throws {
        let h = try Harness(threads: threads)
        try h.produce(3000)
        let r = RunningDaemon(h.config)
        r.wait(until: { $0.status.records >= 3000 }, timeout: 60)
        #expect(r.daemon.status.assigned == [0, 1, 2, 3], "every partition once over the threads")
        let d = try r.stop()
        #expect(d.status.records == 3000)
        let (actual, dups) = try h.actual()
        #expect(dups == 0)
        let expected = try h.expected()
        #expect(actual.count == expected.count)
        #expect(actual == expected)
        let dead = try h.read(h.config.deadLetterTopic)
        #expect(dead.count == d.status.deadLetters)
        #expect(dead.count > 10)
        let input = try h.read(h.config.inputTopic)
        for r in dead {
            let headers = Dictionary(uniqueKeysWithValues: r.headers.map { ($0.key, String(decoding: $0.value, as: UTF8.self)) })
            #expect(["unknown_type", "invalid_time", "invalid_json"].contains(headers["error.reason"] ?? ""))
            #expect(headers["error.detail"]?.isEmpty == false)
            #expect(headers["error.source.topic"] == h.config.inputTopic)
            let p = Int32(headers["error.source.partition"]!)!, o = Int64(headers["error.source.offset"]!)!
            #expect(input.first { $0.partition == p && $0.offset == o }?.value == r.value, "the dead letter carries the record unchanged")
        }
    }

    @Test("CloudEvents binary mode and the Segment Spec mirror")
    func binaryModeAndMirror() throws {
        let h = try Harness()
        try h.broker.cluster.createTopic("segment-audiences", partitions: 4)
        var c = h.config
        c.binaryMode = true
        c.segmentMirrorTopic = "segment-audiences"
        try h.produce(600, seed: 71)
        let d = try h.runDaemon(c, until: { $0.status.records >= 600 })
        let out = try h.read(h.config.outputTopic)
        #expect(out.count == d.status.transitions)
        var expectedCalls = 0
        for r in out {
            let headers = Dictionary(uniqueKeysWithValues: r.headers.map { ($0.key, String(decoding: $0.value, as: UTF8.self)) })
            #expect(headers["ce_specversion"] == "1.0")
            #expect(headers["ce_type"] == "segment.transition")
            #expect(headers["ce_id"]?.count == 32)
            #expect(headers["ce_subject"] == String(decoding: r.key ?? [], as: UTF8.self))
            let data = try JSONSerialization.jsonObject(with: Data(r.value)) as! [String: Any]
            #expect(headers["ce_time"] == data["at"] as? String)
            #expect(headers["ce_source"] == "segmentd/" + (data["group"] as! String))
            expectedCalls += (data["from"] is String ? 1 : 0) + (data["to"] is String ? 1 : 0)
        }
        let calls = try h.read("segment-audiences").map { try JSONSerialization.jsonObject(with: Data($0.value)) as! [String: Any] }
        #expect(calls.count == expectedCalls)
        #expect(calls.allSatisfy { ["Audience Entered", "Audience Exited"].contains($0["event"] as? String ?? "") && $0["type"] as? String == "track" })
    }

    @Test("a second daemon in the group takes over partitions with their state")
    func takeover() throws {
        let h = try Harness()
        try h.produce(1500, seed: 11)
        var a = h.config
        a.transactionalId += "-a"
        var b = h.config
        b.transactionalId += "-b"
        // A processes the first half alone.
        _ = try h.runDaemon(a, until: { $0.status.records >= 1500 })
        try h.produce(1500, seed: 12, start: DaemonTests.start + 1500 * 600_000)
        // B continues from A's changelog and offsets.
        let db = try h.runDaemon(b, until: { $0.status.records >= 1500 })
        #expect(db.status.restoredContacts > 100)
        let (actual, _) = try h.actual()
        #expect(actual == (try h.expected()))
    }

    @Test("a restart under a changed model moves the state over and emits the re-evaluation")
    func restartWithChangedModel() throws {
        let h = try Harness()
        try h.produce(1000, seed: 61)
        _ = try h.runDaemon(until: { $0.status.records >= 1000 })
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("segmentd-model-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let file = dir.appendingPathComponent("strict.yaml")
        try Model.defaultModel().source
            .replacingOccurrences(of: "{name: sales_ready, when: {score: lead_score, at_least: 80}}", with: "{name: sales_ready, when: {score: lead_score, at_least: 1000}}")
            .replacingOccurrences(of: "version: default-1", with: "version: strict-1")
            .write(to: file, atomically: true, encoding: .utf8)
        var c = h.config
        c.modelPath = file.path
        let strict = try Model.load(yaml: try String(contentsOf: file, encoding: .utf8), file: file.path)
        let before = try h.read(h.config.outputTopic).count
        let d = Daemon(config: c, model: strict, log: { _ in })
        let r = RunningDaemon(daemon: d)
        // Every thread restored its partitions (one may emit its switch transitions while
        // another still restores) and the switch was emitted.
        r.wait(until: { $0.isReady && $0.status.transitions > 0 }, timeout: 60)
        _ = try r.stop()
        #expect(d.status.restoredContacts > 100)
        let out = try h.read(h.config.outputTopic).dropFirst(0).map { try JSONSerialization.jsonObject(with: Data($0.value)) as! [String: Any] }
        let moved = out.filter { ($0["data"] as! [String: Any])["model_version"] as? String == "strict-1" }
        #expect(out.count > before)
        #expect(!moved.isEmpty)
        for t in moved {
            let data = t["data"] as! [String: Any]
            #expect(data["from"] as? String == "sales_ready")
            #expect((data["cause"] as! [String: Any])["kind"] as? String == "model")
        }
    }

    @Test("killed with SIGKILL mid-stream and restarted: no input lost, output equals the uninterrupted run")
    func sigkill() throws {
        let h = try Harness()
        try h.produce(4000, seed: 21)
        let bin = repoRoot.appendingPathComponent(".build/debug/segmentd").path
        #expect(FileManager.default.isExecutableFile(atPath: bin), "build the segmentd binary first (swift build)")
        var launches = 0
        func launch() throws -> Process {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: bin)
            p.arguments = ["run", "--brokers", h.config.brokers, "--group-id", h.config.groupId, "--idle-advance", "off",
                           "--batch-size", "200", "--transactional-id", h.config.transactionalId, "--http-address", "127.0.0.1:0", "--threads", "2",
                           "--kafka", "session.timeout.ms=6000", "--kafka", "heartbeat.interval.ms=500"]
            let log = FileManager.default.temporaryDirectory.appendingPathComponent("segmentd-sigkill-\(launches).log")
            launches += 1
            _ = FileManager.default.createFile(atPath: log.path, contents: nil)
            p.standardError = try FileHandle(forWritingTo: log)
            try p.run()
            return p
        }
        let first = try launch()
        // Wait until it has committed part of the input, then kill it.
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, try h.read(h.config.outputTopic).count < 300 { usleep(100_000) }
        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()
        let second = try launch()
        // Done when every partition's last checkpoint reached the end of the input.
        let reader = try TopicReader(config: ["bootstrap.servers": h.config.brokers], topic: h.config.inputTopic)
        var ends: [Int32: Int64] = [:]
        for p in Int32(0)..<4 { ends[p] = try reader.watermarks(partition: p).high }
        let deadline2 = Date().addingTimeInterval(90)
        while Date() < deadline2 {
            var reached: [Int32: Int64] = [:]
            for r in try h.read(h.config.changelogTopic) where r.key == Changelog.checkpointKey {
                reached[r.partition] = Changelog.Checkpoint.decode(r.value)?.offset
            }
            // And the second instance is running (its signal handlers installed): the first may
            // have committed everything before it was killed.
            let started = (try? String(contentsOf: FileManager.default.temporaryDirectory.appendingPathComponent("segmentd-sigkill-1.log"), encoding: .utf8))?.contains("restored ") ?? false
            if started && ends.allSatisfy({ reached[$0.key] == $0.value }) { break }
            usleep(200_000)
        }
        kill(second.processIdentifier, SIGTERM)
        second.waitUntilExit()
        #expect(second.terminationStatus == 0)
        let (actual, _) = try h.actual()
        let expected = try h.expected()
        let differing = expected.keys.filter { actual[$0] != expected[$0] }.sorted()
        #expect(differing.isEmpty, "\(differing.count) contacts differ; first: \(differing.first.map { "\($0)\nexpected \(expected[$0]!)\nactual   \(actual[$0] ?? [])" } ?? "")")
        #expect(actual.count == expected.count)
    }

    @Test("an idle partition's watermark follows the wall clock: inactivity fires with no new input")
    func idleWallClock() throws {
        let h = try Harness(partitions: 1)
        let now = Daemon.wallMs()
        let first = now - 60 * 86_400_000 + 4_000  // first seen 60 days ago + 4 s: inactive in 4 s
        let p = try KafkaProducer(config: ["bootstrap.servers": h.config.brokers])
        try p.produce(topic: h.config.inputTopic, key: Array("c-idle".utf8),
                      value: Array(#"{"contact_id":"c-idle","type":"traits","ts":\#(first),"props":{"country":"US"}}"#.utf8))
        try p.close()
        var c = h.config
        c.idleAdvance = 500
        _ = try h.runDaemon(c, until: { $0.status.transitions >= 3 }, timeout: 40)
        let out = try h.actual().perContact.values.flatMap { $0 }
        #expect(out.contains { $0.hasPrefix("lifecycle null->inactive") && $0.hasSuffix(" time null") }, "\(out)")
    }

    @Test("duplicate_horizon 24h: an event id redelivered two days later is applied again, as replay with that horizon gives")
    func duplicateHorizon() throws {
        let h = try Harness(partitions: 1)
        h.config.duplicateHorizon = 86_400_000
        let day: Millis = 86_400_000
        let p = try KafkaProducer(config: ["bootstrap.servers": h.config.brokers])
        // e-1, e-2 two days later, then e-1 again: under 7 days the third is a duplicate and the
        // contact has two opens; under 24 hours it is applied, and three opens in 30 days make
        // the contact an engaged non-converter, caused by e-1.
        for (ts, id) in [(DaemonTests.start, "e-1"), (DaemonTests.start + 2 * day, "e-2"), (DaemonTests.start + 2 * day + 1, "e-1")] {
            try p.produce(topic: h.config.inputTopic, key: Array("c-1".utf8),
                          value: Array(#"{"contact_id":"c-1","type":"email_open","ts":\#(ts),"event_id":"\#(id)"}"#.utf8))
        }
        try p.close()
        _ = try h.runDaemon(until: { $0.status.records >= 3 }, timeout: 40)
        let actual = try h.actual().perContact
        #expect(actual == (try h.expected()))
        let out = actual.values.flatMap { $0 }
        #expect(out.contains { $0.hasPrefix("lifecycle null->engaged_non_converter") && $0.hasSuffix(" event e-1") }, "\(out)")
    }

    @Test("broker down for a few seconds, then up: the daemon recovers by itself")
    func brokerOutage() throws {
        let h = try Harness()
        try h.produce(1000, seed: 31)
        let r = RunningDaemon(h.config)
        r.wait(until: { $0.status.records >= 1000 }, timeout: 60)
        #expect(r.daemon.status.records == 1000)
        try h.broker.cluster.setBroker(1, up: false)
        sleep(4)
        try h.broker.cluster.setBroker(1, up: true)
        try h.produce(1000, seed: 32, start: DaemonTests.start + 1000 * 600_000)
        r.wait(until: { $0.status.records >= 2000 }, timeout: 60)
        let d = try r.stop()
        #expect(d.status.records == 2000)
        let (actual, _) = try h.actual()
        #expect(actual == (try h.expected()))
    }
}

let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

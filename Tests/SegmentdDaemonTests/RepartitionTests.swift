import Foundation
import SegmentdEngine
import SegmentdKafka
import Synchronization
import Testing
@testable import SegmentdDaemon

/// Any input keying (contract sections 1 and 5), end to end through the mock broker.
@Suite("Repartitioning by contact id", .serialized)
struct RepartitionTests {
    typealias Harness = DaemonTests.Harness
    typealias RunningDaemon = DaemonTests.RunningDaemon

    /// Produces `n` synthetic records with random keys (or none): most land on a partition
    /// that does not own their contact.
    func produceRandomlyKeyed(_ h: Harness, _ n: Int, seed: UInt64) throws {
        let p = try KafkaProducer(config: ["bootstrap.servers": h.config.brokers, "partitioner": "murmur2_random", "linger.ms": "5"])
        var s = SyntheticStream(contacts: 300, start: DaemonTests.start, step: 600_000, seed: seed, badFraction: 0.01)
        var rng = SystemRandomNumberGenerator()
        for i in 0..<n {
            let r = s.nextRecord()
            let key: [UInt8]? = i % 10 == 0 ? nil : Array("k-\(rng.next() % 1_000_000)".utf8)
            try p.produce(topic: h.config.inputTopic, key: key, value: r.value)
        }
        try p.close()
    }

    @Test("randomly keyed input: no contact's state splits, and each partition's transitions equal replay over what its engine read")
    func randomKeys() throws {
        let h = try Harness()
        let n = 3000
        try produceRandomlyKeyed(h, n, seed: 201)
        let read = Mutex<[Int32: [[UInt8]]]>([:])
        let d = Daemon(config: h.config, model: .defaultModel(), log: { _ in })
        d.engineInputTap = { p, value in read.withLock { $0[p, default: []].append(value) } }
        let r = RunningDaemon(daemon: d)
        r.wait(until: { $0.status.records >= n && $0.status.recordsRepartitioned > 0 && $0.status.repartitionRecordsRead >= $0.status.recordsRepartitioned },
               timeout: 90)
        _ = try r.stop()
        let status = d.status
        #expect(status.records == n)
        #expect(status.recordsRepartitioned > n / 2, "most randomly keyed records belong elsewhere")
        #expect(status.repartitionRecordsRead == status.recordsRepartitioned)
        #expect(try h.read(h.config.repartitionTopic).count == status.recordsRepartitioned)

        // Each contact's records were applied by exactly one engine: the one of its partition.
        let byPartition = read.withLock { $0 }
        #expect(byPartition.values.map(\.count).reduce(0, +) == n - status.recordsRepartitioned + status.repartitionRecordsRead)
        var decoder = EventDecoder(model: .defaultModel())
        var owner: [[UInt8]: Set<Int32>] = [:]
        for (p, values) in byPartition {
            for v in values {
                if case .events(let e, _, _) = decoder.decode(v) { owner[Array(e.contactId), default: []].insert(p) }
            }
        }
        #expect(owner.count > 100)
        for (contact, ps) in owner {
            #expect(ps == [Murmur2.partition(contact, count: 4)], "contact \(String(decoding: contact, as: UTF8.self)) applied on \(ps.sorted())")
        }

        // Each partition's transitions are replay over the records in the order its engine read them.
        var expected: [String: [String]] = [:]
        for (_, values) in byPartition {
            let pipeline = Pipeline(model: .defaultModel())
            for v in values {
                _ = pipeline.process(v)
                for t in pipeline.engine.takeTransitions() { h.add(pipeline.encoder.encode(t), to: &expected) }
            }
        }
        let (actual, dups) = try h.actual()
        #expect(dups == 0)
        #expect(actual.count == expected.count)
        #expect(actual == expected)
        // Output keyed by contact: each contact's transitions sit on one output partition.
        var outputPartitions: [[UInt8]: Set<Int32>] = [:]
        for rec in try h.read(h.config.outputTopic) { outputPartitions[rec.key ?? [], default: []].insert(rec.partition) }
        #expect(outputPartitions.values.allSatisfy { $0.count == 1 })

        // Dead letters (undecodable where they arrived, or bad after forwarding) name the input record.
        let input = try h.read(h.config.inputTopic)
        let dead = try h.read(h.config.deadLetterTopic)
        #expect(dead.count == status.deadLetters)
        #expect(dead.count > 5)
        for rec in dead {
            let headers = Dictionary(rec.headers.map { ($0.key, String(decoding: $0.value, as: UTF8.self)) }, uniquingKeysWith: { a, _ in a })
            let p = Int32(headers["error.source.partition"] ?? "") ?? -1, o = Int64(headers["error.source.offset"] ?? "") ?? -1
            let source = input.first { $0.partition == p && $0.offset == o }
            #expect(source?.value == rec.value, "the dead letter names its input record")
            #expect(source?.key == rec.key, "and carries its key")
        }
    }

    @Test("the repartition settings are checked; the topic is named after the group and input unless set")
    func settings() throws {
        var c = DaemonConfig()
        #expect(c.repartition == .auto)
        #expect(c.repartitionTopic == "segmentd-engagement-events-repartition")
        try c.set("group_id", "g1", origin: "test")
        #expect(c.repartitionTopic == "g1-engagement-events-repartition")
        try c.set("repartition_topic", "my-repartition", origin: "test")
        #expect(c.repartitionTopic == "my-repartition")
        try c.set("repartition", "off", origin: "test")
        #expect(c.repartition == .off)
        #expect(throws: ConfigError.self) { try c.set("repartition", "sometimes", origin: "flag --repartition") }
        do { try c.set("repartition", "sometimes", origin: "flag --repartition") } catch {
            #expect(error.description == "flag --repartition: repartition 'sometimes' must be auto or off")
        }
        #expect(throws: ConfigError.self) { try c.set("repartition_topic", "bad name", origin: "test") }
    }

    @Test("repartition: off trusts the keys; a restart resumes both the input and the repartition topic from the checkpoint")
    func offAndRestart() throws {
        let h = try Harness()
        try produceRandomlyKeyed(h, 1000, seed: 211)
        var off = h.config
        off.repartition = .off
        off.transactionalId += "-off"
        off.groupId += "-off"
        off.outputTopic = "transitions-off"
        off.changelogTopic = "changelog-off"
        for t in [off.outputTopic, off.changelogTopic] { try h.broker.cluster.createTopic(t, partitions: 4) }
        let d0 = try h.runDaemon(off, until: { $0.status.records >= 1000 })
        #expect(d0.status.recordsRepartitioned == 0)
        #expect(d0.status.repartitionRecordsRead == 0)
        #expect(try h.read(h.config.repartitionTopic).isEmpty)

        // Auto, in two runs: the second restores the repartition offsets from the checkpoints.
        let read = Mutex<[Int32: [[UInt8]]]>([:])
        func run(until: @escaping @Sendable (Daemon) -> Bool) throws -> Daemon {
            let d = Daemon(config: h.config, model: .defaultModel(), log: { _ in })
            d.engineInputTap = { p, value in read.withLock { $0[p, default: []].append(value) } }
            let r = RunningDaemon(daemon: d)
            r.wait(until: until, timeout: 90)
            return try r.stop()
        }
        let first = try run { $0.status.records >= 1000 && $0.status.repartitionRecordsRead >= $0.status.recordsRepartitioned }
        try produceRandomlyKeyed(h, 1000, seed: 212)
        let second = try run { $0.status.records >= 1000 && $0.status.repartitionRecordsRead >= $0.status.recordsRepartitioned }
        #expect(first.status.records == 1000)
        #expect(second.status.records == 1000)
        #expect(second.status.restoredContacts > 50)
        let forwarded = first.status.recordsRepartitioned + second.status.recordsRepartitioned
        #expect(try h.read(h.config.repartitionTopic).count == forwarded)
        #expect(first.status.repartitionRecordsRead + second.status.repartitionRecordsRead == forwarded, "nothing read twice or skipped across the restart")
        var expected: [String: [String]] = [:]
        for (_, values) in read.withLock({ $0 }) {
            let pipeline = Pipeline(model: .defaultModel())
            for v in values {
                _ = pipeline.process(v)
                for t in pipeline.engine.takeTransitions() { h.add(pipeline.encoder.encode(t), to: &expected) }
            }
        }
        let (actual, dups) = try h.actual()
        #expect(dups == 0)
        let differing = expected.keys.filter { actual[$0] != expected[$0] }.sorted()
        #expect(differing.isEmpty, "\(first.status) \(second.status) \(differing.count) contacts differ; first: \(differing.first.map { "\($0)\nexpected \(expected[$0]!)\nactual   \(actual[$0] ?? [])" } ?? "")")
        #expect(actual.count == expected.count)
    }
}

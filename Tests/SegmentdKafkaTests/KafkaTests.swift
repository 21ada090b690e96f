import Foundation
import Testing
@testable import SegmentdKafka

@Suite("SegmentdKafka against the librdkafka mock cluster")
struct KafkaTests {

    @Test("produce keyed records with headers, read back with TopicReader in partition order")
    func produceAndReadBack() throws {
        let cluster = try MockCluster()
        defer { cluster.close() }
        let topic = uniqueName("roundtrip")
        try cluster.createTopic(topic, partitions: 4)

        let producer = try KafkaProducer(config: producerConfig(cluster))
        var sent: [KafkaRecord] = []
        for i in 0..<300 {
            let key = bytes("key-\(i % 17)")
            let value = bytes("{\"i\":\(i),\"payload\":\"\(String(repeating: "x", count: i % 40))\"}")
            let headers = [KafkaHeader("idx", bytes("\(i)")), KafkaHeader("bin", [0, 1, 255, UInt8(i % 256)])]
            try producer.produce(topic: topic, key: key, value: value, headers: headers)
            sent.append(KafkaRecord(topic: topic, partition: -1, offset: -1, key: key, value: value, headers: headers))
        }
        try producer.close()

        let reader = try TopicReader(config: ["bootstrap.servers": cluster.bootstrapServers], topic: topic)
        #expect(try reader.partitionCount() == 4)
        let got = try reader.readAll(timeoutMs: 20_000)
        #expect(got.count == sent.count)

        // Same content (ignoring placement).
        func content(_ r: KafkaRecord) -> String { "\(r.key ?? [])|\(r.value)|\(r.headers)" }
        #expect(Set(got.map(content)) == Set(sent.map(content)))
        // Each key lives in one partition, and each partition is in production order.
        var partitionOfKey: [[UInt8]: Int32] = [:]
        for r in got {
            if let p = partitionOfKey[r.key!] { #expect(p == r.partition) } else { partitionOfKey[r.key!] = r.partition }
            #expect(r.timestampMs > 0)
        }
        #expect(Set(partitionOfKey.values).count > 1)
        for p in Int32(0)..<4 {
            let inPartition = got.filter { $0.partition == p }
            #expect(inPartition.map(\.offset) == inPartition.map(\.offset).sorted())
            let idx = inPartition.map { Int(String(decoding: $0.headers[0].value, as: UTF8.self))! }
            #expect(idx == idx.sorted(), "partition \(p) out of production order")
        }
    }

    @Test("group consumer: assignment, commit, a new member resumes after committed offsets")
    func groupConsumerCommitResume() throws {
        let cluster = try MockCluster()
        defer { cluster.close() }
        let topic = uniqueName("group")
        let group = uniqueName("g")
        try cluster.createTopic(topic, partitions: 3)
        let producer = try KafkaProducer(config: producerConfig(cluster))
        for i in 0..<90 {
            try producer.produce(topic: topic, partition: Int32(i % 3), key: nil, value: bytes("v\(i)"))
        }
        try producer.flush(timeoutMs: 10_000)

        let handler1 = RecordingHandler()
        let c1 = try KafkaConsumer(config: consumerConfig(cluster, group: group), rebalanceHandler: handler1)
        try c1.subscribe(topics: [topic])
        var sink: [[KafkaRecord]] = []
        let ok = try pollUntil([c1], into: &sink) { $0[0].count >= 90 }
        #expect(ok)
        #expect(sink[0].count == 90)
        let all = Set((0..<3).map { TopicPartition(topic: topic, partition: Int32($0)) })
        #expect(handler1.assignedPartitions == all)
        #expect(Set(try c1.assignment()) == all)

        // "Process" the first 20 of each partition: commit offset 20 (next-offset semantics).
        let commitAt = Dictionary(uniqueKeysWithValues: all.map { ($0, Int64(20)) })
        try c1.commit(offsets: commitAt)
        #expect(try c1.committed(Array(all)) == commitAt)
        try c1.close()
        // Closing leaves the group cleanly: the handler saw the revocation.
        #expect(handler1.snapshot.contains { if case .revoked(let p, false) = $0 { return Set(p) == all } else { return false } })

        for i in 90..<96 {
            try producer.produce(topic: topic, partition: Int32(i % 3), key: nil, value: bytes("v\(i)"))
        }
        try producer.close()

        let c2 = try KafkaConsumer(config: consumerConfig(cluster, group: group), rebalanceHandler: RecordingHandler())
        try c2.subscribe(topics: [topic])
        var sink2: [[KafkaRecord]] = []
        // 10 uncommitted + 2 new per partition.
        let ok2 = try pollUntil([c2], into: &sink2) { $0[0].count >= 36 }
        #expect(ok2)
        let resumed = sink2[0]
        #expect(resumed.count == 36)
        for tp in all {
            let offs = resumed.filter { $0.topicPartition == tp }.map(\.offset)
            #expect(offs == Array(20..<32), "\(tp) resumed at wrong offsets: \(offs)")
        }
        try c2.close()
    }

    @Test("assignment handler's start offsets decide where consumption starts")
    func assignmentStartOffsets() throws {
        let cluster = try MockCluster()
        defer { cluster.close() }
        let topic = uniqueName("starts")
        try cluster.createTopic(topic, partitions: 2)
        let producer = try KafkaProducer(config: producerConfig(cluster))
        for p in Int32(0)..<2 {
            for i in 0..<20 { try producer.produce(topic: topic, partition: p, key: nil, value: bytes("p\(p)-\(i)")) }
        }
        try producer.close()

        let p0 = TopicPartition(topic: topic, partition: 0), p1 = TopicPartition(topic: topic, partition: 1)
        let handler = RecordingHandler(starts: [p0: 7, p1: 15])
        let c = try KafkaConsumer(config: consumerConfig(cluster, group: uniqueName("g")), rebalanceHandler: handler)
        try c.subscribe(topics: [topic])
        var sink: [[KafkaRecord]] = []
        _ = try pollUntil([c], timeout: 20, into: &sink) { $0[0].count >= 18 }
        // Give a little time for anything unexpected to show up.
        sink[0] += try c.poll(maxRecords: 100, timeoutMs: 300)
        let recs = sink[0]
        #expect(recs.filter { $0.partition == 0 }.map(\.offset) == Array(7..<20))
        #expect(recs.filter { $0.partition == 1 }.map(\.offset) == Array(15..<20))
        #expect(recs.first { $0.partition == 0 }?.value == bytes("p0-7"))

        // seek back on an assigned partition; read it with the zero-copy view API.
        try c.seek(topic: topic, partition: 1, offset: 3)
        var again: [(Int32, Int64, String)] = []
        let deadline = Date().addingTimeInterval(10)
        while again.count < 17 && Date() < deadline {
            try c.poll(maxRecords: 100, timeoutMs: 100) { m in
                again.append((m.partition, m.offset, String(decoding: m.value, as: UTF8.self)))
                #expect(m.record.value == Array(m.value))
            }
        }
        #expect(again.filter { $0.0 == 1 }.map(\.1) == Array(3..<20))
        #expect(again.first { $0.0 == 1 }?.2 == "p1-3")
        try c.close()
    }

    @Test("manual assignment without a group: fetches exactly the partitions given, from their offsets; reassigning moves them")
    func manualAssignment() throws {
        let cluster = try MockCluster()
        defer { cluster.close() }
        let topic = uniqueName("manual")
        try cluster.createTopic(topic, partitions: 3)
        let producer = try KafkaProducer(config: producerConfig(cluster))
        for p in Int32(0)..<3 {
            for i in 0..<10 { try producer.produce(topic: topic, partition: p, key: nil, value: bytes("p\(p)-\(i)")) }
        }
        try producer.close()
        let c = try KafkaConsumer(config: consumerConfig(cluster, group: uniqueName("reader")), rebalanceHandler: DefaultRebalanceHandler())
        let p0 = TopicPartition(topic: topic, partition: 0), p2 = TopicPartition(topic: topic, partition: 2)
        try c.assign([p0: 4, p2: KafkaOffset.beginning])
        func drain(_ count: Int) throws -> [KafkaRecord] {
            var out: [KafkaRecord] = []
            let deadline = Date().addingTimeInterval(10)
            while out.count < count && Date() < deadline { out += try c.poll(maxRecords: 100, timeoutMs: 100) }
            out += try c.poll(maxRecords: 100, timeoutMs: 200)
            return out
        }
        let first = try drain(16)
        #expect(first.filter { $0.partition == 0 }.map(\.offset) == Array(4..<10))
        #expect(first.filter { $0.partition == 2 }.map(\.offset) == Array(0..<10))
        #expect(!first.contains { $0.partition == 1 })
        try c.assign([p2: 8])
        let second = try drain(2)
        #expect(second.map(\.partition) == [2, 2])
        #expect(second.map(\.offset) == [8, 9])
        try c.assign([:])
        try c.close()
    }

    @Test("transactional producer: commit with consumer offsets, and abort")
    func transactions() throws {
        let cluster = try MockCluster()
        defer { cluster.close() }
        let input = uniqueName("txin"), output = uniqueName("txout")
        try cluster.createTopic(input, partitions: 2)
        try cluster.createTopic(output, partitions: 2)
        let plain = try KafkaProducer(config: producerConfig(cluster))
        for i in 0..<10 { try plain.produce(topic: input, key: bytes("k\(i)"), value: bytes("in\(i)")) }
        try plain.close()

        let c = try KafkaConsumer(config: consumerConfig(cluster, group: uniqueName("g"),
                                                         extra: ["isolation.level": "read_committed"]),
                                  rebalanceHandler: RecordingHandler())
        try c.subscribe(topics: [input])
        var sink: [[KafkaRecord]] = []
        #expect(try pollUntil([c], into: &sink) { $0[0].count >= 10 })

        let tx = try KafkaProducer(config: producerConfig(cluster, extra: ["transactional.id": uniqueName("tx")]))
        try tx.initTransactions(timeoutMs: 15_000)

        try tx.beginTransaction()
        var next: [TopicPartition: Int64] = [:]
        for r in sink[0] {
            try tx.produce(topic: output, key: r.key, value: r.value + bytes("-out"))
            next[r.topicPartition] = max(next[r.topicPartition] ?? 0, r.offset + 1)
        }
        try tx.sendOffsetsToTransaction(offsets: next, consumer: c, timeoutMs: 10_000)
        try tx.commitTransaction(timeoutMs: 15_000)

        try tx.beginTransaction()
        for i in 0..<5 { try tx.produce(topic: output, key: nil, value: bytes("aborted\(i)")) }
        try tx.sendOffsetsToTransaction(offsets: next, groupMetadata: try c.groupMetadata(), timeoutMs: 10_000)
        try tx.abortTransaction(timeoutMs: 15_000)

        try tx.beginTransaction()
        try tx.produce(topic: output, key: nil, value: bytes("after-abort"))
        try tx.commitTransaction(timeoutMs: 15_000)
        try tx.close()
        try c.close()

        // The mock does not enforce read_committed, so aborted records may be visible; the
        // committed ones must all be there.
        let out = try TopicReader(config: ["bootstrap.servers": cluster.bootstrapServers], topic: output)
            .readAll(timeoutMs: 20_000)
        let values = Set(out.map { String(decoding: $0.value, as: UTF8.self) })
        for i in 0..<10 { #expect(values.contains("in\(i)-out")) }
        #expect(values.contains("after-abort"))
    }

    @Test("two consumers share partitions via cooperative-sticky incremental rebalancing")
    func cooperativeSharing() throws {
        let cluster = try MockCluster()
        defer { cluster.close() }
        let topic = uniqueName("coop")
        try cluster.createTopic(topic, partitions: 6)
        let group = uniqueName("g")
        let all = Set((0..<6).map { TopicPartition(topic: topic, partition: Int32($0)) })

        let h1 = RecordingHandler(), h2 = RecordingHandler()
        let c1 = try KafkaConsumer(config: consumerConfig(cluster, group: group), rebalanceHandler: h1)
        try c1.subscribe(topics: [topic])
        var sink: [[KafkaRecord]] = []
        #expect(try pollUntil([c1], into: &sink) { _ in h1.assignedPartitions == all })

        let c2 = try KafkaConsumer(config: consumerConfig(cluster, group: group), rebalanceHandler: h2)
        try c2.subscribe(topics: [topic])
        var sink2: [[KafkaRecord]] = []
        let shared = try pollUntil([c1, c2], timeout: 40, into: &sink2) { _ in
            let a = h1.assignedPartitions, b = h2.assignedPartitions
            return !a.isEmpty && !b.isEmpty && a.isDisjoint(with: b) && a.union(b) == all
        }
        #expect(shared, "h1=\(h1.snapshot) h2=\(h2.snapshot)")
        let a1 = Set(try c1.assignment()), a2 = Set(try c2.assignment())
        #expect(a1.isDisjoint(with: a2))
        #expect(a1.union(a2) == all)
        #expect(a1 == h1.assignedPartitions && a2 == h2.assignedPartitions)
        // Incremental: c1 gave up only some partitions, never all of them at once.
        let revokedByC1 = h1.snapshot.compactMap { e -> [TopicPartition]? in
            if case .revoked(let p, _) = e { return p } else { return nil }
        }
        #expect(!revokedByC1.isEmpty)
        #expect(revokedByC1.allSatisfy { Set($0) != all }, "\(h1.snapshot)")

        // Both actually consume their own partitions.
        let producer = try KafkaProducer(config: producerConfig(cluster))
        for i in 0..<60 { try producer.produce(topic: topic, partition: Int32(i % 6), key: nil, value: bytes("\(i)")) }
        try producer.close()
        var got: [[KafkaRecord]] = []
        #expect(try pollUntil([c1, c2], into: &got) { $0[0].count + $0[1].count >= 60 })
        #expect(Set(got[0].map(\.topicPartition)).isSubset(of: a1))
        #expect(Set(got[1].map(\.topicPartition)).isSubset(of: a2))
        try c2.close()
        try c1.close()
    }

    @Test("an invalid config property is reported by name")
    func invalidConfig() throws {
        do {
            _ = try KafkaProducer(config: ["bootstrap.servers": "127.0.0.1:1", "no.such.property": "1"])
            Issue.record("expected a KafkaError")
        } catch let e as KafkaError {
            #expect(e.description.contains("no.such.property"), "\(e)")
        }
        do {
            _ = try KafkaConsumer(config: ["group.id": "g", "fetch.wait.max.ms": "not-a-number"],
                                  rebalanceHandler: DefaultRebalanceHandler())
            Issue.record("expected a KafkaError")
        } catch let e as KafkaError {
            #expect(e.description.contains("fetch.wait.max.ms"), "\(e)")
            #expect(e.message.contains("not-a-number"), "\(e)")
        }
    }

    @Test("broker down then up: flush succeeds once the broker is back")
    func brokerDownUp() throws {
        let cluster = try MockCluster()
        defer { cluster.close() }
        let topic = uniqueName("outage")
        try cluster.createTopic(topic, partitions: 2)
        let producer = try KafkaProducer(config: producerConfig(cluster, extra: ["message.timeout.ms": "60000"]))
        try producer.produce(topic: topic, key: bytes("before"), value: bytes("0"))
        try producer.flush(timeoutMs: 10_000)

        try cluster.setBroker(1, up: false)
        for i in 1...20 { try producer.produce(topic: topic, key: bytes("k\(i)"), value: bytes("\(i)")) }
        // While the broker is down nothing can be delivered.
        #expect(throws: KafkaError.self) { try producer.flush(timeoutMs: 1_500) }
        try cluster.setBroker(1, up: true)
        try producer.flush(timeoutMs: 30_000)
        try producer.close()

        let got = try TopicReader(config: ["bootstrap.servers": cluster.bootstrapServers], topic: topic)
            .readAll(timeoutMs: 20_000)
        #expect(got.count == 21)
    }
}

extension KafkaTests {
    @Test("a tagged record whose delivery fails is reported with its tag and error; untagged ones are not")
    func taggedDeliveryFailures() throws {
        let cluster = try MockCluster()
        defer { cluster.close() }
        let topic = uniqueName("tagged")
        try cluster.createTopic(topic, partitions: 1)
        let p = try KafkaProducer(config: producerConfig(cluster, extra: ["enable.idempotence": "false", "retries": "0"]))
        // The next Produce request is refused (one record per flush: one request each).
        try cluster.pushRequestErrors(apiKey: 0, errors: [10 /* MSG_SIZE_TOO_LARGE */])
        try p.produce(topic: topic, key: bytes("b"), value: bytes("tagged"), tag: 7)
        #expect(throws: KafkaError.self) { try p.flush(timeoutMs: 10_000) }
        let failures = p.takeTaggedFailures()
        #expect(failures.map(\.tag) == [7])
        #expect(failures.first?.error.isPermanentRecordError == true, "\(failures)")
        #expect(p.takeTaggedFailures().isEmpty)
        try cluster.pushRequestErrors(apiKey: 0, errors: [10])
        try p.produce(topic: topic, key: bytes("a"), value: bytes("untagged"))
        #expect(throws: KafkaError.self) { try p.flush(timeoutMs: 10_000) }
        #expect(p.takeTaggedFailures().isEmpty)
        try p.produce(topic: topic, key: bytes("c"), value: bytes("tagged, delivered"), tag: 8)
        try p.flush(timeoutMs: 10_000)
        #expect(p.takeTaggedFailures().isEmpty)
        try p.close()
    }
}

extension KafkaTests {
    @Test("produceBatch: records of one partition in one call arrive with their keys and values; those a full queue refused are retried")
    func produceBatch() throws {
        let cluster = try MockCluster()
        defer { cluster.close() }
        let topic = uniqueName("batch")
        try cluster.createTopic(topic, partitions: 2)
        // A local queue of 10 records: a batch of 100 is refused in part, and retried.
        let producer = try KafkaProducer(config: producerConfig(cluster, extra: ["queue.buffering.max.messages": "10"]))
        let resolved = try producer.topic(topic)
        var buffer: [UInt8] = []
        var records: [KafkaProducer.BatchRecord] = []
        for i in 0..<100 {
            let keyStart = buffer.count
            buffer += bytes("contact-\(i)")
            let valueStart = buffer.count
            buffer += bytes("snapshot \(i)")
            records.append(KafkaProducer.BatchRecord(key: keyStart..<valueStart, value: valueStart..<buffer.count))
        }
        try buffer.withUnsafeBytes { try producer.produceBatch(to: resolved, partition: 1, bytes: $0, records: records) }
        try producer.flush(timeoutMs: 10_000)
        try producer.close()

        let got = try TopicReader(config: ["bootstrap.servers": cluster.bootstrapServers], topic: topic).readAll(timeoutMs: 20_000)
        #expect(got.count == 100)
        #expect(got.allSatisfy { $0.partition == 1 })
        let pairs = Set(got.map { "\(String(decoding: $0.key ?? [], as: UTF8.self))=\(String(decoding: $0.value, as: UTF8.self))" })
        #expect(pairs == Set((0..<100).map { "contact-\($0)=snapshot \($0)" }))
    }
}

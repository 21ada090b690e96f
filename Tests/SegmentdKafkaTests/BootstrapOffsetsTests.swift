import Foundation
import Testing
@testable import SegmentdKafka

@Suite("TopicReader: offsets for times and partition scans, as bootstrap uses them")
struct BootstrapOffsetsTests {
    @Test("records keep the timestamps they are produced with; the first offset at or after a time is found by reading where the mock broker cannot say")
    func offsetsForTimes() throws {
        let cluster = try MockCluster()
        defer { cluster.close() }
        let topic = uniqueName("times")
        try cluster.createTopic(topic, partitions: 2)
        let producer = try KafkaProducer(config: producerConfig(cluster))
        let t0: Int64 = 1_767_225_600_000
        // Partition 0: stamps t0, t0+10, … (one out of order at offset 5); partition 1 empty.
        let stamps: [Int64] = [0, 10, 20, 30, 40, 15, 50, 60].map { t0 + $0 }
        for (i, ts) in stamps.enumerated() {
            try producer.produce(topic: topic, partition: 0, key: nil, value: bytes("r\(i)"), timestampMs: ts)
        }
        try producer.close()
        let reader = try TopicReader(config: ["bootstrap.servers": cluster.bootstrapServers], topic: topic)
        #expect(try reader.readAll(timeoutMs: 20_000).map(\.timestampMs) == stamps)

        // librdkafka 2.0.2's mock answers every lookup by time with -1 ("no such record").
        let broker = try reader.offsetsForTimes(partitions: [0, 1], timestampMs: t0 + 25)
        #expect(broker[0] == -1 && broker[1] == -1)
        // By reading: the first offset whose timestamp is at or after the time (Kafka's rule).
        #expect(try reader.firstOffset(partition: 0, atOrAfter: t0 + 25).offset == 3)
        #expect(try reader.firstOffset(partition: 0, atOrAfter: t0 + 15).offset == 2)
        #expect(try reader.firstOffset(partition: 0, atOrAfter: t0).offset == 0)
        #expect(try reader.firstOffset(partition: 0, atOrAfter: t0 + 61).offset == 8, "none that recent: the end")
        #expect(try reader.firstOffset(partition: 0, atOrAfter: t0 + 25, from: 4).offset == 4)
        #expect(try reader.firstOffset(partition: 1, atOrAfter: t0).offset == 0, "an empty partition: its end")
        // A scan stops when asked.
        var seen: [Int64] = []
        try reader.scan(partition: 0, from: 2) { v in
            seen.append(v.offset)
            return v.offset < 4
        }
        #expect(seen == [2, 3, 4])
    }
}

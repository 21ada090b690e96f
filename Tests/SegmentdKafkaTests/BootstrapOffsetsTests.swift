import Foundation
import Testing
@testable import SegmentdKafka

@Suite("TopicReader: offsets for times and partition scans, as bootstrap uses them")
struct BootstrapOffsetsTests {
    @Test("records keep the timestamps they are produced with; the first offset at or after a time, in offset order, found by reading where the mock broker cannot say")
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

        // The first offset whose timestamp is at or after the time, in offset order (Kafka's
        // rule: the late stamp at offset 5 does not count for t0 + 15), found by reading where
        // the mock broker answers "none" to every lookup by time.
        func at(_ t: Int64, _ recentCheck: Int64 = 1_000) throws -> [Int32: Int64] {
            try reader.offsets(atOrAfter: t, partitions: [0, 1], recentCheck: recentCheck)
        }
        #expect(try at(t0 + 25) == [0: 3, 1: 0])
        #expect(try at(t0 + 15) == [0: 2, 1: 0])
        #expect(try at(t0) == [0: 0, 1: 0])
        #expect(try at(t0 + 61) == [0: 8, 1: 0], "none that recent: the end")
        // Only the last record checked: it is that recent, so the partition is read.
        #expect(try at(t0 + 55, 1) == [0: 7, 1: 0])
        // A read stops when asked.
        var seen: [Int64] = []
        try reader.readViews(partitions: [0], from: [0: 2], timeoutMs: 20_000) { v in
            seen.append(v.offset)
            return v.offset < 4
        }
        #expect(seen == [2, 3, 4])
    }
}

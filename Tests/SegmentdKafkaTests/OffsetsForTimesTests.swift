import Foundation
import Testing
@testable import SegmentdKafka

@Suite("TopicReader: reading from a time")
struct OffsetsForTimesTests {
    @Test("offsets for a time start every partition at its first record at or after it")
    func fromTime() throws {
        let cluster = try MockCluster()
        defer { cluster.close() }
        let topic = uniqueName("times")
        try cluster.createTopic(topic, partitions: 3)
        let producer = try KafkaProducer(config: producerConfig(cluster))
        // Three days of records, in timestamp order per key (as a daemon writes them).
        let day: Int64 = 86_400_000, t0: Int64 = 1_767_225_600_000
        var sent: [(key: String, ts: Int64)] = []
        for d in 0..<3 {
            for i in 0..<40 {
                let ts = t0 + Int64(d) * day + Int64(i) * 60_000
                let key = "k\(i % 11)"
                try producer.produce(topic: topic, key: bytes(key), value: bytes("\(d)-\(i)"), timestampMs: ts)
                sent.append((key, ts))
            }
        }
        try producer.close()
        let reader = try TopicReader(config: ["bootstrap.servers": cluster.bootstrapServers], topic: topic)
        let partitions: [Int32] = [0, 1, 2]
        for since in [t0 - day, t0 + day, t0 + day + 30 * 60_000 + 1, t0 + 2 * day + 39 * 60_000, t0 + 5 * day] {
            let starts = try reader.offsets(atOrAfter: since, partitions: partitions)
            #expect(starts.keys.sorted() == partitions)
            var got: [KafkaRecord] = []
            try reader.readAll(from: starts, timeoutMs: 20_000) { got.append($0) }
            #expect(got.count == sent.filter { $0.ts >= since }.count, "since \(since)")
            #expect(got.allSatisfy { $0.timestampMs >= since })
        }
        // The records' own timestamps are the ones given.
        var all: [KafkaRecord] = []
        try reader.readAll(timeoutMs: 20_000) { all.append($0) }
        #expect(Set(all.map(\.timestampMs)) == Set(sent.map(\.ts)))
    }
}

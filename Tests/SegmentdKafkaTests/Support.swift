import Foundation
import Synchronization
import SegmentdKafka

/// Records every rebalance call; optionally returns fixed start offsets on assignment.
final class RecordingHandler: RebalanceHandler {
    enum Event: Equatable, Sendable {
        case assigned([TopicPartition])
        case revoked([TopicPartition], lost: Bool)
    }
    let events = Mutex<[Event]>([])
    let starts: [TopicPartition: Int64]

    init(starts: [TopicPartition: Int64] = [:]) { self.starts = starts }

    func assigned(partitions: [TopicPartition], consumer: KafkaConsumer) throws -> [TopicPartition: Int64] {
        events.withLock { $0.append(.assigned(partitions.sorted())) }
        return starts.filter { partitions.contains($0.key) }
    }

    func revoked(partitions: [TopicPartition], lost: Bool, consumer: KafkaConsumer) throws {
        events.withLock { $0.append(.revoked(partitions.sorted(), lost: lost)) }
    }

    var snapshot: [Event] { events.withLock { $0 } }
    var assignedPartitions: Set<TopicPartition> {
        var s = Set<TopicPartition>()
        for e in snapshot {
            switch e {
            case .assigned(let p): s.formUnion(p)
            case .revoked(let p, _): s.subtract(p)
            }
        }
        return s
    }
}

func uniqueName(_ prefix: String) -> String { "\(prefix)-\(UUID().uuidString.prefix(8))" }

func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

func consumerConfig(_ cluster: MockCluster, group: String, extra: [String: String] = [:]) -> KafkaConfig {
    KafkaConfig([
        "bootstrap.servers": cluster.bootstrapServers,
        "group.id": group,
        "auto.offset.reset": "earliest",
        // Fast restarts: a new member may otherwise wait ~session.timeout for the old one.
        "session.timeout.ms": "6000",
        "heartbeat.interval.ms": "500",
        "log_level": "4",
    ].merging(extra, uniquingKeysWith: { _, b in b }))
}

func producerConfig(_ cluster: MockCluster, extra: [String: String] = [:]) -> KafkaConfig {
    KafkaConfig([
        "bootstrap.servers": cluster.bootstrapServers,
        "enable.idempotence": "true",
        "linger.ms": "5",
        "log_level": "4",
    ].merging(extra, uniquingKeysWith: { _, b in b }))
}

/// Polls `consumers` round-robin until `done` is true or `timeout` passes; returns records per
/// consumer index.
@discardableResult
func pollUntil(_ consumers: [KafkaConsumer], timeout: TimeInterval = 30,
               into sink: inout [[KafkaRecord]], _ done: ([[KafkaRecord]]) throws -> Bool) throws -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    if sink.count < consumers.count { sink = Array(repeating: [], count: consumers.count) }
    while Date() < deadline {
        for (i, c) in consumers.enumerated() {
            sink[i] += try c.poll(maxRecords: 1000, timeoutMs: 50)
        }
        if try done(sink) { return true }
    }
    return false
}

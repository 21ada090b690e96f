import Foundation
import SegmentdEngine
import SegmentdKafka
import Synchronization

/// Which instance of the consumer group owns which input partitions, and where its HTTP server
/// answers: what lets `/contacts/{id}` asked of any instance be answered by the contact's owner.
///
/// Each instance publishes one record in the instances topic (`instances_topic`, default
/// `<group_id>-instances`, compacted, partition 0 only): key = its instance id (the
/// `transactional_id`), value = JSON `{"instance", "http_address" (or null when HTTP is off),
/// "partitions", "input_topic", "published_at"}`. It is written again whenever the instance's
/// partitions or address change, and deleted (a tombstone: null value) on a clean shutdown.
/// Every instance follows the topic from the beginning on a thread of its own and keeps the
/// latest record per instance. All records are in one partition, so their offsets order them:
/// when two records claim a partition (an instance killed without its tombstone, a rebalance
/// in flight), the later one wins.
///
/// The directory never stops the daemon: a topic that is missing or unreachable is logged, and
/// queries for other instances' contacts are then answered 503 (owner unknown).
final class InstanceDirectory: @unchecked Sendable {
    /// One instance's latest record.
    struct Entry: Sendable, Equatable {
        var instance: String
        var httpAddress: String?
        var partitions: [Int32]
        /// Offset of the record in the instances topic (later records win).
        var offset: Int64
    }

    let topic: String
    let instanceId: String
    private let config: DaemonConfig
    private let log: LogSink
    /// The latest record of every other instance, by instance id (own record excluded).
    private let entries = Mutex<[String: Entry]>([:])
    /// What this instance publishes now: its partitions (sorted) and address.
    private let ownState: @Sendable () -> (partitions: [Int32], httpAddress: String?)
    private let stopFlag = Atomic<Bool>(false)

    init(config: DaemonConfig, log: @escaping LogSink, ownState: @escaping @Sendable () -> (partitions: [Int32], httpAddress: String?)) {
        self.topic = config.instancesTopic
        self.instanceId = config.transactionalId
        self.config = config
        self.log = log
        self.ownState = ownState
    }

    /// The other instance that owns `partition` by the latest record claiming it, or nil.
    func owner(of partition: Int32) -> Entry? {
        entries.withLock { all in
            all.values.filter { $0.partitions.contains(partition) }.max { $0.offset < $1.offset }
        }
    }

    /// Every other instance's latest record.
    var others: [Entry] { entries.withLock { Array($0.values) }.sorted { $0.instance < $1.instance } }

    /// Ends `run` (which then publishes this instance's tombstone).
    func stop() { stopFlag.store(true, ordering: .relaxed) }

    private var stopping: Bool { stopFlag.load(ordering: .relaxed) }

    /// The JSON value of this instance's record.
    static func encode(instance: String, httpAddress: String?, partitions: [Int32], inputTopic: String, publishedAt: Int64) -> [UInt8] {
        var out: [UInt8] = Array(#"{"instance":"#.utf8)
        JSONWriter.string(instance, to: &out)
        out += Array(#","http_address":"#.utf8)
        if let httpAddress { JSONWriter.string(httpAddress, to: &out) } else { out += Array("null".utf8) }
        out += Array(#","partitions":["#.utf8) + Array(partitions.map(String.init).joined(separator: ",").utf8) + Array("],".utf8)
        out += Array(#""input_topic":"#.utf8)
        JSONWriter.string(inputTopic, to: &out)
        out += Array(#","published_at":\#(publishedAt)}"#.utf8)
        return out
    }

    /// Reads a record's value (nil: not one of ours, ignored).
    static func decode(_ value: [UInt8], offset: Int64) -> Entry? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(value)) as? [String: Any],
              let instance = object["instance"] as? String, let partitions = object["partitions"] as? [Int]
        else { return nil }
        return Entry(instance: instance, httpAddress: object["http_address"] as? String,
                     partitions: partitions.compactMap { Int32(exactly: $0) }, offset: offset)
    }

    /// Follows the topic and publishes this instance's record until `stop()`, then publishes
    /// its tombstone. Runs on a thread of its own (`Daemon.run` starts and joins it).
    func run() {
        let metadataConfig = KafkaConfig(config.kafka.merging(config.consumer) { $1 }.merging(["bootstrap.servers": config.brokers]) { $1 })
        // The topic must exist (the daemon never creates topics; the embedded broker does).
        // Asked in one-second steps so a stop is honoured while the broker cannot be reached
        // (the workers say so).
        let metadata: TopicReader
        do { metadata = try TopicReader(config: metadataConfig, topic: topic) } catch {
            log("instances topic \(topic): \(error); /contacts answers only for this instance's partitions")
            return
        }
        while true {
            if stopping { return }
            do {
                _ = try metadata.partitionCount(timeoutMs: 1_000)
                break
            } catch let e as KafkaError where !e.isUnknownTopic && (e.isTimeout || e.isRetriable || e.isBrokerUnreachable) {
                continue
            } catch {
                log("instances topic \(topic): \(error); /contacts answers only for this instance's partitions (create the topic: one partition, cleanup.policy=compact)")
                return
            }
        }
        let producer: KafkaProducer
        let reader: KafkaConsumer
        do {
            var producerProperties = config.producerProperties()
            producerProperties["transactional.id"] = nil
            producerProperties["transaction.timeout.ms"] = nil
            producerProperties["linger.ms"] = "0"
            producer = try KafkaProducer(config: KafkaConfig(producerProperties))
            var readerProperties = config.kafka.merging(config.consumer) { $1 }
            readerProperties["bootstrap.servers"] = config.brokers
            readerProperties["group.id"] = "\(config.groupId)-instances-reader"
            readerProperties["group.instance.id"] = nil
            readerProperties["auto.offset.reset"] = "earliest"
            readerProperties["isolation.level"] = "read_uncommitted"
            reader = try KafkaConsumer(config: KafkaConfig(readerProperties), rebalanceHandler: DefaultRebalanceHandler())
            try reader.assign([TopicPartition(topic: topic, partition: 0): KafkaOffset.beginning])
        } catch {
            log("instances topic \(topic): cannot follow it: \(error); /contacts answers only for this instance's partitions")
            return
        }
        var published: (partitions: [Int32], httpAddress: String?)?
        var nextAttempt: Int64 = 0
        while !stopping {
            do {
                for record in try reader.poll(maxRecords: 1000, timeoutMs: 100) { apply(record) }
            } catch {
                log("instances topic \(topic): reading: \(error)")
                usleep(500_000)
            }
            let now = ownState()
            if published.map({ $0.partitions != now.partitions || $0.httpAddress != now.httpAddress }) ?? true, Daemon.wallMs() >= nextAttempt {
                do {
                    let value = InstanceDirectory.encode(instance: instanceId, httpAddress: now.httpAddress, partitions: now.partitions,
                                                         inputTopic: config.inputTopic, publishedAt: Daemon.wallMs())
                    try producer.produce(topic: topic, partition: 0, key: Array(instanceId.utf8), value: value)
                    try flush(producer)
                    published = now
                } catch {
                    log("instances topic \(topic): publishing this instance's partitions: \(error); retrying")
                    nextAttempt = Daemon.wallMs() + 1_000
                }
            }
        }
        // A clean shutdown: this instance answers no more.
        do {
            try Array(instanceId.utf8).withUnsafeBytes { key in
                try producer.produce(topic: topic, partition: 0, keyBytes: key, valueBytes: UnsafeRawBufferPointer(start: nil, count: 0))
            }
            try producer.close(timeoutMs: 2_000)
        } catch {
            log("instances topic \(topic): removing this instance's record: \(error)")
        }
        do { try reader.close() } catch { log("instances topic \(topic): closing the reader: \(error)") }
    }

    /// Waits for the records produced so far, in one-second steps so a stop is not held up
    /// (the tombstone follows them).
    private func flush(_ producer: KafkaProducer) throws {
        while true {
            do {
                try producer.flush(timeoutMs: 1_000)
                return
            } catch let e as KafkaError where e.isTimeout && !stopping {
                continue
            }
        }
    }

    private func apply(_ record: KafkaRecord) {
        guard let key = record.key else { return }
        let instance = String(decoding: key, as: UTF8.self)
        guard instance != instanceId else { return }
        if record.value.isEmpty {
            entries.withLock { $0[instance] = nil }
        } else if let entry = InstanceDirectory.decode(record.value, offset: record.offset), entry.instance == instance {
            entries.withLock { $0[instance] = entry }
        }
    }

}

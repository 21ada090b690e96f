import SegmentdEngine
import SegmentdKafka
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One line of the daemon's log, on stderr.
public typealias LogSink = @Sendable (String) -> Void

/// Why the daemon stopped other than by request.
public struct DaemonError: Error, CustomStringConvertible {
    public var description: String
}

/// What the daemon has done so far (read from other threads through `Daemon.status`).
public struct DaemonStatus: Sendable {
    public var records = 0
    public var transitions = 0
    public var deadLetters = 0
    public var transactions = 0
    public var aborts = 0
    public var assigned: [Int32] = []
    public var restoredContacts = 0
    public var restoreSeconds = 0.0
}

/// `segmentd run`: consume engagement events, segment them, produce transitions, exactly once.
///
/// One polling thread does everything, in a loop: poll a batch (zero-copy) → feed each record
/// to its partition's engine → produce transitions, dead letters and changelog records → commit
/// one transaction with the input offsets. Rebalance callbacks run inside `poll` on the same
/// thread, after the previous batch committed, so a revoked partition never has work in
/// flight and an assigned one is restored from the changelog before its first record.
public final class Daemon: @unchecked Sendable {
    public let config: DaemonConfig
    public let model: Model
    private let log: LogSink
    private let stopFlag = Atomic<Bool>(false)
    private let statusBox = Mutex(DaemonStatus())

    // Polling-thread state.
    private var consumer: KafkaConsumer!
    private var producer: KafkaProducer!
    private var workers: [Int32: PartitionWorker] = [:]
    private var outbox = Outbox()

    final class PartitionWorker {
        let partition: Int32
        let pipeline: Pipeline
        /// Next input offset to read (the one to commit).
        var nextOffset: Int64
        var committedOffset: Int64
        var lastRecordWallMs: Int64

        init(partition: Int32, pipeline: Pipeline, nextOffset: Int64, now: Int64) {
            self.partition = partition
            self.pipeline = pipeline
            self.nextOffset = nextOffset
            self.committedOffset = nextOffset
            self.lastRecordWallMs = now
        }
    }

    struct OutRecord {
        var topic: String
        var partition: Int32?
        var key: [UInt8]?
        var value: [UInt8]
        var headers: [KafkaHeader]
    }

    struct Outbox {
        var records: [OutRecord] = []
        var transitions = 0
        var deadLetters = 0
        var isEmpty: Bool { records.isEmpty }
    }

    public init(config: DaemonConfig, model: Model, log: @escaping LogSink) {
        self.config = config
        self.model = model
        self.log = log
    }

    public var status: DaemonStatus { statusBox.withLock { $0 } }

    /// Asks the loop to finish the batch in hand, commit, and leave the group.
    public func stop() { stopFlag.store(true, ordering: .relaxed) }

    /// Runs until `stop()`; throws on a fatal Kafka error.
    public func run() throws {
        producer = try KafkaProducer(config: KafkaConfig(config.producerProperties()))
        if config.guarantee == .exactlyOnce {
            try producer.initTransactions(timeoutMs: 60_000)
        }
        let handler = Rebalance(daemon: self)
        consumer = try KafkaConsumer(config: KafkaConfig(config.consumerProperties()), rebalanceHandler: handler) { [log] e in
            log("kafka: \(e)")
        }
        try consumer.subscribe(topics: [config.inputTopic])
        log("consuming \(config.inputTopic) as group \(config.groupId) (\(config.guarantee.rawValue)); transitions to \(config.outputTopic)")
        defer {
            do { try consumer.close() } catch { log("closing the consumer: \(error)") }
            do { try producer.close() } catch { log("closing the producer: \(error)") }
        }
        while !stopFlag.load(ordering: .relaxed) {
            try pollOnce()
        }
        // Finish: commit what is in hand (nothing is left by pollOnce), then leave the group.
        try commit()
        log("stopped after \(status.records) records, \(status.transitions) transitions")
    }

    /// One iteration: a batch of records (possibly none), idle advancement, one commit.
    func pollOnce() throws {
        let now = Daemon.wallMs()
        var n = 0
        try consumer.poll(maxRecords: config.batchSize, timeoutMs: 100) { view in
            n += 1
            try self.process(view, now: now)
        }
        if let idle = config.idleAdvance {
            for w in workers.values where now - w.lastRecordWallMs >= idle {
                w.pipeline.engine.advanceWatermark(to: now - config.lateness - 1)
                collectTransitions(w)
            }
        }
        if n > 0 || !outbox.isEmpty || workers.values.contains(where: { $0.nextOffset != $0.committedOffset }) {
            try commit()
        }
        statusBox.withLock { $0.records += n }
    }

    private func process(_ view: KafkaMessageView, now: Int64) throws {
        guard let w = workers[view.partition] else {
            throw DaemonError(description: "record from partition \(view.partition), which is not assigned to this instance")
        }
        let value = view.value
        let outcome = value.withMemoryRebound(to: UInt8.self) { w.pipeline.process($0) }
        if case .bad(let e) = outcome {
            outbox.records.append(OutRecord(
                topic: config.deadLetterTopic, partition: nil, key: view.key.map { Array($0) }, value: Array(value),
                headers: [
                    KafkaHeader("error.reason", Array(e.reason.rawValue.utf8)),
                    KafkaHeader("error.detail", Array(e.detail.utf8)),
                    KafkaHeader("error.source.topic", Array(config.inputTopic.utf8)),
                    KafkaHeader("error.source.partition", Array(String(view.partition).utf8)),
                    KafkaHeader("error.source.offset", Array(String(view.offset).utf8)),
                ]))
            outbox.deadLetters += 1
        }
        w.nextOffset = view.offset + 1
        w.lastRecordWallMs = now
        collectTransitions(w)
    }

    private func collectTransitions(_ w: PartitionWorker) {
        for t in w.pipeline.engine.takeTransitions() {
            outbox.records.append(OutRecord(topic: config.outputTopic, partition: nil, key: t.contactId,
                                            value: w.pipeline.encoder.encode(t), headers: []))
            outbox.transitions += 1
        }
    }

    /// Writes the outbox, the changelog records of changed contacts and each partition's
    /// checkpoint, and commits them with the input offsets: one transaction under
    /// exactly_once; produce, flush, then commit offsets under at_least_once.
    func commit() throws {
        var offsets: [TopicPartition: Int64] = [:]
        var changelog: [OutRecord] = []
        for w in workers.values.sorted(by: { $0.partition < $1.partition }) {
            let engine = w.pipeline.engine
            let dirty = engine.takeDirtyContacts()
            let moved = w.nextOffset != w.committedOffset
            if dirty.isEmpty && !moved { continue }
            for i in dirty {
                let r = Changelog.contactRecord(engine.contactId(at: i), snapshot: engine.snapshot(contact: i), reflects: w.nextOffset)
                changelog.append(OutRecord(topic: config.changelogTopic, partition: w.partition, key: r.key, value: r.value, headers: r.headers))
            }
            let cp = Changelog.Checkpoint(offset: w.nextOffset, streamTime: engine.checkpoint.streamTime,
                                          watermark: engine.checkpoint.watermark, modelVersion: model.version)
            let r = Changelog.checkpointRecord(cp)
            changelog.append(OutRecord(topic: config.changelogTopic, partition: w.partition, key: r.key, value: r.value, headers: r.headers))
            offsets[TopicPartition(topic: config.inputTopic, partition: w.partition)] = w.nextOffset
        }
        if outbox.isEmpty && changelog.isEmpty { return }
        let eos = config.guarantee == .exactlyOnce
        do {
            if eos { try producer.beginTransaction() }
            for r in outbox.records + changelog {
                try producer.produce(topic: r.topic, partition: r.partition, key: r.key, value: r.value, headers: r.headers)
            }
            if eos {
                if !offsets.isEmpty { try producer.sendOffsetsToTransaction(offsets: offsets, consumer: consumer, timeoutMs: 60_000) }
                try commitTransaction()
            } else {
                try producer.flush(timeoutMs: 60_000)
                if !offsets.isEmpty { try consumer.commit(offsets: offsets) }
            }
        } catch let e as KafkaError where eos && !e.isFatal {
            // The transaction is lost: abort it, and rewind every partition to its last
            // committed state (changelog) and offset, so nothing is emitted twice or lost.
            log("transaction failed (\(e)); aborting and restoring from the changelog")
            do { try producer.abortTransaction(timeoutMs: 60_000) } catch { log("abort: \(error)") }
            statusBox.withLock { $0.aborts += 1 }
            outbox = Outbox()
            try rewindAll()
            return
        }
        for w in workers.values { w.committedOffset = w.nextOffset }
        statusBox.withLock {
            $0.transactions += 1
            $0.transitions += outbox.transitions
            $0.deadLetters += outbox.deadLetters
        }
        outbox = Outbox()
    }

    /// Commits, retrying a retriable failure a few times (librdkafka allows calling it again).
    private func commitTransaction() throws {
        var attempt = 0
        while true {
            do {
                try producer.commitTransaction(timeoutMs: 60_000)
                return
            } catch let e as KafkaError where e.isRetriable && !e.txnRequiresAbort && attempt < 5 {
                attempt += 1
                log("commit retry \(attempt): \(e)")
            }
        }
    }

    private func rewindAll() throws {
        for p in workers.keys.sorted() {
            let start = try restore(partition: p)
            try consumer.seek(topic: config.inputTopic, partition: p, offset: start, timeoutMs: 30_000)
        }
    }

    // MARK: partitions

    /// Builds a partition's engine from the changelog; returns the offset to start from.
    public func restore(partition p: Int32) throws -> Int64 {
        let t0 = Daemon.wallMs()
        let pipeline = Pipeline(model: model, lateness: config.lateness, maxRecordBytes: config.maxRecordBytes)
        var readConfig = KafkaConfig(config.kafka.merging(config.consumer) { $1 })
        readConfig["bootstrap.servers"] = config.brokers
        readConfig["isolation.level"] = "read_committed"
        let restored = try Changelog.read(config: readConfig, topic: config.changelogTopic, partition: p)
        if let cp = restored.checkpoint, cp.modelVersion != model.version, !restored.contacts.isEmpty {
            throw DaemonError(description: "the changelog of partition \(p) holds state of model '\(cp.modelVersion)', not '\(model.version)': a model whose state layout changed needs the state rebuilt (see README, Limits)")
        }
        for (contact, snapshot) in restored.contacts {
            do { try pipeline.engine.restore(contactId: contact, snapshot: snapshot) } catch {
                throw DaemonError(description: "changelog of partition \(p): \(error)")
            }
        }
        if let cp = restored.checkpoint {
            pipeline.engine.restoreCheckpoint(streamTime: cp.streamTime, watermark: cp.watermark)
        }
        _ = pipeline.engine.takeTransitions()
        _ = pipeline.engine.takeDirtyContacts()
        let start = restored.checkpoint?.offset ?? KafkaOffset.beginning
        workers[p] = PartitionWorker(partition: p, pipeline: pipeline, nextOffset: max(start, 0), now: Daemon.wallMs())
        let secs = Double(Daemon.wallMs() - t0) / 1000
        statusBox.withLock {
            $0.restoredContacts += restored.contacts.count
            $0.restoreSeconds += secs
            $0.assigned = workers.keys.sorted()
        }
        log("partition \(p): restored \(restored.contacts.count) contacts from \(restored.recordsRead) changelog records in \(String(format: "%.3f", secs)) s; starting at offset \(start == KafkaOffset.beginning ? "beginning" : String(start))")
        return start
    }

    func drop(partition p: Int32) {
        workers[p] = nil
        statusBox.withLock { $0.assigned = workers.keys.sorted() }
        log("partition \(p): revoked, state dropped")
    }

    struct Rebalance: RebalanceHandler {
        let daemon: Daemon
        func assigned(partitions: [TopicPartition], consumer: KafkaConsumer) throws -> [TopicPartition: Int64] {
            var starts: [TopicPartition: Int64] = [:]
            for tp in partitions where tp.topic == daemon.config.inputTopic {
                starts[tp] = try daemon.restore(partition: tp.partition)
            }
            return starts
        }

        func revoked(partitions: [TopicPartition], lost: Bool, consumer: KafkaConsumer) throws {
            // The loop commits before every poll, so nothing is in flight for these partitions.
            for tp in partitions { daemon.drop(partition: tp.partition) }
        }
    }

    /// Wall-clock milliseconds (for the demo's event times).
    public static func wallMsPublic() -> Int64 { wallMs() }

    static func wallMs() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }
}

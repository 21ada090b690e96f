import Dispatch
import Prometheus
import SegmentdEngine
import SegmentdKafka
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One processing thread of a `Daemon` instance: the whole processing loop, on its own OS
/// thread, for the partitions Kafka assigns to its consumer.
///
/// Each worker has its own consumer in the instance's group (so Kafka spreads the input's
/// partitions over the workers of every instance), its own transactional producer
/// (`<transactional_id>-<i>`, see `DaemonConfig.forThread`), its own repartition reader and
/// the engines of its own partitions, restored from their changelog partitions when assigned.
/// A contact never crosses threads because a partition never does. Nothing is shared between
/// workers but the instance's settings, stop flag and metrics (thread-safe).
///
/// One thread does everything, in a loop: poll a batch (zero-copy) → feed each run of one
/// partition's records to that partition's engine together (`Pipeline.process(batch:…)`,
/// decoded ahead), settling each record in order, or forwarding it to the repartition topic
/// when its contact belongs to another partition → read the repartition topic's records of the
/// assigned partitions the same way.
/// Transitions, dead letters and forwarded records are produced into the open transaction as
/// they arise (librdkafka sends them while the loop goes on); every `commit_interval` (or
/// `commit_max_records` input records) the transaction gets the changelog records of the
/// contacts that changed since the last commit, each partition's checkpoint and the input and
/// repartition offsets, and commits. Rebalance callbacks run inside `poll` on the same thread
/// and commit the open transaction first, so a revoked partition never has work in flight, and
/// an assigned one is restored from the changelog before its first record.
///
/// Repartitioning (`repartition: auto`): the engine of partition p owns the contacts whose id
/// hashes to p (murmur2 over the input's partition count, as Kafka's default partitioner and
/// segmentd's outputs). It reads the input partition p's records of its own contacts and
/// partition p of the repartition topic, where every instance forwards the records of p's
/// contacts that arrived on other input partitions; a second consumer (`repartitionReader`,
/// manually assigned, no group) follows the group's assignment of the input.
///
/// Other threads reach a worker only through its atomics and locks (status, phase, liveness)
/// and its inbox (`enqueue`, `ask`): work that reads the engines runs on its thread, between
/// batches.
final class Worker: @unchecked Sendable {
    /// Its place in the instance (0..<threads).
    let index: Int
    /// The instance's settings with this worker's own identity (`DaemonConfig.forThread`).
    let config: DaemonConfig
    unowned let instance: Daemon
    /// The model this worker's engines run (polling thread; replaced by `switchModel`).
    private(set) var model: Model
    private let log: LogSink
    /// Per-contact detail (transitions with contact ids): only at debug level, nil otherwise.
    private let debug: LogSink?
    /// Errors an operator must see (offset resets, repeated aborts); nil: `log` with an
    /// `ERROR:` prefix.
    private let errorSink: LogSink?
    private func logError(_ line: String) {
        if let errorSink { errorSink(line) } else { log("ERROR: " + line) }
    }
    private let statusBox = Mutex(DaemonStatus())
    var metrics: DaemonMetrics { instance.metrics }
    /// This thread's transitions of the open transaction, for the live console.
    private lazy var recentStage = instance.recent.makeStage()
    /// A stage to reuse for the next transaction (the one of the last commit, emptied by it).
    private var spareStage: RecentTransitions.Stage?
    /// Names the staged transitions under `model`: one encoder for every partition (each
    /// partition's own would make the stage name what it holds at every change of partition,
    /// as after a model change).
    private lazy var stageEncoder = TransitionEncoder(model: model)
    /// Work handed to the polling thread by other threads (HTTP queries, reloads): the engines
    /// are not thread-safe, so everything that reads them runs here, between batches. Once the
    /// loop ended, `closed` says why and new work is refused at once.
    private let inbox = Mutex<Inbox>(Inbox())
    struct Inbox {
        var items: [InboxItem] = []
        var closed: String?
        /// The consumer the loop waits on, woken when work arrives (set while it is open).
        var consumer: KafkaConsumer?
    }
    struct InboxItem {
        var run: @Sendable (Worker) -> Void
        var refuse: @Sendable (String) -> Void
    }
    private let phaseValue = Atomic<Int>(DaemonPhase.starting.rawValue)
    /// Wall-clock ms of the loop's latest iteration (liveness), and whether every assigned
    /// partition is restored and consuming (readiness).
    private let heartbeat = Atomic<Int64>(0)
    /// Wall-clock ms of the latest progress: a commit, or an iteration with no input waiting.
    private let lastProgress = Atomic<Int64>(0)
    private let ready = Atomic<Bool>(false)
    /// The consumer has received an assignment (possibly empty: more workers than partitions).
    private let settled = Atomic<Bool>(false)
    private let segmentSizes = Mutex<[[Int]]>([])
    /// Input partition count (for locating a contact's partition), read at start.
    private(set) var inputPartitions: Int32 = 0

    // Polling-thread state.
    private var consumer: KafkaConsumer!
    /// Reads the repartition topic's partitions of the assigned input partitions (nil with
    /// `repartition: off`).
    private var repartitionReader: KafkaConsumer?
    /// The last poll of the repartition topic returned records: poll the input without waiting.
    private var repartitionBacklog = false
    private var producer: KafkaProducer!
    /// The topics the polling thread produces to, resolved once by `producer`.
    private var topics: Topics!
    struct Topics {
        let output, changelog, deadLetters, repartition: ProducerTopic
        let segmentMirror: ProducerTopic?
        init(_ producer: KafkaProducer, _ config: DaemonConfig) throws {
            output = try producer.topic(config.outputTopic)
            changelog = try producer.topic(config.changelogTopic)
            deadLetters = try producer.topic(config.deadLetterTopic)
            repartition = try producer.topic(config.repartitionTopic)
            segmentMirror = try config.segmentMirrorTopic.map { try producer.topic($0) }
        }
    }
    private var engines: [Int32: PartitionState] = [:]
    private var open = OpenTransaction()
    /// The previous transaction while its commit runs on `committer` (exactly_once; see
    /// `startCommit`): the loop processes on meanwhile, and what that produces waits in `outbox`.
    private var inFlight: CommitInFlight?
    /// A commit that failed on `committer`: the producer's transaction to abort, and the dead
    /// letters its delivery reports name (`abortingOnFailure`).
    private var failedCommit: CommitInFlight?
    /// The next transaction's records, produced while `inFlight` commits: librdkafka accepts no
    /// record between a commit and the next begin, so they are copied here and produced once
    /// that commit succeeded (dropped with it when it fails).
    private var outbox = Outbox()
    /// Runs the end of each commit (flush, checkpoints, offsets, `commit_transaction`): one
    /// at a time, off the polling thread.
    private lazy var committer = DispatchQueue(label: "segmentd.commit.\(index)")
    /// An aborted transaction held records, and no commit succeeded since: they were rewound
    /// and are input waiting, even while a poll after the rewind returns nothing yet.
    private var rewoundRecordsWaiting = false
    /// Wall-clock ms of the last `updateGauges`; nil: due at the next iteration (partitions or
    /// the model changed). Gauges are updated at every commit and otherwise at most once per
    /// `gaugeIntervalMs`, not once per poll: a poll of a few records paid for a pass over every
    /// partition's counters (about 1M instructions with 16 partitions).
    private var gaugesUpdatedMs: Int64?
    /// Transitions produced since the last `updateGauges`, under `model` (added to the metrics there).
    @exclusivity(unchecked) private var transitionCounts: DaemonMetrics.TransitionCounts
    static let gaugeIntervalMs: Int64 = 1_000
    /// Where each transition's document is encoded before it is produced (reused). Touched
    /// only by the polling thread, three times per transition: not checked for overlapping
    /// access at run time (those checks cost about 300 instructions per transition).
    @exclusivity(unchecked) private var documentBuffer: [UInt8] = []
    /// The values of the run of records being processed (`processInput`, `processRepartitioned`),
    /// emptied after each run; its memory is reused.
    @exclusivity(unchecked) private var runValues: [UnsafeBufferPointer<UInt8>] = []
    /// Where the changed contacts' ids and snapshots are written at a commit before they are
    /// produced (reused), and where each record is in it.
    private var snapshotBuffer: [UInt8] = []
    private var snapshotRecords: [KafkaProducer.BatchRecord] = []
    /// Changelog records produced in one call at most (bounds `snapshotBuffer`).
    static let changelogChunk = 1_024
    /// A produce that failed outside the loop's own steps (a model reload's transitions): the
    /// loop aborts and rewinds on its next iteration.
    private var deferredFailure: KafkaError?
    /// Input records (partition, offset) whose dead letter the broker refused as it was (a
    /// permanent per-record error in a delivery report): after the abort and rewind, their
    /// dead letter is written truncated, so one record cannot make every retry fail.
    private var truncateOnRetry = Set<SourcePosition>()
    struct SourcePosition: Hashable {
        var partition: Int32
        var offset: Int64
    }

    /// Test hook: every record handed to an engine (partition, value), in the order read.
    var engineInputTap: ((Int32, [UInt8]) -> Void)? { instance.engineInputTap }

    final class PartitionState {
        let partition: Int32
        let pipeline: Pipeline
        /// Next input offset to read (the one to commit).
        var nextOffset: Int64
        var committedOffset: Int64
        /// Next repartition-topic offset to read, and the committed one.
        var nextRepartitionOffset: Int64
        var committedRepartitionOffset: Int64
        var lastRecordWallMs: Int64
        /// Contacts per segment in this partition: [group][segment].
        var segmentCounts: [[Int]]
        /// `nextOffset` is a position the daemon committed or reached (a checkpoint, or a
        /// processed record), so a different first offset from the consumer means a reset.
        var positionKnown = false
        var lastCounters = RecordCounters()
        var lastLate = 0
        /// The engagement counts exported so far, and of which engine (a model change starts a
        /// new engine, whose counts start at zero).
        var lastEngagement: [Int] = []
        var lastEngagementEngine: ObjectIdentifier?
        /// The counter of each engagement count, made when first needed.
        var engagementCounters: [Counter?] = []
        /// The counter of each event type of `typeCountersEngine`'s model, made when first needed.
        var typeCounters: [Counter?] = []
        var typeCountersEngine: ObjectIdentifier?
        var lastByType: [Int] = []
        /// The fingerprint of the model last written to this partition's changelog.
        var modelInChangelog: String?

        init(partition: Int32, pipeline: Pipeline, segmentCounts: [[Int]], nextOffset: Int64, nextRepartitionOffset: Int64, now: Int64) {
            self.partition = partition
            self.pipeline = pipeline
            self.nextOffset = nextOffset
            self.committedOffset = nextOffset
            self.nextRepartitionOffset = nextRepartitionOffset
            self.committedRepartitionOffset = nextRepartitionOffset
            self.lastRecordWallMs = now
            self.segmentCounts = segmentCounts
        }

        /// A transition moved a contact from one segment to another (either may be none).
        func countTransition(group: Int, from: Int?, to: Int?) {
            // One access to the counts, not one per change.
            segmentCounts.withUnsafeMutableBufferPointer { groups in
                if let from { groups[group][from] -= 1 }
                if let to { groups[group][to] += 1 }
            }
        }

        /// Records were read (input or repartition topic) that no transaction committed yet.
        var hasUncommittedPosition: Bool {
            nextOffset != committedOffset || nextRepartitionOffset != committedRepartitionOffset
        }
    }

    /// A bad record on its way to the dead-letter topic, with the input record it carries.
    struct DeadLetter {
        var key: [UInt8]?
        var value: [UInt8]
        var headers: [KafkaHeader]
        var source: SourcePosition
    }

    /// What the open transaction holds (exactly_once), or what was produced and read since the
    /// last offset commit (at_least_once): counted into metrics and status when it commits,
    /// dropped when it aborts (the records are read again).
    struct OpenTransaction {
        /// Wall-clock ms of its first record read or produced; nil: it holds nothing.
        var startedMs: Int64?
        /// `beginTransaction` was called (exactly_once).
        var begun = false
        /// Records read from the input and from the repartition topic.
        var records = 0
        var repartitionRecordsRead = 0
        var transitions = 0
        var deadLetters = 0
        /// Input records forwarded to the repartition topic.
        var forwarded = 0
        var deadByReason: [String: Int] = [:]
        /// Dead letters written truncated (refused whole in an earlier attempt, or at produce).
        var truncated = 0
        /// Kafka timestamps of the records that caused transitions.
        var causeTimestamps: [Int64] = []
        /// Input position and value size of each dead letter; its delivery tag is index + 1.
        var deadLetterSources: [(SourcePosition, Int)] = []
        /// Input and repartition-topic records processed while the previous transaction committed.
        var overlapped = 0
    }

    /// A transaction handed to the committer: everything it holds was produced by the polling
    /// thread (transitions, dead letters, forwarded records, snapshots); the committer waits
    /// for their delivery, adds the checkpoints and offsets, and commits. What the polling
    /// thread books once it committed is kept here with it.
    final class CommitInFlight: @unchecked Sendable {
        let transaction: OpenTransaction
        /// Each partition's position the transaction reaches (input, repartition topic).
        let positions: [(PartitionState, input: Int64, repartition: Int64)]
        /// Partitions whose changelog got records under `fingerprint`.
        let written: [PartitionState]
        let fingerprint: String
        let stage: RecentTransitions.Stage
        let started: ContinuousClock.Instant
        private let finished = DispatchGroup()
        private let outcome = Mutex<Result<Void, any Error>?>(nil)

        init(transaction: OpenTransaction, positions: [(PartitionState, input: Int64, repartition: Int64)], written: [PartitionState],
             fingerprint: String, stage: RecentTransitions.Stage, started: ContinuousClock.Instant) {
            self.transaction = transaction
            self.positions = positions
            self.written = written
            self.fingerprint = fingerprint
            self.stage = stage
            self.started = started
            finished.enter()
        }

        func finish(_ result: Result<Void, any Error>) {
            outcome.withLock { $0 = result }
            finished.leave()
        }

        /// The commit's outcome: nil while it runs, unless `wait`.
        func result(wait: Bool) -> Result<Void, any Error>? {
            if wait { finished.wait() }
            return outcome.withLock { $0 }
        }
    }

    /// Records waiting for the next transaction (see `outbox`): keys and values in one buffer.
    struct Outbox {
        struct Record {
            var topic: ProducerTopic
            var partition: Int32?
            var key: Range<Int>?
            var value: Range<Int>
            var headers: [KafkaHeader]
            /// A dead letter (produced with its fallback to a truncated copy), not `key`/`value`.
            var deadLetter: (letter: DeadLetter, tag: Int)?
        }
        var bytes: [UInt8] = []
        var records: [Record] = []
        var isEmpty: Bool { records.isEmpty }

        mutating func append(topic: ProducerTopic, partition: Int32?, key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer, headers: [KafkaHeader]) {
            var keyRange: Range<Int>?
            if let key {
                keyRange = bytes.count..<(bytes.count + key.count)
                bytes.append(contentsOf: key)
            }
            let valueRange = bytes.count..<(bytes.count + value.count)
            bytes.append(contentsOf: value)
            records.append(Record(topic: topic, partition: partition, key: keyRange, value: valueRange, headers: headers))
        }

        /// A record whose value `write` appends to `bytes`: encoded in place, not copied.
        mutating func append(topic: ProducerTopic, partition: Int32?, key: UnsafeRawBufferPointer?, writingValue write: (inout [UInt8]) -> Void) {
            var keyRange: Range<Int>?
            if let key {
                keyRange = bytes.count..<(bytes.count + key.count)
                bytes.append(contentsOf: key)
            }
            let valueStart = bytes.count
            write(&bytes)
            records.append(Record(topic: topic, partition: partition, key: keyRange, value: valueStart..<bytes.count, headers: []))
        }

        mutating func append(deadLetter: DeadLetter, tag: Int, topic: ProducerTopic) {
            records.append(Record(topic: topic, partition: nil, key: nil, value: 0..<0, headers: [], deadLetter: (deadLetter, tag)))
        }

        mutating func removeAll() {
            bytes.removeAll(keepingCapacity: true)
            records.removeAll(keepingCapacity: true)
        }
    }

    init(index: Int, instance: Daemon, config: DaemonConfig, model: Model, log: @escaping LogSink, debug: LogSink?, error: LogSink?) {
        self.index = index
        self.instance = instance
        self.config = config
        self.model = model
        self.log = log
        self.debug = debug
        self.errorSink = error
        transitionCounts = DaemonMetrics.TransitionCounts(model: model)
        segmentSizes.withLock { $0 = model.groups.map { Array(repeating: 0, count: $0.segments.count) } }
    }

    var status: DaemonStatus { statusBox.withLock { $0 } }

    var phase: DaemonPhase { DaemonPhase(rawValue: phaseValue.load(ordering: .relaxed)) ?? .starting }
    private func setPhase(_ p: DaemonPhase) { phaseValue.store(p.rawValue, ordering: .relaxed) }

    /// Why this worker is not live, or nil: its loop has not run for 30 s, or input is waiting
    /// and nothing committed for `stall_timeout` (`/healthz`).
    var livenessProblem: String? {
        let now = Daemon.wallMs()
        let beat = heartbeat.load(ordering: .relaxed)
        if phase == .stopped { return "stopped" }
        if beat > 0 && now - beat >= 30_000 { return "processing loop stalled: no iteration for \((now - beat) / 1000) s (\(phase))" }
        let progress = lastProgress.load(ordering: .relaxed)
        if progress > 0 && now - progress >= config.stallTimeout {
            let aborts = status.consecutiveAborts
            return "no progress: input is waiting and nothing committed for \((now - progress) / 1000) s (stall_timeout \(DurationSpec(millis: config.stallTimeout)))\(aborts > 0 ? "; \(aborts) transaction aborts in a row" : "")"
        }
        return nil
    }

    /// Holds partitions, restored and being consumed.
    var holdsPartitions: Bool { ready.load(ordering: .relaxed) }
    /// Its consumer got its share of the group's partitions (possibly none).
    var hasAssignment: Bool { settled.load(ordering: .relaxed) }

    /// Contacts per segment over this worker's partitions, [group][segment].
    var segmentContacts: [[Int]] { segmentSizes.withLock { $0 } }

    /// Runs `work` on this worker's thread between batches (engines are single-threaded); once
    /// the loop ended, `refuse` is called with the reason instead (at once, or at shutdown).
    func enqueue(_ work: @escaping @Sendable (Worker) -> Void, refuse: @escaping @Sendable (String) -> Void = { _ in }) {
        let closed: String? = inbox.withLock { box in
            if let c = box.closed { return c }
            box.items.append(InboxItem(run: work, refuse: refuse))
            // The loop may be waiting for input: run the work now, not after the wait.
            box.consumer?.wakeUp()
            return nil
        }
        if let closed { refuse(closed) }
    }

    /// Runs `work` on this worker's thread and returns its result, or why it could not: the
    /// worker is not consuming yet (connecting, initialising transactions), shutting down, or
    /// did not get to it within `timeoutMs` (a partition being restored, a slow commit).
    func ask<T: Sendable>(timeoutMs: Int, _ work: @escaping @Sendable (Worker) -> T) async -> Result<T, Unavailable> {
        switch phase {
        case .starting, .initialisingTransactions:
            return .failure(Unavailable(description: "not ready: \(phase)"))
        case .stopping, .stopped:
            return .failure(Unavailable(description: "shutting down"))
        default: break
        }
        return await withCheckedContinuation { (cont: CheckedContinuation<Result<T, Unavailable>, Never>) in
            let reply = Reply(cont)
            let timer = Task {
                try? await Task.sleep(for: .milliseconds(timeoutMs))
                if Task.isCancelled { return }
                reply.resume(.failure(Unavailable(description: "no answer within \(timeoutMs / 1000) s: the daemon is \(self.phase)")))
            }
            enqueue({ w in
                        let result = work(w)
                        reply.resume(.success(result))
                        timer.cancel()
                    },
                    refuse: { why in
                        reply.resume(.failure(Unavailable(description: why)))
                        timer.cancel()
                    })
        }
    }

    /// A continuation resumed exactly once, by whichever comes first (answer, refusal, timeout).
    final class Reply<T: Sendable>: Sendable {
        let cont: Mutex<CheckedContinuation<Result<T, Unavailable>, Never>?>
        init(_ c: CheckedContinuation<Result<T, Unavailable>, Never>) { cont = Mutex(c) }
        func resume(_ r: Result<T, Unavailable>) {
            let c = cont.withLock { c in defer { c = nil }; return c }
            c?.resume(returning: r)
        }
    }

    private var stopping: Bool { instance.stopping }

    /// Runs until the instance stops; throws on a fatal Kafka error. Every blocking librdkafka
    /// call on the way is bounded and the stop flag is checked between calls, so a stop is
    /// honoured within about a second at any stage (connecting, initialising transactions,
    /// waiting for the assignment, consuming).
    func run() throws {
        // Named for `top -H` and per-thread CPU figures (Linux keeps 15 bytes).
        nameCurrentThread("segmentd-\(index)")
        setPhase(.starting)
        defer {
            setPhase(.stopped)
            let refused = inbox.withLock { box in
                box.closed = "shutting down"
                box.consumer = nil
                defer { box.items.removeAll() }
                return box.items
            }
            for item in refused { item.refuse("shutting down") }
        }
        let producer = try KafkaProducer(config: KafkaConfig(config.producerProperties()))
        self.producer = producer
        topics = try Topics(producer, config)
        defer {
            do { try producer.close(timeoutMs: stopping ? 5_000 : 30_000) } catch { log("closing the producer: \(error)") }
        }
        if config.guarantee == .exactlyOnce {
            setPhase(.initialisingTransactions)
            guard try initTransactions() else {
                log("stopped while initialising transactions with \(config.brokers)")
                return
            }
        }
        let handler = Rebalance(worker: self)
        let consumer = try KafkaConsumer(config: KafkaConfig(config.consumerProperties()), rebalanceHandler: handler) { [log] e in
            log("kafka: \(e)")
        }
        self.consumer = consumer
        inbox.withLock { $0.consumer = consumer }
        let metadataConfig = KafkaConfig(config.kafka.merging(config.consumer) { $1 }.merging(["bootstrap.servers": config.brokers]) { $1 })
        inputPartitions = (try? TopicReader(config: metadataConfig, topic: config.inputTopic).partitionCount(timeoutMs: 5_000)) ?? 0
        instance.noteInputPartitions(inputPartitions)
        if config.repartition == .auto {
            guard inputPartitions > 0 else {
                throw DaemonError(description: "repartition: auto needs the partition count of \(config.inputTopic), which the broker did not give (does the topic exist?)")
            }
            let n = try TopicReader(config: metadataConfig, topic: config.repartitionTopic).partitionCount(timeoutMs: 10_000)
            guard n == inputPartitions else {
                throw DaemonError(description: "the repartition topic \(config.repartitionTopic) has \(n) partitions; it needs the input's \(inputPartitions) (create it so, or set repartition: off)")
            }
            repartitionReader = try KafkaConsumer(config: KafkaConfig(config.repartitionReaderProperties()), rebalanceHandler: DefaultRebalanceHandler()) { [log] e in
                log("kafka (repartition reader): \(e)")
            }
        }
        defer {
            if let reader = repartitionReader {
                do { try reader.close() } catch { log("closing the repartition reader: \(error)") }
            }
        }
        try consumer.subscribe(topics: [config.inputTopic])
        setPhase(.waitingForAssignment)
        log("consuming \(config.inputTopic) as group \(config.groupId) (\(config.guarantee.rawValue), transactional id \(config.transactionalId)); transitions to \(config.outputTopic)\(config.repartition == .auto ? "; records of other partitions' contacts through \(config.repartitionTopic)" : "")")
        defer {
            inbox.withLock { $0.consumer = nil }
            // Transactions initialised: the broker answers, so a JoinGroup may be in flight.
            closeConsumerSafely(consumer, joinMayBeInFlight: config.guarantee == .exactlyOnce)
        }
        lastProgress.store(Daemon.wallMs(), ordering: .relaxed)
        // Leaving on an error: a commit still running ends before its producer and consumer close.
        defer { _ = inFlight?.result(wait: true) }
        while !stopping {
            heartbeat.store(Daemon.wallMs(), ordering: .relaxed)
            try pollOnce()
            runInbox()
        }
        runInbox()
        setPhase(.stopping)
        // Finish: commit what is in hand, then leave the group.
        try abortingOnFailure { try commit() }
        log("stopped after \(status.records) records, \(status.transitions) transitions")
    }

    /// `init_transactions` in one-second steps until it succeeds or `stop()`: against an
    /// unreachable broker one long call would ignore a stop for its whole timeout. Returns
    /// false when stopped. Retriable errors (the coordinator not reachable yet) are retried.
    private func initTransactions() throws -> Bool {
        let t0 = Daemon.wallMs()
        var lastLog = t0
        while !stopping {
            heartbeat.store(Daemon.wallMs(), ordering: .relaxed)
            do {
                try producer.initTransactions(timeoutMs: 1_000)
                return true
            } catch let e as KafkaError where !e.isFatal && (e.isRetriable || e.isTimeout) {
                let now = Daemon.wallMs()
                if now - lastLog >= 10_000 {
                    lastLog = now
                    log("still initialising transactions with \(config.brokers) after \((now - t0) / 1000) s: \(e)")
                }
            }
        }
        return false
    }

    /// Leaves the group and destroys the consumer. librdkafka 2.0.2 asserts when a consumer
    /// that joined the group is destroyed before its first assignment (cooperative-sticky
    /// assignor state, librdkafka#4312): in that state, poll (dropping records, restoring
    /// nothing) until the assignment arrives, for at most 15 s. A consumer that never got a
    /// JoinGroup response (no member id: e.g. the broker is unreachable) has no assignor state
    /// and closes at once, unless its JoinGroup may be in flight (`joinMayBeInFlight`: the
    /// broker answered the producer): a response arriving during the close creates the state
    /// the destroy then asserts on. With several threads this is common at start: a thread
    /// whose consumer joined after the group's first generation waits for the next one.
    private func closeConsumerSafely(_ consumer: KafkaConsumer, joinMayBeInFlight: Bool) {
        let deadline = Daemon.wallMs() + 15_000
        while !consumer.hasReceivedAssignment && (consumer.memberId != nil || joinMayBeInFlight) && Daemon.wallMs() < deadline {
            do { try consumer.poll(maxRecords: 100, timeoutMs: 100) { _ in } } catch { break }
        }
        do { try consumer.close() } catch { log("closing the consumer: \(error)") }
    }

    private func runInbox() {
        let work = inbox.withLock { box in defer { box.items.removeAll() }; return box.items }
        for w in work { w.run(self) }
    }

    /// One iteration: a batch of records (possibly none) processed into the open transaction,
    /// idle advancement, and a commit when the transaction is due (`commit_interval` after its
    /// first record, or `commit_max_records` input records).
    func pollOnce() throws {
        let now = Daemon.wallMs()
        let t0 = ContinuousClock.now
        var n = 0
        var fromRepartition = 0
        // Events later than the wall clock plus max_future are bad (invalid_time) and move
        // nothing; partitions restored during this poll get the same guard in `restore`.
        for w in engines.values { w.pipeline.futureGuard = FutureGuard(now: now, allowance: config.maxFuture) }
        // Wait for input at most until the open transaction is due.
        let untilDue = open.startedMs.map { Int(max(0, min(100, $0 + config.commitInterval - now))) } ?? 100
        try abortingOnFailure {
            if let e = deferredFailure {
                deferredFailure = nil
                throw e
            }
            // The previous transaction committed meanwhile: book it, produce what waited.
            try finishCommitInFlight(wait: false)
            // A batch holds runs of records of one partition: each run goes to its partition's
            // engine together (`Pipeline.process(batch:)`, decoded ahead and prefetched).
            try consumer.pollRuns(maxRecords: config.batchSize, timeoutMs: repartitionBacklog ? 0 : untilDue) { run in
                n += run.count
                try self.processInput(run, self.worker(of: run.partition, topic: self.config.inputTopic), now: now)
            }
            if let reader = repartitionReader {
                try reader.pollRuns(maxRecords: config.batchSize, timeoutMs: 0) { run in
                    fromRepartition += run.count
                    try self.processRepartitioned(run, self.worker(of: run.partition, topic: self.config.repartitionTopic), now: now)
                }
                repartitionBacklog = fromRepartition > 0
            }
            if n + fromRepartition > 0 && open.startedMs == nil { open.startedMs = now }
            open.records += n
            open.repartitionRecordsRead += fromRepartition
            if inFlight != nil { open.overlapped += n + fromRepartition }
            if let idle = config.idleAdvance {
                for w in engines.values where now - w.lastRecordWallMs >= idle {
                    w.pipeline.engine.advanceWatermark(to: now - config.lateness - 1)
                    try collectTransitions(w)
                }
            }
            if let started = open.startedMs, Daemon.wallMs() - started >= config.commitInterval || open.records >= config.commitMaxRecords {
                try startCommit()
            }
        }
        if n > 0 {
            let d = ContinuousClock.now - t0
            metrics.batchSeconds.record(Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18)
        }
        if gaugesUpdatedMs.map({ now - $0 >= Worker.gaugeIntervalMs }) ?? true { updateGauges(now: now) }
        ready.store(!engines.isEmpty, ordering: .relaxed)
        settled.store(consumer.hasReceivedAssignment, ordering: .relaxed)
        if !engines.isEmpty && phase == .waitingForAssignment { setPhase(.running) }
        // Progress: nothing is waiting (no record fetched in this iteration, every fetched one
        // committed). Commits record their own progress; otherwise the time since the last one
        // grows (`/healthz`). Not the consumer lag: on a transactional input the high watermark
        // stays past the last record (the commit marker), and an idle partition is no stall.
        // Records that keep coming back after abort-and-rewind are input waiting.
        let waiting = n > 0 || fromRepartition > 0 || rewoundRecordsWaiting || engines.values.contains(where: \.hasUncommittedPosition)
        if !waiting { lastProgress.store(Daemon.wallMs(), ordering: .relaxed) }
    }

    /// Headers of a forwarded record: where it came from on the input (its dead letter, if it
    /// is bad, names that position and carries the original key).
    static let sourcePartitionHeader = "segmentd.source.partition"
    static let sourceOffsetHeader = "segmentd.source.offset"
    static let sourceKeyHeader = "segmentd.source.key"

    /// The worker of the partition records came from (input or repartition topic).
    private func worker(of partition: Int32, topic: String) throws -> PartitionState {
        guard let w = engines[partition] else {
            throw DaemonError(description: "record from \(topic)[\(partition)], which is not assigned to this instance")
        }
        return w
    }

    /// Records of one input partition, in offset order: each one's position is taken (and
    /// checked for an offset reset), then the partition's engine processes them together
    /// (`Pipeline.process(batch:belongsHere:outcome:)`), and each is settled as soon as its
    /// outcome is known, in order: a dead letter, its transitions, or its forward.
    private func processInput(_ run: KafkaMessageRun, _ w: PartitionState, now: Int64) throws {
        w.lastRecordWallMs = now
        // The values point into the run's messages: none is kept past it.
        defer { runValues.removeAll(keepingCapacity: true) }
        for i in 0..<run.count {
            let view = run[i]
            if w.positionKnown && view.offset != w.nextOffset { try checkOffsetReset(w, delivered: view.offset) }
            w.positionKnown = true
            w.nextOffset = view.offset + 1
            runValues.append(view.value.assumingMemoryBound(to: UInt8.self))
        }
        // Decoded once: a record whose contact another partition owns (murmur2 of the contact
        // id over the input's partitions, as producers keyed by contact place it) is forwarded
        // there; bad, ignored and webhook-adapter records stay (see `Pipeline.process(_:belongsHere:)`).
        let repartitioning = config.repartition == .auto
        let partitionCount = inputPartitions
        var foreign: (contactId: [UInt8], partition: Int32)? = nil
        try runValues.withUnsafeBufferPointer { values in
            try w.pipeline.process(batch: values, belongsHere: { contactId in
                guard repartitioning else { return true }
                let owner = Murmur2.partition(contactId, count: partitionCount)
                if owner == w.partition { return true }
                foreign = (Array(contactId), owner)
                return false
            }) { index, outcome in
                let view = run[index]
                if let outcome {
                    return try settle(outcome, of: values[index], in: w, timestampMs: view.timestampMs) {
                        (SourcePosition(partition: view.partition, offset: view.offset), view.key.map { Array($0) })
                    }
                }
                guard let (contactId, owner) = foreign else { return }
                foreign = nil
                try forward(view, contactId: contactId, to: owner)
            }
        }
    }

    /// Produces an input record whose contact another partition owns to that partition of the
    /// repartition topic, keyed by the contact id, with headers naming where it came from.
    private func forward(_ view: KafkaMessageView, contactId: [UInt8], to owner: Int32) throws {
        var headers = [KafkaHeader(Worker.sourcePartitionHeader, Array(String(view.partition).utf8)),
                       KafkaHeader(Worker.sourceOffsetHeader, Array(String(view.offset).utf8))]
        if let k = view.key { headers.append(KafkaHeader(Worker.sourceKeyHeader, Array(k))) }
        try contactId.withUnsafeBytes { key in
            try send(topic: topics.repartition, partition: owner, keyBytes: key, valueBytes: view.value, headers: headers)
        }
        open.forwarded += 1
    }

    /// Records of one partition of the repartition topic: its partition's engine applies them
    /// (they belong there), together as `processInput` does.
    private func processRepartitioned(_ run: KafkaMessageRun, _ w: PartitionState, now: Int64) throws {
        w.lastRecordWallMs = now
        defer { runValues.removeAll(keepingCapacity: true) }
        for i in 0..<run.count {
            let view = run[i]
            w.nextRepartitionOffset = view.offset + 1
            runValues.append(view.value.assumingMemoryBound(to: UInt8.self))
        }
        try runValues.withUnsafeBufferPointer { values in
            try w.pipeline.process(batch: values, belongsHere: { _ in true }) { index, outcome in
                let view = run[index]
                // Never nil: every record belongs here.
                guard let outcome else { return }
                try settle(outcome, of: values[index], in: w, timestampMs: view.timestampMs) {
                    let headers = view.headers
                    func int(_ name: String) -> Int64 {
                        headers.first { $0.key == name }.flatMap { Int64(String(decoding: $0.value, as: UTF8.self)) } ?? -1
                    }
                    return (SourcePosition(partition: Int32(truncatingIfNeeded: int(Worker.sourcePartitionHeader)), offset: int(Worker.sourceOffsetHeader)),
                            headers.first { $0.key == Worker.sourceKeyHeader }?.value)
                }
            }
        }
    }

    /// What follows a record's processing by its partition's engine: a bad one becomes a dead
    /// letter naming its input position (`source`, only computed for bad records), and the
    /// transitions it caused are produced.
    private func settle(_ outcome: RecordOutcome, of value: UnsafeBufferPointer<UInt8>, in w: PartitionState, timestampMs: Int64,
                        source: () -> (SourcePosition, [UInt8]?)) throws {
        engineInputTap?(w.partition, Array(value))
        if case .bad(let e) = outcome {
            let (position, key) = source()
            try sendDeadLetter(DeadLetter(key: key, value: Array(value), headers: [
                KafkaHeader("error.reason", Array(e.reason.rawValue.utf8)),
                KafkaHeader("error.detail", Array(e.detail.utf8)),
                KafkaHeader("error.source.topic", Array(config.inputTopic.utf8)),
                KafkaHeader("error.source.partition", Array(String(position.partition).utf8)),
                KafkaHeader("error.source.offset", Array(String(position.offset).utf8)),
            ], source: position))
            open.deadByReason[e.reason.rawValue, default: 0] += 1
        }
        if try collectTransitions(w) > 0 { open.causeTimestamps.append(timestampMs) }
    }

    /// Produces one record into the open transaction: `send(topic:partition:keyBytes:…)`.
    private func send(topic: ProducerTopic, partition: Int32?, key: [UInt8]?, value: [UInt8], headers: [KafkaHeader] = [], tag: Int = 0) throws {
        func withKey(_ body: (UnsafeRawBufferPointer?) throws -> Void) rethrows {
            if let key { try key.withUnsafeBytes { try body($0) } } else { try body(nil) }
        }
        try withKey { keyBytes in
            try value.withUnsafeBytes { valueBytes in
                try send(topic: topic, partition: partition, keyBytes: keyBytes, valueBytes: valueBytes, headers: headers, tag: tag)
            }
        }
    }

    /// Produces one record from borrowed bytes (the producer copies them) into the open
    /// transaction, beginning it first if needed; while the previous transaction commits, the
    /// bytes are copied into the outbox instead (produced once it committed).
    private func send(topic: ProducerTopic, partition: Int32?, keyBytes: UnsafeRawBufferPointer?, valueBytes: UnsafeRawBufferPointer,
                      headers: [KafkaHeader] = [], tag: Int = 0) throws {
        if inFlight != nil {
            precondition(tag == 0, "tagged records wait in the outbox as dead letters")
            if open.startedMs == nil { open.startedMs = Daemon.wallMs() }
            outbox.append(topic: topic, partition: partition, key: keyBytes, value: valueBytes, headers: headers)
            return
        }
        try beginIfNeeded()
        try producer.produce(to: topic, partition: partition, keyBytes: keyBytes, valueBytes: valueBytes, headers: headers, tag: tag)
    }

    /// Produces one record whose value `write` appends to the buffer it is given, without
    /// headers: while the previous transaction commits it is written straight into the outbox
    /// (not written, then copied there); otherwise into `documentBuffer` and produced from it.
    private func send(topic: ProducerTopic, partition: Int32?, keyBytes: UnsafeRawBufferPointer?, writingValue write: (inout [UInt8]) -> Void) throws {
        if inFlight != nil {
            if open.startedMs == nil { open.startedMs = Daemon.wallMs() }
            outbox.append(topic: topic, partition: partition, key: keyBytes, writingValue: write)
            return
        }
        documentBuffer.removeAll(keepingCapacity: true)
        write(&documentBuffer)
        try documentBuffer.withUnsafeBytes { value in
            try send(topic: topic, partition: partition, keyBytes: keyBytes, valueBytes: value)
        }
    }

    /// Produces records, one partition's, whose keys and values are ranges of `bytes`, in one
    /// call (`KafkaProducer.produceBatch`); while the previous transaction commits they are
    /// copied into the outbox instead, as by `send`.
    private func sendBatch(topic: ProducerTopic, partition: Int32, bytes: [UInt8], records: [KafkaProducer.BatchRecord]) throws {
        try bytes.withUnsafeBytes { bytes in
            if inFlight != nil {
                for r in records {
                    try send(topic: topic, partition: partition, keyBytes: UnsafeRawBufferPointer(rebasing: bytes[r.key]),
                             valueBytes: UnsafeRawBufferPointer(rebasing: bytes[r.value]))
                }
                return
            }
            try beginIfNeeded()
            try producer.produceBatch(to: topic, partition: partition, bytes: bytes, records: records)
        }
    }

    private func beginIfNeeded() throws {
        if open.startedMs == nil { open.startedMs = Daemon.wallMs() }
        if config.guarantee == .exactlyOnce && !open.begun {
            _ = producer.takeTaggedFailures()  // only this transaction's failures matter
            try producer.beginTransaction()
            open.begun = true
        }
    }

    /// Produces a dead letter, tagged so that a delivery refusal names its input record. One
    /// refused before (an earlier attempt of this transaction) is written truncated; one the
    /// producer refuses at once (too large even for the raised limit, e.g. a huge key) too,
    /// saying so, rather than abort and rewind forever.
    private func sendDeadLetter(_ letter: DeadLetter) throws {
        var d = letter
        if truncateOnRetry.remove(d.source) != nil {
            d = Worker.truncated(d)
            open.truncated += 1
        }
        open.deadLetterSources.append((d.source, d.value.count))
        if inFlight != nil {
            if open.startedMs == nil { open.startedMs = Daemon.wallMs() }
            outbox.append(deadLetter: d, tag: open.deadLetterSources.count, topic: topics.deadLetters)
        } else {
            try produceDeadLetter(d, tag: open.deadLetterSources.count)
        }
        open.deadLetters += 1
    }

    /// Produces a dead letter into the open transaction; one the producer refuses at once is
    /// written truncated.
    private func produceDeadLetter(_ d: DeadLetter, tag: Int) throws {
        do {
            try send(topic: topics.deadLetters, partition: nil, key: d.key, value: d.value, headers: d.headers, tag: tag)
        } catch let e as KafkaError where e.isPermanentRecordError {
            let t = Worker.truncated(d)
            try send(topic: topics.deadLetters, partition: nil, key: t.key, value: t.value, headers: t.headers)
            open.truncated += 1
            log("dead letter of \(config.inputTopic)[\(d.source.partition)]@\(d.source.offset) (\(d.value.count) bytes, key \(d.key?.count ?? 0) bytes) refused (\(e.name)): stored truncated")
        }
    }

    /// The consumer delivered `delivered` where `w.nextOffset` was expected. Offsets may skip
    /// (transaction markers, aborted records on a real cluster), so a gap alone is no reset:
    /// it is one when the expected position is gone (below the partition's first offset, as
    /// when retention removed it) or when the consumer went backwards (the position was past
    /// the end). Counted, logged as an error with both offsets; fatal with
    /// `on_offset_reset: fail`.
    private func checkOffsetReset(_ w: PartitionState, delivered: Int64) throws {
        let expected = w.nextOffset
        var low: Int64 = -1
        if delivered > expected {
            low = consumer.cachedWatermarks(topic: config.inputTopic, partition: w.partition)?.low ?? -1
            if low < 0 { low = (try? consumer.queryWatermarks(topic: config.inputTopic, partition: w.partition, timeoutMs: 5_000).low) ?? -1 }
            guard low > expected else { return }
        }
        metrics.offsetResets.increment()
        statusBox.withLock { $0.offsetResets += 1 }
        let what = delivered > expected
            ? "the position \(expected) is gone (the partition now starts at \(low)); continuing at \(delivered): \(delivered - expected) offsets were never processed"
            : "the position \(expected) is past the partition's end; the consumer went back to \(delivered): those records are processed again"
        logError("partition \(w.partition) of \(config.inputTopic): offset reset from \(expected) to \(delivered): \(what)")
        if config.failOnOffsetReset {
            throw DaemonError(description: "partition \(w.partition) of \(config.inputTopic): offset reset from \(expected) to \(delivered) (on_offset_reset: fail)")
        }
    }

    /// Produces the engine's pending transitions (and their Segment mirror calls), each
    /// encoded from the engine's borrowed view into `documentBuffer` and produced from there
    /// (or, while the previous transaction commits, into the outbox):
    /// no owned `Transition` unless binary mode, the Segment mirror or debug logging needs one.
    /// The engine's drain takes a body that cannot throw: the first failure stops producing,
    /// and is thrown after the drain; the transaction then aborts and rewinds.
    @discardableResult
    private func collectTransitions(_ w: PartitionState) throws -> Int {
        guard w.pipeline.engine.hasPendingTransitions else { return 0 }
        let encoder = w.pipeline.encoder
        var count = 0
        var failure: (any Error)?
        w.pipeline.engine.drainTransitions { t in
            guard failure == nil else { return }
            do {
                try produceTransition(t, of: w, encoder: encoder)
                count += 1
            } catch { failure = error }
        }
        if let failure { throw failure }
        open.transitions += count
        return count
    }

    /// Produces one transition (and its Segment mirror calls) into the open transaction and
    /// counts it.
    private func produceTransition(_ t: TransitionView, of w: PartitionState, encoder: TransitionEncoder) throws {
        let owned = config.binaryMode || config.segmentMirrorTopic != nil || debug != nil ? t.transition : nil
        let key = UnsafeRawBufferPointer(t.contactId)
        if config.binaryMode, let owned {
            documentBuffer.removeAll(keepingCapacity: true)
            encoder.encodeData(owned, to: &documentBuffer)
            try documentBuffer.withUnsafeBytes { value in
                try send(topic: topics.output, partition: nil, keyBytes: key, valueBytes: value,
                         headers: encoder.binaryHeaders(owned).map { KafkaHeader($0.0, $0.1) })
            }
        } else {
            try send(topic: topics.output, partition: nil, keyBytes: key) { encoder.encode(t, to: &$0) }
        }
        if let mirror = topics.segmentMirror, let owned {
            for call in SegmentMirror.calls(owned, encoder) {
                try send(topic: mirror, partition: nil, key: owned.contactId, value: call)
            }
        }
        transitionCounts.count(group: t.group, from: t.from, to: t.to)
        recentStage.add(t, encoder: stageEncoder)
        if let debug, let owned {
            debug("partition \(w.partition): contact \(String(decoding: owned.contactId, as: UTF8.self)) \(encoder.groupName(owned)): \(encoder.segmentName(group: owned.group, owned.from) ?? "null") -> \(encoder.segmentName(group: owned.group, owned.to) ?? "null") at \(EventTime.format(owned.at))")
        }
        w.countTransition(group: t.group, from: t.from, to: t.to)
    }

    /// Per-partition gauges, segment sizes and record counters (at each commit, and at most
    /// once per `gaugeIntervalMs` in between).
    private func updateGauges(now: Int64) {
        gaugesUpdatedMs = now
        metrics.add(&transitionCounts)
        var sizes = model.groups.map { Array(repeating: 0, count: $0.segments.count) }
        for w in engines.values {
            let e = w.pipeline.engine
            let g = metrics.partition(w.partition)
            g.contacts.set(Double(e.contactCount))
            g.stateBytes.set(Double(e.stateBytes))
            if e.watermark != .min { g.watermarkLag.set(Double(now - e.watermark) / 1000) }
            if let wm = consumer.cachedWatermarks(topic: config.inputTopic, partition: w.partition) {
                g.consumerLag.set(Double(max(0, wm.high - w.nextOffset)))
            }
            for (gi, row) in w.segmentCounts.enumerated() { for (si, v) in row.enumerated() { sizes[gi][si] += v } }
            let c = w.pipeline.counters
            for (shape, v) in c.byShape { metrics.recordsByShape[shape]?.increment(by: Int64(v - (w.lastCounters.byShape[shape] ?? 0))) }
            for (r, v) in c.ignored { metrics.ignored[r]?.increment(by: Int64(v - (w.lastCounters.ignored[r] ?? 0))) }
            metrics.duplicates.increment(by: Int64(c.duplicates - w.lastCounters.duplicates))
            metrics.late.increment(by: Int64(e.stats.lateEvents - w.lastLate))
            for (t, v) in w.pipeline.eventsByType.enumerated() {
                let before = t < w.lastByType.count ? w.lastByType[t] : 0
                if v != before { typeCounter(t, of: e, w).increment(by: Int64(v - before)) }
            }
            if let engagement = e.engagement { exportEngagement(engagement, of: e, w) }
            w.lastCounters = c
            w.lastLate = e.stats.lateEvents
            w.lastByType = w.pipeline.eventsByType
        }
        segmentSizes.withLock { $0 = sizes }
        instance.publishSegmentSizes()
    }

    /// The events-by-type counter of type index `t` under the engine's model.
    private func typeCounter(_ t: Int, of e: SegmentEngine, _ w: PartitionState) -> Counter {
        if w.typeCountersEngine != ObjectIdentifier(e) {
            w.typeCountersEngine = ObjectIdentifier(e)
            w.typeCounters = []
        }
        if t >= w.typeCounters.count { w.typeCounters += Array(repeating: nil, count: t + 1 - w.typeCounters.count) }
        if let known = w.typeCounters[t] { return known }
        let counter = metrics.eventsOfType(e.model.eventTypes[t])
        w.typeCounters[t] = counter
        return counter
    }

    /// Adds what the partition's engine counted since the last export to the per-segment
    /// engagement counters (group, segment, type), named under the engine's model.
    private func exportEngagement(_ engagement: EngagementCounts, of e: SegmentEngine, _ w: PartitionState) {
        let counts = engagement.counts
        if w.lastEngagementEngine != ObjectIdentifier(e) || w.lastEngagement.count != counts.count {
            w.lastEngagementEngine = ObjectIdentifier(e)
            w.lastEngagement = Array(repeating: 0, count: counts.count)
            w.engagementCounters = Array(repeating: nil, count: counts.count)
        }
        for i in counts.indices where counts[i] != w.lastEngagement[i] {
            let counter: Counter
            if let known = w.engagementCounters[i] {
                counter = known
            } else {
                let (g, segment, type) = engagement.labels(of: i)
                let group = e.model.groups[g]
                counter = metrics.segmentEvents(group: group.name, segment: segment.map { group.segments[$0].name } ?? "none",
                                                type: e.model.eventTypes[type])
                w.engagementCounters[i] = counter
            }
            counter.increment(by: Int64(counts[i] - w.lastEngagement[i]))
        }
        w.lastEngagement = counts
    }

    /// Completes the open transaction and waits for its commit (`startCommit`, then
    /// `finishCommitInFlight`). Throws what fails: callers abort and rewind (`abortingOnFailure`).
    func commit() throws {
        try startCommit()
        try finishCommitInFlight(wait: true)
    }

    /// Completes the open transaction: the changelog records of the contacts that changed since
    /// the last commit (one per contact) and each partition's checkpoint, then the input and
    /// repartition offsets, and commit (exactly_once); flush, then commit offsets
    /// (at_least_once). Waits first for the previous commit, if one still runs.
    ///
    /// Under exactly_once only the part that reads the engines runs here (the snapshots); the
    /// rest waits for the broker (the flush before the checkpoints, the offsets, the commit's
    /// flush and EndTxn) and runs on `committer` while the loop processes the next records.
    /// That keeps exactly-once: the records processed meanwhile belong to the next transaction,
    /// and nothing of theirs reaches the producer before this one committed (they wait in the
    /// outbox); if this commit fails, they are dropped with it (abort, rewind to the last
    /// commit, read again), like the records of a transaction that fails.
    func startCommit() throws {
        try finishCommitInFlight(wait: true)
        let t0 = ContinuousClock.now
        var offsets: [TopicPartition: Int64] = [:]
        var written: [PartitionState] = []
        // Once per commit: `model` copies the model out of its lock, and its fingerprint is
        // computed on each read.
        let model = self.model
        let fingerprint = model.fingerprint
        var checkpoints: [(partition: Int32, record: (key: [UInt8], value: [UInt8], headers: [KafkaHeader]))] = []
        for w in engines.values.sorted(by: { $0.partition < $1.partition }) {
            let engine = w.pipeline.engine
            let dirty = engine.takeDirtyContacts()
            if dirty.isEmpty && !w.hasUncommittedPosition { continue }
            written.append(w)
            if w.modelInChangelog != fingerprint {
                let r = Changelog.modelRecord(model)
                try send(topic: topics.changelog, partition: w.partition, key: r.key, value: r.value, headers: r.headers)
            }
            let repartitionOffset = repartitionReader == nil ? nil : w.nextRepartitionOffset
            let tag = Changelog.contactTag(reflects: Changelog.Position(input: w.nextOffset, repartition: repartitionOffset))  // shared by the partition's records
            // Ids and snapshots are written into one reused buffer and produced to the
            // partition's changelog a chunk at a time (one call, the partition locked once).
            try tag.withUnsafeBytes { tag in
                for chunk in stride(from: 0, to: dirty.count, by: Worker.changelogChunk) {
                    snapshotBuffer.removeAll(keepingCapacity: true)
                    snapshotRecords.removeAll(keepingCapacity: true)
                    for i in dirty[chunk..<min(dirty.count, chunk + Worker.changelogChunk)] {
                        let keyStart = snapshotBuffer.count
                        engine.withContactId(at: i) { id in snapshotBuffer.append(contentsOf: id) }
                        let valueStart = snapshotBuffer.count
                        engine.snapshot(contact: i, tag: tag, appendingTo: &snapshotBuffer)
                        snapshotRecords.append(KafkaProducer.BatchRecord(key: keyStart..<valueStart, value: valueStart..<snapshotBuffer.count))
                    }
                    try sendBatch(topic: topics.changelog, partition: w.partition, bytes: snapshotBuffer, records: snapshotRecords)
                }
            }
            checkpoints.append((w.partition, Changelog.checkpointRecord(Changelog.Checkpoint(
                offset: w.nextOffset, repartitionOffset: repartitionOffset, streamTime: engine.checkpoint.streamTime,
                watermark: engine.checkpoint.watermark, modelVersion: model.version, modelFingerprint: fingerprint))))
            offsets[TopicPartition(topic: config.inputTopic, partition: w.partition)] = w.nextOffset
            if let repartitionOffset { offsets[TopicPartition(topic: config.repartitionTopic, partition: w.partition)] = repartitionOffset }
        }
        guard open.startedMs != nil || !checkpoints.isEmpty else { return }
        if config.guarantee == .exactlyOnce && !checkpoints.isEmpty { try beginIfNeeded() }
        let groupMetadata = config.guarantee == .exactlyOnce && !offsets.isEmpty ? try consumer.groupMetadata() : nil
        let stage = recentStage
        let handed = CommitInFlight(transaction: open, positions: engines.values.map { ($0, $0.nextOffset, $0.nextRepartitionOffset) },
                                    written: written, fingerprint: fingerprint, stage: stage, started: t0)
        guard config.guarantee == .exactlyOnce else {
            for (p, r) in checkpoints {
                try send(topic: topics.changelog, partition: p, key: r.key, value: r.value, headers: r.headers)
            }
            try producer.flush(timeoutMs: 60_000)
            if !offsets.isEmpty {
                do {
                    try consumer.commit(offsets: offsets)
                } catch let e as KafkaError where !e.isFatal {
                    // The records and the checkpoints are written (flushed): a group that
                    // refuses the offsets now (a rebalance in progress) loses nothing, since a
                    // partition's next owner starts from its changelog checkpoint, and the next
                    // commit carries newer offsets. (It used to stop the daemon.)
                    log("committing the input offsets failed (\(e)); the changelog checkpoints hold the position")
                }
            }
            open = OpenTransaction()
            completeCommit(handed)
            return
        }
        guard open.begun else {
            // Nothing was produced (nothing to commit with the broker).
            open = OpenTransaction()
            completeCommit(handed)
            return
        }
        open = OpenTransaction()
        recentStage = spareStage ?? instance.recent.makeStage()
        spareStage = nil
        inFlight = handed
        let producer = self.producer!
        committer.async { [self, checkpoints, offsets] in
            handed.finish(Result {
                // The checkpoints last, once everything else of the transaction reached the
                // broker: on a broker that shows uncommitted records (the embedded one), a
                // process killed before the commit then leaves either no new checkpoint or one
                // whose transitions, dead letters, forwarded records and snapshots are all there
                // too. (On a real cluster, read_committed hides the whole transaction until it
                // commits; the flush costs one round trip.)
                if !checkpoints.isEmpty {
                    try producer.flush(timeoutMs: 60_000)
                    for (p, r) in checkpoints {
                        try producer.produce(topic: config.changelogTopic, partition: p, key: r.key, value: r.value, headers: r.headers)
                    }
                }
                if let groupMetadata {
                    try producer.sendOffsetsToTransaction(offsets: offsets, groupMetadata: groupMetadata, timeoutMs: 60_000)
                }
                try commitTransaction()
            })
            // The loop may be waiting for input: the outbox can go out now.
            inbox.withLock { $0.consumer?.wakeUp() }
        }
    }

    /// Takes the outcome of the commit running on `committer` (waiting for it with `wait`,
    /// else only if it is done): books it and produces the outbox into a new transaction, or
    /// throws its error (the caller aborts and rewinds).
    private func finishCommitInFlight(wait: Bool) throws {
        guard let handed = inFlight, let result = handed.result(wait: wait) else { return }
        inFlight = nil
        if case .failure(let e) = result {
            failedCommit = handed
            throw e
        }
        completeCommit(handed)
        guard !outbox.isEmpty else { return }
        // Nothing is in flight now: `send` produces into the open transaction, beginning it.
        for r in outbox.records {
            if let (letter, tag) = r.deadLetter {
                try produceDeadLetter(letter, tag: tag)
                continue
            }
            try outbox.bytes.withUnsafeBytes { bytes in
                try send(topic: r.topic, partition: r.partition, keyBytes: r.key.map { UnsafeRawBufferPointer(rebasing: bytes[$0]) },
                         valueBytes: UnsafeRawBufferPointer(rebasing: bytes[r.value]), headers: r.headers)
            }
        }
        outbox.removeAll()
    }

    /// Books a committed transaction: positions, counters, status, the console's transitions.
    private func completeCommit(_ handed: CommitInFlight) {
        for (w, input, repartition) in handed.positions {
            w.committedOffset = input
            w.committedRepartitionOffset = repartition
        }
        for w in handed.written { w.modelInChangelog = handed.fingerprint }
        let abortsBefore = status.consecutiveAborts
        // Before the status counts the commit: whoever sees them sees segment sizes and
        // counters at least as recent.
        updateGauges(now: Daemon.wallMs())
        lastProgress.store(Daemon.wallMs(), ordering: .relaxed)
        metrics.commits.increment()
        rewoundRecordsWaiting = false
        let done = handed.transaction
        if done.records > 0 { metrics.records.increment(by: Int64(done.records)) }
        if done.truncated > 0 { metrics.truncatedDeadLetters.increment(by: Int64(done.truncated)) }
        for (r, n) in done.deadByReason { metrics.deadLetters[r]?.increment(by: Int64(n)) }
        if done.forwarded > 0 { metrics.recordsRepartitioned.increment(by: Int64(done.forwarded)) }
        if done.overlapped > 0 { metrics.recordsDuringCommit.increment(by: Int64(done.overlapped)) }
        let committedAt = Daemon.wallMs()
        instance.recent.commit(handed.stage, nowMs: committedAt)
        if handed.stage !== recentStage { spareStage = handed.stage }
        let d = ContinuousClock.now - handed.started
        metrics.commitSeconds.record(Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18)
        for ts in done.causeTimestamps where ts > 0 { metrics.eventToTransitionSeconds.record(Double(max(0, committedAt - ts)) / 1000) }
        statusBox.withLock {
            $0.records += done.records
            $0.repartitionRecordsRead += done.repartitionRecordsRead
            $0.transactions += 1
            $0.transitions += done.transitions
            $0.deadLetters += done.deadLetters
            $0.recordsRepartitioned += done.forwarded
            $0.truncatedDeadLetters += done.truncated
            $0.recordsDuringCommit += done.overlapped
            $0.consecutiveAborts = 0
        }
        if abortsBefore > 0 { instance.publishConsecutiveAborts() }
    }

    /// Runs `body`; under exactly_once, a Kafka error that is not fatal loses the open
    /// transaction: abort it and rewind every partition to its last committed state
    /// (changelog) and offsets, so nothing is emitted twice or lost. Dead letters the broker
    /// refused as they were are written truncated on the retry.
    func abortingOnFailure(_ body: () throws -> Void) throws {
        do {
            try body()
        } catch let e as KafkaError where config.guarantee == .exactlyOnce && !e.isFatal {
            // A commit still running decides what committed: wait for it. The transaction that
            // failed is then that commit's (its records in the producer, the open one's only in
            // the outbox) or the open one.
            var failed = failedCommit
            failedCommit = nil
            if let handed = inFlight {
                inFlight = nil
                if case .success = handed.result(wait: true) { completeCommit(handed) } else { failed = handed }
            }
            let deadLetterSources = failed?.transaction.deadLetterSources ?? open.deadLetterSources
            for f in producer.takeTaggedFailures() where f.error.isPermanentRecordError && f.tag >= 1 && f.tag <= deadLetterSources.count {
                let (src, size) = deadLetterSources[f.tag - 1]
                truncateOnRetry.insert(src)
                log("dead letter of \(config.inputTopic)[\(src.partition)]@\(src.offset) (\(size) bytes) refused by the broker (\(f.error.name)): it is written truncated on the retry")
            }
            let inRow = statusBox.withLock { st in st.aborts += 1; st.consecutiveAborts += 1; return st.consecutiveAborts }
            let since = (Daemon.wallMs() - lastProgress.load(ordering: .relaxed)) / 1000
            let line = "transaction failed (\(e)); aborting and restoring from the changelog (\(inRow) aborts in a row, no progress for \(since) s)"
            if inRow >= 3 { logError(line) } else { log(line) }
            if open.begun || failed != nil {
                do { try producer.abortTransaction(timeoutMs: 60_000) } catch { log("abort: \(error)") }
            }
            metrics.aborts.increment()
            instance.publishConsecutiveAborts()
            if open.records > 0 || open.repartitionRecordsRead > 0 || (failed?.transaction.records ?? 0) > 0
                || (failed?.transaction.repartitionRecordsRead ?? 0) > 0 { rewoundRecordsWaiting = true }
            open = OpenTransaction()
            outbox.removeAll()
            recentStage.discard()
            if let failed {
                failed.stage.discard()
                spareStage = failed.stage
            }
            try rewindAll()
        }
    }

    /// The most of a refused dead letter's value (and key) that is kept.
    static let truncatedDeadLetterBytes = 64 << 10

    /// A dead letter cut to `truncatedDeadLetterBytes` of value and 1 KiB of key, with
    /// `error.truncated: <original value bytes>` (and `error.truncated.key` when the key was
    /// cut); the source headers still say where the whole record is.
    static func truncated(_ r: DeadLetter) -> DeadLetter {
        var t = r
        t.value = Array(r.value.prefix(truncatedDeadLetterBytes))
        t.headers.append(KafkaHeader("error.truncated", Array(String(r.value.count).utf8)))
        if let k = r.key, k.count > 1024 {
            t.key = Array(k.prefix(1024))
            t.headers.append(KafkaHeader("error.truncated.key", Array(String(k.count).utf8)))
        }
        return t
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
        // Only what committed: the aborted transaction's checkpoint (past the committed
        // offsets) is ignored even where the broker shows aborted records (the mock).
        var committed: [Int32: Changelog.Position] = [:]
        for (p, w) in engines {
            committed[p] = Changelog.Position(input: w.committedOffset, repartition: repartitionReader == nil ? nil : w.committedRepartitionOffset)
        }
        let starts = try restore(partitions: committed.keys.sorted(), upTo: committed)
        for (p, start) in starts.sorted(by: { $0.key < $1.key }) {
            try consumer.seek(topic: config.inputTopic, partition: p, offset: start, timeoutMs: 30_000)
            if let reader = repartitionReader, let w = engines[p] {
                try reader.seek(topic: config.repartitionTopic, partition: p, offset: w.nextRepartitionOffset, timeoutMs: 30_000)
            }
        }
    }

    // MARK: queries (polling thread)

    /// Looks a contact up in this worker's engines: nil when none holds it. Runs on the
    /// polling thread (through `ask`).
    func find(_ contactId: [UInt8]) -> Daemon.ContactLookup? {
        for (p, w) in engines {
            if let m = w.pipeline.engine.memberships(of: contactId), let x = w.pipeline.engine.explain(contactId) {
                return .found(partition: p, x, memberships: m)
            }
        }
        return nil
    }

    /// This worker's engines by partition, in partition order. Runs on the polling thread
    /// (through `ask`): the console's member listing reads the engines there.
    func enginesByPartition() -> [(partition: Int32, engine: SegmentEngine)] {
        engines.keys.sorted().map { ($0, engines[$0]!.pipeline.engine) }
    }

    // MARK: model reload (polling thread)

    /// Moves every partition's contacts to `new` (the instance loaded it) and re-evaluates them
    /// at their clocks; the changes are emitted as transitions and committed with the next
    /// batch. Returns the number of transitions of the re-evaluation, 0 when this worker runs
    /// `new` already. Runs on the polling thread (through `ask`).
    func switchModel(to new: Model) -> Result<Int, DaemonError> {
        guard new.fingerprint != model.fingerprint else { return .success(0) }
        var changed = 0
        do {
            for w in engines.values.sorted(by: { $0.partition < $1.partition }) { try collectTransitions(w) }
        } catch let e as KafkaError {
            deferredFailure = e
            return .failure(DaemonError(description: "the transaction failed before the reload (\(e)); the old model keeps running"))
        } catch {
            return .failure(DaemonError(description: "\(error)"))
        }
        for w in engines.values.sorted(by: { $0.partition < $1.partition }) {
            w.pipeline.migrate(to: new)
            changed += w.pipeline.engine.stats.transitions  // a new engine: only the re-evaluation's
            w.segmentCounts = w.pipeline.engine.segmentSizes()
        }
        metrics.add(&transitionCounts)  // counted under the old model
        transitionCounts = DaemonMetrics.TransitionCounts(model: new)
        model = new
        stageEncoder = TransitionEncoder(model: new)
        gaugesUpdatedMs = nil
        // The re-evaluation's transitions join the open transaction.
        do {
            for w in engines.values.sorted(by: { $0.partition < $1.partition }) { try collectTransitions(w) }
        } catch let e as KafkaError {
            deferredFailure = e
        } catch {
            log("model reload: \(error)")
        }
        return .success(changed)
    }

    // MARK: partitions

    /// Builds the engines of `partitions` from the changelog and returns each one's input
    /// offset to start from: one bulk read of all their changelog partitions (one reader,
    /// large fetches, records decoded from librdkafka's buffers), and each engine built on the
    /// shared thread pool as soon as its partition has been read, while the reader goes on
    /// (each engine is independent). The partitions are then added to this worker's.
    func restore(partitions: [Int32]) throws -> [Int32: Int64] { try restore(partitions: partitions, upTo: [:]) }

    /// `upTo`: ignore a partition's checkpoints past this position (and the snapshots they
    /// cover): after an abort, the daemon knows what committed, and a broker without
    /// read_committed (the embedded one) still shows the aborted transaction's records.
    func restore(partitions ps: [Int32], upTo: [Int32: Changelog.Position]) throws -> [Int32: Int64] {
        guard !ps.isEmpty else { return [:] }
        let t0 = Daemon.wallMs()
        let model = self.model
        var readConfig = KafkaConfig(config.kafka.merging(config.consumer) { $1 })
        readConfig["bootstrap.servers"] = config.brokers
        readConfig["isolation.level"] = "read_committed"
        let waited = try Changelog.awaitNoOpenTransaction(config: readConfig, topic: config.changelogTopic, partitions: ps,
                                                          timeoutMs: config.transactionTimeoutMs + 5_000, log: log)
        if !waited.isEmpty { log("changelog partitions \(waited): no transaction open any more after \(String(format: "%.1f", Double(Daemon.wallMs() - t0) / 1000)) s; restoring") }
        // Each partition's engine is built on the shared pool while the changelog is read: the
        // records of each checkpoint are restored as soon as it is read (one task at a time per
        // partition), and the engine is completed once its partition has been read to its end.
        var slots: [Int32: BuildSlot] = [:]
        for p in ps { slots[p] = BuildSlot(partition: p) }
        let builds = DispatchGroup()
        let fingerprint = model.fingerprint
        var readSeconds = 0.0
        do {
            defer { builds.wait() }  // nothing outlives the call, even when the read fails
            try Changelog.read(config: readConfig, topic: config.changelogTopic, partitions: ps, upTo: upTo, committed: { p, checkpoint, records in
                guard let slot = slots[p] else { return }
                slot.queue.async(group: builds) { self.restoreCommitted(records, of: checkpoint, into: slot, model: model, fingerprint: fingerprint) }
            }, ready: { p, restored in
                guard let slot = slots[p] else { return }
                slot.restored = restored
                slot.queue.async(group: builds) {
                    slot.result = Result { try self.completeBuild(slot, from: restored, model: model, fingerprint: fingerprint) }
                }
            })
            readSeconds = Double(Daemon.wallMs() - t0) / 1000
        }
        var starts: [Int32: Int64] = [:]
        var contacts = 0, records = 0
        for p in ps {
            let slot = slots[p]!
            guard let restored = slot.restored, let result = slot.result else { continue }
            let built = try result.get()
            let start = restored.checkpoint?.offset ?? KafkaOffset.beginning
            let worker = PartitionState(partition: p, pipeline: built.pipeline, segmentCounts: built.segmentCounts, nextOffset: max(start, 0),
                                         nextRepartitionOffset: restored.checkpoint?.repartitionOffset ?? 0, now: Daemon.wallMs())
            worker.modelInChangelog = restored.checkpoint?.modelFingerprint
            worker.positionKnown = restored.checkpoint != nil
            engines[p] = worker
            gaugesUpdatedMs = nil
            instance.noteOwner(of: p, index)
            // The re-evaluation's transitions commit with the next transaction (its changelog too).
            if built.migrated { try collectTransitions(worker) }
            starts[p] = start
            contacts += built.pipeline.engine.contactCount
            records += restored.recordsRead
            log("partition \(p): restored \(built.pipeline.engine.contactCount) contacts from \(restored.recordsRead) changelog records; starting at offset \(start == KafkaOffset.beginning ? "beginning" : String(start))\(repartitionReader == nil ? "" : ", repartition offset \(worker.nextRepartitionOffset)")")
        }
        let secs = Double(Daemon.wallMs() - t0) / 1000
        metrics.restores.increment(by: Int64(ps.count))
        metrics.restoreSeconds.record(secs)
        statusBox.withLock {
            $0.restoredContacts += contacts
            $0.restoreSeconds += secs
            $0.assigned = engines.keys.sorted()
        }
        log("restored \(ps.count) partitions, \(contacts) contacts from \(records) changelog records in \(String(format: "%.3f", secs)) s (read \(String(format: "%.3f", readSeconds)) s)")
        return starts
    }

    /// One restored engine, built off the polling thread.
    struct EngineBuild {
        var pipeline: Pipeline
        var migrated: Bool
        var segmentCounts: [[Int]]
    }

    /// One partition's engine being built: its tasks run one at a time on `queue` (a serial
    /// queue on the shared pool); the result is read after all finished.
    final class BuildSlot: @unchecked Sendable {
        let partition: Int32
        let queue: DispatchQueue
        /// Built from each checkpoint's records as they are read, under the current model.
        var pipeline: Pipeline?
        /// Left to the build from the whole partition (`buildEngine`): a tombstone, state of
        /// another model, or a snapshot refused (that build reports it, or skips the snapshot
        /// when a later one replaces it).
        var incrementalAbandoned = false
        var restored: Changelog.Restored?
        var result: Result<EngineBuild, any Error>?

        init(partition: Int32) {
            self.partition = partition
            queue = DispatchQueue(label: "segmentd.restore.\(partition)", target: .global(qos: .userInitiated))
        }
    }

    /// Restores the contact records a checkpoint committed into the slot's engine, in log order
    /// (a later snapshot of a contact replaces the earlier). Anything the whole-partition build
    /// handles differently abandons this engine for it.
    private func restoreCommitted(_ records: Changelog.CommittedRecords, of checkpoint: Changelog.Checkpoint, into slot: BuildSlot,
                                  model: Model, fingerprint: String) {
        if slot.incrementalAbandoned { return }
        guard checkpoint.modelFingerprint == fingerprint else {
            slot.incrementalAbandoned = true
            slot.pipeline = nil
            return
        }
        let pipeline = slot.pipeline ?? newPipeline(model)
        slot.pipeline = pipeline
        let engine = pipeline.engine
        do {
            try records.forEachInLogOrder { _, contact, snapshot in
                if snapshot.isEmpty { throw DaemonError(description: "a tombstone") }
                try engine.restore(contactId: contact, snapshot: snapshot)
            }
        } catch {
            slot.incrementalAbandoned = true
            slot.pipeline = nil
        }
    }

    /// Completes the slot's engine once its partition has been read: the one built from the
    /// checkpoints' records, or else one built from the whole partition.
    private func completeBuild(_ slot: BuildSlot, from restored: Changelog.Restored, model: Model, fingerprint: String) throws -> EngineBuild {
        guard !slot.incrementalAbandoned, let pipeline = slot.pipeline, let cp = restored.checkpoint, cp.modelFingerprint == fingerprint else {
            slot.pipeline = nil
            return try buildEngine(partition: slot.partition, from: restored, model: model, fingerprint: fingerprint)
        }
        slot.pipeline = nil
        return finishBuild(pipeline, partition: slot.partition, checkpoint: cp, stateModel: model, model: model, fingerprint: fingerprint)
    }

    private func newPipeline(_ model: Model) -> Pipeline {
        let pipeline = Pipeline(model: model, lateness: config.lateness, duplicateHorizon: config.duplicateHorizon, maxRecordBytes: config.maxRecordBytes)
        pipeline.adapters = WebhookAdapters(config.adapters)
        pipeline.futureGuard = FutureGuard(now: Daemon.wallMs(), allowance: config.maxFuture)
        return pipeline
    }

    /// Builds one partition's engine from its restored state (any thread: touches nothing but
    /// its own pipeline). State written under another model is read under that model, then
    /// moved over and re-evaluated.
    private func buildEngine(partition p: Int32, from restored: Changelog.Restored, model: Model, fingerprint: String) throws -> EngineBuild {
        let stateModel = try restored.stateModel(partition: p, current: model)
        let pipeline = newPipeline(stateModel)
        do {
            let engine = pipeline.engine
            engine.reserveContacts(restored.contacts.records)
            try restored.contacts.forEachLatest { contact, snapshot in
                try engine.restore(contactId: contact, snapshot: snapshot)
            }
        } catch {
            throw DaemonError(description: "changelog of partition \(p): \(error)")
        }
        return finishBuild(pipeline, partition: p, checkpoint: restored.checkpoint, stateModel: stateModel, model: model, fingerprint: fingerprint)
    }

    /// The steps after the contacts are restored: the partition's times, then the move to the
    /// current model when the state was written under another.
    private func finishBuild(_ pipeline: Pipeline, partition p: Int32, checkpoint: Changelog.Checkpoint?, stateModel: Model,
                             model: Model, fingerprint: String) -> EngineBuild {
        if let cp = checkpoint {
            pipeline.engine.restoreCheckpoint(streamTime: cp.streamTime, watermark: cp.watermark)
        }
        _ = pipeline.engine.takeTransitions()
        _ = pipeline.engine.takeDirtyContacts()
        let migrated = stateModel.fingerprint != fingerprint
        if migrated {
            pipeline.migrate(to: model)
            log("partition \(p): state of model '\(stateModel.version)' moved to '\(model.version)' and re-evaluated")
        }
        // Live engagement per segment (`segmentd_segment_events_total`), counted from here.
        pipeline.engine.countsEngagement = true
        return EngineBuild(pipeline: pipeline, migrated: migrated, segmentCounts: pipeline.engine.segmentSizes())
    }

    /// Points the repartition reader at the repartition partitions of the assigned input
    /// partitions, each from its engine's position (between batches: every record it fetched
    /// before was applied, so nothing is skipped or read twice).
    func followAssignment() throws {
        guard let reader = repartitionReader else { return }
        var starts: [TopicPartition: Int64] = [:]
        for (p, w) in engines { starts[TopicPartition(topic: config.repartitionTopic, partition: p)] = w.nextRepartitionOffset }
        try reader.assign(starts)
    }

    func drop(partition p: Int32) {
        engines[p] = nil
        gaugesUpdatedMs = nil
        instance.noteOwner(of: p, nil)
        metrics.forget(p)
        statusBox.withLock { $0.assigned = engines.keys.sorted() }
        log("partition \(p): revoked, state dropped")
    }

    struct Rebalance: RebalanceHandler {
        let worker: Worker
        func assigned(partitions: [TopicPartition], consumer: KafkaConsumer) throws -> [TopicPartition: Int64] {
            // Stopping (the assignment arrived while shutting down): take it so the consumer can
            // close safely, restore nothing; nothing is consumed or committed for it.
            if worker.stopping { return [:] }
            // Commit what is open first: a long restore must not keep it open towards
            // transaction.timeout.ms.
            try worker.abortingOnFailure { try worker.commit() }
            let before = worker.phase
            worker.setPhase(.restoring)
            defer { worker.setPhase(before == .restoring ? .running : before) }
            let inputs = partitions.filter { $0.topic == worker.config.inputTopic }
            let restored = try worker.restore(partitions: inputs.map(\.partition))
            var starts: [TopicPartition: Int64] = [:]
            for tp in inputs { starts[tp] = restored[tp.partition] }
            try worker.followAssignment()
            // Taking over partitions is progress (a rewind after an abort is not).
            worker.lastProgress.store(Daemon.wallMs(), ordering: .relaxed)
            return starts
        }

        func revoked(partitions: [TopicPartition], lost: Bool, consumer: KafkaConsumer) throws {
            // Commit what is in flight first (the next owner restores from it); a lost
            // assignment's commit is refused, then the transaction aborts and rewinds.
            try worker.abortingOnFailure { try worker.commit() }
            for tp in partitions { worker.drop(partition: tp.partition) }
            try worker.followAssignment()
        }
    }
}

import CRdKafka

/// Receives partition assignment changes of a `KafkaConsumer`.
///
/// Both methods are called synchronously on the polling thread, from inside librdkafka's
/// rebalance callback (i.e. during `poll` or `close`), *before* librdkafka applies the change.
/// That is the point: on `revoked` the daemon can still finish in-flight work, commit its
/// transaction/offsets (calling `consumer.commit` here is allowed) and drop state while it still
/// owns the partitions; on `assigned` it can restore state and say where to start reading.
///
/// If a method throws, the (un)assignment is still applied (librdkafka requires it to keep the
/// group protocol consistent) and the error is rethrown from the `poll` that ran the
/// callback; the daemon should then treat the consumer as failed and `close` it.
public protocol RebalanceHandler: Sendable {
    /// Partitions newly added to this member. Return a starting offset for any partition whose
    /// position is restored by the application (e.g. from a changelog written in the same
    /// transaction as the output); partitions absent from the result start at the group's
    /// committed offset, or per `auto.offset.reset` if none.
    func assigned(partitions: [TopicPartition], consumer: KafkaConsumer) throws -> [TopicPartition: Int64]

    /// Partitions about to be taken away. `lost` is true when they were already lost (session
    /// timeout, fenced): another member may own them, so commits will fail — just drop state.
    func revoked(partitions: [TopicPartition], lost: Bool, consumer: KafkaConsumer) throws
}

extension RebalanceHandler {
    public func assigned(partitions: [TopicPartition], consumer: KafkaConsumer) throws -> [TopicPartition: Int64] { [:] }
    public func revoked(partitions: [TopicPartition], lost: Bool, consumer: KafkaConsumer) throws {}
}

/// A handler that accepts every change and starts from committed offsets.
public struct DefaultRebalanceHandler: RebalanceHandler {
    public init() {}
}

/// The consumer group metadata (group id, generation, member id) needed by
/// `KafkaProducer.sendOffsetsToTransaction`, so the broker can fence zombie members.
///
/// `@unchecked Sendable`: it is an immutable C object after creation; we only read it.
public final class ConsumerGroupMetadata: @unchecked Sendable {
    let pointer: OpaquePointer
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
    deinit { rd_kafka_consumer_group_metadata_destroy(pointer) }
}

/// State reachable from librdkafka's C callbacks through the `opaque` pointer. It is created
/// before the `rd_kafka_t` (the conf needs the pointer) and outlives it (owned by the consumer).
///
/// `@unchecked Sendable`: all fields except the immutable ones are touched only on the polling
/// thread — librdkafka runs rebalance/error callbacks from `rd_kafka_consume_batch_queue` /
/// `rd_kafka_consumer_close`, which the consumer's single polling thread calls.
final class ConsumerCallbackContext: @unchecked Sendable {
    let handler: any RebalanceHandler
    let onError: (@Sendable (KafkaError) -> Void)?
    weak var consumer: KafkaConsumer?
    /// Error from the handler or from applying an assignment; rethrown by the next `poll`.
    var pendingError: (any Error)?
    /// A fatal client error reported via error_cb; rethrown by every later `poll`.
    var fatalError: KafkaError?
    /// An assignment callback has run (librdkafka < 2.3 asserts in the cooperative-sticky
    /// assignor when a consumer that joined the group is destroyed before its first one).
    var receivedAssignment = false

    init(handler: any RebalanceHandler, onError: (@Sendable (KafkaError) -> Void)?) {
        self.handler = handler
        self.onError = onError
    }

    func rebalance(rk: OpaquePointer, err: rd_kafka_resp_err_t,
                   parts: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) {
        let cooperative = String(cString: rd_kafka_rebalance_protocol(rk)) == "COOPERATIVE"
        let entries = partitionListEntries(parts)
        let tps = entries.map(\.tp)

        switch err {
        case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
            receivedAssignment = true
            if let consumer, !tps.isEmpty {
                do {
                    let starts = try handler.assigned(partitions: tps, consumer: consumer)
                    if !starts.isEmpty, let elems = parts.pointee.elems {
                        for (i, e) in entries.enumerated() {
                            if let off = starts[e.tp] { elems[i].offset = off }
                        }
                    }
                } catch {
                    record(error)
                }
            }
            if cooperative {
                if let e = rd_kafka_incremental_assign(rk, parts) {
                    record(KafkaError(consuming: e, context: "rd_kafka_incremental_assign \(tps)"))
                }
            } else {
                let e = rd_kafka_assign(rk, parts)
                if e != RD_KAFKA_RESP_ERR_NO_ERROR { record(KafkaError(e, context: "rd_kafka_assign \(tps)")) }
            }

        case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
            let lost = rd_kafka_assignment_lost(rk) != 0
            if let consumer, !tps.isEmpty {
                do { try handler.revoked(partitions: tps, lost: lost, consumer: consumer) } catch { record(error) }
            }
            if cooperative {
                if let e = rd_kafka_incremental_unassign(rk, parts) {
                    record(KafkaError(consuming: e, context: "rd_kafka_incremental_unassign \(tps)"))
                }
            } else {
                let e = rd_kafka_assign(rk, nil)
                if e != RD_KAFKA_RESP_ERR_NO_ERROR { record(KafkaError(e, context: "rd_kafka_assign(NULL)")) }
            }

        default:
            // Rebalance error (e.g. unsupported protocol): librdkafka's documented recovery is to
            // drop the whole assignment and let the group sort itself out.
            record(KafkaError(err, context: "rebalance"))
            if let consumer, !tps.isEmpty {
                try? handler.revoked(partitions: tps, lost: true, consumer: consumer)
            }
            _ = rd_kafka_assign(rk, nil)
        }
    }

    private func record(_ error: any Error) {
        if pendingError == nil { pendingError = error }
    }

    func clientError(rk: OpaquePointer, err: Int32, reason: String) {
        let code = rd_kafka_resp_err_t(rawValue: err)
        if code == RD_KAFKA_RESP_ERR__FATAL {
            var buf = [CChar](repeating: 0, count: 512)
            let orig = rd_kafka_fatal_error(rk, &buf, buf.count)
            let e = KafkaError(orig, context: "consumer fatal error", detail: errstrString(buf), isFatal: true)
            if fatalError == nil { fatalError = e }
            onError?(e)
        } else {
            onError?(KafkaError(code, context: "consumer", detail: reason))
        }
    }
}

/// A group consumer (subscribe + rebalance), meant to be driven by ONE dedicated thread.
///
/// Why one dedicated thread and not Swift concurrency: `poll` blocks in C for up to
/// `timeoutMs`, and the rebalance handler must run synchronously on the thread that polls
/// (librdkafka runs it inside the poll call, and the daemon's state for the partitions lives
/// with that thread). Blocking the cooperative pool would starve unrelated tasks.
///
/// Defaults (each overridable through the config): cooperative-sticky assignment (rebalances
/// move only the partitions that change owner), no auto commit and no auto offset store (the
/// daemon commits exactly what it has processed, or sends it to a transaction), and the fetch
/// tuning from the notes: `fetch.max.bytes=5242880`, `fetch.wait.max.ms=10` — librdkafka 2.0.2
/// otherwise stalls 1 s whenever a fetch overshoots `queued.min.messages`.
///
/// `@unchecked Sendable`: it may be created on one thread and handed to its polling thread, and
/// `groupMetadata()` may be called from the producer's thread (rd_kafka_t is thread-safe). All
/// other methods must be called from the polling thread only (they use unsynchronised state).
public final class KafkaConsumer: @unchecked Sendable {
    public static let defaultProperties: [String: String] = [
        "partition.assignment.strategy": "cooperative-sticky",
        "enable.auto.commit": "false",
        "enable.auto.offset.store": "false",
        "fetch.max.bytes": "5242880",
        "fetch.wait.max.ms": "10",
    ]

    let handle: OpaquePointer
    private let queue: OpaquePointer
    private let context: ConsumerCallbackContext
    private var closed = false
    private var batch: UnsafeMutablePointer<UnsafeMutablePointer<rd_kafka_message_t>?>
    private var batchCapacity: Int

    /// - Parameters:
    ///   - config: must contain `bootstrap.servers` and `group.id`; `defaultProperties` fill the rest.
    ///   - onError: non-fatal client errors (broker down, partition EOF, offset reset...). They are
    ///     informational: librdkafka retries by itself. Called on the polling thread.
    public init(config: KafkaConfig, rebalanceHandler: some RebalanceHandler,
                onError: (@Sendable (KafkaError) -> Void)? = nil) throws {
        let ctx = ConsumerCallbackContext(handler: rebalanceHandler, onError: onError)
        let conf = try config.withDefaults(Self.defaultProperties).makeConf()
        // The context is kept alive by `self.context` for longer than the handle exists.
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(ctx).toOpaque())
        rd_kafka_conf_set_rebalance_cb(conf) { rk, err, parts, opaque in
            guard let rk, let parts, let opaque else { return }
            Unmanaged<ConsumerCallbackContext>.fromOpaque(opaque).takeUnretainedValue()
                .rebalance(rk: rk, err: err, parts: parts)
        }
        rd_kafka_conf_set_error_cb(conf) { rk, err, reason, opaque in
            guard let rk, let opaque else { return }
            Unmanaged<ConsumerCallbackContext>.fromOpaque(opaque).takeUnretainedValue()
                .clientError(rk: rk, err: err, reason: reason.map { String(cString: $0) } ?? "")
        }
        let rk = try makeHandle(RD_KAFKA_CONSUMER, conf: conf, context: "KafkaConsumer init")
        // Serve the main queue (errors, logs, stats) from the consumer queue so one poll call
        // drives everything on the polling thread.
        let redirect = rd_kafka_poll_set_consumer(rk)
        if redirect != RD_KAFKA_RESP_ERR_NO_ERROR {
            rd_kafka_destroy(rk)
            throw KafkaError(redirect, context: "rd_kafka_poll_set_consumer")
        }
        handle = rk
        queue = rd_kafka_queue_get_consumer(rk)
        context = ctx
        batchCapacity = 0
        batch = .allocate(capacity: 1)
        ctx.consumer = self
    }

    deinit {
        // Best effort; call close() explicitly so the revoke handler runs with the consumer alive.
        try? close()
        batch.deallocate()
    }

    private func ensureOpen(_ what: String) throws {
        if closed { throw KafkaError(RD_KAFKA_RESP_ERR__STATE, context: what, detail: "consumer is closed") }
    }

    /// Subscribes to `topics` (joins the group on the next polls). Topics must already exist —
    /// librdkafka 2.0.2's batch consume path can crash on a subscribed topic that does not.
    public func subscribe(topics: [String]) throws {
        try ensureOpen("subscribe")
        let list = PartitionList(capacity: topics.count)
        for t in topics { list.add(TopicPartition(topic: t, partition: -1), offset: KafkaOffset.invalid) }
        try KafkaError.check(rd_kafka_subscribe(handle, list.list), "subscribe \(topics)")
    }

    /// Returns at most `maxRecords` records: those queued now or, when none is, the first to
    /// arrive within `timeoutMs` and what arrived with it (possibly none). Crosses the C
    /// boundary once per batch (`rd_kafka_consume_batch_queue`; three times when it waited for
    /// the first record), which also runs the rebalance handler and error callbacks.
    ///
    /// Throws: a fatal client error; an error thrown by the rebalance handler or from applying
    /// an assignment; `auto.offset.reset=error` offset resets. Partition EOF events (only with
    /// `enable.partition.eof=true`) and transient errors go to `onError` and are not thrown.
    public func poll(maxRecords: Int, timeoutMs: Int) throws -> [KafkaRecord] {
        var records: [KafkaRecord] = []
        try consumeBatch(maxRecords: maxRecords, timeoutMs: timeoutMs, reserve: { records.reserveCapacity($0) }) { run in
            for i in 0..<run.count { records.append(KafkaRecord(message: run.messages[i]!, topic: run.topic)) }
        }
        return records
    }

    /// Makes a `poll` waiting on another thread return now, with what it has (thread-safe;
    /// call it only while the consumer is open).
    public func wakeUp() {
        rd_kafka_queue_yield(queue)
    }

    /// Zero-copy variant of `poll`: calls `body` for each record with a view into librdkafka's
    /// buffer, valid only during that call (the C message is destroyed right after). Why: the
    /// daemon usually decodes the value straight into its own state; copying key and value into
    /// Swift arrays first roughly halves read throughput (see NOTES.md). Returns the number of
    /// records seen. Same error behaviour as `poll`; if `body` throws, the remaining messages
    /// of the batch are dropped (destroyed) and the error is rethrown.
    @discardableResult
    public func poll(maxRecords: Int, timeoutMs: Int, _ body: (KafkaMessageView) throws -> Void) throws -> Int {
        var n = 0
        try consumeBatch(maxRecords: maxRecords, timeoutMs: timeoutMs, reserve: { _ in }) { run in
            for i in 0..<run.count {
                n += 1
                try body(run[i])
            }
        }
        return n
    }

    /// Zero-copy variant of `poll` by runs: calls `runs` for each stretch of consecutive records
    /// of one topic partition in the batch (in the batch's order), every record of the run alive
    /// until that call returns, so that they can be processed together. Returns the number of
    /// records seen. Same error behaviour as `poll`; if `runs` throws, the remaining messages of
    /// the batch are dropped (destroyed) and the error is rethrown.
    @discardableResult
    public func pollRuns(maxRecords: Int, timeoutMs: Int, _ runs: (KafkaMessageRun) throws -> Void) throws -> Int {
        var n = 0
        try consumeBatch(maxRecords: maxRecords, timeoutMs: timeoutMs, reserve: { _ in }) { run in
            n += run.count
            try runs(run)
        }
        return n
    }

    /// One `rd_kafka_consume_batch_queue` call: successful messages go to `onRun`, a run of
    /// consecutive messages of one topic partition at a time (destroyed after it); error events
    /// are classified (they end a run); every message is destroyed exactly once.
    private func consumeBatch(maxRecords: Int, timeoutMs: Int, reserve: (Int) -> Void,
                              _ onRun: (KafkaMessageRun) throws -> Void) throws {
        try ensureOpen("poll")
        precondition(maxRecords > 0)
        if let fatal = context.fatalError { throw fatal }
        if batchCapacity < maxRecords {
            batch.deallocate()
            batch = .allocate(capacity: maxRecords)
            batchCapacity = maxRecords
        }
        // What is queued now; only when nothing is, wait up to `timeoutMs` for the first record
        // and take what arrived with it. (Given the timeout, `rd_kafka_consume_batch_queue`
        // waits for a full batch: at a low rate every record waited the whole timeout.)
        var n = rd_kafka_consume_batch_queue(queue, 0, batch, maxRecords)
        if n == 0 && timeoutMs > 0, let first = rd_kafka_consume_queue(queue, Int32(clamping: timeoutMs)) {
            batch[0] = first
            let rest = maxRecords > 1 ? rd_kafka_consume_batch_queue(queue, 0, batch + 1, maxRecords - 1) : 0
            n = rest < 0 ? -1 : 1 + rest
            if rest < 0 { rd_kafka_message_destroy(first) }
        }
        if n < 0 { throw KafkaError(rd_kafka_last_error(), context: "rd_kafka_consume_batch_queue") }
        reserve(n)

        // Topic names, valid within this batch only; a batch is mostly one topic, so the last
        // one is checked before the table.
        var topicNames: [OpaquePointer: String] = [:]
        var lastTopic: (rkt: OpaquePointer, name: String)?
        func topicName(_ m: UnsafeMutablePointer<rd_kafka_message_t>) -> String {
            guard let rkt = m.pointee.rkt else { return "" }
            if let last = lastTopic, last.rkt == rkt { return last.name }
            let name: String
            if let cached = topicNames[rkt] { name = cached } else {
                name = String(cString: rd_kafka_topic_name(rkt))
                topicNames[rkt] = name
            }
            lastTopic = (rkt, name)
            return name
        }
        var thrown: (any Error)?
        // The run being gathered: successful messages batch[runStart..<i] of one topic partition.
        var runStart = 0
        /// Hands batch[runStart..<end] to `onRun` (unless an error was thrown), then destroys them.
        func endRun(at end: Int) {
            guard end > runStart else { return }
            let messages = UnsafeBufferPointer(start: batch + runStart, count: end - runStart)
            defer { for m in messages { rd_kafka_message_destroy(m!) } }
            if thrown == nil {
                do { try onRun(KafkaMessageRun(messages: messages, topic: topicName(messages[0]!))) } catch { thrown = error }
            }
        }
        for i in 0..<n {
            guard let m = batch[i] else {
                endRun(at: i)
                runStart = i + 1
                continue
            }
            let err = m.pointee.err
            if err == RD_KAFKA_RESP_ERR_NO_ERROR {
                if i > runStart, let head = batch[runStart], head.pointee.rkt != m.pointee.rkt || head.pointee.partition != m.pointee.partition {
                    endRun(at: i)
                    runStart = i
                }
                continue
            }
            endRun(at: i)
            runStart = i + 1
            defer { rd_kafka_message_destroy(m) }
            if thrown != nil { continue }   // still destroy the rest
            let name = topicName(m)
            let detail = String(cString: rd_kafka_message_errstr(m))
            let where_ = m.pointee.rkt == nil ? "consumer" : "\(name)[\(m.pointee.partition)] @\(m.pointee.offset)"
            if err == RD_KAFKA_RESP_ERR__FATAL {
                var buf = [CChar](repeating: 0, count: 512)
                let orig = rd_kafka_fatal_error(handle, &buf, buf.count)
                let e = KafkaError(orig, context: "consumer fatal error", detail: errstrString(buf), isFatal: true)
                context.fatalError = context.fatalError ?? e
                thrown = e
            } else if err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET {
                thrown = KafkaError(err, context: where_, detail: detail)
            } else {
                context.onError?(KafkaError(err, context: where_, detail: detail))
            }
        }
        endRun(at: n)
        if let thrown { throw thrown }
        if let pending = context.pendingError {
            context.pendingError = nil
            throw pending
        }
        if let fatal = context.fatalError { throw fatal }
    }

    /// Synchronously commits `offsets` for the group. Offsets use Kafka's next-offset
    /// semantics: commit `lastProcessed + 1`.
    public func commit(offsets: [TopicPartition: Int64]) throws {
        try ensureOpen("commit")
        guard !offsets.isEmpty else { return }
        let list = PartitionList(offsets)
        try KafkaError.check(rd_kafka_commit(handle, list.list, 0), "commit \(offsets.count) offsets")
        try list.checkElements("commit")
    }

    /// The group's committed offsets for `partitions` (`KafkaOffset.invalid` where none).
    public func committed(_ partitions: [TopicPartition], timeoutMs: Int = 10_000) throws -> [TopicPartition: Int64] {
        try ensureOpen("committed")
        let list = PartitionList(partitions)
        try KafkaError.check(rd_kafka_committed(handle, list.list, Int32(clamping: timeoutMs)), "committed")
        try list.checkElements("committed")
        return Dictionary(list.entries.map { ($0.tp, $0.offset) }, uniquingKeysWith: { a, _ in a })
    }

    /// Replaces a consumer's manual assignment (no group membership: never `subscribe` the same
    /// consumer): it fetches exactly `partitions`, each from its offset (`KafkaOffset.beginning`
    /// and the like allowed). An empty map stops all fetching. The daemon reads its repartition
    /// topic's partitions this way, following the group's assignment of the input.
    public func assign(_ partitions: [TopicPartition: Int64]) throws {
        try ensureOpen("assign")
        if partitions.isEmpty {
            try KafkaError.check(rd_kafka_assign(handle, nil), "unassign")
            return
        }
        let list = PartitionList(partitions)
        try KafkaError.check(rd_kafka_assign(handle, list.list), "assign \(partitions.keys.sorted())")
    }

    /// Moves the fetch position of an assigned partition (the next record returned is `offset`).
    public func seek(topic: String, partition: Int32, offset: Int64, timeoutMs: Int = 5_000) throws {
        try ensureOpen("seek")
        let list = PartitionList([TopicPartition(topic: topic, partition: partition)], offset: offset)
        try KafkaError.check(rd_kafka_seek_partitions(handle, list.list, Int32(clamping: timeoutMs)),
                             "seek \(topic)[\(partition)] to \(offset)")
        try list.checkElements("seek")
    }

    /// The current assignment as librdkafka sees it.
    public func assignment() throws -> [TopicPartition] {
        try ensureOpen("assignment")
        var raw: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
        try KafkaError.check(rd_kafka_assignment(handle, &raw), "assignment")
        guard let raw else { return [] }
        let list = PartitionList(adopting: raw)
        return list.entries.map(\.tp).sorted()
    }

    /// Group metadata for `KafkaProducer.sendOffsetsToTransaction`. Thread-safe.
    public func groupMetadata() throws -> ConsumerGroupMetadata {
        try ensureOpen("groupMetadata")
        guard let md = rd_kafka_consumer_group_metadata(handle) else {
            throw KafkaError(RD_KAFKA_RESP_ERR__INVALID_ARG, context: "rd_kafka_consumer_group_metadata",
                             detail: "consumer has no group (group.id not set?)")
        }
        return ConsumerGroupMetadata(md)
    }

    /// Leaves the group cleanly (the revoke handler runs for the current assignment, so the
    /// group rebalances at once instead of waiting for the session timeout), then destroys the
    /// handle. Idempotent. The handle is destroyed even if leaving failed.
    public func close() throws {
        guard !closed else { return }
        let err = rd_kafka_consumer_close(handle)
        closed = true
        rd_kafka_queue_destroy(queue)
        rd_kafka_destroy(handle)
        try KafkaError.check(err, "rd_kafka_consumer_close")
        if let pending = context.pendingError {
            context.pendingError = nil
            throw pending
        }
    }
}

extension KafkaConsumer {
    /// True once the group gave this member an assignment (possibly empty). Until then, a
    /// member that already joined must not be destroyed: librdkafka 2.0.2's cooperative-sticky
    /// assignor asserts on its missing state (fixed in 2.3.0, librdkafka#4312). Polling thread.
    public var hasReceivedAssignment: Bool { context.receivedAssignment }

    /// The member id the group coordinator gave this consumer; nil before the first JoinGroup
    /// response (then no assignor state exists yet and destroying the consumer is safe).
    public var memberId: String? {
        guard let p = rd_kafka_memberid(handle) else { return nil }
        defer { rd_kafka_mem_free(handle, p) }
        let s = String(cString: p)
        return s.isEmpty ? nil : s
    }

    /// The partition's (low, high) watermarks asked from the broker (a round trip).
    public func queryWatermarks(topic: String, partition: Int32, timeoutMs: Int) throws -> (low: Int64, high: Int64) {
        var low: Int64 = -1, high: Int64 = -1
        try KafkaError.check(rd_kafka_query_watermark_offsets(handle, topic, partition, &low, &high, Int32(clamping: timeoutMs)),
                             "query watermarks \(topic)[\(partition)]")
        return (low, high)
    }

    /// The partition's (low, high) watermarks as last seen in fetch responses, without a
    /// broker round trip: for lag metrics on the polling path. Nil until a fetch has seen them.
    public func cachedWatermarks(topic: String, partition: Int32) -> (low: Int64, high: Int64)? {
        var low: Int64 = -1, high: Int64 = -1
        let err = rd_kafka_get_watermark_offsets(handle, topic, partition, &low, &high)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR, high >= 0 else { return nil }
        return (low, high)
    }
}

import CRdKafka
import Synchronization

/// Delivery failures collected by the dr_msg_cb, reported by the next `flush`.
final class DeliveryReports: Sendable {
    struct State {
        var failures: [KafkaError] = []
        var failureCount = 0
        /// Failures of records produced with a `tag`, kept until `takeTagged` (not cleared by
        /// commit, abort or flush): the caller decides what each failed record needs.
        var tagged: [(tag: Int, error: KafkaError)] = []
    }
    let state = Mutex(State())

    func record(_ m: UnsafePointer<rd_kafka_message_t>) {
        let err = m.pointee.err
        if err == RD_KAFKA_RESP_ERR_NO_ERROR { return }
        let topic = m.pointee.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? "?"
        let e = KafkaError(err, context: "delivery to \(topic)[\(m.pointee.partition)]")
        let tag = Int(bitPattern: m.pointee._private)
        state.withLock {
            $0.failureCount += 1
            if $0.failures.count < 16 { $0.failures.append(e) }   // keep memory bounded
            if tag != 0 { $0.tagged.append((tag, e)) }
        }
    }

    /// Returns (and clears) the failures of tagged records.
    func takeTagged() -> [(tag: Int, error: KafkaError)] {
        state.withLock { st in defer { st.tagged = [] }; return st.tagged }
    }

    /// Returns (and clears) the failures seen so far.
    func take() -> (first: KafkaError?, count: Int) {
        state.withLock { st in
            defer { st.failures = []; st.failureCount = 0 }
            return (st.failures.first, st.failureCount)
        }
    }
}

/// A topic resolved once by a producer (`KafkaProducer.topic(_:)`): producing through it
/// skips the lookup by name (a lock and a comparison per record). Valid with that producer only.
public struct ProducerTopic: @unchecked Sendable {
    public let name: String
    let handle: OpaquePointer
    let producer: OpaquePointer
}

/// A producer, optionally transactional (set `transactional.id`).
///
/// Delivery reports are collected through `dr_msg_cb` and served by `produce` (non-blocking
/// `rd_kafka_poll`) and `flush`; `flush` throws if any record since the previous flush failed,
/// so the daemon never believes data was written when it was not. Every record gets a report
/// (only failures are kept): with `delivery.report.only.error` a transactional commit took
/// about 10 ms longer (nothing woke the waits in `rd_kafka_flush` and the commit; measured in
/// BENCHMARKS.md, session 7).
///
/// `@unchecked Sendable`: `rd_kafka_t` producer calls are thread-safe, and the only Swift
/// mutable state (delivery results, closed flag) is behind mutexes. Transactions themselves
/// are a single sequence per producer: drive them from one thread.
public final class KafkaProducer: @unchecked Sendable {
    let handle: OpaquePointer
    private let reports: DeliveryReports
    private let closed = Atomic<Bool>(false)
    /// Produce calls since delivery reports were last served.
    private let sincePoll = Atomic<Int>(0)
    /// Topic handles by name, made on first use and destroyed with the producer: a produce
    /// that names its topic makes librdkafka look the topic up and count a reference to it for
    /// every record (about 800 instructions of a produce's 2,000, measured with callgrind).
    private let topicHandles = Mutex<[(name: String, topic: OpaquePointer)]>([])

    public init(config: KafkaConfig) throws {
        let reports = DeliveryReports()
        let conf = try config.makeConf()
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(reports).toOpaque())
        rd_kafka_conf_set_dr_msg_cb(conf) { _, msg, opaque in
            guard let msg, let opaque else { return }
            Unmanaged<DeliveryReports>.fromOpaque(opaque).takeUnretainedValue().record(msg)
        }
        handle = try makeHandle(RD_KAFKA_PRODUCER, conf: conf, context: "KafkaProducer init")
        self.reports = reports
    }

    deinit {
        // Best effort: a producer dropped without close() still gets a short flush.
        if !closed.load(ordering: .acquiring) {
            _ = rd_kafka_flush(handle, 5_000)
            destroyTopicHandles()
            rd_kafka_destroy(handle)
        }
    }

    /// The handle of `topic` (made once).
    private func topicHandle(_ topic: String) throws -> OpaquePointer {
        try topicHandles.withLock { handles in
            for known in handles where known.name == topic { return known.topic }
            guard let made = rd_kafka_topic_new(handle, topic, nil) else {
                throw KafkaError(rd_kafka_last_error(), context: "produce to \(topic)", detail: "no topic handle")
            }
            handles.append((topic, made))
            return made
        }
    }

    private func destroyTopicHandles() {
        let handles = topicHandles.withLock { h in defer { h = [] }; return h }
        for known in handles { rd_kafka_topic_destroy(known.topic) }
    }

    private func ensureOpen(_ what: String) throws {
        if closed.load(ordering: .acquiring) {
            throw KafkaError(RD_KAFKA_RESP_ERR__STATE, context: what, detail: "producer is closed")
        }
    }

    /// Enqueues one record (copied; the arrays may be reused immediately): `produce(topic:…)`
    /// over the arrays' bytes.
    public func produce(topic: String, partition: Int32? = nil, key: [UInt8]?, value: [UInt8],
                        headers: [KafkaHeader] = [], tag: Int = 0, timestampMs: Int64? = nil) throws {
        try withOptionalBytes(key) { keyBytes in
            try value.withUnsafeBytes { valueBytes in
                try produce(topic: topic, partition: partition, keyBytes: keyBytes, valueBytes: valueBytes, headers: headers, tag: tag,
                            timestampMs: timestampMs)
            }
        }
    }

    /// Enqueues one record from borrowed bytes: librdkafka copies key, value and headers before
    /// returning, so the memory may be reused at once. Nothing is allocated on the heap per
    /// record: the argument list and the header names and values are assembled in temporary
    /// memory (on the stack when small). `partition == nil` lets the configured partitioner
    /// pick by key. If librdkafka's local queue is full this serves delivery reports for up to
    /// 100 ms and retries, i.e. it applies backpressure.
    ///
    /// A non-zero `tag` marks the record: if its delivery fails, `takeTaggedFailures` returns
    /// the tag with the error (for records that need individual treatment, e.g. dead letters).
    /// `timestampMs` sets the record's timestamp (CreateTime); nil: the time of the call.
    public func produce(topic: String, partition: Int32? = nil, keyBytes: UnsafeRawBufferPointer?, valueBytes: UnsafeRawBufferPointer,
                        headers: [KafkaHeader] = [], tag: Int = 0, timestampMs: Int64? = nil) throws {
        try ensureOpen("produce")
        try produce(to: self.topic(topic), partition: partition, keyBytes: keyBytes, valueBytes: valueBytes, headers: headers, tag: tag,
                    timestampMs: timestampMs)
    }

    /// `topic`, resolved once for `produce(to:…)`.
    public func topic(_ name: String) throws -> ProducerTopic {
        ProducerTopic(name: name, handle: try topicHandle(name), producer: handle)
    }

    /// `produce(topic:…)` to a topic resolved before (`topic(_:)`).
    public func produce(to resolved: ProducerTopic, partition: Int32? = nil, keyBytes: UnsafeRawBufferPointer?, valueBytes: UnsafeRawBufferPointer,
                        headers: [KafkaHeader] = [], tag: Int = 0, timestampMs: Int64? = nil) throws {
        try ensureOpen("produce")
        precondition(resolved.producer == handle, "a topic resolved by another producer")
        let topicHandle = resolved.handle
        let topic = resolved.name
        defer { serveDeliveryReportsNowAndThen() }
        // Most records (transitions, changelog snapshots) carry neither headers nor a tag nor a
        // timestamp: `rd_kafka_produce` takes them without an argument list to build and parse.
        if headers.isEmpty && tag == 0 && timestampMs == nil {
            while rd_kafka_produce(topicHandle, partition ?? -1 /* RD_KAFKA_PARTITION_UA */, 0x2 /* RD_KAFKA_MSG_F_COPY */,
                                   UnsafeMutableRawPointer(mutating: valueBytes.baseAddress), valueBytes.count,
                                   keyBytes?.baseAddress, keyBytes?.count ?? 0, nil) != 0 {
                let err = rd_kafka_last_error()
                guard err == RD_KAFKA_RESP_ERR__QUEUE_FULL else { throw KafkaError(err, context: "produce to \(topic)") }
                rd_kafka_poll(handle, 100)
            }
            return
        }
        // Header names and values must stay valid during rd_kafka_produceva (it copies them into
        // an rd_kafka_headers_t it owns); put them all in one temporary buffer.
        var headerBytes = 0
        for h in headers { headerBytes += h.key.utf8.count + 1 + h.value.count }
        // At most: topic, partition, flags, opaque, key, value, timestamp, then one per header.
        let maxArguments = 7 + headers.count
        do {
            try withUnsafeTemporaryAllocation(byteCount: max(headerBytes, 1), alignment: 1) { headerBuf in
                try withUnsafeTemporaryAllocation(of: rd_kafka_vu_t.self, capacity: maxArguments) { vus in
                    var count = 0
                    func add(_ vu: rd_kafka_vu_t) {
                        precondition(count < maxArguments)
                        vus.initializeElement(at: count, to: vu)
                        count += 1
                    }
                    var vu = rd_kafka_vu_t()
                    vu.vtype = RD_KAFKA_VTYPE_RKT; vu.u.rkt = topicHandle; add(vu)
                    vu = rd_kafka_vu_t()
                    vu.vtype = RD_KAFKA_VTYPE_PARTITION; vu.u.i32 = partition ?? -1; add(vu)
                    vu = rd_kafka_vu_t()
                    vu.vtype = RD_KAFKA_VTYPE_MSGFLAGS; vu.u.i = 0x2 /* RD_KAFKA_MSG_F_COPY */; add(vu)
                    if tag != 0 {
                        vu = rd_kafka_vu_t()
                        vu.vtype = RD_KAFKA_VTYPE_OPAQUE
                        vu.u.ptr = UnsafeMutableRawPointer(bitPattern: tag)
                        add(vu)
                    }
                    if let keyBytes {
                        vu = rd_kafka_vu_t()
                        vu.vtype = RD_KAFKA_VTYPE_KEY
                        vu.u.mem.ptr = UnsafeMutableRawPointer(mutating: keyBytes.baseAddress)
                        vu.u.mem.size = keyBytes.count
                        add(vu)
                    }
                    vu = rd_kafka_vu_t()
                    vu.vtype = RD_KAFKA_VTYPE_VALUE
                    vu.u.mem.ptr = UnsafeMutableRawPointer(mutating: valueBytes.baseAddress)
                    vu.u.mem.size = valueBytes.count
                    add(vu)
                    if let timestampMs {
                        vu = rd_kafka_vu_t()
                        vu.vtype = RD_KAFKA_VTYPE_TIMESTAMP
                        vu.u.i64 = timestampMs
                        add(vu)
                    }
                    var pos = 0
                    for h in headers {
                        let nameStart = headerBuf.baseAddress! + pos
                        for b in h.key.utf8 { headerBuf[pos] = b; pos += 1 }
                        headerBuf[pos] = 0; pos += 1
                        let valStart = headerBuf.baseAddress! + pos
                        for b in h.value { headerBuf[pos] = b; pos += 1 }
                        vu = rd_kafka_vu_t()
                        vu.vtype = RD_KAFKA_VTYPE_HEADER
                        vu.u.header.name = UnsafePointer(nameStart.assumingMemoryBound(to: CChar.self))
                        vu.u.header.val = UnsafeRawPointer(valStart)
                        vu.u.header.size = h.value.count
                        add(vu)
                    }
                    while true {
                        guard let error = rd_kafka_produceva(handle, vus.baseAddress, count) else { break }
                        if rd_kafka_error_code(error) == RD_KAFKA_RESP_ERR__QUEUE_FULL {
                            rd_kafka_error_destroy(error)
                            rd_kafka_poll(handle, 100)
                            continue
                        }
                        throw KafkaError(consuming: error, context: "produce to \(topic)")
                    }
                }
            }
        }
    }

    /// A record of `produceBatch`: where its key and value are in the batch's bytes.
    public struct BatchRecord: Sendable {
        public var key: Range<Int>
        public var value: Range<Int>
        public init(key: Range<Int>, value: Range<Int>) {
            self.key = key
            self.value = value
        }
    }

    /// Enqueues `records` to one partition of `resolved` in one call (`rd_kafka_produce_batch`,
    /// which takes the topic's and the partition's locks once for all of them instead of once
    /// per record): each record's key and value are ranges of `bytes`, copied before this
    /// returns. No headers, tags or timestamps. A record refused because librdkafka's local
    /// queue is full is retried after serving delivery reports for up to 100 ms, i.e. after
    /// the others of the batch (give a batch distinct keys when their order matters).
    public func produceBatch(to resolved: ProducerTopic, partition: Int32, bytes: UnsafeRawBufferPointer, records: [BatchRecord]) throws {
        try ensureOpen("produce")
        precondition(resolved.producer == handle, "a topic resolved by another producer")
        guard !records.isEmpty else { return }
        defer { serveDeliveryReportsNowAndThen(records: records.count) }
        try withUnsafeTemporaryAllocation(of: rd_kafka_message_t.self, capacity: records.count) { messages in
            let base = UnsafeMutableRawPointer(mutating: bytes.baseAddress)
            for (i, r) in records.enumerated() {
                var m = rd_kafka_message_t()
                m.payload = r.value.isEmpty ? nil : base! + r.value.lowerBound
                m.len = r.value.count
                m.key = r.key.isEmpty ? nil : base! + r.key.lowerBound
                m.key_len = r.key.count
                messages.initializeElement(at: i, to: m)
            }
            defer { messages.baseAddress!.deinitialize(count: records.count) }
            var pending = records.count
            while true {
                let enqueued = Int(rd_kafka_produce_batch(resolved.handle, partition, 0x2 /* RD_KAFKA_MSG_F_COPY */,
                                                          messages.baseAddress, Int32(pending)))
                if enqueued == pending { return }
                // Keep the refused ones (at the front) for another call; any other error throws.
                var kept = 0
                for i in 0..<pending where messages[i].err != RD_KAFKA_RESP_ERR_NO_ERROR {
                    let err = messages[i].err
                    guard err == RD_KAFKA_RESP_ERR__QUEUE_FULL else {
                        throw KafkaError(err, context: "produce to \(resolved.name)[\(partition)]")
                    }
                    messages[kept] = messages[i]
                    messages[kept].err = RD_KAFKA_RESP_ERR_NO_ERROR
                    kept += 1
                }
                pending = kept
                rd_kafka_poll(handle, 100)
            }
        }
    }

    /// Serves delivery reports without blocking, every 256 records: a poll per record costs
    /// a lock and a clock read each, and the reports are only needed before the queue fills.
    private func serveDeliveryReportsNowAndThen(records: Int = 1) {
        if sincePoll.add(records, ordering: .relaxed).newValue >= 256 {
            sincePoll.store(0, ordering: .relaxed)
            rd_kafka_poll(handle, 0)
        }
    }

    /// Waits until every enqueued record is delivered or failed. Throws `_TIMED_OUT` if some
    /// are still in flight after `timeoutMs`, else the first delivery failure since the last
    /// flush (with the number of failures in the context).
    public func flush(timeoutMs: Int) throws {
        try ensureOpen("flush")
        try flushInternal(timeoutMs: timeoutMs)
    }

    private func flushInternal(timeoutMs: Int) throws {
        let err = rd_kafka_flush(handle, Int32(clamping: timeoutMs))
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError(err, context: "flush",
                             detail: "\(rd_kafka_outq_len(handle)) messages/requests still in queue after \(timeoutMs) ms")
        }
        let (first, count) = reports.take()
        if let first {
            throw KafkaError(code: first.code, name: first.name,
                             message: first.message + " (\(count) record(s) failed since last flush)",
                             context: first.context, isRetriable: first.isRetriable,
                             isFatal: first.isFatal, txnRequiresAbort: first.txnRequiresAbort)
        }
    }

    /// The tags of records produced with one whose delivery failed since the last call, with
    /// the error (kept across commit, abort and flush).
    public func takeTaggedFailures() -> [(tag: Int, error: KafkaError)] { reports.takeTagged() }

    // MARK: Transactions

    /// Registers `transactional.id` with the coordinator and fences older instances. Call once.
    public func initTransactions(timeoutMs: Int) throws {
        try ensureOpen("initTransactions")
        try KafkaError.check(rd_kafka_init_transactions(handle, Int32(clamping: timeoutMs)), "initTransactions")
    }

    public func beginTransaction() throws {
        try ensureOpen("beginTransaction")
        try KafkaError.check(rd_kafka_begin_transaction(handle), "beginTransaction")
    }

    /// Adds the consumer's input offsets (next-offset semantics) to the current transaction so
    /// they commit atomically with the output. NB: the mock cluster acknowledges but does not
    /// store them — keep input offsets in the changelog too (see notes).
    public func sendOffsetsToTransaction(offsets: [TopicPartition: Int64], groupMetadata: ConsumerGroupMetadata,
                                         timeoutMs: Int) throws {
        try ensureOpen("sendOffsetsToTransaction")
        let list = PartitionList(offsets)
        try KafkaError.check(rd_kafka_send_offsets_to_transaction(handle, list.list, groupMetadata.pointer,
                                                                  Int32(clamping: timeoutMs)),
                             "sendOffsetsToTransaction (\(offsets.count) partitions)")
    }

    /// Convenience: takes the group metadata from `consumer` (thread-safe to call).
    public func sendOffsetsToTransaction(offsets: [TopicPartition: Int64], consumer: KafkaConsumer,
                                         timeoutMs: Int) throws {
        let md = try consumer.groupMetadata()
        try sendOffsetsToTransaction(offsets: offsets, groupMetadata: md, timeoutMs: timeoutMs)
    }

    /// Flushes and commits. On `txnRequiresAbort` call `abortTransaction`; on `isRetriable`
    /// retry the commit; on `isFatal` recreate the producer.
    public func commitTransaction(timeoutMs: Int) throws {
        try ensureOpen("commitTransaction")
        try KafkaError.check(rd_kafka_commit_transaction(handle, Int32(clamping: timeoutMs)), "commitTransaction")
        _ = reports.take()   // all delivered, or the commit would have failed
    }

    /// Aborts; records of the transaction are purged (their purge delivery failures are
    /// expected and dropped, so the next `flush` does not report them).
    public func abortTransaction(timeoutMs: Int) throws {
        try ensureOpen("abortTransaction")
        try KafkaError.check(rd_kafka_abort_transaction(handle, Int32(clamping: timeoutMs)), "abortTransaction")
        _ = reports.take()
    }

    /// Flushes (up to `timeoutMs`), then destroys the handle — even if the flush failed, in
    /// which case the flush error is thrown after destroying. Idempotent.
    public func close(timeoutMs: Int = 30_000) throws {
        let wasClosed = closed.exchange(true, ordering: .acquiringAndReleasing)
        guard !wasClosed else { return }
        var flushError: (any Error)?
        do { try flushInternal(timeoutMs: timeoutMs) } catch { flushError = error }
        destroyTopicHandles()
        rd_kafka_destroy(handle)
        if let flushError { throw flushError }
    }
}

private func withOptionalBytes<R>(_ bytes: [UInt8]?, _ body: (UnsafeRawBufferPointer?) throws -> R) rethrows -> R {
    guard let bytes else { return try body(nil) }
    return try bytes.withUnsafeBytes { try body($0) }
}

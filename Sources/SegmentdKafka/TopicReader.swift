import CRdKafka
#if canImport(Glibc)
import Glibc
#endif

/// Reads a whole topic from the beginning, without a consumer group: for tests and tools
/// (verifying output topics, dumping changelogs). Not for the daemon's main input, which needs
/// group membership.
///
/// Why watermarks rather than "no data for a while": the high watermark at start is exactly
/// the end of what exists, so the read finishes as soon as it is reached and a slow broker is
/// not mistaken for the end.
public final class TopicReader {
    private let handle: OpaquePointer
    private let queue: OpaquePointer
    public let topic: String
    private var batch: UnsafeMutablePointer<UnsafeMutablePointer<rd_kafka_message_t>?>
    private let batchSize = 10_000

    /// `config` needs `bootstrap.servers`; any `group.id` is replaced by a throwaway one. Consumer fetch defaults
    /// (5 MB fetches, 10 ms wait) are applied.
    public init(config: KafkaConfig, topic: String) throws {
        var cfg = config.withDefaults([
            "fetch.max.bytes": "5242880",
            "fetch.wait.max.ms": "10",
            "enable.auto.commit": "false",
            "enable.auto.offset.store": "false",
            // EOF events mark the end even when a partition ends with transaction control
            // records, which occupy offsets but are never delivered as messages.
            "enable.partition.eof": "true",
        ])
        // librdkafka needs a group.id for rd_kafka_assign and the consumer queue, even though
        // this reader never joins the group nor commits: use a throwaway one.
        cfg["group.id"] = "topic-reader-\(UInt64.random(in: 0...UInt64.max))"
        let conf = try cfg.makeConf()
        let rk = try makeHandle(RD_KAFKA_CONSUMER, conf: conf, context: "TopicReader init")
        let redirect = rd_kafka_poll_set_consumer(rk)
        guard redirect == RD_KAFKA_RESP_ERR_NO_ERROR, let q = rd_kafka_queue_get_consumer(rk) else {
            rd_kafka_destroy(rk)
            throw KafkaError(redirect, context: "TopicReader consumer queue")
        }
        handle = rk
        queue = q
        self.topic = topic
        batch = .allocate(capacity: batchSize)
    }

    deinit {
        rd_kafka_queue_destroy(queue)
        rd_kafka_destroy(handle)
        batch.deallocate()
    }

    /// Number of partitions of the topic, from a metadata request.
    public func partitionCount(timeoutMs: Int = 10_000) throws -> Int32 {
        guard let rkt = rd_kafka_topic_new(handle, topic, nil) else {
            throw KafkaError(rd_kafka_last_error(), context: "rd_kafka_topic_new \(topic)")
        }
        defer { rd_kafka_topic_destroy(rkt) }
        var md: UnsafePointer<rd_kafka_metadata>?
        try KafkaError.check(rd_kafka_metadata(handle, 0, rkt, &md, Int32(clamping: timeoutMs)), "metadata \(topic)")
        guard let md else { throw KafkaError(RD_KAFKA_RESP_ERR__FAIL, context: "metadata \(topic)") }
        defer { rd_kafka_metadata_destroy(md) }
        guard md.pointee.topic_cnt >= 1, let t = md.pointee.topics else {
            throw KafkaError(RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC, context: "metadata \(topic)")
        }
        try KafkaError.check(t[0].err, "metadata \(topic)")
        return t[0].partition_cnt
    }

    /// (low, high) watermarks of one partition; `high` is the offset the next record will get.
    public func watermarks(partition: Int32, timeoutMs: Int = 10_000) throws -> (low: Int64, high: Int64) {
        var low: Int64 = 0, high: Int64 = 0
        try KafkaError.check(rd_kafka_query_watermark_offsets(handle, topic, partition, &low, &high,
                                                              Int32(clamping: timeoutMs)),
                             "watermarks \(topic)[\(partition)]")
        return (low, high)
    }

    /// The end (high watermark; the last stable offset under read_committed) of each of
    /// `partitions`, in one ListOffsets round trip per broker rather than one per partition.
    public func ends(partitions: [Int32], timeoutMs: Int = 10_000) throws -> [Int32: Int64] {
        guard !partitions.isEmpty else { return [:] }
        // offsets_for_times with timestamp -1 asks for the latest offset.
        let list = PartitionList(partitions.map { TopicPartition(topic: topic, partition: $0) }, offset: -1)
        try KafkaError.check(rd_kafka_offsets_for_times(handle, list.list, Int32(clamping: timeoutMs)), "ends of \(topic)")
        try list.checkElements("ends of \(topic)")
        var out: [Int32: Int64] = [:]
        for e in list.entries { out[e.tp.partition] = e.offset }
        return out
    }

    /// For each of `partitions`, the offset of its first record whose timestamp is at or after
    /// `timestampMs`, as Kafka's ListOffsets by time defines it (the first in offset order, so
    /// timestamps need not grow with offsets); a partition with no such record gets its end,
    /// where a read from it finds nothing. Asked of the broker, one round trip per broker. A
    /// broker that does not answer by time (librdkafka 2.0.2's mock cluster, the embedded
    /// broker, answers "none" to every time) is caught by reading the last `recentCheck`
    /// records of a partition it says has none so late; such a partition is then read from
    /// its beginning up to the first record that late.
    public func offsets(atOrAfter timestampMs: Int64, partitions: [Int32], timeoutMs: Int = 300_000,
                        recentCheck: Int64 = 1_000) throws -> [Int32: Int64] {
        guard !partitions.isEmpty else { return [:] }
        precondition(timestampMs >= 0, "a timestamp, not a logical offset")
        let list = PartitionList(partitions.map { TopicPartition(topic: topic, partition: $0) }, offset: timestampMs)
        try KafkaError.check(rd_kafka_offsets_for_times(handle, list.list, Int32(clamping: min(timeoutMs, 30_000))), "offsets for times of \(topic)")
        try list.checkElements("offsets for times of \(topic)")
        var out: [Int32: Int64] = [:]
        for e in list.entries where e.offset >= 0 { out[e.tp.partition] = e.offset }
        for p in partitions where out[p] == nil {
            let (low, end) = try watermarks(partition: p, timeoutMs: timeoutMs)
            out[p] = end
            guard end > low else { continue }
            var recent = false
            try readViews(partitions: [p], from: [p: max(low, end - recentCheck)], timeoutMs: timeoutMs) { view in
                recent = view.timestampMs >= timestampMs
                return !recent
            }
            guard recent else { continue }
            try readViews(partitions: [p], from: [p: low], timeoutMs: timeoutMs) { view in
                if view.timestampMs >= timestampMs { out[p] = view.offset; return false }
                return true
            }
        }
        return out
    }

    /// Returns every record present when the call starts, per partition in offset order
    /// (partitions interleaved). Throws `_TIMED_OUT` if the end is not reached within `timeoutMs`.
    public func readAll(timeoutMs: Int = 30_000) throws -> [KafkaRecord] {
        var out: [KafkaRecord] = []
        try readAll(timeoutMs: timeoutMs) { out.append($0) }
        return out
    }

    /// Streaming form of `readAll`, for topics too large to hold as one array. `partitions`
    /// restricts the read; `from` starts partitions at those offsets (e.g. from `offsets(atOrAfter:…)`)
    /// instead of the beginning.
    public func readAll(partitions only: [Int32]? = nil, from starts: [Int32: Int64] = [:], timeoutMs: Int = 30_000,
                        _ body: (KafkaRecord) throws -> Void) throws {
        try readAllViews(partitions: only, from: starts, timeoutMs: timeoutMs) { try body($0.record) }
    }

    /// Zero-copy form of `readAll`: each record is a view valid only during `body` (the daemon
    /// restores changelog partitions with it, decoding straight from librdkafka's buffers).
    /// `ended` is called for each partition as soon as it has been read to its end (partitions
    /// with nothing to read are not reported).
    public func readAllViews(partitions only: [Int32]? = nil, from starts: [Int32: Int64] = [:], timeoutMs: Int = 30_000,
                             ended: (Int32) throws -> Void = { _ in },
                             _ body: (KafkaMessageView) throws -> Void) throws {
        try readViews(partitions: only, from: starts, timeoutMs: timeoutMs, ended: ended) { try body($0); return true }
    }

    /// `readAllViews` whose `body` may stop the read early by returning false.
    public func readViews(partitions only: [Int32]?, from starts: [Int32: Int64], timeoutMs: Int,
                          ended: (Int32) throws -> Void = { _ in },
                          _ body: (KafkaMessageView) throws -> Bool) throws {
        let deadline = monotonicMs() + Int64(timeoutMs)
        let n = try partitionCount(timeoutMs: timeoutMs)
        var remaining = Remaining(partitions: Int(n))
        let list = PartitionList(capacity: Int(n))
        for p in only ?? Array(0..<n) {
            guard p >= 0 && p < n else {
                throw KafkaError(RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION, context: "TopicReader \(topic)",
                                 detail: "partition \(p) does not exist (the topic has \(n))")
            }
        }
        for (p, high) in try ends(partitions: only ?? Array(0..<n), timeoutMs: timeoutMs) where high > 0 {
            // A partition emptied by retention (low == high) ends with its EOF event at once.
            let start = starts[p] ?? KafkaOffset.beginning
            if start >= high { continue }
            remaining[p] = high
            list.add(TopicPartition(topic: topic, partition: p), offset: start)
        }
        guard !remaining.isEmpty else { return }
        try KafkaError.check(rd_kafka_assign(handle, list.list), "assign \(topic)")
        defer { _ = rd_kafka_assign(handle, nil) }

        while !remaining.isEmpty {
            let left = deadline - monotonicMs()
            if left <= 0 {
                throw KafkaError(RD_KAFKA_RESP_ERR__TIMED_OUT, context: "TopicReader.readAll \(topic)",
                                 detail: "end not reached; partitions left: \(remaining.left)")
            }
            let got = rd_kafka_consume_batch_queue(queue, Int32(min(left, 20)), batch, batchSize)
            if got < 0 { throw KafkaError(rd_kafka_last_error(), context: "rd_kafka_consume_batch_queue") }
            var failure: KafkaError?
            var stop = false
            for i in 0..<got {
                guard let m = batch[i] else { continue }
                defer { rd_kafka_message_destroy(m) }
                guard failure == nil && !stop else { continue }
                let p = m.pointee.partition
                if m.pointee.err != RD_KAFKA_RESP_ERR_NO_ERROR {
                    let err = m.pointee.err
                    if err == RD_KAFKA_RESP_ERR__PARTITION_EOF {
                        if let high = remaining[p], m.pointee.offset >= high {
                            remaining[p] = nil
                            do { try ended(p) } catch { failure = failure ?? TopicReader.failure(error) }
                        }
                        continue
                    }
                    // Transient errors (broker reconnects) are retried by librdkafka.
                    if err == RD_KAFKA_RESP_ERR__FATAL || err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET
                        || err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE {
                        failure = KafkaError(err, context: "TopicReader \(topic)[\(p)]",
                                             detail: String(cString: rd_kafka_message_errstr(m)))
                    }
                    continue
                }
                guard let high = remaining[p], m.pointee.offset < high else { continue }
                do {
                    if try !body(KafkaMessageView(message: m, topic: topic)) { stop = true; continue }
                    if m.pointee.offset + 1 >= high {
                        remaining[p] = nil
                        try ended(p)
                    }
                } catch {
                    failure = failure ?? TopicReader.failure(error)
                    continue
                }
            }
            if let failure { throw failure }
            if stop { return }
        }
    }
}

extension TopicReader {
    /// The partitions a read has still to finish, each with the high watermark to reach: an
    /// array by partition number (one index per record, no hashing).
    struct Remaining {
        private var highs: [Int64]
        private(set) var count = 0

        init(partitions: Int) { highs = Array(repeating: -1, count: partitions) }

        var isEmpty: Bool { count == 0 }

        subscript(p: Int32) -> Int64? {
            get {
                let i = Int(p)
                return i >= 0 && i < highs.count && highs[i] >= 0 ? highs[i] : nil
            }
            set {
                let i = Int(p)
                let was = highs[i] >= 0
                highs[i] = newValue ?? -1
                count += (newValue != nil ? 1 : 0) - (was ? 1 : 0)
            }
        }

        var left: [Int32] { highs.indices.filter { highs[$0] >= 0 }.map { Int32($0) } }
    }

    /// What a callback threw, as the read reports it.
    static func failure(_ error: any Error) -> KafkaError {
        (error as? KafkaError) ?? KafkaError(RD_KAFKA_RESP_ERR__FAIL, context: "TopicReader body", detail: "\(error)")
    }
}

func monotonicMs() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}

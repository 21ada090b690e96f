import CRdKafka

/// A topic partition, the unit of assignment and of offset tracking.
public struct TopicPartition: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var topic: String
    public var partition: Int32

    public init(topic: String, partition: Int32) {
        self.topic = topic
        self.partition = partition
    }

    public static func < (a: TopicPartition, b: TopicPartition) -> Bool {
        (a.topic, a.partition) < (b.topic, b.partition)
    }

    public var description: String { "\(topic)[\(partition)]" }
}

/// Special logical offsets understood by librdkafka (mirrors the `RD_KAFKA_OFFSET_*` macros,
/// which Swift does not import because they are casts).
public enum KafkaOffset {
    /// Start from the oldest retained record.
    public static let beginning: Int64 = -2
    /// Start after the newest record.
    public static let end: Int64 = -1
    /// Use the group's committed offset (falling back to `auto.offset.reset`).
    public static let stored: Int64 = -1000
    /// "No offset".
    public static let invalid: Int64 = -1001
}

/// One record header. A struct (not a tuple) so records can be `Equatable`.
public struct KafkaHeader: Hashable, Sendable {
    public var key: String
    public var value: [UInt8]
    public init(_ key: String, _ value: [UInt8]) {
        self.key = key
        self.value = value
    }
}

/// A consumed record, copied out of librdkafka's buffer so it can outlive the C message and
/// cross threads.
public struct KafkaRecord: Hashable, Sendable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    public var key: [UInt8]?
    public var value: [UInt8]
    public var headers: [KafkaHeader]
    /// Milliseconds since the epoch, or -1 if the broker gave none.
    public var timestampMs: Int64

    public init(topic: String, partition: Int32, offset: Int64, key: [UInt8]?, value: [UInt8],
                headers: [KafkaHeader] = [], timestampMs: Int64 = -1) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.key = key
        self.value = value
        self.headers = headers
        self.timestampMs = timestampMs
    }

    public var topicPartition: TopicPartition { TopicPartition(topic: topic, partition: partition) }

    /// Copies a successful (`err == 0`) message. `topic` is passed in because callers cache
    /// topic names per `rd_kafka_topic_t` (a String per record would dominate the cost).
    init(message m: UnsafeMutablePointer<rd_kafka_message_t>, topic: String) {
        let msg = m.pointee
        self.topic = topic
        self.partition = msg.partition
        self.offset = msg.offset
        if let k = msg.key {
            self.key = Array(UnsafeRawBufferPointer(start: k, count: msg.key_len))
        } else {
            self.key = nil
        }
        if let p = msg.payload, msg.len > 0 {
            self.value = Array(UnsafeRawBufferPointer(start: p, count: msg.len))
        } else {
            self.value = []
        }
        var tstype = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        self.timestampMs = rd_kafka_message_timestamp(m, &tstype)
        self.headers = []
        // The headers stay owned by the message (destroyed with it); we only copy them out.
        var hdrs: OpaquePointer?
        if rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR, let hdrs {
            var idx = 0
            var name: UnsafePointer<CChar>?
            var val: UnsafeRawPointer?
            var size = 0
            while rd_kafka_header_get_all(hdrs, idx, &name, &val, &size) == RD_KAFKA_RESP_ERR_NO_ERROR {
                let bytes = val.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) } ?? []
                headers.append(KafkaHeader(name.map { String(cString: $0) } ?? "", bytes))
                idx += 1
            }
        }
    }
}

/// A borrowed view of a consumed message, valid only inside the `KafkaConsumer.poll` closure
/// that received it (the bytes belong to librdkafka). Use `record` to copy it out.
public struct KafkaMessageView {
    let message: UnsafeMutablePointer<rd_kafka_message_t>
    public let topic: String

    init(message: UnsafeMutablePointer<rd_kafka_message_t>, topic: String) {
        self.message = message
        self.topic = topic
    }

    public var partition: Int32 { message.pointee.partition }
    public var offset: Int64 { message.pointee.offset }
    public var topicPartition: TopicPartition { TopicPartition(topic: topic, partition: partition) }
    /// Key bytes (nil if the record has no key). Do not let the pointer escape.
    public var key: UnsafeRawBufferPointer? {
        message.pointee.key.map { UnsafeRawBufferPointer(start: $0, count: message.pointee.key_len) }
    }
    /// Value bytes (empty for a null value). Do not let the pointer escape.
    public var value: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: message.pointee.payload, count: message.pointee.payload == nil ? 0 : message.pointee.len)
    }
    public var timestampMs: Int64 {
        var tstype = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        return rd_kafka_message_timestamp(message, &tstype)
    }
    /// The value of the last header named `name`, not copied (nil if absent). Do not let the
    /// pointer escape.
    public func header(_ name: String) -> UnsafeRawBufferPointer? {
        var hdrs: OpaquePointer?
        guard rd_kafka_message_headers(message, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR, let hdrs else { return nil }
        var val: UnsafeRawPointer?
        var size = 0
        guard rd_kafka_header_get_last(hdrs, name, &val, &size) == RD_KAFKA_RESP_ERR_NO_ERROR else { return nil }
        return UnsafeRawBufferPointer(start: val, count: val == nil ? 0 : size)
    }
    /// Headers, copied (parsing them has a cost, so it is on demand).
    public var headers: [KafkaHeader] { KafkaRecord(message: message, topic: topic).headers }
    /// An owned copy.
    public var record: KafkaRecord { KafkaRecord(message: message, topic: topic) }
}

/// Consecutive records of one topic partition from one `KafkaConsumer.pollRuns`,
/// in offset order, borrowed: valid only inside the closure that received it (the messages are
/// destroyed when it returns). A processing step that works on several records at once (the
/// daemon's batched decoding) reads them all while they are alive.
public struct KafkaMessageRun {
    let messages: UnsafeBufferPointer<UnsafeMutablePointer<rd_kafka_message_t>?>
    public let topic: String

    init(messages: UnsafeBufferPointer<UnsafeMutablePointer<rd_kafka_message_t>?>, topic: String) {
        precondition(!messages.isEmpty)
        self.messages = messages
        self.topic = topic
    }

    public var count: Int { messages.count }
    /// The partition of every record of the run.
    public var partition: Int32 { messages[0]!.pointee.partition }
    /// The run's `index`-th record (0..<count).
    public subscript(index: Int) -> KafkaMessageView { KafkaMessageView(message: messages[index]!, topic: topic) }
}

// MARK: - rd_kafka_topic_partition_list_t helpers

/// Owns an `rd_kafka_topic_partition_list_t` for the duration of a call, destroying it exactly
/// once on scope exit.
struct PartitionList: ~Copyable {
    let list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>

    init(capacity: Int) {
        list = rd_kafka_topic_partition_list_new(Int32(max(capacity, 1)))
    }

    init(_ partitions: [TopicPartition], offset: Int64 = KafkaOffset.invalid) {
        self.init(capacity: partitions.count)
        for tp in partitions { add(tp, offset: offset) }
    }

    init(_ offsets: [TopicPartition: Int64]) {
        self.init(capacity: offsets.count)
        for (tp, off) in offsets.sorted(by: { $0.key < $1.key }) { add(tp, offset: off) }
    }

    /// Takes ownership of a list librdkafka handed us (e.g. from `rd_kafka_assignment`).
    init(adopting list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) { self.list = list }

    func add(_ tp: TopicPartition, offset: Int64) {
        let el = rd_kafka_topic_partition_list_add(list, tp.topic, tp.partition)!
        el.pointee.offset = offset
    }

    deinit { rd_kafka_topic_partition_list_destroy(list) }

    var entries: [(tp: TopicPartition, offset: Int64, err: rd_kafka_resp_err_t)] {
        partitionListEntries(list)
    }

    /// Throws the first per-partition error, if any (several calls report errors per element).
    func checkElements(_ context: String) throws {
        for e in entries where e.err != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError(e.err, context: "\(context) \(e.tp)")
        }
    }
}

/// Reads a list we do not own (e.g. the one passed to the rebalance callback).
func partitionListEntries(_ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>)
    -> [(tp: TopicPartition, offset: Int64, err: rd_kafka_resp_err_t)] {
    let n = Int(list.pointee.cnt)
    guard n > 0, let elems = list.pointee.elems else { return [] }
    return (0..<n).map { i in
        let e = elems[i]
        return (TopicPartition(topic: String(cString: e.topic), partition: e.partition), e.offset, e.err)
    }
}

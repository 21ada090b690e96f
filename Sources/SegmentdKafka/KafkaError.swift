import CRdKafka

/// A failure reported by librdkafka, or by this layer on top of it.
///
/// Why a single struct rather than an enum: librdkafka has well over a hundred error codes and
/// the daemon mostly needs to decide *what to do* (retry, abort the transaction, die), which is
/// exactly what the classification flags carry. The raw code and name are kept for logs and
/// for the rare call site that must match one code (e.g. `isTimeout`).
public struct KafkaError: Error, CustomStringConvertible, Sendable {
    /// The `rd_kafka_resp_err_t` value (negative values are librdkafka-internal codes such as
    /// `_TIMED_OUT`, positive ones are Kafka protocol errors).
    public let code: Int32
    /// librdkafka's symbolic name for `code`, e.g. `"_TIMED_OUT"` or `"UNKNOWN_TOPIC_OR_PART"`.
    public let name: String
    /// The human-readable message (from `rd_kafka_error_string`, an errstr buffer, or
    /// `rd_kafka_err2str`).
    public let message: String
    /// What this layer was doing when the error happened, e.g. `"commitTransaction"`.
    public let context: String
    /// The operation may succeed if simply retried (only set where librdkafka says so via
    /// `rd_kafka_error_is_retriable`).
    public let isRetriable: Bool
    /// The client instance is unusable; it must be destroyed and recreated.
    public let isFatal: Bool
    /// The current transaction must be aborted (`abortTransaction`) before continuing.
    public let txnRequiresAbort: Bool

    public init(code: Int32, name: String, message: String, context: String,
                isRetriable: Bool = false, isFatal: Bool = false, txnRequiresAbort: Bool = false) {
        self.code = code
        self.name = name
        self.message = message
        self.context = context
        self.isRetriable = isRetriable
        self.isFatal = isFatal
        self.txnRequiresAbort = txnRequiresAbort
    }

    /// Builds an error from a bare `rd_kafka_resp_err_t`; `detail` replaces librdkafka's generic
    /// description when the call site has something more specific (an errstr buffer, say).
    init(_ err: rd_kafka_resp_err_t, context: String, detail: String? = nil, isFatal: Bool = false) {
        let generic = String(cString: rd_kafka_err2str(err))
        self.init(code: err.rawValue,
                  name: String(cString: rd_kafka_err2name(err)),
                  message: (detail?.isEmpty == false) ? detail! : generic,
                  context: context,
                  isFatal: isFatal || err == RD_KAFKA_RESP_ERR__FATAL)
    }

    /// Takes ownership of an `rd_kafka_error_t`, copies everything out of it and destroys it
    /// (so each rd_kafka_error_t is freed exactly once, here).
    init(consuming error: OpaquePointer, context: String) {
        defer { rd_kafka_error_destroy(error) }
        self.init(code: rd_kafka_error_code(error).rawValue,
                  name: String(cString: rd_kafka_error_name(error)),
                  message: String(cString: rd_kafka_error_string(error)),
                  context: context,
                  isRetriable: rd_kafka_error_is_retriable(error) != 0,
                  isFatal: rd_kafka_error_is_fatal(error) != 0,
                  txnRequiresAbort: rd_kafka_error_txn_requires_abort(error) != 0)
    }

    /// Throws if `error` is non-nil (the usual rd_kafka_error_t-returning call convention).
    static func check(_ error: OpaquePointer?, _ context: @autoclosure () -> String) throws {
        if let error { throw KafkaError(consuming: error, context: context()) }
    }

    /// Throws if `err` is not `RD_KAFKA_RESP_ERR_NO_ERROR`.
    static func check(_ err: rd_kafka_resp_err_t, _ context: @autoclosure () -> String) throws {
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(err, context: context()) }
    }

    /// An error about one record that retrying cannot fix: too large for the producer's
    /// `message.max.bytes` or the broker's limit, or refused as invalid by the broker.
    public var isPermanentRecordError: Bool {
        [RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE, RD_KAFKA_RESP_ERR_INVALID_RECORD,
         RD_KAFKA_RESP_ERR_INVALID_MSG].contains { $0.rawValue == code }
    }

    /// No broker could be reached: the connection failed (`_TRANSPORT`), every broker is down
    /// (`_ALL_BROKERS_DOWN`) or a name did not resolve (`_RESOLVE`).
    public var isBrokerUnreachable: Bool {
        [RD_KAFKA_RESP_ERR__TRANSPORT, RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN, RD_KAFKA_RESP_ERR__RESOLVE].contains { $0.rawValue == code }
    }

    /// librdkafka refused the client's configuration (a property, or a file it names such as
    /// `ssl.ca.location`) when the client was created (`_INVALID_ARG`).
    public var isConfigurationError: Bool { code == RD_KAFKA_RESP_ERR__INVALID_ARG.rawValue }

    /// The topic does not exist (or is not known to the broker yet).
    public var isUnknownTopic: Bool {
        [RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC, RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART].contains { $0.rawValue == code }
    }

    /// A record was not acknowledged within `message.timeout.ms` (`_MSG_TIMED_OUT`).
    public var isDeliveryTimeout: Bool { code == RD_KAFKA_RESP_ERR__MSG_TIMED_OUT.rawValue }

    /// True for librdkafka's local `_TIMED_OUT` (e.g. `flush` did not drain in time).
    public var isTimeout: Bool { code == RD_KAFKA_RESP_ERR__TIMED_OUT.rawValue }

    public var description: String {
        var flags: [String] = []
        if isFatal { flags.append("fatal") }
        if isRetriable { flags.append("retriable") }
        if txnRequiresAbort { flags.append("txn-requires-abort") }
        let suffix = flags.isEmpty ? "" : " [\(flags.joined(separator: ", "))]"
        return "KafkaError(\(context)): \(name) (\(code)): \(message)\(suffix)"
    }
}

/// Reads a NUL-terminated errstr buffer filled in by librdkafka.
func errstrString(_ buf: [CChar]) -> String {
    buf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
}

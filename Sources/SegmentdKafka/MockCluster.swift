import CRdKafka
import Synchronization

/// librdkafka's in-process mock Kafka cluster, listening on 127.0.0.1 (ephemeral ports).
///
/// Clients connect to `bootstrapServers` over real TCP exactly as to a broker, which is why
/// tests and the bench use it: the code under test is the production code path.
/// See /work/shared/notes/kafka-on-this-machine.md for what it does *not* do (retention is
/// 5 MiB/partition, CreateTopics unsupported, transactions not enforced).
///
/// `@unchecked Sendable`: the mock API functions post operations to the mock cluster's own
/// thread and are safe to call from any thread; our only mutable state (the cluster pointer,
/// nulled by `close`) is guarded by a mutex.
public final class MockCluster: @unchecked Sendable {
    /// Host handle: `rd_kafka_mock_cluster_new` needs an `rd_kafka_t` to run on; it must
    /// outlive the cluster, so it is destroyed after it.
    private let host: OpaquePointer
    private let cluster: Mutex<SendablePointer?>
    public let bootstrapServers: String
    public let brokerCount: Int

    public init(brokers: Int = 1) throws {
        precondition(brokers >= 1)
        // A quiet producer handle that never produces; it just hosts the mock cluster threads.
        let conf = try KafkaConfig(["log_level": "3"]).makeConf()
        host = try makeHandle(RD_KAFKA_PRODUCER, conf: conf, context: "MockCluster host handle")
        guard let mc = rd_kafka_mock_cluster_new(host, Int32(brokers)) else {
            rd_kafka_destroy(host)
            throw KafkaError(RD_KAFKA_RESP_ERR__FAIL, context: "rd_kafka_mock_cluster_new",
                             detail: "could not create mock cluster with \(brokers) broker(s)")
        }
        cluster = Mutex(SendablePointer(mc))
        bootstrapServers = String(cString: rd_kafka_mock_cluster_bootstraps(mc))
        brokerCount = brokers
        // Its listeners exist once `rd_kafka_mock_cluster_new` returns; no client connected yet.
        MockClusterSockets.disableNagle(listeningOn: MockClusterSockets.ports(of: bootstrapServers))
    }

    deinit { close() }

    private func withCluster<T>(_ what: String, _ body: (OpaquePointer) throws -> T) throws -> T {
        try cluster.withLock { mc in
            guard let mc else {
                throw KafkaError(RD_KAFKA_RESP_ERR__STATE, context: what, detail: "mock cluster is closed")
            }
            return try body(mc.pointer)
        }
    }

    /// Creates a topic directly in the mock (it does not implement the CreateTopics request).
    /// Create topics before clients subscribe to them.
    public func createTopic(_ name: String, partitions: Int32, replicationFactor: Int32 = 1) throws {
        try withCluster("createTopic \(name)") { mc in
            try KafkaError.check(rd_kafka_mock_topic_create(mc, name, partitions, replicationFactor),
                                 "rd_kafka_mock_topic_create \(name) (\(partitions) partitions)")
        }
    }

    /// Takes a broker down (closes its connections, refuses new ones) or brings it back up.
    /// Broker ids are 1...brokerCount.
    public func setBroker(_ id: Int32, up: Bool) throws {
        try withCluster("setBroker \(id)") { mc in
            let err = up ? rd_kafka_mock_broker_set_up(mc, id) : rd_kafka_mock_broker_set_down(mc, id)
            try KafkaError.check(err, "rd_kafka_mock_broker_set_\(up ? "up" : "down") \(id)")
        }
    }

    /// Makes the next `errors.count` requests of Kafka API `apiKey` (0 Produce, 24
    /// AddPartitionsToTxn, 26 EndTxn, …) fail with these error codes, in order (fault injection).
    public func pushRequestErrors(apiKey: Int16, errors: [Int32]) throws {
        try withCluster("pushRequestErrors \(apiKey)") { mc in
            let codes = errors.map { rd_kafka_resp_err_t(rawValue: $0) }
            codes.withUnsafeBufferPointer { rd_kafka_mock_push_request_errors_array(mc, apiKey, codes.count, $0.baseAddress) }
        }
    }

    /// Adds round-trip latency to a broker (fault injection for timeouts).
    public func setBrokerRtt(_ id: Int32, ms: Int32) throws {
        try withCluster("setBrokerRtt \(id)") { mc in
            try KafkaError.check(rd_kafka_mock_broker_set_rtt(mc, id, ms), "rd_kafka_mock_broker_set_rtt \(id)")
        }
    }

    /// Destroys the cluster, then its host handle. Idempotent. Clients still connected will
    /// see their broker disappear.
    public func close() {
        let mc = cluster.withLock { mc -> SendablePointer? in
            defer { mc = nil }
            return mc
        }
        guard let mc else { return }
        rd_kafka_mock_cluster_destroy(mc.pointer)
        rd_kafka_destroy(host)
    }
}

/// An opaque C handle that is safe to pass between threads because the C API it belongs to is
/// thread-safe (used only for such handles).
struct SendablePointer: @unchecked Sendable {
    let pointer: OpaquePointer
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
}

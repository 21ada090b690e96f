import SegmentdKafka

/// The broker `segmentd run` starts when none is configured: librdkafka's mock cluster, in
/// this process, speaking the Kafka protocol over TCP on 127.0.0.1. Every client (the daemon's
/// own, kcat, other programs) connects to its bootstrap address like to any broker.
///
/// What it is not: durable (it lives in memory and dies with the process), compacting, or
/// enforcing read_committed; it keeps about 5 MiB per partition. It is for trying segmentd
/// and for tests; production uses a real cluster (see deploy/).
public final class EmbeddedBroker: @unchecked Sendable {
    public let cluster: MockCluster
    public var bootstrapServers: String { cluster.bootstrapServers }

    /// Starts the broker and creates the daemon's topics (input, output, dead letters,
    /// changelog, and the repartition topic unless `repartition: off`) with `partitions` each,
    /// and the instances topic with one (the mock implements no CreateTopics, so they must
    /// exist before anyone subscribes).
    public init(config: DaemonConfig, partitions: Int32) throws {
        cluster = try MockCluster(brokers: 1)
        var topics = [config.inputTopic, config.outputTopic, config.deadLetterTopic, config.changelogTopic]
        if config.repartition == .auto { topics.append(config.repartitionTopic) }
        for t in topics { try cluster.createTopic(t, partitions: partitions) }
        // Where instances publish their partitions and HTTP address (one partition, as on a
        // real cluster; the mock does not compact).
        try cluster.createTopic(config.instancesTopic, partitions: 1)
    }

    public func close() { cluster.close() }
}

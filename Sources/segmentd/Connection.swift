import ArgumentParser
import SegmentdDaemon
import SegmentdKafka

/// The connection settings of `run`, for the commands that talk to a cluster (`produce`,
/// `tail`, `report --brokers`): defaults, then `--config FILE`, then `SEGMENTD_*` environment
/// variables, then flags.
struct ConnectionOptions: ParsableArguments {
    @Option(help: "A YAML configuration file (the settings of run).")
    var config: String?
    @Option(help: "Bootstrap servers (host:port,…); run also takes embedded (an in-memory broker to try segmentd).")
    var brokers: String?
    @Option(name: .customLong("kafka"), help: "A librdkafka property for all clients, as name=value (repeatable).")
    var kafka: [String] = []

    /// The settings, with `flags` (setting name, flag value) applied after the environment,
    /// and `clients` (`consumer` or `producer`, name=value flags) after `--kafka`.
    func settings(_ flags: [(String, String?)] = [], clients: [(String, [String])] = []) throws -> DaemonConfig {
        try connectionSettings(configFile: config, brokers: brokers, kafka: kafka, flags: flags, clients: clients)
    }
}

/// Defaults, then the configuration file, then `SEGMENTD_*` variables, then the flags: the
/// one way every command resolves its settings.
func connectionSettings(configFile: String?, brokers: String?, kafka: [String], flags: [(String, String?)],
                        clients: [(String, [String])] = []) throws -> DaemonConfig {
    var c = DaemonConfig()
    if let configFile { try c.apply(yaml: try readFile(configFile), file: configFile) }
    try c.apply(environment: currentEnvironment())
    for (k, v) in [("brokers", brokers)] + flags {
        if let v { try c.set(k, v, origin: "flag --\(k.replacingOccurrences(of: "_", with: "-"))") }
    }
    for (client, properties) in [("kafka", kafka)] + clients {
        for kv in properties {
            guard let eq = kv.firstIndex(of: "=") else { throw ValidationError("--\(client) '\(kv)' is not name=value") }
            try c.set("\(client)." + kv[..<eq], String(kv[kv.index(after: eq)...]), origin: "flag --\(client)")
        }
    }
    return c
}

extension DaemonConfig {
    /// Refuses settings without a real cluster (tools other than `run` start no embedded broker).
    func requireCluster(for command: String) throws {
        guard !brokers.isEmpty && !usesEmbeddedBroker else {
            throw ConfigError(origin: "brokers", message: "no brokers: \(command) works on an existing cluster; give --brokers host:port,…, or brokers in --config or SEGMENTD_BROKERS (it starts no embedded broker)")
        }
    }

    /// The number of partitions of `topic`, or a failure that says what to check: the
    /// cluster cannot be reached (69), the topic does not exist (65).
    func partitionCount(of topic: String, timeoutMs: Int = 10_000) throws -> Int32 {
        let reader = try TopicReader(config: KafkaConfig(kafka.merging(consumer) { $1 }.merging(["bootstrap.servers": brokers]) { $1 }), topic: topic)
        do {
            let n = try reader.partitionCount(timeoutMs: timeoutMs)
            guard n > 0 else { throw CommandFailure(.dataError, "topic \(topic) does not exist on \(brokers)") }
            return n
        } catch let e as KafkaError where e.isBrokerUnreachable || e.isTimeout {
            throw CommandFailure(.unavailable, "cannot reach the Kafka brokers \(brokers) within \(timeoutMs / 1000) s (\(e.message)). Check the setting brokers (the cluster's listeners as host:port), that the cluster is running, that this host can connect to it, and the security settings (kafka.security.protocol, SASL, TLS).")
        } catch let e as KafkaError where e.isUnknownTopic {
            throw CommandFailure(.dataError, "topic \(topic) does not exist on \(brokers): create it (deploy/create-topics.sh) or check the topic setting")
        }
    }
}

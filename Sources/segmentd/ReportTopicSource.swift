import ArgumentParser
import SegmentdDaemon
import SegmentdEngine
import SegmentdKafka

/// Where `segmentd report` reads transitions on a cluster: the output topic, with the same
/// connection settings as `run` (configuration file, then `SEGMENTD_*` environment, then
/// flags), read_committed unless configured otherwise, from the beginning to the end that
/// exists when the read starts.
struct ReportTopicSource {
    var config: DaemonConfig
    var timeoutMs: Int

    init(configFile: String?, brokers: String?, outputTopic: String?, kafka: [String], timeout: String) throws {
        var c = DaemonConfig()
        if let configFile { try c.apply(yaml: try readFile(configFile), file: configFile) }
        try c.apply(environment: currentEnvironment())
        if let brokers { try c.set("brokers", brokers, origin: "flag --brokers") }
        if let outputTopic { try c.set("output_topic", outputTopic, origin: "flag --output-topic") }
        for kv in kafka {
            guard let eq = kv.firstIndex(of: "=") else { throw ValidationError("--kafka '\(kv)' is not name=value") }
            try c.set("kafka." + kv[..<eq], String(kv[kv.index(after: eq)...]), origin: "flag --kafka")
        }
        guard !c.brokers.isEmpty && !c.usesEmbeddedBroker else {
            throw ConfigError(origin: "brokers", message: "no brokers: report reads the output topic of an existing cluster; give --brokers host:port,…, or brokers in --config or SEGMENTD_BROKERS (it starts no embedded broker)")
        }
        guard let t = DurationSpec(parsing: timeout), t.millis > 0 else {
            throw ValidationError("--topic-timeout '\(timeout)' is not a duration like 30s, 2m")
        }
        config = c
        timeoutMs = Int(t.millis)
    }

    var description: String { "\(config.outputTopic) on \(config.brokers)" }

    /// Hands every record value to `body`, per partition in offset order (so each contact's
    /// transitions in order), with a position for error messages.
    func forEachRecord(_ body: (_ value: [UInt8], _ position: String) -> Void) throws {
        let reader = try TopicReader(config: KafkaConfig(config.consumerProperties()), topic: config.outputTopic)
        try reader.readAll(timeoutMs: timeoutMs) { record in
            body(record.value, "\(record.topic)[\(record.partition)]@\(record.offset)")
        }
    }
}

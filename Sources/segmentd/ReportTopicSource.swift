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
        let c = try connectionSettings(configFile: configFile, brokers: brokers, kafka: kafka, flags: [("output_topic", outputTopic)])
        try c.requireCluster(for: "report")
        guard let t = DurationSpec(parsing: timeout), t.millis > 0 else {
            throw ValidationError("--topic-timeout '\(timeout)' is not a duration like 30s, 2m")
        }
        config = c
        timeoutMs = Int(t.millis)
    }

    var description: String { "\(config.outputTopic) on \(config.brokers)" }

    /// Hands every record value to `body`, per partition in offset order (so each contact's
    /// transitions in order), with a position for error messages. With `seekTo`, each
    /// partition starts at its first record written at or after `seekTo` less `max_future`
    /// (offsets for times): a transition's record is written at most `max_future` before its
    /// instant (events further ahead are refused), so every transition at or after `seekTo`
    /// is read, and those before it only set where contacts start.
    func forEachRecord(seekTo: Millis? = nil, _ body: (_ value: [UInt8], _ position: String) -> Void) throws {
        // An unreachable cluster or a missing topic is said as such (69, 65), not as a timeout.
        let n = try config.partitionCount(of: config.outputTopic)
        let reader = try TopicReader(config: KafkaConfig(config.consumerProperties()), topic: config.outputTopic)
        let starts = try seekTo.map { t in
            try reader.offsets(atOrAfter: max(0, t - config.maxFuture), partitions: Array(0..<n), timeoutMs: timeoutMs)
        } ?? [:]
        try reader.readAll(from: starts, timeoutMs: timeoutMs) { record in
            body(record.value, "\(record.topic)[\(record.partition)]@\(record.offset)")
        }
    }
}

import CRdKafka

/// The librdkafka this process runs with (the shared library's, not the headers').
public enum Librdkafka {
    /// Like `2.0.2`. Several of segmentd's defaults work around 2.0.2 (the fetch stall, the
    /// sticky assignor at shutdown): the version is printed by `--version` and logged at start.
    public static var version: String { String(cString: rd_kafka_version_str()) }
}

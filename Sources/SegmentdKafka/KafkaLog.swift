import CRdKafka
import Synchronization

/// One log line of librdkafka (what it would otherwise print to stderr as `%3|…|FAIL|…`).
public struct KafkaLogLine: Sendable {
    /// syslog severity: 0 emergency … 3 error, 4 warning, 5 notice, 6 info, 7 debug.
    public var severity: Int32
    /// librdkafka's facility, e.g. `FAIL` (a broker connection failed), `ERROR`, `TXNERR`.
    public var facility: String
    /// The client instance, e.g. `rdkafka#producer-1`.
    public var client: String
    /// The text, without librdkafka's `[thrd:…]: ` prefix naming its thread.
    public var message: String

    public init(severity: Int32, facility: String, client: String, text: String) {
        self.severity = severity
        self.facility = facility
        self.client = client
        if text.hasPrefix("[thrd:"), let end = text.firstRange(of: "]: ") {
            message = String(text[end.upperBound...])
        } else {
            message = text
        }
    }

    /// For a failed connection to a broker (facility `FAIL`): the broker as librdkafka names
    /// it (`host:port`, without its `/id` or `/bootstrap` suffix) and why, e.g.
    /// `Connect to ipv4#127.0.0.1:1 failed: Connection refused (after 0ms in state CONNECT)`.
    public var unreachableBroker: (broker: String, reason: String)? {
        // e.g. `127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection refused …`
        guard facility == "FAIL", let sep = message.firstRange(of: ": ") else { return nil }
        var broker = message[..<sep.lowerBound]
        if let slash = broker.lastIndex(of: "/") { broker = broker[..<slash] }
        return (String(broker), String(message[sep.upperBound...]))
    }
}

extension KafkaLogLine {
    /// An `ERROR` line that only repeats connection failures already logged as `FAIL`
    /// (`1/1 brokers are down`, or the failure itself as an error event).
    public var repeatsConnectionFailure: Bool {
        facility == "ERROR" && (message.hasSuffix("brokers are down") || message.contains(": Connect to ") || message.contains(": Failed to resolve "))
    }
}

/// Where librdkafka's log lines go. By default librdkafka prints them on stderr itself; once
/// `route(to:)` was called, every client created afterwards (consumers, producers, readers, the
/// embedded broker) hands them to the sink instead, from librdkafka's own threads.
public enum KafkaLog {
    private static let sink = Mutex<(@Sendable (KafkaLogLine) -> Void)?>(nil)

    /// Sends the log lines of every client created from now on to `handler` (which must be
    /// thread-safe: librdkafka calls it from its internal threads).
    public static func route(to handler: @escaping @Sendable (KafkaLogLine) -> Void) {
        sink.withLock { $0 = handler }
    }

    /// Installs the log callback on `conf` when a sink is set.
    static func install(on conf: OpaquePointer) {
        guard sink.withLock({ $0 != nil }) else { return }
        rd_kafka_conf_set_log_cb(conf) { rk, level, facility, text in
            let line = KafkaLogLine(
                severity: level,
                facility: facility.map { String(cString: $0) } ?? "",
                client: rk.map { String(cString: rd_kafka_name($0)) } ?? "",
                text: text.map { String(cString: $0) } ?? "")
            KafkaLog.deliver(line)
        }
    }

    static func deliver(_ line: KafkaLogLine) {
        sink.withLock { $0 }?(line)
    }
}

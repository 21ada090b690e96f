import Logging
import SegmentdDaemon
import SegmentdEngine
import SegmentdKafka
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// swift-log handler writing to stderr: readable text on a terminal, or one JSON object per
/// line for log shippers (`log_format: json`).
struct StderrLogHandler: LogHandler {
    var json: Bool
    var label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let level = event.level, message = event.message
        let ts = stamp()
        if json {
            var b: [UInt8] = []
            b.append(contentsOf: #"{"ts":"\#(ts)","level":"\#(level.rawValue)","logger":"\#(label)","msg":"#.utf8)
            JSONWriter.string(message.description, to: &b)
            b.append(contentsOf: "}\n".utf8)
            printErr(String(decoding: b, as: UTF8.self))
        } else {
            printErr("\(ts) \(level.rawValue.uppercased()) \(label): \(message)\n")
        }
    }
}

/// The daemon's log sinks over swift-log, per the configuration.
func makeLogging(_ c: DaemonConfig) -> (info: LogSink, debug: LogSink?, error: LogSink) {
    let l = setUpLogging(json: c.logJSON, debug: c.logDebug)
    let info: LogSink = { message in l.info("\(message)") }
    let debug: LogSink = { message in l.debug("\(message)") }
    let error: LogSink = { message in l.error("\(message)") }
    return (info, c.logDebug ? debug : nil, error)
}

/// Sets up swift-log on stderr (text or JSON lines; once per process, before any Kafka client
/// exists) and routes librdkafka's log lines through it. Returns segmentd's logger.
func setUpLogging(json: Bool, debug: Bool) -> Logger {
    // Libraries (Hummingbird) log through the same handler and format.
    LoggingSystem.bootstrap { label in StderrLogHandler(json: json, label: label) }
    var logger = Logger(label: "segmentd")
    logger.logLevel = debug ? .debug : .info
    var kafkaLogger = Logger(label: "librdkafka")
    kafkaLogger.logLevel = logger.logLevel
    routeKafkaLogs(to: kafkaLogger)
    return logger
}

/// librdkafka's log lines through swift-log, at their severity, instead of its raw `%3|…`
/// lines on stderr. A broker that cannot be reached is said once (per broker, again after
/// five minutes) in one line with what to check; librdkafka's own line for each retry is at
/// debug level.
func routeKafkaLogs(to logger: Logger) {
    let lastReported = Mutex<[String: Int64]>([:])
    KafkaLog.route { line in
        let text = "\(line.client) \(line.facility): \(line.message)"
        if let (broker, reason) = line.unreachableBroker {
            let now = Daemon.wallMs()
            let due = lastReported.withLock { last in
                guard now - (last[broker] ?? .min / 2) >= 300_000 else { return false }
                last[broker] = now
                return true
            }
            if due {
                logger.error("cannot reach Kafka broker \(broker): \(reason). Check the setting brokers (it must name the cluster's listeners as host:port), that the cluster is running, that this host can connect to it (network, firewall, advertised listeners) and the security settings (kafka.security.protocol, SASL, TLS).")
            }
            logger.debug("\(text)")
            return
        }
        if line.repeatsConnectionFailure {
            // Already said, per broker, with what to check.
            logger.debug("\(text)")
            return
        }
        switch line.severity {
        case ...3: logger.error("\(text)")
        case 4: logger.warning("\(text)")
        case 5: logger.notice("\(text)")
        case 6: logger.info("\(text)")
        default: logger.debug("\(text)")
        }
    }
}

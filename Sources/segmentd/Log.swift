import Logging
import SegmentdDaemon
import SegmentdEngine

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
    let json = c.logJSON
    // Libraries (Hummingbird) log through the same handler and format.
    LoggingSystem.bootstrap { label in StderrLogHandler(json: json, label: label) }
    var logger = Logger(label: "segmentd", factory: { label in StderrLogHandler(json: json, label: label) })
    logger.logLevel = c.logDebug ? .debug : .info
    let l = logger
    let info: LogSink = { message in l.info("\(message)") }
    let debug: LogSink = { message in l.debug("\(message)") }
    let error: LogSink = { message in l.error("\(message)") }
    return (info, c.logDebug ? debug : nil, error)
}

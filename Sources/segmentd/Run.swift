import ArgumentParser
import Foundation
import SegmentdDaemon
import SegmentdEngine
import SegmentdHTTP
import SegmentdKafka
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Set by SIGTERM/SIGINT in `demo` and `loadgen` (simple foreground tools); `run` leaves
/// signals to its ServiceGroup.
let shutdownRequested = Atomic<Bool>(false)

/// A parent may hand us these signals blocked (posix_spawn keeps the mask): unblock them, or
/// SIGTERM from a supervisor would never be delivered, whoever handles it.
func unblockSignals() {
    var set = sigset_t()
    sigemptyset(&set)
    sigaddset(&set, SIGTERM)
    sigaddset(&set, SIGINT)
    sigaddset(&set, SIGHUP)
    sigprocmask(SIG_UNBLOCK, &set, nil)
    signal(SIGPIPE, SIG_IGN)
}

/// Signal handlers of the foreground tools (`demo`, `loadgen`).
func installSignalHandlers() {
    unblockSignals()
    signal(SIGTERM) { _ in shutdownRequested.store(true, ordering: .relaxed) }
    signal(SIGINT) { _ in shutdownRequested.store(true, ordering: .relaxed) }
}

func stamp() -> String {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return EventTime.format(Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000)
}

let stderrLog: LogSink = { line in printErr("\(stamp()) segmentd: \(line)\n") }

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the daemon: consume events from Kafka, emit segment transitions, exactly once.",
        discussion: """
        Settings come from defaults, then --config FILE (YAML), then SEGMENTD_* environment \
        variables (SEGMENTD_BROKERS, SEGMENTD_KAFKA_SASL_MECHANISM=…), then flags; later wins. \
        brokers is required; --brokers embedded starts an in-memory broker (librdkafka's mock \
        cluster) on 127.0.0.1 with the four topics, to try segmentd.

        Settings:
        \(DaemonConfig.keys.map { "  \($0.0): \($0.1)" }.joined(separator: "\n"))
        """
    )

    @OptionGroup var connection: ConnectionOptions
    @Option(name: .customLong("group-id"), help: setting("group_id")) var groupId: String?
    @Option(name: .customLong("input-topic"), help: setting("input_topic")) var inputTopic: String?
    @Option(name: .customLong("output-topic"), help: setting("output_topic")) var outputTopic: String?
    @Option(name: .customLong("dead-letter-topic"), help: setting("dead_letter_topic")) var deadLetterTopic: String?
    @Option(name: .customLong("changelog-topic"), help: setting("changelog_topic")) var changelogTopic: String?
    @Option(help: setting("model")) var model: String?
    @Option(name: .customLong("processing-guarantee"), help: setting("processing_guarantee")) var guarantee: String?
    @Option(help: setting("lateness")) var lateness: String?
    @Option(name: .customLong("idle-advance"), help: setting("idle_advance")) var idleAdvance: String?
    @Option(name: .customLong("max-record-bytes"), help: setting("max_record_bytes")) var maxRecordBytes: String?
    @Option(name: .customLong("batch-size"), help: setting("batch_size")) var batchSize: String?
    @Option(help: setting("threads")) var threads: String?
    @Option(name: .customLong("max-future"), help: setting("max_future")) var maxFuture: String?
    @Option(name: .customLong("stall-timeout"), help: setting("stall_timeout")) var stallTimeout: String?
    @Option(name: .customLong("on-offset-reset"), help: setting("on_offset_reset")) var onOffsetReset: String?
    @Option(name: .customLong("transactional-id"), help: setting("transactional_id")) var transactionalId: String?
    @Option(help: setting("repartition")) var repartition: String?
    @Option(name: .customLong("repartition-topic"), help: setting("repartition_topic")) var repartitionTopic: String?
    @Option(name: .customLong("commit-interval"), help: setting("commit_interval")) var commitInterval: String?
    @Option(name: .customLong("commit-max-records"), help: setting("commit_max_records")) var commitMaxRecords: String?
    @Option(name: .customLong("group-instance-id"), help: setting("group_instance_id")) var groupInstanceId: String?
    @Option(name: .customLong("embedded-partitions"), help: setting("embedded_partitions")) var embeddedPartitions: String?
    @Option(name: .customLong("output-mode"), help: setting("output_mode")) var outputMode: String?
    @Option(name: .customLong("segment-mirror-topic"), help: setting("segment_mirror_topic")) var segmentMirrorTopic: String?
    @Option(name: .customLong("input-adapters"), help: setting("input_adapters")) var inputAdapters: String?
    @Option(name: .customLong("log-format"), help: setting("log_format")) var logFormat: String?
    @Option(name: .customLong("log-level"), help: setting("log_level")) var logLevel: String?
    @Option(name: .customLong("http-address"), help: setting("http_address")) var httpAddress: String?
    @Option(name: .customLong("http-token"), help: setting("http_token")) var httpToken: String?
    @Option(name: .customLong("consumer"), help: "A librdkafka property for the consumer only, as name=value (repeatable).")
    var consumer: [String] = []
    @Option(name: .customLong("producer"), help: "A librdkafka property for the producer only, as name=value (repeatable).")
    var producer: [String] = []

    /// A setting's help: its meaning from `DaemonConfig.keys`, declared once for the flag,
    /// the file and the environment.
    static func setting(_ key: String) -> ArgumentHelp {
        ArgumentHelp(DaemonConfig.keys.first { $0.0 == key }?.1 ?? key)
    }

    func resolvedConfig() throws -> DaemonConfig {
        let c = try connection.settings([
            ("group_id", groupId), ("input_topic", inputTopic), ("output_topic", outputTopic),
            ("dead_letter_topic", deadLetterTopic), ("changelog_topic", changelogTopic), ("model", model),
            ("processing_guarantee", guarantee), ("lateness", lateness), ("idle_advance", idleAdvance),
            ("max_record_bytes", maxRecordBytes), ("batch_size", batchSize), ("threads", threads), ("transactional_id", transactionalId),
            ("embedded_partitions", embeddedPartitions), ("http_address", httpAddress), ("http_token", httpToken),
            ("log_format", logFormat), ("log_level", logLevel), ("max_future", maxFuture),
            ("stall_timeout", stallTimeout), ("on_offset_reset", onOffsetReset), ("output_mode", outputMode),
            ("segment_mirror_topic", segmentMirrorTopic), ("input_adapters", inputAdapters),
            ("repartition", repartition), ("repartition_topic", repartitionTopic),
            ("commit_interval", commitInterval), ("commit_max_records", commitMaxRecords),
            ("group_instance_id", groupInstanceId),
        ], clients: [("consumer", consumer), ("producer", producer)])
        try c.checkConsistency()
        return c
    }

    /// The daemon's services are async (a ServiceGroup); the CLI's root command stays
    /// synchronous, so `replay` and the other commands run on the main thread with no
    /// dispatch main loop (which also keeps them runnable under valgrind).
    func run() throws {
        try runBlocking { try await runDaemon() }
    }

    func runDaemon() async throws {
        var c = try resolvedConfig()
        let m = try loadModel(c.modelPath)
        let (stderrLog, debugLog, errorLog) = makeLogging(c)
        stderrLog("\(SegmentdVersion.description) starting")
        unblockSignals()
        var embedded: EmbeddedBroker?
        if c.usesEmbeddedBroker {
            let b = try EmbeddedBroker(config: c, partitions: c.embeddedPartitions)
            embedded = b
            c.brokers = b.bootstrapServers
            stderrLog("""
            brokers: embedded: started the embedded broker (librdkafka mock cluster, in memory, not for production) at \(b.bootstrapServers)
              topics: \(c.inputTopic), \(c.outputTopic), \(c.deadLetterTopic), \(c.changelogTopic)\(c.repartition == .auto ? ", " + c.repartitionTopic : "") (\(c.embeddedPartitions) partitions each)
              produce events:   segmentd produce events.ndjson --brokers \(b.bootstrapServers)   (or - for stdin; keyed by contact id, murmur2)
              read transitions: segmentd tail --brokers \(b.bootstrapServers) --from-beginning
              it lives in this process's memory: stop segmentd and it is gone
            """)
        }
        defer { embedded?.close() }
        let daemon = Daemon(config: c, model: m, log: stderrLog, debug: debugLog, error: errorLog)
        daemon.metrics.setBuildInfo(version: SegmentdVersion.number, librdkafka: Librdkafka.version)
        try await runServices(daemon, log: stderrLog)
    }
}

/// Why the daemon stopped on its own: a fatal error (exit status by its cause, see `ExitStatus`).
struct DaemonFailure: Error, CustomStringConvertible {
    var cause: any Error
    var description: String { "fatal: \(cause)" }
}

func currentEnvironment() -> [String: String] {
    var env: [String: String] = [:]
    var p = environ
    while let e = p.pointee {
        let s = String(cString: e)
        if let eq = s.firstIndex(of: "=") { env[String(s[..<eq])] = String(s[s.index(after: eq)...]) }
        p += 1
    }
    return env
}


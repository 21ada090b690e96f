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
    // One option per setting but brokers (in `connection`), each named after it: the property
    // `groupId` is the flag --group-id and the setting group_id (`settingFlags` reads them by name).
    @Option(help: setting("group_id")) var groupId: String?
    @Option(help: setting("input_topic")) var inputTopic: String?
    @Option(help: setting("output_topic")) var outputTopic: String?
    @Option(help: setting("dead_letter_topic")) var deadLetterTopic: String?
    @Option(help: setting("changelog_topic")) var changelogTopic: String?
    @Option(help: setting("repartition")) var repartition: String?
    @Option(help: setting("repartition_topic")) var repartitionTopic: String?
    @Option(help: setting("model")) var model: String?
    @Option(help: setting("processing_guarantee")) var processingGuarantee: String?
    @Option(help: setting("lateness")) var lateness: String?
    @Option(help: setting("duplicate_horizon")) var duplicateHorizon: String?
    @Option(help: setting("idle_advance")) var idleAdvance: String?
    @Option(help: setting("max_record_bytes")) var maxRecordBytes: String?
    @Option(help: setting("batch_size")) var batchSize: String?
    @Option(help: setting("threads")) var threads: String?
    @Option(help: setting("commit_interval")) var commitInterval: String?
    @Option(help: setting("commit_max_records")) var commitMaxRecords: String?
    @Option(help: setting("max_future")) var maxFuture: String?
    @Option(help: setting("stall_timeout")) var stallTimeout: String?
    @Option(help: setting("on_offset_reset")) var onOffsetReset: String?
    @Option(help: setting("transactional_id")) var transactionalId: String?
    @Option(help: setting("group_instance_id")) var groupInstanceId: String?
    @Option(help: setting("embedded_partitions")) var embeddedPartitions: String?
    @Option(help: setting("output_mode")) var outputMode: String?
    @Option(help: setting("segment_mirror_topic")) var segmentMirrorTopic: String?
    @Option(help: setting("input_adapters")) var inputAdapters: String?
    @Option(help: setting("http_address")) var httpAddress: String?
    @Option(help: setting("http_advertised_address")) var httpAdvertisedAddress: String?
    @Option(help: setting("instances_topic")) var instancesTopic: String?
    @Option(help: setting("http_token")) var httpToken: String?
    @Option(help: setting("http_contact_ids")) var httpContactIds: String?
    @Option(help: setting("log_format")) var logFormat: String?
    @Option(help: setting("log_level")) var logLevel: String?
    @Option(name: .customLong("consumer"), help: "A librdkafka property for the consumer only, as name=value (repeatable).")
    var consumer: [String] = []
    @Option(name: .customLong("producer"), help: "A librdkafka property for the producer only, as name=value (repeatable).")
    var producer: [String] = []

    /// A setting's help: its meaning and default from `DaemonConfig.settings`, declared once
    /// for the flag, the file and the environment.
    static func setting(_ key: String) -> ArgumentHelp {
        ArgumentHelp(DaemonConfig.settings.first { $0.name == key }?.help ?? key)
    }

    /// The value of every setting flag given, by setting name (`groupId` is group_id).
    var settingFlags: [String: String] {
        var out: [String: String] = [:]
        for child in Mirror(reflecting: self).children {
            guard let label = child.label, label.hasPrefix("_"), let option = child.value as? Option<String?> else { continue }
            var name = ""
            for ch in label.dropFirst() {
                if ch.isUppercase { name += "_" + ch.lowercased() } else { name.append(ch) }
            }
            if let value = option.wrappedValue { out[name] = value }
        }
        return out
    }

    func resolvedConfig() throws -> DaemonConfig {
        let given = settingFlags
        let c = try connection.settings(DaemonConfig.settings.map { ($0.name, given[$0.name]) }.filter { $0.0 != "brokers" },
                                        clients: [("consumer", consumer), ("producer", producer)])
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
              topics: \(c.inputTopic), \(c.outputTopic), \(c.deadLetterTopic), \(c.changelogTopic)\(c.repartition == .auto ? ", " + c.repartitionTopic : "") (\(c.embeddedPartitions) partitions each), \(c.instancesTopic) (1 partition)
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


import ArgumentParser
import SegmentdDaemon
import SegmentdKafka

#if canImport(Glibc)
import Glibc
#endif

struct Tail: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Follow the transitions on the output topic and print them readably.",
        discussion: """
        Reads output_topic read_committed (only transitions of committed transactions), from \
        its end (or --from-beginning), and prints one line per transition: when, contact, \
        group: from -> to, and the cause, as demo does. Ctrl-C stops. Connection settings as \
        for run: --config, SEGMENTD_* variables, --brokers, --kafka.
        """
    )

    @OptionGroup var connection: ConnectionOptions
    @Option(name: .customLong("output-topic"), help: "The topic (default: output_topic of the settings, segment-transitions).")
    var outputTopic: String?
    @Flag(name: .customLong("from-beginning"), help: "Start at the beginning of the topic instead of its end.")
    var fromBeginning = false
    @Option(help: "Stop after this many transitions (0: follow until Ctrl-C).")
    var count: Int = 0

    func run() throws {
        installSignalHandlers()
        signal(SIGPIPE, SIG_IGN)
        _ = setUpLogging(json: false, debug: false)
        let c = try connection.settings([("output_topic", outputTopic)])
        try c.requireCluster(for: "tail")
        _ = try c.partitionCount(of: c.outputTopic)
        var props = c.kafka.merging(c.consumer) { $1 }
        props["bootstrap.servers"] = c.brokers
        // A group of its own (nothing committed): every tail sees every transition.
        props["group.id"] = "segmentd-tail-\(UInt64.random(in: 0...UInt64.max))"
        props["auto.offset.reset"] = fromBeginning ? "earliest" : "latest"
        props["isolation.level"] = props["isolation.level"] ?? "read_committed"
        // Alone in its group: the eager range assignor (librdkafka 2.0.2's cooperative-sticky
        // one asserts when closed before its first assignment, librdkafka#4312).
        props["partition.assignment.strategy"] = "range"
        let consumer = try KafkaConsumer(config: KafkaConfig(props), rebalanceHandler: DefaultRebalanceHandler())
        defer { try? consumer.close() }
        try consumer.subscribe(topics: [c.outputTopic])
        let out = OutputBuffer(fd: 1)
        var shown = 0
        while !shutdownRequested.load(ordering: .relaxed) && (count == 0 || shown < count) {
            for record in try consumer.poll(maxRecords: count == 0 ? 1000 : count - shown, timeoutMs: 100) {
                out.buffer.append(contentsOf: (readableTransition(record.value) + "\n").utf8)
                shown += 1
            }
            try out.flush()
        }
    }
}

/// One transition (CloudEvents JSON, structured or binary mode's `data`) as a line a person
/// reads: `at  contact  group: from -> to  (cause)`.
func readableTransition(_ value: [UInt8]) -> String {
    let s = String(decoding: value, as: UTF8.self)
    func field(_ k: String) -> String {
        guard let r = s.firstRange(of: "\"\(k)\":") else { return "?" }
        let rest = s[r.upperBound...]
        if rest.hasPrefix("null") { return "(none)" }
        return String(rest.dropFirst().prefix { $0 != "\"" })
    }
    let cause = s.contains(#""kind":"time""#) ? "time passed"
        : s.contains(#""kind":"model""#) ? "model changed" : "event \(field("event_type"))"
    return "\(field("at"))  \(field("contact_id"))  \(field("group")): \(field("from")) -> \(field("to"))  (\(cause))"
}

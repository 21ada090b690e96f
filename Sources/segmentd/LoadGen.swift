import ArgumentParser
import Foundation
import SegmentdDaemon
import SegmentdEngine
import SegmentdKafka

struct LoadGen: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loadgen",
        abstract: "Produce realistic synthetic B2B engagement traffic to any broker.",
        discussion: """
        Subscribes, opens (some machine opens), clicks, pricing and docs visits, downloads, demo \
        forms, meetings, unsubscribes, bounces, CRM stages and traits, in both input shapes, with \
        about 3% late, 2% duplicate and --bad-fraction malformed records, keyed by contact id. \
        Event time starts now and advances --day-seconds of wall time per simulated day.
        """
    )

    @OptionGroup var connection: ConnectionOptions
    @Option(help: "Input topic (default: input_topic of the settings, engagement-events).") var topic: String?
    @Option(help: "Records per second.") var rate: Int = 1000
    @Option(help: "Seconds to run (0: until Ctrl-C).") var seconds: Int = 60
    @Option(help: "Number of distinct contacts.") var contacts: Int = 10_000
    @Option(name: .customLong("day-seconds"), help: "Wall seconds per simulated day of event time.") var daySeconds: Double = 86_400
    @Option(name: .customLong("bad-fraction"), help: "Fraction of malformed records.") var badFraction: Double = 0.01

    func run() throws {
        installSignalHandlers()
        _ = setUpLogging(json: false, debug: false)
        let c = try connection.settings([("input_topic", topic)])
        try c.requireCluster(for: "loadgen")
        _ = try c.partitionCount(of: c.inputTopic)
        let topic = c.inputTopic
        var props = c.kafka.merging(c.producer) { $1 }
        props["bootstrap.servers"] = c.brokers
        props["linger.ms"] = props["linger.ms"] ?? "10"
        props["compression.type"] = props["compression.type"] ?? "lz4"
        props["partitioner"] = props["partitioner"] ?? "murmur2_random"
        let producer = try KafkaProducer(config: KafkaConfig(props))
        // Event time per record: one simulated day per `daySeconds` of wall time.
        let step = max(1, Int64(86_400_000 / max(daySeconds, 0.001) / Double(max(rate, 1))))
        // The event times it will cover end at the wall clock (for a run without end, they start
        // a year back), so a daemon's future-time guard (max_future) accepts them.
        let span = seconds > 0 ? Int64(seconds) * Int64(max(rate, 1)) * step : 365 * 86_400_000
        var stream = SyntheticStream(contacts: contacts, start: Daemon.wallMs() - span, step: step, badFraction: badFraction)
        let start = Date()
        var sent = 0
        var lastReport = start
        while !shutdownRequested.load(ordering: .relaxed) {
            let elapsed = Date().timeIntervalSince(start)
            if seconds > 0 && elapsed >= Double(seconds) { break }
            let due = Int(elapsed * Double(rate))
            while sent < due {
                let r = stream.nextRecord()
                try producer.produce(topic: topic, key: r.key ?? Array("malformed".utf8), value: r.value)
                sent += 1
            }
            if Date().timeIntervalSince(lastReport) >= 5 {
                lastReport = Date()
                printErr("loadgen: \(sent) records sent (\(Int(Double(sent) / max(elapsed, 0.001))) records/s)\n")
            }
            usleep(2_000)
        }
        try producer.flush(timeoutMs: 60_000)
        try producer.close()
        printErr("loadgen: done, \(sent) records to \(topic) in \(String(format: "%.1f", Date().timeIntervalSince(start))) s\n")
    }
}

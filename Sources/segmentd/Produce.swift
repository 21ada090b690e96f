import ArgumentParser
import SegmentdDaemon
import SegmentdEngine
import SegmentdKafka

#if canImport(Glibc)
import Glibc
#endif

struct Produce: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Produce events (NDJSON, one per line) to the input topic, keyed by contact id.",
        discussion: """
        Reads records from FILE or standard input and produces each one unchanged to \
        input_topic, keyed by its contact id (contact_id, or userId of a Segment call) and \
        partitioned with murmur2 as Java clients do: a contact's events share a partition, the \
        one /contacts names. A record whose contact id cannot be read is produced without a key \
        (segmentd dead-letters it if it is bad). Idempotent, acks=all. Connection settings as \
        for run: --config, SEGMENTD_* variables, --brokers, --kafka.
        """
    )

    @Argument(help: "The NDJSON input file, or - for standard input.")
    var file: String = "-"
    @OptionGroup var connection: ConnectionOptions
    @Option(name: .customLong("input-topic"), help: "The topic (default: input_topic of the settings, engagement-events).")
    var inputTopic: String?
    @Option(help: "How long every record may take to be acknowledged, e.g. 30s.")
    var timeout: String = "30s"

    func run() throws {
        guard let limit = DurationSpec(parsing: timeout), limit.millis >= 1000 else {
            throw ValidationError("--timeout '\(timeout)' is not a duration of at least 1s (e.g. 30s)")
        }
        installSignalHandlers()
        _ = setUpLogging(json: false, debug: false)
        let c = try connection.settings([("input_topic", inputTopic)])
        try c.requireCluster(for: "produce")
        _ = try c.partitionCount(of: c.inputTopic)
        var props = c.kafka.merging(c.producer) { $1 }
        props["bootstrap.servers"] = c.brokers
        props["enable.idempotence"] = "true"
        props["acks"] = "all"
        props["partitioner"] = props["partitioner"] ?? "murmur2_random"
        props["linger.ms"] = props["linger.ms"] ?? "5"
        props["message.timeout.ms"] = String(limit.millis)
        let producer = try KafkaProducer(config: KafkaConfig(props))
        var decoder = EventDecoder(model: Model.defaultModel())
        var produced = 0, unkeyed = 0
        try LineReader(path: file).forEachLine(stop: { shutdownRequested.load(ordering: .relaxed) }) { line in
            if line.isEmpty { return }
            var key: [UInt8]?
            if case let .events(e, _, _) = decoder.decode(line) { key = Array(e.contactId) } else { unkeyed += 1 }
            try producer.produce(topic: c.inputTopic, key: key, value: Array(line))
            produced += 1
        }
        do {
            try producer.flush(timeoutMs: Int(limit.millis) + 5_000)
            try producer.close()
        } catch let e as KafkaError {
            let status = e.isTimeout || e.isDeliveryTimeout ? .temporaryFailure : CommandFailure(kafka: e).status
            throw CommandFailure(status, "records not acknowledged by \(c.brokers) within \(timeout): \(e.message)")
        }
        printErr("segmentd produce: \(produced) records to \(c.inputTopic) on \(c.brokers)\(unkeyed > 0 ? " (\(unkeyed) without a contact id, produced without a key)" : "")\n")
    }
}

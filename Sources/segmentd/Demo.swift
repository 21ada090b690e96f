import ArgumentParser
import Foundation
import Logging
import SegmentdDaemon
import SegmentdEngine
import SegmentdHTTP
import SegmentdKafka
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "See segmentd work in one command: embedded broker, synthetic B2B traffic, live transitions.",
        discussion: """
        Starts the embedded broker, runs the daemon on it, feeds a synthetic stream of B2B \
        engagement (both input shapes, with some bad records) whose event time runs one day \
        per second, and prints the transitions as they arrive on the output topic. Ctrl-C stops.
        """
    )

    @Option(help: "How long to run, in seconds (0: until Ctrl-C).") var seconds: Int = 30
    @Option(help: "Events per second to feed.") var rate: Int = 500
    @Option(help: "Number of contacts.") var contacts: Int = 200
    @Option(name: .customLong("http-address"), help: "host:port of the operations HTTP server (/contacts, /metrics, …) on the demo traffic, or off.")
    var httpAddress: String = "127.0.0.1:9464"
    @Option(name: .customLong("http-contact-ids"), help: "on (default for the demo's synthetic contacts) or off: whether the console and /segments/GROUP/SEGMENT list contact ids (http_contact_ids).")
    var httpContactIds: String = "on"

    func run() throws {
        installSignalHandlers()
        _ = setUpLogging(json: false, debug: false)
        var c = DaemonConfig()
        c.embeddedPartitions = 4
        c.idleAdvance = nil
        // One processing thread: the demo's few events need no more, and a short-lived
        // instance whose threads are still joining the group when it stops is where
        // librdkafka 2.0.2's cooperative-sticky assertion (librdkafka#4312) can fire.
        c.threads = 1
        try c.set("http_address", httpAddress, origin: "flag --http-address")
        try c.set("http_contact_ids", httpContactIds, origin: "flag --http-contact-ids")
        let broker = try EmbeddedBroker(config: c, partitions: c.embeddedPartitions)
        defer { broker.close() }
        c.brokers = broker.bootstrapServers
        stderrLog("embedded broker at \(broker.bootstrapServers); feeding \(rate) events/s for \(contacts) contacts, event time one day per second, ending at the wall clock")
        let daemon = Daemon(config: c, model: Model.defaultModel(), log: stderrLog)
        // The HTTP server on the demo's traffic (contact queries, metrics), until the demo ends.
        var http: (group: ServiceGroup, task: Task<Void, any Error>)?
        if let address = c.httpAddress {
            let server = try OperationsServer(daemon: daemon, address: address, token: nil)
            let app = server.makeApplication(onServerRunning: { port in
                stderrLog("HTTP on http://\(server.host):\(port): the live console at http://\(server.host):\(port)/; try /contacts/c-1, /segments, /segments/lifecycle/active_evaluator, /metrics")
            })
            var logger = Logger(label: "segmentd.http")
            logger.logLevel = .warning
            let group = ServiceGroup(configuration: .init(services: [.init(service: app)], logger: logger))
            http = (group, Task.detached { try await group.run() })
        }
        defer {
            if let http {
                try? runBlocking {
                    await http.group.triggerGracefulShutdown()
                    _ = try? await http.task.value
                }
            }
        }
        let daemonThread = Thread {
            do { try daemon.run() } catch { stderrLog("daemon failed: \(error)"); shutdownRequested.store(true, ordering: .relaxed) }
        }
        daemonThread.start()

        let producer = try KafkaProducer(config: ["bootstrap.servers": broker.bootstrapServers, "linger.ms": "5"])
        // Event time runs one day per second. It starts as many days back as the demo runs
        // seconds (a day per second of a run without end), so it never passes the wall clock
        // and the daemon's future-time guard (max_future) accepts every event.
        let daysBack = Int64(seconds > 0 ? seconds : 86_400)
        var stream = SyntheticStream(contacts: contacts, start: Daemon.wallMs() - daysBack * 86_400_000,
                                     step: max(1, 86_400_000 / Int64(max(rate, 1))))
        let tail = try KafkaConsumer(config: ["bootstrap.servers": broker.bootstrapServers, "group.id": "segmentd-demo-tail",
                                              "auto.offset.reset": "earliest"], rebalanceHandler: DefaultRebalanceHandler())
        try tail.subscribe(topics: [c.outputTopic])
        let start = Daemon.wallMs()
        var fed = 0
        var shown = 0
        while !shutdownRequested.load(ordering: .relaxed) {
            let elapsed = Daemon.wallMs() - start
            if seconds > 0 && elapsed > Int64(seconds) * 1000 { break }
            let due = Int(elapsed) * rate / 1000
            while fed < due {
                let r = stream.nextRecord()
                try producer.produce(topic: c.inputTopic, key: r.key, value: r.value)
                fed += 1
            }
            for rec in try tail.poll(maxRecords: 1000, timeoutMs: 50) {
                shown += 1
                print(readableTransition(rec.value))
            }
        }
        try producer.close()
        try tail.close()
        daemon.stop()
        while daemonThread.isExecuting { usleep(20_000) }
        let s = daemon.status
        stderrLog("demo done: fed \(fed) records; daemon: \(s.records) records, \(s.transitions) transitions, \(s.deadLetters) dead letters, \(s.transactions) transactions")
    }
}

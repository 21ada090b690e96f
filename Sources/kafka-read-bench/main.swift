// kafka-read-bench: how fast can a plain group consumer (through SegmentdKafka) read a topic?
//
//   kafka-read-bench --bootstrap HOST:PORT --topic T [--group G] [--expect N]
//   kafka-read-bench [--expect N] [--partitions P]     # self-hosted mock cluster
//
// Without --bootstrap it starts a MockCluster, creates the topic (16 partitions), produces N
// (default 1,000,000) ~150-byte JSON-ish records with lz4 (so 5 MiB/partition mock retention
// keeps them all), then measures the read. Prints figures only; no assertions.
import Foundation
import SegmentdKafka

func usage() -> Never {
    FileHandle.standardError.write(Data("""
    usage: kafka-read-bench [--bootstrap HOST:PORT --topic T] [--group G] [--expect N] [--partitions P] [--set prop=value]...

    """.utf8))
    exit(2)
}

var bootstrap: String?
var topic: String?
var group: String?
var expect = 1_000_000
var partitions: Int32 = 16
var extraConsumerProps: [String: String] = [:]
var args = CommandLine.arguments.dropFirst()
while let a = args.popFirst() {
    func value() -> String { guard let v = args.popFirst() else { usage() }; return v }
    switch a {
    case "--bootstrap": bootstrap = value()
    case "--topic": topic = value()
    case "--group": group = value()
    case "--expect": guard let n = Int(value().replacingOccurrences(of: "_", with: "")), n > 0 else { usage() }; expect = n
    case "--partitions": guard let n = Int32(value()), n > 0 else { usage() }; partitions = n
    case "--set":   // extra consumer property, e.g. --set queued.min.messages=1000000
        let kv = value().split(separator: "=", maxSplits: 1).map(String.init)
        guard kv.count == 2 else { usage() }
        extraConsumerProps[kv[0]] = kv[1]
    case "-h", "--help": usage()
    default: usage()
    }
}

func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
func fmt(_ x: Double, _ digits: Int = 2) -> String { String(format: "%.\(digits)f", x) }

do {
    var cluster: MockCluster?
    if bootstrap == nil {
        let mc = try MockCluster(brokers: 1)
        cluster = mc
        bootstrap = mc.bootstrapServers
        let t = topic ?? "bench-events"
        topic = t
        try mc.createTopic(t, partitions: partitions)
        print("mock cluster at \(mc.bootstrapServers), topic \(t) with \(partitions) partitions")

        let producer = try KafkaProducer(config: [
            "bootstrap.servers": mc.bootstrapServers,
            "compression.codec": "lz4",
            "linger.ms": "50",
            "batch.size": "1000000",
            "queue.buffering.max.messages": "1000000",
            "queue.buffering.max.kbytes": "1048576",
            "log_level": "4",
        ])
        let types = ["order.created", "order.paid", "invoice.sent", "shipment.dispatched", "refund.issued"]
        let start = now()
        var bytesTotal = 0
        for i in 0..<expect {
            let tenant = "tenant-\(i % 997)"
            let json = "{\"event_id\":\"evt-\(String(i, radix: 16))\",\"tenant\":\"\(tenant)\",\"type\":\"\(types[i % types.count])\","
                + "\"amount\":\(i % 100_000).\(i % 100),\"currency\":\"EUR\",\"ts\":\(1_700_000_000_000 + i),\"sku\":\"SKU-\(i % 4_999)\",\"qty\":\(i % 9 + 1)}"
            let value = Array(json.utf8)
            bytesTotal += value.count
            try producer.produce(topic: t, key: Array(tenant.utf8), value: value)
        }
        try producer.flush(timeoutMs: 120_000)
        let secs = now() - start
        print("produced \(expect) records (avg \(bytesTotal / expect) bytes) in \(fmt(secs)) s = \(Int(Double(expect) / secs)) records/s")
        try producer.close()
    }
    guard let bootstrap, let topic else { usage() }

    // Run 1: the owned-record API (poll -> [KafkaRecord]); run 2: the zero-copy view API.
    // Each run uses its own group so both read the topic from the beginning.
    let baseGroup = group ?? "kafka-read-bench-\(getpid())-\(Int(now()))"
    for zeroCopy in [false, true] {
        let consumer = try KafkaConsumer(config: KafkaConfig([
            "bootstrap.servers": bootstrap,
            "group.id": zeroCopy ? baseGroup + "-view" : baseGroup,
            "auto.offset.reset": "earliest",
            "log_level": "4",
            // fetch.max.bytes=5242880 and fetch.wait.max.ms=10 come from KafkaConsumer.defaultProperties.
        ].merging(extraConsumerProps, uniquingKeysWith: { _, b in b })), rebalanceHandler: DefaultRebalanceHandler())
        try consumer.subscribe(topics: [topic])

        let t0 = now()
        var first: Double?
        var count = 0
        var bytes = 0
        var lastProgress = t0
        while count < expect {
            if zeroCopy {
                let n = try consumer.poll(maxRecords: 10_000, timeoutMs: 100) { m in bytes += m.value.count }
                count += n
                if n > 0, first == nil { first = now() }
            } else {
                let batch = try consumer.poll(maxRecords: 10_000, timeoutMs: 100)
                if !batch.isEmpty, first == nil { first = now() }
                count += batch.count
                for r in batch { bytes += r.value.count }
            }
            if now() - lastProgress > 30 {
                lastProgress = now()
                FileHandle.standardError.write(Data("... \(count) records so far\n".utf8))
            }
        }
        let t1 = now()
        let steady = t1 - (first ?? t0)
        let label = zeroCopy ? "plain consumer (zero-copy view API)" : "plain consumer"
        print("\(label): \(count) records in \(fmt(steady, 3)) s = \(Int(Double(count) / steady)) records/s"
              + " (from first record; \(bytes / max(count, 1)) bytes avg; incl. group join \(fmt(t1 - t0, 2)) s)")
        try consumer.close()
    }
    cluster?.close()
} catch {
    FileHandle.standardError.write(Data("kafka-read-bench: \(error)\n".utf8))
    exit(1)
}

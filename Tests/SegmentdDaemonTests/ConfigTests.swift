import Testing
@testable import SegmentdDaemon

@Suite("Daemon configuration")
struct ConfigTests {
    @Test("file, then environment, then flags; later wins; librdkafka properties pass through")
    func precedence() throws {
        var c = DaemonConfig()
        try c.apply(yaml: """
        brokers: kafka:9092
        lateness: 30s
        batch_size: 500
        kafka:
          security.protocol: SASL_SSL
        producer:
          linger.ms: "20"
        """, file: "segmentd.yaml")
        try c.apply(environment: ["SEGMENTD_LATENESS": "1h", "SEGMENTD_KAFKA_SASL_MECHANISM": "PLAIN", "PATH": "/bin"])
        try c.set("batch_size", "2000", origin: "flag --batch-size")
        #expect(c.brokers == "kafka:9092")
        #expect(c.lateness == 3_600_000)
        #expect(c.batchSize == 2000)
        #expect(c.kafka["security.protocol"] == "SASL_SSL")
        #expect(c.kafka["sasl.mechanism"] == "PLAIN")
        #expect(c.producerProperties()["linger.ms"] == "20")
        #expect(c.producerProperties()["transactional.id"] == c.transactionalId)
        #expect(c.consumerProperties()["isolation.level"] == "read_committed")
    }

    func error(_ body: (inout DaemonConfig) throws -> Void) -> ConfigError? {
        var c = DaemonConfig()
        do { try body(&c); return nil } catch { return error as? ConfigError }
    }

    @Test("a bad value is refused with where it came from and why")
    func refusals() {
        var e = error { try $0.apply(yaml: "brokers: k:9092\nprocessing_guarantee: exactly-once\n", file: "s.yaml") }
        #expect(e?.origin == "s.yaml:2:23")
        #expect(e?.message.contains("exactly_once or at_least_once") == true)
        e = error { try $0.apply(yaml: "lateness: soon\n", file: "s.yaml") }
        #expect(e?.message.contains("not a duration") == true)
        e = error { try $0.apply(yaml: "duplicate_horizon: 23h\n", file: "s.yaml") }
        #expect(e?.origin == "s.yaml:1:20")
        #expect(e?.message.contains("outside 24h to 24d") == true)
        e = error { try $0.apply(yaml: "duplicate_horizon: 25d\n", file: "s.yaml") }
        #expect(e?.message.contains("outside 24h to 24d") == true)
        e = error { try $0.apply(yaml: "duplicate_horizon: a week\n", file: "s.yaml") }
        #expect(e?.message.contains("not a duration") == true)
        e = error { try $0.apply(yaml: "bach_size: 10\n", file: "s.yaml") }
        #expect(e?.message.contains("unknown setting 'bach_size'") == true)
        e = error { try $0.apply(yaml: "input_topic: bad topic!\n", file: "s.yaml") }
        #expect(e?.message.contains("not a valid Kafka topic name") == true)
        e = error { try $0.apply(yaml: "kafka: [a, b]\n", file: "s.yaml") }
        #expect(e?.origin == "s.yaml:1:8")
        e = error { try $0.apply(yaml: "batch_size: [\n", file: "s.yaml") }
        #expect(e?.origin.hasPrefix("s.yaml:") == true)
        e = error { try $0.apply(environment: ["SEGMENTD_BATCH_SIZE": "-3"]) }
        #expect(e?.origin == "environment SEGMENTD_BATCH_SIZE")
        e = error { try $0.set("http_address", "localhost", origin: "flag --http-address") }
        #expect(e?.description == "flag --http-address: http_address 'localhost' is not host:port (e.g. 127.0.0.1:9464) or off")
        e = error { try $0.set("input_adapters", "sendgrid,klaviyo", origin: "flag --input-adapters") }
        #expect(e?.message.contains("'klaviyo'") == true)
    }

    @Test("threads: default the cores, 1 allowed, a bad value refused with its line; each thread's identity")
    func threads() throws {
        var c = DaemonConfig()
        #expect(c.threads == DaemonConfig.cores())
        try c.apply(yaml: "threads: 1\n", file: "s.yaml")
        #expect(c.threads == 1)
        var e = error { try $0.apply(yaml: "brokers: k:9092\nthreads: 0\n", file: "s.yaml") }
        #expect(e?.origin == "s.yaml:2:10")
        #expect(e?.message == "threads '0' must be a positive whole number")
        e = error { try $0.apply(yaml: "threads: many\n", file: "s.yaml") }
        #expect(e?.message == "threads 'many' must be a positive whole number")
        e = error { try $0.set("threads", "1000", origin: "flag --threads") }
        #expect(e?.origin == "flag --threads")
        #expect(e?.message.hasPrefix("threads 1000 is above 256") == true)
        // Thread i: transactional id and (static membership) group instance id with -i.
        try c.set("transactional_id", "seg-a", origin: "test")
        #expect(c.forThread(1).producerProperties()["transactional.id"] == "seg-a-1")
        #expect(c.forThread(0).consumerProperties()["group.instance.id"] == nil)
        try c.set("group_instance_id", "auto", origin: "test")
        #expect(c.forThread(1).consumerProperties()["group.instance.id"] == "seg-a-1")
        try c.set("group_instance_id", "node-7", origin: "test")
        #expect(c.forThread(0).consumerProperties()["group.instance.id"] == "node-7-0")
        #expect(c.forThread(3).consumerProperties()["group.instance.id"] == "node-7-3")
        #expect(c.forThread(3).consumerProperties()["group.id"] == c.consumerProperties()["group.id"], "one group for every thread")
    }
}

@Suite("Daemon configuration: hardening")
struct HardeningConfigTests {
    @Test("max_future, stall_timeout and on_offset_reset are settings with checked values")
    func newSettings() throws {
        var c = DaemonConfig()
        #expect(c.maxFuture == 3_600_000)
        #expect(!c.failOnOffsetReset)
        try c.apply(yaml: "max_future: 15m\nstall_timeout: 30s\non_offset_reset: fail\n", file: "s.yaml")
        #expect(c.maxFuture == 900_000)
        #expect(c.stallTimeout == 30_000)
        #expect(c.failOnOffsetReset)
        try c.apply(environment: ["SEGMENTD_MAX_FUTURE": "2h"])
        #expect(c.maxFuture == 7_200_000)
        #expect(throws: ConfigError.self) { try c.set("max_future", "0s", origin: "flag --max-future") }
        #expect(throws: ConfigError.self) { try c.set("on_offset_reset", "ignore", origin: "flag --on-offset-reset") }
        #expect(throws: ConfigError.self) { try c.set("max_record_bytes", String(DaemonConfig.maxRecordBytesLimit + 1), origin: "flag") }
    }

    @Test("the producer is sized for a dead letter of the largest record; a smaller limit set by hand is refused at start")
    func deadLetterLimits() throws {
        var c = DaemonConfig()
        c.brokers = "kafka:9092"
        let p = c.producerProperties()
        let needed = c.maxRecordBytes + DaemonConfig.deadLetterHeadroom
        #expect(Int(p["message.max.bytes"]!)! >= needed)
        #expect(Int(p["batch.size"]!)! >= needed)
        try c.checkConsistency()
        try c.set("producer.message.max.bytes", "1000000", origin: "flag --kafka")
        do {
            try c.checkConsistency()
            Issue.record("a producer limit below max_record_bytes was accepted")
        } catch {
            #expect(error.origin == "producer.message.max.bytes")
            #expect(error.message.contains("max_record_bytes"))
        }
        try c.set("max_record_bytes", "900000", origin: "flag --max-record-bytes")
        #expect(throws: Never.self) { try c.checkConsistency() }
    }

    @Test("configuration and model files are read with a size limit: /dev/zero is refused, not read forever")
    func fileLimit() throws {
        do {
            _ = try readTextFile("/dev/zero")
            Issue.record("/dev/zero was read")
        } catch {
            #expect("\(error)".contains("larger than \(maxTextFileBytes) bytes"))
        }
        #expect(throws: (any Error).self) { _ = try readTextFile("/dev/zero", limit: 10) }
        let path = "/tmp/segmentd-limit-\(UInt32.random(in: 0...UInt32.max)).yaml"
        let f = fopen(path, "wb")!
        let text = Array(String(repeating: "a", count: 100).utf8)
        fwrite(text, 1, text.count, f)
        fclose(f)
        defer { unlink(path) }
        #expect(try readTextFile(path, limit: 100).count == 100)
        #expect(throws: (any Error).self) { _ = try readTextFile(path, limit: 99) }
    }
}

#if canImport(Glibc)
import Glibc
#endif

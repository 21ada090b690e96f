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
}

import Foundation
import Synchronization
import Testing
@testable import SegmentdKafka

@Suite("librdkafka's log lines")
struct KafkaLogTests {
    @Test("a failed connection names the broker and the reason, without librdkafka's thread prefix")
    func unreachableBroker() throws {
        let line = KafkaLogLine(severity: 3, facility: "FAIL", client: "rdkafka#producer-1",
                                text: "[thrd:127.0.0.1:9/bootstrap]: 127.0.0.1:9/bootstrap: Connect to ipv4#127.0.0.1:9 failed: Connection refused (after 0ms in state CONNECT)")
        #expect(line.message.hasPrefix("127.0.0.1:9/bootstrap: Connect"))
        let (broker, reason) = try #require(line.unreachableBroker)
        #expect(broker == "127.0.0.1:9")
        #expect(reason.hasPrefix("Connect to ipv4#127.0.0.1:9 failed: Connection refused"))
        let down = KafkaLogLine(severity: 3, facility: "ERROR", client: "rdkafka#producer-1", text: "[thrd:127.0.0.1:9/bootstrap]: 1/1 brokers are down")
        #expect(down.unreachableBroker == nil)
        #expect(down.repeatsConnectionFailure)
        let event = KafkaLogLine(severity: 3, facility: "ERROR", client: "rdkafka#consumer-1",
                                 text: "[thrd:app]: rdkafka#consumer-1: 127.0.0.1:9/bootstrap: Connect to ipv4#127.0.0.1:9 failed: Connection refused")
        #expect(event.repeatsConnectionFailure)
        let dns = KafkaLogLine(severity: 3, facility: "FAIL", client: "rdkafka#producer-1",
                               text: "[thrd:kafka-9:9092/bootstrap]: kafka-9:9092/bootstrap: Failed to resolve 'kafka-9:9092': Name or service not known (after 2ms in state CONNECT)")
        #expect(dns.unreachableBroker?.broker == "kafka-9:9092")
    }

    @Test("librdkafka's lines reach the sink once it is routed")
    func routed() throws {
        // Process-wide: other tests' clients log here too; keep only what this test needs.
        let seen = Mutex<[KafkaLogLine]>([])
        KafkaLog.route { line in if line.unreachableBroker != nil { seen.withLock { if $0.count < 100 { $0.append(line) } } } }
        // An unknown property makes no log line; a client against a closed port logs its FAIL.
        let producer = try KafkaProducer(config: ["bootstrap.servers": "127.0.0.1:1", "reconnect.backoff.ms": "100"])
        var waited = 0
        while waited < 100 && !seen.withLock({ $0.contains { $0.unreachableBroker != nil } }) {
            usleep(50_000)
            waited += 1
        }
        try? producer.close(timeoutMs: 100)
        #expect(seen.withLock { $0.contains { $0.unreachableBroker?.broker == "127.0.0.1:1" } })
    }
}

import Foundation
import Testing
@testable import SegmentdKafka

/// The embedded broker answers at once (no Nagle wait), and a poll hands over what is queued
/// without waiting for a full batch: together they took the commit of a transaction on the
/// embedded broker from about 89 ms to about 9 ms at the median (BENCHMARKS.md).
@Suite("Embedded broker sockets and the poll's wait")
struct MockClusterSocketsTests {

    @Test("every connection the embedded broker accepts has Nagle's algorithm off (TCP_NODELAY)")
    func acceptedConnectionsHaveNoDelay() throws {
        let cluster = try MockCluster()
        defer { cluster.close() }
        let topic = uniqueName("nodelay")
        try cluster.createTopic(topic, partitions: 1)
        let producer = try KafkaProducer(config: producerConfig(cluster))
        try producer.produce(topic: topic, key: bytes("k"), value: bytes("v"))
        try producer.flush(timeoutMs: 10_000)
        let ports = MockClusterSockets.ports(of: cluster.bootstrapServers)
        #expect(!ports.isEmpty)
        let sockets = brokerSockets(ports)
        #expect(sockets.listeners > 0)
        #expect(sockets.accepted > 0, "the producer's connection was accepted")
        #expect(sockets.withoutNoDelay == 0, "\(sockets.withoutNoDelay) of the broker's sockets keep Nagle's algorithm on")
        try producer.close()
    }

    @Test("a poll returns the queued records without waiting out its timeout for a full batch")
    func pollDoesNotWaitForAFullBatch() throws {
        let cluster = try MockCluster()
        defer { cluster.close() }
        let topic = uniqueName("pollwait")
        try cluster.createTopic(topic, partitions: 1)
        let producer = try KafkaProducer(config: producerConfig(cluster))
        for i in 0..<5 { try producer.produce(topic: topic, key: bytes("k\(i)"), value: bytes("v\(i)")) }
        try producer.flush(timeoutMs: 10_000)
        try producer.close()
        let consumer = try KafkaConsumer(config: consumerConfig(cluster, group: uniqueName("g")), rebalanceHandler: DefaultRebalanceHandler())
        defer { try? consumer.close() }
        try consumer.assign([TopicPartition(topic: topic, partition: 0): KafkaOffset.beginning])
        // A batch of 10,000 with a 60 s timeout: five records arrive, and the poll returns with
        // them (before, it waited the whole minute for the other 9,995).
        let started = Date()
        var got = 0
        while got < 5 && Date().timeIntervalSince(started) < 60 {
            got += try consumer.poll(maxRecords: 10_000, timeoutMs: 60_000) { _ in }
        }
        #expect(got == 5)
        #expect(Date().timeIntervalSince(started) < 30, "the poll waited for a full batch")
    }
}

/// The embedded broker's sockets (bound to one of `ports`): listeners, accepted connections,
/// and how many of them lack TCP_NODELAY.
private func brokerSockets(_ ports: Set<UInt16>) -> (listeners: Int, accepted: Int, withoutNoDelay: Int) {
    let sockets = MockClusterSockets.sockets(boundTo: ports)
    let withoutNoDelay = sockets.filter { socket in
        var noDelay: Int32 = 0
        var size = socklen_t(MemoryLayout<Int32>.size)
        return getsockopt(socket.fd, Int32(IPPROTO_TCP), TCP_NODELAY, &noDelay, &size) != 0 || noDelay == 0
    }.count
    return (sockets.filter(\.listening).count, sockets.filter { !$0.listening }.count, withoutNoDelay)
}

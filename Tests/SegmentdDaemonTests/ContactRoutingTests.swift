import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import Testing
@testable import SegmentdDaemon
@testable import SegmentdHTTP

/// Contact queries across the instances of a group: two daemons on the mock broker, each with
/// its HTTP server on 127.0.0.1, each owning some of the input's partitions.
@Suite("Contact queries reach the owner", .serialized)
struct ContactRoutingTests {
    static let token = "routing-secret"

    /// An instance's HTTP server, run as `segmentd run` runs it, until `stop()`.
    final class RunningServer: @unchecked Sendable {
        let group: ServiceGroup
        let task: Task<Void, any Error>

        init(_ daemon: Daemon) throws {
            let server = try OperationsServer(daemon: daemon, address: "127.0.0.1:0", token: ContactRoutingTests.token)
            var logger = Logger(label: "test.http")
            logger.logLevel = .warning
            let group = ServiceGroup(configuration: .init(services: [.init(service: server.makeApplication())], logger: logger))
            self.group = group
            task = Task.detached(executorPreference: ContactRoutingTests.executor) { try await group.run() }
        }

        func stop() async {
            await group.triggerGracefulShutdown()
            _ = try? await task.value
        }
    }

    /// GET `path` from `address` (host:port) with the token and `headers`.
    func get(_ address: String, _ path: String, headers: [(String, String)] = []) async throws -> HTTPGet.Answer {
        let colon = address.lastIndex(of: ":")!
        return try await HTTPGet.get(host: String(address[..<colon]), port: Int(address[address.index(after: colon)...])!, path: path,
                                     headers: [("Authorization", "Bearer \(ContactRoutingTests.token)")] + headers, timeout: .seconds(30))
    }

    func document(_ answer: HTTPGet.Answer) throws -> NSDictionary {
        try #require(try JSONSerialization.jsonObject(with: Data(answer.body.readableBytesView)) as? NSDictionary)
    }

    func wait(_ what: String, timeout: Double = 60, until done: () -> Bool) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while !done() {
            guard Date() < deadline else { Issue.record("timed out waiting for \(what)"); throw CancellationError() }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// The servers, their handlers and this test's requests run on threads of their own: other
    /// tests of the package block the cooperative pool (two threads on two cores) for minutes
    /// with synchronous waits, which starved the servers' handlers past every timeout.
    static let executor = OwnThreadsExecutor()

    @Test("/contacts/{id} asked of the instance that does not own the contact answers the owner's explanation; loops, unreachable owners and a clean leave")
    func queriesReachTheOwner() async throws {
        try await withTaskExecutorPreference(ContactRoutingTests.executor) { try await queriesReachTheOwnerOnOwnThreads() }
    }

    func queriesReachTheOwnerOnOwnThreads() async throws {
        let partitions: Int32 = 4
        let h = try DaemonTests.Harness(partitions: partitions, threads: 1)
        var configA = h.config
        configA.transactionalId += "-a"
        configA.httpAddress = "127.0.0.1:0"
        var configB = h.config
        configB.transactionalId += "-b"
        configB.httpAddress = "127.0.0.1:0"
        let runA = DaemonTests.RunningDaemon(configA), runB = DaemonTests.RunningDaemon(configB)
        let a = runA.daemon, b = runB.daemon
        let serverA = try RunningServer(a), serverB = try RunningServer(b)
        // Both listen, share the partitions between them, and each has read the other's record.
        try await wait("two instances sharing the partitions, each knowing the other's") {
            let (pa, pb) = (a.status.assigned, b.status.assigned)
            return a.advertisedHTTPAddress != nil && b.advertisedHTTPAddress != nil && !pa.isEmpty && !pb.isEmpty
                && Set(pa).isDisjoint(with: pb) && (pa + pb).sorted() == Array(0..<partitions)
                && a.peers == [Daemon.Peer(instance: b.instanceId, httpAddress: b.advertisedHTTPAddress, partitions: pb)]
                && b.peers == [Daemon.Peer(instance: a.instanceId, httpAddress: a.advertisedHTTPAddress, partitions: pa)]
        }
        let addressA = try #require(a.advertisedHTTPAddress), addressB = try #require(b.advertisedHTTPAddress)
        let n = 1200
        try h.produce(n, seed: 47)
        try await wait("every record read") { a.status.records + b.status.records >= n }

        // One known contact per partition: asked of both instances, the answer is the owner's.
        let expected = try h.expected()
        /// A synthetic contact on partition `p` with transitions in the replay (so with state).
        func knownContact(on p: Int32) -> String? {
            (1...300).map { "c-\($0)" }.first { id in
                Murmur2.partition(Array(id.utf8), count: partitions) == p && expected[id.utf8.map { String($0) }.joined(separator: ".")] != nil
            }
        }
        var checked = 0
        for p in 0..<partitions {
            let contact = try #require(knownContact(on: p))
            let ownsIt = a.status.assigned.contains(p)
            let (owner, other) = ownsIt ? (a, b) : (b, a)
            let (ownerAddress, otherAddress) = ownsIt ? (addressA, addressB) : (addressB, addressA)
            let direct = try await get(ownerAddress, "/contacts/\(contact)")
            #expect(direct.status == 200, "\(contact) on its owner")
            #expect(direct.headers.first(name: "Segmentd-Answered-By") == owner.instanceId)
            #expect(direct.headers.first(name: "Segmentd-Forwarded-By") == nil)
            let forwarded = try await get(otherAddress, "/contacts/\(contact)")
            #expect(forwarded.status == 200, "\(contact) asked of the other instance: \(String(buffer: forwarded.body))")
            #expect(forwarded.headers.first(name: "Segmentd-Answered-By") == owner.instanceId)
            #expect(forwarded.headers.first(name: "Segmentd-Forwarded-By") == other.instanceId)
            let ownerDocument = try document(direct)
            #expect(ownerDocument["instance"] as? String == owner.instanceId)
            #expect(ownerDocument["partition"] as? Int == Int(p))
            #expect(try document(forwarded) == ownerDocument)
            // A forwarded request is answered where it lands, never forwarded again.
            let looped = try await get(otherAddress, "/contacts/\(contact)", headers: [("Segmentd-Forwarded-By", "someone")])
            #expect(looped.status == 503)
            #expect(looped.headers.first(name: "Segmentd-Answered-By") == other.instanceId)
            #expect((try document(looped)["error"] as? String)?.contains("does not own partition \(p)") == true)
            checked += 1
        }
        #expect(checked == Int(partitions))

        // B's server stops (B still owns its partitions): A says where the owner should be.
        let partitionOfB = try #require(b.status.assigned.first)
        let contactOfB = try #require(knownContact(on: partitionOfB))
        let explainedByB = try document(try await get(addressB, "/contacts/\(contactOfB)"))
        await serverB.stop()
        let unreachable = try await get(addressA, "/contacts/\(contactOfB)")
        #expect(unreachable.status == 503)
        #expect(unreachable.headers.first(name: "Retry-After") == "1")
        let refusal = try document(unreachable)
        #expect(refusal["owner"] as? String == b.instanceId)
        #expect(refusal["owner_address"] as? String == addressB)
        #expect((refusal["error"] as? String)?.contains("did not answer at \(addressB)") == true)

        // B leaves cleanly: its record is deleted, A takes its partitions over and answers alone.
        _ = try runB.stop()
        try await wait("A alone, knowing nobody else") { a.status.assigned == Array(0..<partitions) && a.peers.isEmpty }
        let takenOver = try await get(addressA, "/contacts/\(contactOfB)")
        #expect(takenOver.status == 200)
        #expect(takenOver.headers.first(name: "Segmentd-Answered-By") == a.instanceId)
        let afterTakeover = try document(takenOver)
        #expect(afterTakeover["groups"] as? NSArray == explainedByB["groups"] as? NSArray)
        #expect(afterTakeover["clock"] as? String == explainedByB["clock"] as? String)
        await serverA.stop()
        _ = try runA.stop()
    }

    @Test("the advertised address: set, derived from http_address, the bound port, off")
    func advertisedAddress() throws {
        var c = DaemonConfig()
        #expect(c.advertisedHTTPAddress() == "127.0.0.1:9464")
        try c.set("http_address", "0.0.0.0:9000", origin: "test")
        #expect(c.advertisedHTTPAddress() == "\(DaemonConfig.hostname()):9000")
        try c.set("http_address", "127.0.0.1:0", origin: "test")
        #expect(c.advertisedHTTPAddress() == nil)
        #expect(c.advertisedHTTPAddress(boundPort: 41234) == "127.0.0.1:41234")
        try c.set("http_advertised_address", "segmentd-0.segmentd:9464", origin: "test")
        #expect(c.advertisedHTTPAddress(boundPort: 41234) == "segmentd-0.segmentd:9464")
        #expect(throws: ConfigError.self) { try c.set("http_advertised_address", "http://x:1/", origin: "test") }
        #expect(c.instancesTopic == "segmentd-instances")
        try c.set("group_id", "orders", origin: "test")
        #expect(c.instancesTopic == "orders-instances")
        try c.set("instances_topic", "segmentd.members", origin: "test")
        #expect(c.instancesTopic == "segmentd.members")
        c.httpAdvertisedAddressSetting = nil
        try c.set("http_address", "off", origin: "test")
        #expect(c.advertisedHTTPAddress() == nil)
    }
}

/// Runs jobs on a concurrent dispatch queue, whose threads are not the cooperative pool's.
final class OwnThreadsExecutor: TaskExecutor, @unchecked Sendable {
    private let queue = DispatchQueue(label: "segmentd-tests.own-threads", attributes: .concurrent)

    func enqueue(_ job: consuming ExecutorJob) {
        let unownedJob = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        queue.async { unownedJob.runSynchronously(on: executor) }
    }
}

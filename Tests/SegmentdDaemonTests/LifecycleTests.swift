import Foundation
import Hummingbird
import HummingbirdTesting
import SegmentdEngine
import SegmentdKafka
import Synchronization
import Testing
@testable import SegmentdDaemon
@testable import SegmentdHTTP

#if canImport(Glibc)
import Glibc
#endif

/// `segmentd run` as a process: shutdown at every stage, and HTTP answers during it.
@Suite("Daemon lifecycle", .serialized)
struct LifecycleTests {
    static let bin = repoRoot.appendingPathComponent(".build/debug/segmentd").path

    /// A `segmentd run` subprocess with its stderr in a file.
    final class Subprocess {
        let process = Process()
        let log: URL

        /// `environment`: the process's whole environment (nil: this process's).
        init(_ args: [String], environment: [String: String]? = nil) throws {
            #expect(FileManager.default.isExecutableFile(atPath: LifecycleTests.bin), "build the segmentd binary first (swift build)")
            log = FileManager.default.temporaryDirectory.appendingPathComponent("segmentd-lifecycle-\(UUID().uuidString).log")
            _ = FileManager.default.createFile(atPath: log.path, contents: nil)
            process.executableURL = URL(fileURLWithPath: LifecycleTests.bin)
            process.arguments = ["run"] + args
            if let environment { process.environment = environment }
            process.standardError = try FileHandle(forWritingTo: log)
            process.standardOutput = FileHandle.nullDevice
            try process.run()
        }

        var stderr: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

        /// Waits until stderr contains `text` (or the process ended, or 60 s passed).
        @discardableResult
        func waitFor(_ text: String, timeout: Double = 60) -> Bool {
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline && process.isRunning {
                if stderr.contains(text) { return true }
                usleep(50_000)
            }
            return stderr.contains(text)
        }

        /// SIGTERM, then waits for the exit; returns the seconds it took (killing it after 60).
        func terminate() -> Double {
            let t0 = Date()
            kill(process.processIdentifier, SIGTERM)
            while process.isRunning && Date().timeIntervalSince(t0) < 60 { usleep(20_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
            return Date().timeIntervalSince(t0)
        }

        /// The HTTP port from the line the server logs once it listens.
        var httpPort: Int? {
            guard let r = stderr.range(of: "HTTP on http://127.0.0.1:") else { return nil }
            return Int(stderr[r.upperBound...].prefix { $0.isNumber })
        }
    }

    @Test("against an unreachable broker, SIGTERM during transaction initialisation exits at once with status 0")
    func sigtermUnreachableBroker() throws {
        let p = try Subprocess(["--brokers", "127.0.0.1:1", "--http-address", "127.0.0.1:0", "--transactional-id", "t-unreachable"])
        #expect(p.waitFor("HTTP on http://"))
        // The HTTP server answers while the daemon cannot: a query gets a 503 with the reason.
        // The server may answer before the worker has begun to initialise transactions (the
        // reason is then "starting", also a 503): the reason is asked again until it moves on.
        if let port = p.httpPort {
            var answer = httpGet(port: port, path: "/contacts/c-1")
            let deadline = Date().addingTimeInterval(20)
            while answer?.contains("initialising transactions") != true && Date() < deadline {
                #expect(answer?.hasPrefix("HTTP/1.1 503") == true, "\(answer ?? "no answer")")
                usleep(100_000)
                answer = httpGet(port: port, path: "/contacts/c-1")
            }
            #expect(answer?.hasPrefix("HTTP/1.1 503") == true, "\(answer ?? "no answer")")
            #expect(answer?.contains("initialising transactions") == true, "\(answer ?? "no answer")")
        }
        usleep(500_000)
        let secs = p.terminate()
        #expect(p.process.terminationStatus == 0, "\(p.stderr)")
        #expect(secs < 5, "took \(secs) s")
        #expect(p.stderr.contains("stopped while initialising transactions with 127.0.0.1:1"), "\(p.stderr)")
    }

    @Test("SIGTERM right after subscribing, before the assignment: a clean exit (no assertion in the sticky assignor)")
    func sigtermBeforeAssignment() throws {
        let h = try DaemonTests.Harness()
        let p = try Subprocess(["--brokers", h.config.brokers, "--group-id", h.config.groupId, "--transactional-id", h.config.transactionalId,
                                "--http-address", "off", "--kafka", "session.timeout.ms=6000", "--kafka", "heartbeat.interval.ms=500"])
        #expect(p.waitFor("consuming engagement-events"))
        let secs = p.terminate()
        #expect(p.process.terminationStatus == 0, "\(p.stderr)")
        #expect(secs < 20, "took \(secs) s")
        #expect(p.stderr.contains("stopped after"), "\(p.stderr)")
    }

    @Test("SIGTERM under load: every HTTP query in flight gets an answer, and the exit status is 0")
    func sigtermAnswersQueries() throws {
        let h = try DaemonTests.Harness()
        try h.produce(6000, seed: 101)
        let p = try Subprocess(["--brokers", h.config.brokers, "--group-id", h.config.groupId, "--transactional-id", h.config.transactionalId,
                                "--http-address", "127.0.0.1:0", "--batch-size", "200", "--idle-advance", "off",
                                "--kafka", "session.timeout.ms=6000", "--kafka", "heartbeat.interval.ms=500"])
        #expect(p.waitFor("HTTP on http://"))
        let port = try #require(p.httpPort)
        #expect(p.waitFor("restored"))
        let terminating = Atomic<Bool>(false)
        let results = Mutex<[String?]>([])
        let failTimes = Mutex<[String]>([])
        let killedAt = Mutex<Date>(Date.distantFuture)
        let workers = 8
        let done = Atomic<Int>(0)
        for w in 0..<workers {
            Thread.detachNewThread {
                var i = 0
                while !terminating.load(ordering: .sequentiallyConsistent) {
                    let t0 = Date()
                    let answer = httpGet(port: port, path: "/contacts/c-\((w * 37 + i) % 300)")
                    if answer == nil { let e = errno; failTimes.withLock { $0.append("from \(t0.timeIntervalSince(killedAt.withLock { $0 })) to \(Date().timeIntervalSince(killedAt.withLock { $0 })) s after SIGTERM, errno \(e)") } }
                    results.withLock { $0.append(answer.map { String($0.prefix(12)) }) }
                    i += 1
                }
                done.add(1, ordering: .sequentiallyConsistent)
            }
        }
        let deadline = Date().addingTimeInterval(60)
        while results.withLock({ $0.count }) < 200 && Date() < deadline { usleep(20_000) }
        killedAt.withLock { $0 = Date() }
        kill(p.process.processIdentifier, SIGTERM)
        terminating.store(true, ordering: .sequentiallyConsistent)
        while done.load(ordering: .sequentiallyConsistent) < workers { usleep(10_000) }
        _ = p.terminate()
        let all = results.withLock { $0 }
        #expect(all.count >= 200)
        let unanswered = all.filter { $0 == nil }.count
        let bad = all.compactMap { $0 }.filter { $0 != "refused" && !($0.hasPrefix("HTTP/1.1 200") || $0.hasPrefix("HTTP/1.1 404") || $0.hasPrefix("HTTP/1.1 503")) }
        #expect(unanswered == 0, "\(unanswered) of \(all.count) queries got no answer: \(failTimes.withLock { $0 })")
        #expect(bad.isEmpty, "\(bad.prefix(5))")
        #expect(p.process.terminationStatus == 0, "\(p.stderr.suffix(2000))")
    }

    @Test("as the container image runs it: no file, no flag, the environment alone; the token on all but the probes; the image's HEALTHCHECK")
    func environmentAlone() throws {
        let h = try DaemonTests.Harness()
        try h.produce(300, seed: 5)
        // What deploy/Dockerfile sets and documents passing, nothing else (the address on
        // loopback: this machine binds nothing else; the image has 0.0.0.0:9464).
        let token = "change-me"
        let p = try Subprocess([], environment: [
            "SEGMENTD_BROKERS": h.config.brokers, "SEGMENTD_GROUP_ID": h.config.groupId,
            "SEGMENTD_TRANSACTIONAL_ID": h.config.transactionalId, "SEGMENTD_HTTP_TOKEN": token,
            "SEGMENTD_HTTP_ADDRESS": "127.0.0.1:0",
        ])
        #expect(p.waitFor("HTTP on http://"), "\(p.stderr)")
        let port = try #require(p.httpPort)
        #expect(p.waitFor("restored"), "\(p.stderr)")
        #expect(httpGet(port: port, path: "/healthz")?.hasPrefix("HTTP/1.1 200") == true)
        #expect(httpGet(port: port, path: "/metrics")?.hasPrefix("HTTP/1.1 401") == true)
        let metrics = httpGet(port: port, path: "/metrics", headers: ["Authorization: Bearer \(token)"]) ?? ""
        #expect(metrics.hasPrefix("HTTP/1.1 200"))
        #expect(metrics.contains("segmentd_build_info{"), "\(metrics.prefix(500))")
        #expect(metrics.contains("process_resident_memory_bytes "))
        // The image's HEALTHCHECK command (Docker's exec form: a JSON array), as Docker runs it
        // in the container: its environment names the port.
        let dockerfile = try String(contentsOf: repoRoot.appendingPathComponent("deploy/Dockerfile"), encoding: .utf8)
        let healthcheck = try #require(dockerfile.range(of: "HEALTHCHECK ").map { dockerfile[$0.upperBound...] })
        let command = try #require(healthcheck.range(of: "CMD ").map { healthcheck[$0.upperBound...].prefix { $0 != "\n" } })
        let argv = try #require(try JSONSerialization.jsonObject(with: Data(command.utf8)) as? [String])
        func healthcheckStatus() throws -> Int32 {
            let check = Process()
            check.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            check.arguments = argv
            check.environment = ["PATH": "/usr/bin:/bin", "SEGMENTD_HTTP_ADDRESS": "127.0.0.1:\(port)"]
            check.standardOutput = FileHandle.nullDevice
            check.standardError = FileHandle.nullDevice
            try check.run()
            check.waitUntilExit()
            return check.terminationStatus
        }
        #expect(try healthcheckStatus() == 0, "HEALTHCHECK \(argv)")
        // Every thread holds its partitions before the stop: librdkafka 2.0.2 can assert when a
        // consumer is destroyed mid-join (librdkafka#4312, the README's Limits), not our subject here.
        let readyBy = Date().addingTimeInterval(60)
        while httpGet(port: port, path: "/readyz")?.hasPrefix("HTTP/1.1 200") != true && Date() < readyBy { usleep(100_000) }
        _ = p.terminate()
        #expect(p.process.terminationStatus == 0, "\(p.stderr)")
        #expect(try healthcheckStatus() != 0, "the HEALTHCHECK must fail once nothing answers")
    }

    @Test("queries the daemon cannot answer get a 503 with the reason")
    func unavailableAnswers() async throws {
        let d = Daemon(config: DaemonConfig(), model: .defaultModel(), log: { _ in })
        let server = try OperationsServer(daemon: d, address: "127.0.0.1:0", token: nil)
        try await Application(router: server.makeRouter()).test(.router) { client in
            try await client.execute(uri: "/contacts/c-1", method: .get) { res in
                #expect(res.status == .serviceUnavailable)
                #expect(String(buffer: res.body).contains("not ready: starting"))
            }
            try await client.execute(uri: "/admin/reload", method: .post) { #expect($0.status == .serviceUnavailable) }
        }
    }
}

/// One HTTP/1.1 GET on a new connection: the whole answer; nil when the request was sent and
/// no answer came back (reset or empty: a dropped query); "refused" when the connection was
/// refused (the server no longer accepted: that query was never in flight).
func httpGet(port: Int, path: String, headers: [String] = []) -> String? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    let ok = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    if ok != 0 { return "refused" }
    let req = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\(headers.map { $0 + "\r\n" }.joined())\r\n".utf8)
    guard write(fd, req, req.count) == req.count else { return nil }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 16_384)
    while true {
        let n = read(fd, &buf, buf.count)
        if n <= 0 { break }
        out.append(contentsOf: buf[0..<n])
    }
    return out.isEmpty ? nil : String(decoding: out, as: UTF8.self)
}

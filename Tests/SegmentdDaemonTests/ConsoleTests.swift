import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import SegmentdEngine
import SegmentdKafka
import ServiceLifecycle
import Testing
@testable import SegmentdDaemon
@testable import SegmentdHTTP

/// The live console and the segment listings, against a running daemon on the mock broker.
@Suite("Console and segment listings", .serialized)
struct ConsoleTests {
    func app(_ d: Daemon, token: String? = nil) throws -> some ApplicationProtocol {
        let server = try OperationsServer(daemon: d, address: "127.0.0.1:0", token: token)
        return Application(router: server.makeRouter())
    }

    static func object(_ r: TestResponse) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(buffer: r.body)) as! [String: Any]
    }

    /// Per group, per segment: the contacts whose latest transition in the group entered it.
    static func expectedMembers(_ expected: [String: [String]]) -> [String: [String: Set<String>]] {
        var out: [String: [String: Set<String>]] = [:]
        for (key, lines) in expected {
            let id = String(decoding: key.split(separator: ".").map { UInt8($0)! }, as: UTF8.self)
            var last: [String: String] = [:]
            for l in lines {
                let parts = l.split(separator: " ")
                last[String(parts[0])] = String(parts[1].split(separator: ">").last!)
            }
            for (g, s) in last where s != "null" { out[g, default: [:]][s, default: []].insert(id) }
        }
        return out
    }

    @Test("listings agree with replay; members paged and bounded; the console page and recent transitions")
    func listings() async throws {
        let h = try DaemonTests.Harness()
        try h.produce(1200, seed: 43)
        var c = h.config
        c.httpContactIds = true
        let r = DaemonTests.RunningDaemon(c)
        r.wait(until: { $0.status.records >= 1200 }, timeout: 60)
        // The sizes are published once per loop iteration: wait for the last commit's.
        let members = Self.expectedMembers(try h.expected())
        r.wait(until: { d in d.segmentContacts[0].reduce(0, +) == members["lifecycle", default: [:]].values.map(\.count).reduce(0, +) }, timeout: 10)
        let d = r.daemon
        let model = Model.defaultModel()
        let inputTopic = c.inputTopic
        try await app(d).test(.router) { client in
            try await client.execute(uri: "/segments", method: .get) { res in
                #expect(res.status == .ok)
                let doc = try Self.object(res)
                #expect(doc["partitions"] as? [Int] == [0, 1, 2, 3])
                #expect(doc["scope"] as? String == "partitions owned by this instance")
                let groups = doc["groups"] as! [[String: Any]]
                #expect(groups.map { $0["group"] as! String } == model.groups.map(\.name))
                for g in groups {
                    let name = g["group"] as! String
                    var total = 0
                    for s in g["segments"] as! [[String: Any]] {
                        let count = s["count"] as! Int
                        #expect(count == members[name]?[s["segment"] as! String]?.count ?? 0, "\(name)/\(s["segment"]!)")
                        total += count
                    }
                    #expect(g["in_a_segment"] as? Int == total)
                }
            }
            try await client.execute(uri: "/segments/lead_score", method: .get) { res in
                let groups = try Self.object(res)["groups"] as! [[String: Any]]
                #expect(groups.count == 1 && groups[0]["group"] as? String == "lead_score")
            }
            try await client.execute(uri: "/segments/lead_scor", method: .get) { res in
                #expect(res.status == .notFound)
                #expect(String(buffer: res.body).contains("did you mean 'lead_score'"))
            }
            // Members, seven per page, followed through `next` to the end.
            for (group, segment) in [("lifecycle", "new_subscriber"), ("engagement_tier", "hot")] {
                var seen: [String] = []
                var after: String? = nil
                var pages = 0
                repeat {
                    let uri = "/segments/\(group)/\(segment)?limit=7" + (after.map { "&after=\($0)" } ?? "")
                    after = try await client.execute(uri: uri, method: .get) { res in
                        #expect(res.status == .ok)
                        let doc = try Self.object(res)
                        let page = doc["members"] as! [String]
                        #expect(page.count <= 7)
                        #expect(doc["count"] as? Int == members[group]?[segment]?.count)
                        seen += page
                        return doc["next"] as? String
                    }
                    pages += 1
                } while after != nil && pages < 1000
                #expect(seen.count == Set(seen).count, "a member listed twice")
                #expect(Set(seen) == members[group]?[segment] ?? [])
                #expect(pages >= (members[group]?[segment]?.count ?? 0) / 7)
            }
            try await client.execute(uri: "/segments/lifecycle/customer?limit=0", method: .get) { #expect($0.status == .badRequest) }
            try await client.execute(uri: "/segments/lifecycle/customer?after=x", method: .get) { #expect($0.status == .badRequest) }
            try await client.execute(uri: "/segments/lifecycle/custom", method: .get) { res in
                #expect(res.status == .notFound)
                #expect(String(buffer: res.body).contains("lifecycle/customer"))
            }
            try await client.execute(uri: "/transitions/recent", method: .get) { res in
                let doc = try Self.object(res)
                let total = d.status.transitions
                #expect(total > 0)
                #expect(doc["committed_total"] as? Int == total)
                let perMinute = (doc["per_minute"] as! [[String: Any]]).map { ($0["counts"] as! [String: Int]).values.reduce(0, +) }
                #expect(perMinute.count == 60)
                #expect(perMinute.reduce(0, +) == total)
                let latest = doc["latest"] as! [[String: Any]]
                #expect(latest.count == min(total, 50))
                #expect(latest.allSatisfy { $0["contact_id"] is String })
                #expect(doc["contact_ids"] as? Bool == true)
            }
            try await client.execute(uri: "/", method: .get) { res in
                #expect(res.status == .ok)
                #expect(res.headers[.contentType] == "text/html; charset=utf-8")
                let page = String(buffer: res.body)
                #expect(page.contains("partitions 0, 1, 2, 3 of 4 of \(inputTopic)"))
                for (g, group) in model.groups.enumerated() {
                    let n = d.segmentContacts[g].reduce(0, +)
                    #expect(page.contains("data-group=\"\(group.name)\" data-in-segment=\"\(n)\""))
                }
                #expect(page.components(separatedBy: "class=\"chart per-minute\"").count - 1 == model.groups.count)
                #expect(page.components(separatedBy: "<tr class=\"transition\"").count - 1 == min(d.status.transitions, 50))
                #expect(!page.contains("id=\"ids-hidden\""))
                #expect(!page.contains("src=\"http"), "the page must load nothing from elsewhere")
            }
        }
        _ = try r.stop()
    }

    @Test("contact ids off by default: no member listing, the console says why; the token as a browser carries it")
    func privacyAndToken() async throws {
        let d = Daemon(config: DaemonConfig(), model: .defaultModel(), log: { _ in })
        #expect(!d.config.httpContactIds)
        try await app(d).test(.router) { client in
            try await client.execute(uri: "/segments/lifecycle/customer", method: .get) { res in
                #expect(res.status == .forbidden)
                #expect(String(buffer: res.body).contains("http_contact_ids: on"))
            }
            try await client.execute(uri: "/transitions/recent", method: .get) { res in
                let doc = try Self.object(res)
                #expect(doc["contact_ids"] as? Bool == false)
            }
            try await client.execute(uri: "/", method: .get) { res in
                let page = String(buffer: res.body)
                #expect(page.contains("id=\"ids-hidden\""))
                #expect(page.contains("owns no partition"))
            }
        }
        try await app(d, token: "s3cret").test(.router) { client in
            try await client.execute(uri: "/", method: .get) { res in
                #expect(res.status == .unauthorized)
                #expect(res.headers[.wwwAuthenticate]?.hasPrefix("Basic ") == true)
            }
            let basic = "Basic " + Data("operator:s3cret".utf8).base64EncodedString()
            let wrong = "Basic " + Data("operator:nope".utf8).base64EncodedString()
            try await client.execute(uri: "/", method: .get, headers: [.authorization: wrong]) { #expect($0.status == .unauthorized) }
            try await client.execute(uri: "/segments", method: .get) { res in
                #expect(res.status == .unauthorized)
                #expect(res.headers[.wwwAuthenticate] == "Bearer")
            }
            try await client.execute(uri: "/segments", method: .get, headers: [.authorization: basic]) { #expect($0.status == .ok) }
            try await client.execute(uri: "/console/panel", method: .get, headers: [.authorization: "Bearer s3cret"]) { #expect($0.status == .ok) }
            try await client.execute(uri: "/transitions/recent", method: .get, headers: [.authorization: "Bearer wrong"]) { #expect($0.status == .unauthorized) }
        }
    }

    static let chromium: String? = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
        .first { FileManager.default.isExecutableFile(atPath: $0) }

    /// Where screenshots go: `REPORT_TEST_ARTIFACTS`, or a temporary directory.
    static let artifacts: URL = {
        let dir = ProcessInfo.processInfo.environment["REPORT_TEST_ARTIFACTS"].map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("segmentd-report-artifacts")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }()

    /// Headless Chromium on `url`; stdout and stderr (the console's messages at --v=0).
    static func runChromium(_ url: String, _ arguments: [String]) throws -> (out: String, err: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/timeout")
        process.arguments = ["90", chromium!, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                             "--no-first-run", "--hide-scrollbars", "--enable-logging=stderr", "--v=0",
                             "--virtual-time-budget=8000"] + arguments + [url]
        let errURL = artifacts.appendingPathComponent("chromium-\(UUID().uuidString).log")
        guard FileManager.default.createFile(atPath: errURL.path, contents: nil) else { throw CocoaError(.fileWriteUnknown) }
        let errHandle = try FileHandle(forWritingTo: errURL)
        defer { try? FileManager.default.removeItem(at: errURL) }
        let out = Pipe()
        process.standardOutput = out
        process.standardError = errHandle
        try process.run()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try errHandle.close()
        return (String(decoding: outData, as: UTF8.self), (try? String(contentsOf: errURL, encoding: .utf8)) ?? "")
    }

    @Test("in a real browser: the console of a running daemon shows its sizes and explains a contact, without script errors")
    func browser() async throws {
        guard Self.chromium != nil else {
            print("ConsoleTests.browser skipped: no chromium installed (apt-get install -y chromium)")
            return
        }
        let h = try DaemonTests.Harness()
        try h.produce(1200, seed: 47)
        var c = h.config
        c.httpContactIds = true
        let r = DaemonTests.RunningDaemon(c)
        r.wait(until: { $0.status.records >= 1200 }, timeout: 60)
        let members = Self.expectedMembers(try h.expected())
        r.wait(until: { d in d.segmentContacts[0].reduce(0, +) == members["lifecycle", default: [:]].values.map(\.count).reduce(0, +) }, timeout: 10)
        let d = r.daemon
        // The real server, on loopback, on a port the system picks.
        let server = try OperationsServer(daemon: d, address: "127.0.0.1:0", token: nil)
        let port = AsyncStream<Int>.makeStream()
        let app = server.makeApplication(onServerRunning: { p in port.continuation.yield(p) })
        let group = ServiceGroup(configuration: .init(services: [.init(service: app)], logger: Logger(label: "console-test")))
        let running = Task { try await group.run() }
        var iterator = port.stream.makeAsyncIterator()
        let bound = try #require(await iterator.next())
        let lookup = try await d.lookup(Array("c-1".utf8)).get()
        guard case let .found(_, _, memberships) = lookup else { Issue.record("c-1 not found"); return }

        let url = "http://127.0.0.1:\(bound)/#contact=c-1"
        let (dom, log) = try Self.runChromium(url, ["--dump-dom"])
        let model = Model.defaultModel()
        // Sizes as the bars show them: every segment of every group.
        for (g, group) in model.groups.enumerated() {
            for (s, segment) in group.segments.enumerated() {
                let n = d.segmentContacts[g][s]
                #expect(n == members[group.name]?[segment.name]?.count ?? 0)
                #expect(dom.contains("data-segment=\"\(segment.name)\" data-size=\"\(n)\""), "\(group.name)/\(segment.name)")
            }
            #expect(dom.contains("data-group=\"\(group.name)\" data-in-segment=\"\(d.segmentContacts[g].reduce(0, +))\""))
        }
        #expect(dom.contains("partitions 0, 1, 2, 3 of 4"))
        // The contact search ran: c-1 explained, group by group, as /contacts says.
        #expect(dom.contains("data-contact=\"c-1\""))
        for (g, group) in model.groups.enumerated() {
            let segment = memberships[g].map { group.segments[$0].name } ?? ""
            #expect(dom.contains("data-group=\"\(group.name)\" data-segment=\"\(segment)\""), "\(group.name)")
        }
        #expect(dom.contains("id=\"next-change\""))
        #expect(dom.contains("class=\"met\"") && dom.contains("class=\"unmet\""))
        #expect(dom.components(separatedBy: "<tr class=\"transition\"").count - 1 == min(d.status.transitions, 50))
        #expect(!log.contains("Uncaught"), "the page logged a script error: \(log)")
        #expect(!log.contains("net::ERR"), "the page failed to load something: \(log)")

        let shot = Self.artifacts.appendingPathComponent("console.png")
        try? FileManager.default.removeItem(at: shot)
        _ = try Self.runChromium(url, ["--screenshot=\(shot.path)", "--window-size=1280,2000"])
        #expect(FileManager.default.fileExists(atPath: shot.path))
        print("ConsoleTests: screenshot \(shot.path)")
        await group.triggerGracefulShutdown()
        try await running.value
        _ = try r.stop()
    }
}

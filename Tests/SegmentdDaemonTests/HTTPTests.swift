import Foundation
import Hummingbird
import HummingbirdTesting
import SegmentdEngine
import SegmentdKafka
import Testing
@testable import SegmentdDaemon
@testable import SegmentdHTTP

/// The operations endpoint against a running daemon on the mock broker.
@Suite("Operations HTTP", .serialized)
struct HTTPTests {
    func app(_ d: Daemon, token: String? = nil) throws -> some ApplicationProtocol {
        let server = try OperationsServer(daemon: d, address: "127.0.0.1:0", token: token)
        return Application(router: server.makeRouter())
    }

    func body(_ r: TestResponse) -> String { String(buffer: r.body) }

    @Test("metrics, health, contact queries and segment counts after a known input")
    func endpoints() async throws {
        let h = try DaemonTests.Harness()
        try h.produce(1200, seed: 41)
        let r = DaemonTests.RunningDaemon(h.config)
        r.wait(until: { $0.status.records >= 1200 }, timeout: 60)
        let d = r.daemon
        let expected = try h.expected()
        let deadLetters = try h.read(h.config.deadLetterTopic).count
        try await app(d).test(.router) { client in
            try await client.execute(uri: "/healthz", method: .get) { #expect($0.status == .ok) }
            try await client.execute(uri: "/readyz", method: .get) { #expect($0.status == .ok) }
            try await client.execute(uri: "/metrics", method: .get) { res in
                let text = body(res)
                #expect(text.contains("segmentd_records_total 1200"))
                let dl = text.split(separator: "\n").filter { $0.hasPrefix("segmentd_dead_letters_total{") }
                    .compactMap { Int($0.split(separator: " ").last!) }.reduce(0, +)
                #expect(dl == deadLetters)
                let tr = text.split(separator: "\n").filter { $0.hasPrefix("segmentd_transitions_total{") }
                    .compactMap { Int($0.split(separator: " ").last!) }.reduce(0, +)
                #expect(tr == expected.values.map(\.count).reduce(0, +))
                // Only real transitions: no from == to series, null to null included.
                for line in text.split(separator: "\n") where line.hasPrefix("segmentd_transitions_total{") {
                    let from = line.firstRange(of: "from=\"").map { line[$0.upperBound...].prefix { $0 != "\"" } }
                    let to = line.firstRange(of: "to=\"").map { line[$0.upperBound...].prefix { $0 != "\"" } }
                    #expect(from != nil && to != nil && from != to, "impossible series: \(line)")
                }
                #expect(text.split(separator: "\n").contains { $0.hasPrefix("segmentd_transitions_total{") })
                for family in ["process_cpu_seconds_total ", "process_resident_memory_bytes ", "process_open_fds ",
                               "process_start_time_seconds ", "process_max_fds "] {
                    let value = text.split(separator: "\n").first { $0.hasPrefix(family) }.flatMap { Double($0.dropFirst(family.count)) }
                    #expect(value != nil && value! >= 0, "\(family)missing")
                }
                #expect(text.split(separator: "\n").first { $0.hasPrefix("process_resident_memory_bytes ") }
                    .flatMap { Double($0.split(separator: " ")[1]) }.map { $0 > 1_000_000 } == true)
                for family in ["segmentd_events_consumed_total", "segmentd_segment_contacts", "segmentd_contacts{", "segmentd_state_bytes",
                               "segmentd_watermark_lag_seconds", "segmentd_batch_seconds", "segmentd_event_to_transition_seconds",
                               "segmentd_transactions_total", "segmentd_restores_total", "segmentd_late_events_total", "segmentd_duplicate_events_total"] {
                    #expect(text.contains(family), "\(family) missing")
                }
            }
            // Live engagement by segment: every applied event is counted once per group, under
            // the segment it found its contact in (the counters move between batches: asked until
            // a scrape sees both families at rest).
            var engagementAgrees = false
            for _ in 0..<50 where !engagementAgrees {
                try await client.execute(uri: "/metrics", method: .get) { res in
                    let lines = body(res).split(separator: "\n")
                    func sum(_ prefix: String) -> Int {
                        lines.filter { $0.hasPrefix(prefix) }.compactMap { Int($0.split(separator: " ").last!) }.reduce(0, +)
                    }
                    let applied = sum("segmentd_events_by_type_total{")
                    let groups = Model.defaultModel().groups.map(\.name)
                    engagementAgrees = applied > 0 && groups.allSatisfy { sum("segmentd_segment_events_total{group=\"\($0)\"") == applied }
                        && lines.contains { $0.hasPrefix("segmentd_segment_events_total{group=\"lifecycle\",segment=\"none\"") }
                }
                if !engagementAgrees { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(engagementAgrees, "segmentd_segment_events_total per group must sum to the events applied")
            // c-1's memberships are the last `to` of each group in the replay.
            let key = "c-1".utf8.map { String($0) }.joined(separator: ".")
            let lines = try #require(expected[key])
            try await client.execute(uri: "/contacts/c-1", method: .get) { res in
                #expect(res.status == .ok)
                let doc = try JSONSerialization.jsonObject(with: Data(buffer: res.body)) as! [String: Any]
                let groups = doc["groups"] as! [[String: Any]]
                for g in groups {
                    let name = g["group"] as! String
                    let last = lines.last { $0.hasPrefix(name + " ") }
                    let want = last.map { String($0.split(separator: " ")[1].split(separator: ">").last!) } ?? "null"
                    let got = (g["segment"] as? String) ?? "null"
                    #expect(got == want, "\(name)")
                    #expect(!(g["reason"] as! [String]).isEmpty)
                }
                #expect(doc["next_change"] != nil)
            }
            try await client.execute(uri: "/contacts/nobody-at-all", method: .get) { #expect($0.status == .notFound) }
            try await client.execute(uri: "/segments/lifecycle/active_evaluator/count", method: .get) { res in
                let doc = try JSONSerialization.jsonObject(with: Data(buffer: res.body)) as! [String: Any]
                let want = expected.values.filter { l in l.last { $0.hasPrefix("lifecycle ") }?.contains("->active_evaluator ") == true }.count
                #expect(doc["count"] as? Int == want)
            }
            try await client.execute(uri: "/segments/lifecycle/nope/count", method: .get) { #expect($0.status == .notFound) }
        }
        _ = try r.stop()
    }

    @Test("POST /admin/preview: the same model moves nobody; a changed threshold moves contacts; nothing changes")
    func preview() async throws {
        let h = try DaemonTests.Harness()
        try h.produce(800, seed: 43)
        let r = DaemonTests.RunningDaemon(h.config)
        r.wait(until: { $0.status.records >= 800 }, timeout: 60)
        let d = r.daemon
        let defaultText = try String(contentsOf: repoRoot.appendingPathComponent("config/default-model.yaml"), encoding: .utf8)
        let lowered = defaultText.replacingOccurrences(of: "version: default-1", with: "version: lowered")
            .replacingOccurrences(of: "{name: engaged_non_converter, when: {at_least: 3, of: email_engagement, within: 30d}}",
                                  with: "{name: engaged_non_converter, when: {at_least: 1, of: email_engagement, within: 30d}}")
        let sizesBefore = d.segmentContacts
        let transitionsBefore = d.status.transitions
        try await app(d).test(.router) { client in
            func post(_ body: String) async throws -> (HTTPResponse.Status, [String: Any]) {
                try await client.execute(uri: "/admin/preview", method: .post, body: ByteBuffer(string: body)) { res in
                    (res.status, (try? JSONSerialization.jsonObject(with: Data(buffer: res.body)) as? [String: Any]) ?? [:])
                }
            }
            let (sameStatus, same) = try await post(defaultText)
            #expect(sameStatus == .ok)
            let contacts = try #require(same["contacts"] as? Int)
            #expect(contacts > 0)
            for g in try #require(same["groups"] as? [[String: Any]]) {
                #expect(g["moved"] as? Int == 0, "\(g["group"] ?? "")")
                let sizes = try #require(g["sizes"] as? [String: [String: Int]])
                #expect(sizes.values.reduce(0) { $0 + $1["new"]! } == contacts)
                #expect(sizes.values.allSatisfy { $0["base"] == $0["new"] })
            }
            let (status, lower) = try await post(lowered)
            #expect(status == .ok)
            #expect(lower["new_model"] as? String == "lowered")
            let lifecycle = try #require((lower["groups"] as? [[String: Any]])?.first { $0["group"] as? String == "lifecycle" })
            let moves = try #require(lifecycle["moves"] as? [[String: Any]])
            #expect((lifecycle["moved"] as? Int ?? 0) > 0)
            // Lowering the bar only brings contacts into engaged_non_converter.
            #expect(moves.allSatisfy { $0["to"] as? String == "engaged_non_converter" }, "\(moves)")
            let (bad, _) = try await post("version: x\ngroups: nope\n")
            #expect(bad == .unprocessableContent)
        }
        // Nothing changed: the same model runs, the sizes and transitions are as before.
        #expect(d.model.version == "default-1")
        #expect(d.segmentContacts == sizesBefore)
        #expect(d.status.transitions == transitionsBefore)
        _ = try r.stop()
    }

    @Test("with a token, requests without it are refused; probes stay open")
    func token() async throws {
        let d = Daemon(config: DaemonConfig(), model: .defaultModel(), log: { _ in })
        try await app(d, token: "s3cret").test(.router) { client in
            try await client.execute(uri: "/metrics", method: .get) { #expect($0.status == .unauthorized) }
            try await client.execute(uri: "/metrics", method: .get, headers: [.authorization: "Bearer wrong"]) { #expect($0.status == .unauthorized) }
            try await client.execute(uri: "/metrics", method: .get, headers: [.authorization: "Bearer s3cret"]) { #expect($0.status == .ok) }
            try await client.execute(uri: "/contacts/c-1", method: .get) { #expect($0.status == .unauthorized) }
            try await client.execute(uri: "/admin/reload", method: .post) { #expect($0.status == .unauthorized) }
            try await client.execute(uri: "/healthz", method: .get) { #expect($0.status != .unauthorized) }
        }
    }

    @Test("reload: a changed threshold emits the re-evaluation's transitions; a broken model is refused and the old one keeps running")
    func reload() async throws {
        let h = try DaemonTests.Harness()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("segmentd-reload-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let modelFile = dir.appendingPathComponent("model.yaml")
        try Model.defaultModel().source.write(to: modelFile, atomically: true, encoding: .utf8)
        var c = h.config
        c.modelPath = modelFile.path
        try h.produce(800, seed: 51)
        let r = DaemonTests.RunningDaemon(c)
        r.wait(until: { $0.status.records >= 800 }, timeout: 60)
        let before = r.daemon.status.transitions
        try await app(r.daemon).test(.router) { client in
            try "version: broken\ngroups: [\n".write(to: modelFile, atomically: true, encoding: .utf8)
            try await client.execute(uri: "/admin/reload", method: .post) { res in
                #expect(res.status == .unprocessableContent)
                #expect(String(buffer: res.body).contains("model.yaml"))
            }
            #expect(r.daemon.model.version == "default-1")
            let strict = Model.defaultModel().source
                .replacingOccurrences(of: "{name: sales_ready, when: {score: lead_score, at_least: 80}}", with: "{name: sales_ready, when: {score: lead_score, at_least: 1000}}")
                .replacingOccurrences(of: "version: default-1", with: "version: strict-1")
            try strict.write(to: modelFile, atomically: true, encoding: .utf8)
            try await client.execute(uri: "/admin/reload", method: .post) { #expect($0.status == .ok) }
        }
        #expect(r.daemon.model.version == "strict-1")
        r.wait(until: { $0.status.transitions > before }, timeout: 20)
        _ = try r.stop()
        // Every sales_ready contact left it at its clock, cause time, under the new model.
        let out = try h.read(h.config.outputTopic).map { try JSONSerialization.jsonObject(with: Data($0.value)) as! [String: Any] }
        let moved = out.filter { ($0["data"] as! [String: Any])["model_version"] as? String == "strict-1" }
        #expect(!moved.isEmpty)
        for t in moved {
            let d = t["data"] as! [String: Any]
            #expect(d["group"] as? String == "lead_score")
            #expect(d["from"] as? String == "sales_ready")
            #expect((d["cause"] as! [String: Any])["kind"] as? String == "model")
        }
        let segments = Set(out.compactMap { ($0["data"] as! [String: Any])["model_version"] as? String })
        #expect(segments == ["default-1", "strict-1"])
    }
}


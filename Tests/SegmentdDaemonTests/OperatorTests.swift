import Foundation
import SegmentdKafka
import Testing
@testable import SegmentdDaemon

#if canImport(Glibc)
import Glibc
#endif

/// The operator's first contact with the CLI: errors of data are not usage errors, each kind
/// of failure has its documented exit status, misspelt names get a "did you mean", the
/// embedded broker starts only when asked for, an unreachable broker is said in one line.
@Suite("Operator's first contact", .serialized)
struct OperatorTests {
    static let bin = repoRoot.appendingPathComponent(".build/debug/segmentd").path

    struct Outcome {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs the binary to its end; `stdout` nil: captured, else that file.
    static func segmentd(_ args: [String], stdout: FileHandle? = nil, environment: [String: String]? = nil) throws -> Outcome {
        #expect(FileManager.default.isExecutableFile(atPath: bin), "build the segmentd binary first (swift build)")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: bin)
        p.arguments = args
        if let environment { p.environment = environment }
        let dir = FileManager.default.temporaryDirectory
        let outURL = dir.appendingPathComponent("segmentd-op-\(UUID().uuidString).out")
        let errURL = dir.appendingPathComponent("segmentd-op-\(UUID().uuidString).err")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: outURL); try? FileManager.default.removeItem(at: errURL) }
        p.standardOutput = try stdout ?? FileHandle(forWritingTo: outURL)
        p.standardError = try FileHandle(forWritingTo: errURL)
        p.standardInput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        return Outcome(status: p.terminationStatus, stdout: (try? String(contentsOf: outURL, encoding: .utf8)) ?? "",
                       stderr: (try? String(contentsOf: errURL, encoding: .utf8)) ?? "")
    }

    static func temporaryFile(_ text: String, ext: String = "yaml") throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("segmentd-op-\(UUID().uuidString).\(ext)")
        try Data(text.utf8).write(to: url)
        return url.path
    }

    static let events = """
    {"event_id":"s1","contact_id":"c-1","type":"subscribed","ts":"2026-03-02T09:00:00Z"}
    {"event_id":"p1","contact_id":"c-1","type":"page_view","ts":"2026-03-10T09:00:00Z","props":{"path":"/pricing"}}

    """

    /// An environment without SEGMENTD_* settings (the test runner's own could leak in).
    static var cleanEnvironment: [String: String] {
        ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("SEGMENTD_") }
    }

    @Test("a bad model: file:line:column and reason, a did-you-mean, no usage, status 65")
    func badModel() throws {
        let model = try Self.temporaryFile("""
        version: t1
        filters:
          high_intent: {type: page_view}
        conditions:
          hot: {at_least: 1, of: hi_intent, within: 30d}
        groups:
          - name: g
            segments:
              - {name: hot, when: hot}
        """)
        defer { unlink(model) }
        let r = try Self.segmentd(["validate", model])
        #expect(r.status == 65, "\(r.stderr)")
        #expect(r.stderr.contains("\(model):5:"), "\(r.stderr)")
        #expect(r.stderr.contains("unknown filter 'hi_intent'"), "\(r.stderr)")
        #expect(r.stderr.contains("did you mean 'high_intent'?"), "\(r.stderr)")
        #expect(!r.stderr.contains("Usage:"), "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")

        let typo = try Self.temporaryFile("version: t1\nfilters:\n  v: {type: page_veiw}\ngroups: []\n")
        defer { unlink(typo) }
        let t = try Self.segmentd(["replay", "--model", typo, "/dev/null"])
        #expect(t.status == 65, "\(t.stderr)")
        #expect(t.stderr.contains("did you mean 'page_view'?"), "\(t.stderr)")
        #expect(!t.stderr.contains("Usage:"), "\(t.stderr)")

        let record = try Self.temporaryFile(#"{"contact_id":"c-1","type":"page_veiw","ts":"2026-03-02T09:00:00Z"}"# + "\n", ext: "ndjson")
        defer { unlink(record) }
        let b = try Self.segmentd(["replay", record, "--quiet"])
        #expect(b.status == 0, "\(b.stderr)")
        #expect(b.stderr.contains("line 1: unknown_type: unknown event type 'page_veiw' (did you mean 'page_view'?)"), "\(b.stderr)")
    }

    @Test("a bad configuration: origin and reason, a did-you-mean for a setting, no usage, status 65")
    func badConfig() throws {
        let config = try Self.temporaryFile("brokers: 127.0.0.1:1\nbach_size: 10\n")
        defer { unlink(config) }
        let r = try Self.segmentd(["run", "--config", config], environment: Self.cleanEnvironment)
        #expect(r.status == 65, "\(r.stderr)")
        #expect(r.stderr.contains("\(config):2:"), "\(r.stderr)")
        #expect(r.stderr.contains("unknown setting 'bach_size' (did you mean 'batch_size'?)"), "\(r.stderr)")
        #expect(!r.stderr.contains("Usage:"), "\(r.stderr)")

        let flag = try Self.segmentd(["run", "--brokers", "127.0.0.1:1", "--output-mode", "binery"], environment: Self.cleanEnvironment)
        #expect(flag.status == 65, "\(flag.stderr)")
        #expect(flag.stderr.contains("flag --output-mode: output_mode 'binery' must be structured or binary"), "\(flag.stderr)")
        let client = try Self.segmentd(["run", "--brokers", "127.0.0.1:1", "--consumer", "group.id=x"], environment: Self.cleanEnvironment)
        #expect(client.status == 65, "\(client.stderr)")
        #expect(client.stderr.contains("flag --consumer: 'consumer.group.id' cannot be set"), "\(client.stderr)")

        let tls = try Self.segmentd(["run", "--brokers", "127.0.0.1:1", "--http-address", "off", "--kafka", "security.protocol=SSL",
                                     "--kafka", "ssl.ca.location=/nonexistent/ca.pem"], environment: Self.cleanEnvironment)
        #expect(tls.status == 65, "\(tls.stderr)")
        #expect(tls.stderr.contains("Error: the Kafka client refused its configuration: ssl.ca.location failed"), "\(tls.stderr)")

        var env = Self.cleanEnvironment
        env["SEGMENTD_BROKRS"] = "127.0.0.1:1"
        let e = try Self.segmentd(["run"], environment: env)
        #expect(e.status == 65, "\(e.stderr)")
        #expect(e.stderr.contains("environment SEGMENTD_BROKRS: unknown setting 'brokrs' (did you mean 'brokers'?)"), "\(e.stderr)")
    }

    @Test("an unknown contact: the error alone with a did-you-mean, status 65")
    func unknownContact() throws {
        let events = try Self.temporaryFile(Self.events, ext: "ndjson")
        defer { unlink(events) }
        let r = try Self.segmentd(["explain", events, "C-1"])
        #expect(r.status == 65, "\(r.stderr)")
        #expect(r.stderr.contains("contact 'C-1' does not appear in \(events) (did you mean 'c-1'?)"), "\(r.stderr)")
        #expect(!r.stderr.contains("Usage:"), "\(r.stderr)")
    }

    @Test("usage errors keep the usage and status 64; a missing input file is 66")
    func usageAndMissingInput() throws {
        let u = try Self.segmentd(["replay", "--untill", "2026-01-01T00:00:00Z"])
        #expect(u.status == 64, "\(u.stderr)")
        #expect(u.stderr.contains("Usage:"), "\(u.stderr)")
        #expect(u.stderr.contains("--until"), "\(u.stderr)")
        let help = try Self.segmentd(["run", "--help"])
        #expect(help.status == 0 && help.stdout.contains("--brokers"), "\(help.stderr)")
        let version = try Self.segmentd(["--version"])
        #expect(version.status == 0 && version.stdout.contains("librdkafka"), "\(version.stderr)")
        let c = try Self.segmentd(["rnu"])
        #expect(c.status == 64, "\(c.stderr)")
        #expect(c.stderr.contains("unknown command 'rnu' (did you mean 'run'?)"), "\(c.stderr)")
        let l = try Self.segmentd(["replay", "--lateness", "soon", "/dev/null"])
        #expect(l.status == 64, "\(l.stderr)")
        let m = try Self.segmentd(["replay", "/nonexistent/events.ndjson"])
        #expect(m.status == 66, "\(m.stderr)")
        #expect(m.stderr.contains("cannot open /nonexistent/events.ndjson"), "\(m.stderr)")
        #expect(!m.stderr.contains("Usage:"), "\(m.stderr)")
    }

    @Test("replay --duplicate-horizon: an id redelivered two days later is a duplicate under 7d, applied under 24h; outside 24h to 24d refused")
    func duplicateHorizon() throws {
        // e-1 again two days after it was applied, the contact's newest event in between.
        let events = try Self.temporaryFile("""
        {"contact_id":"c-1","type":"email_open","ts":1767225600000,"event_id":"e-1"}
        {"contact_id":"c-1","type":"email_open","ts":1767398400000,"event_id":"e-2"}
        {"contact_id":"c-1","type":"email_open","ts":1767398400001,"event_id":"e-1"}

        """)
        defer { unlink(events) }
        let week = try Self.segmentd(["replay", events])
        #expect(week.status == 0, "\(week.stderr)")
        #expect(week.stderr.contains("duplicates: 1"), "\(week.stderr)")
        let day = try Self.segmentd(["replay", "--duplicate-horizon", "24h", events])
        #expect(day.status == 0, "\(day.stderr)")
        #expect(day.stderr.contains("duplicates: 0"), "\(day.stderr)")
        for bad in ["23h", "25d", "soon"] {
            let r = try Self.segmentd(["replay", "--duplicate-horizon", bad, events])
            #expect(r.status == 64, "\(bad): \(r.stderr)")
            #expect(r.stderr.contains("--duplicate-horizon '\(bad)' is not a duration from 24h to 24d"), "\(r.stderr)")
        }
    }

    @Test("run without brokers refuses to start (no embedded broker by accident), status 65")
    func noBrokers() throws {
        let config = try Self.temporaryFile("group_id: g\n")
        defer { unlink(config) }
        let r = try Self.segmentd(["run", "--config", config, "--http-address", "off"], environment: Self.cleanEnvironment)
        #expect(r.status == 65, "\(r.stderr)")
        #expect(r.stderr.contains("no brokers configured"), "\(r.stderr)")
        #expect(r.stderr.contains("brokers: embedded"), "\(r.stderr)")
        #expect(!r.stderr.contains("embedded broker (librdkafka mock cluster)"), "\(r.stderr)")
        #expect(!r.stderr.contains("Usage:"), "\(r.stderr)")

        let lib = try Self.temporaryFile("kafka:\n  bootstrap.servers: 127.0.0.1:1\n")
        defer { unlink(lib) }
        let k = try Self.segmentd(["run", "--config", lib, "--http-address", "off"], environment: Self.cleanEnvironment)
        #expect(k.status == 65, "\(k.stderr)")
        #expect(k.stderr.contains("\(lib):2:"), "\(k.stderr)")
        #expect(k.stderr.contains("'kafka.bootstrap.servers' cannot be set as a librdkafka property: use the setting brokers"), "\(k.stderr)")
    }

    @Test("librdkafka properties segmentd sets itself are refused with the setting to use, not overwritten")
    func ownedProperties() throws {
        for (key, setting) in [("kafka.group.id", "group_id"), ("producer.transactional.id", "transactional_id"),
                               ("consumer.group.id", "group_id"), ("kafka.bootstrap.servers", "brokers"),
                               ("producer.enable.idempotence", "processing_guarantee"), ("kafka.acks", "acks=all")] {
            var c = DaemonConfig()
            do {
                try c.set(key, "x", origin: "flag --kafka")
                Issue.record("\(key) was accepted")
            } catch {
                #expect(error.message.contains(setting), "\(key): \(error)")
            }
        }
        var typo = DaemonConfig()
        do {
            try typo.set("kafka.secuirty.protocol", "SSL", origin: "flag --kafka")
            Issue.record("a misspelt librdkafka property was accepted")
        } catch {
            #expect(error.description == "flag --kafka: 'kafka.secuirty.protocol': librdkafka has no property 'secuirty.protocol' (did you mean 'security.protocol'?)")
        }
        #expect(throws: ConfigError.self) { try typo.set("consumer.session.timeout.ms", "soon", origin: "flag --kafka") }
        try typo.set("producer.compression.type", "zstd", origin: "flag --kafka")
        var c = DaemonConfig()
        try c.set("consumer.isolation.level", "read_uncommitted", origin: "flag --kafka")
        #expect(c.consumerProperties()["isolation.level"] == "read_uncommitted")
        #expect(throws: ConfigError.self) { try c.checkConsistency() }
        try c.set("brokers", "embedded", origin: "flag --brokers")
        #expect(c.usesEmbeddedBroker)
        try c.checkConsistency()
    }

    @Test("did you mean: close names only, ties in alphabetical order")
    func suggestions() {
        #expect(Suggestions.closest(to: "bach_size", among: ["batch_size", "brokers"]) == "batch_size")
        #expect(Suggestions.closest(to: "lateness", among: ["lateness"]) == nil)
        #expect(Suggestions.closest(to: "hgih_intent", among: ["high_intent"]) == "high_intent")
        #expect(Suggestions.closest(to: "zzz", among: ["batch_size", "brokers"]) == nil)
        #expect(Suggestions.closest(to: "c-9", among: ["c-2", "c-1"]) == "c-1")
        #expect(Suggestions.hint(for: "Brokers", among: ["brokers"]) == " (did you mean 'brokers'?)")
        #expect(Suggestions.distance(Array("kitten"), Array("sitting")) == 3)
    }

    @Test("output that cannot be written fails the command (status 74) instead of losing data; a closed pipe ends quietly")
    func unwritableOutput() throws {
        let events = try Self.temporaryFile(Self.events, ext: "ndjson")
        defer { unlink(events) }
        let full = try #require(FileHandle(forWritingAtPath: "/dev/full"))
        let r = try Self.segmentd(["replay", events, "--until", "2026-06-01T00:00:00Z", "--quiet"], stdout: full)
        #expect(r.status == 74, "\(r.stderr)")
        #expect(r.stderr.contains("cannot write standard output: No space left on device"), "\(r.stderr)")
        let report = try Self.segmentd(["report", "--out", "/dev/full", "/dev/null"])
        #expect(report.status == 74, "\(report.stderr)")
        #expect(report.stderr.contains("cannot write /dev/full"), "\(report.stderr)")

        // A reader that went away: no error message, status 0.
        let pipe = Pipe()
        try pipe.fileHandleForReading.close()
        let closed = try Self.segmentd(["replay", events, "--until", "2026-06-01T00:00:00Z", "--quiet"], stdout: pipe.fileHandleForWriting)
        #expect(closed.status == 0, "\(closed.stderr)")
        #expect(closed.stderr.isEmpty, "\(closed.stderr)")
    }

    /// A loopback port nothing listens on.
    static func closedPort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    @Test("an unreachable broker: one line naming it and what to check, librdkafka's lines through the logger (JSON too), SIGTERM honoured")
    func unreachableBroker() throws {
        for json in [false, true] {
            let port = Self.closedPort()
            var args = ["--brokers", "127.0.0.1:\(port)", "--http-address", "off", "--transactional-id", "t-unreachable-\(port)"]
            if json { args += ["--log-format", "json"] }
            let p = try LifecycleTests.Subprocess(args)
            #expect(p.waitFor("cannot reach Kafka broker 127.0.0.1:\(port)", timeout: 30), "\(p.stderr)")
            usleep(1_500_000)
            let secs = p.terminate()
            #expect(p.process.terminationStatus == 0, "\(p.stderr)")
            #expect(secs < 5, "took \(secs) s")
            let lines = p.stderr.split(separator: "\n")
            #expect(lines.filter { $0.contains("cannot reach Kafka broker") }.count == 1, "\(p.stderr)")
            #expect(p.stderr.contains("Check the setting brokers"), "\(p.stderr)")
            #expect(!lines.contains { $0.hasPrefix("%") }, "raw librdkafka lines: \(p.stderr)")
            if json {
                for line in lines {
                    let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                    #expect(object?["msg"] != nil, "not a JSON log line: \(line)")
                }
            }
        }
    }

    @Test("produce keys each record by contact id and partitions it with murmur2; tail prints committed transitions readably")
    func produceAndTail() throws {
        let cluster = try MockCluster()
        defer { cluster.close() }
        try cluster.createTopic("engagement-events", partitions: 6)
        try cluster.createTopic("segment-transitions", partitions: 3)
        var lines: [String] = []
        for i in 0..<40 {
            lines.append(#"{"event_id":"e\#(i)","contact_id":"c-\#(i % 13)","type":"page_view","ts":"2026-03-10T09:00:00Z","props":{"path":"/x"}}"#)
        }
        lines.append(#"{"type":"identify","userId":"u-7","timestamp":"2026-03-10T09:00:00Z","traits":{"company_size":40}}"#)
        lines.append("not json")
        let events = try Self.temporaryFile(lines.joined(separator: "\n") + "\n", ext: "ndjson")
        defer { unlink(events) }
        let p = try Self.segmentd(["produce", events, "--brokers", cluster.bootstrapServers], environment: Self.cleanEnvironment)
        #expect(p.status == 0, "\(p.stderr)")
        #expect(p.stderr.contains("42 records to engagement-events"), "\(p.stderr)")
        #expect(p.stderr.contains("1 without a contact id"), "\(p.stderr)")
        let records = try TopicReader(config: ["bootstrap.servers": cluster.bootstrapServers], topic: "engagement-events").readAll()
        #expect(records.count == 42)
        for r in records {
            guard let key = r.key else { continue }
            #expect(r.partition == Murmur2.partition(key, count: 6), "\(String(decoding: key, as: UTF8.self)) on \(r.partition)")
        }
        #expect(records.filter { $0.key == Array("u-7".utf8) }.count == 1)
        #expect(records.filter { $0.key == nil }.count == 1)

        // Reading an idle pipe, SIGTERM ends produce with what it read delivered, status 0.
        let waiting = Process()
        waiting.executableURL = URL(fileURLWithPath: Self.bin)
        waiting.arguments = ["produce", "-", "--brokers", cluster.bootstrapServers]
        waiting.environment = Self.cleanEnvironment
        let input = Pipe()
        waiting.standardInput = input
        waiting.standardError = FileHandle.nullDevice
        try waiting.run()
        try input.fileHandleForWriting.write(contentsOf: Data((lines[0] + "\n").utf8))
        usleep(1_500_000)
        kill(waiting.processIdentifier, SIGTERM)
        waiting.waitUntilExit()
        #expect(waiting.terminationStatus == 0)
        #expect(try TopicReader(config: ["bootstrap.servers": cluster.bootstrapServers], topic: "engagement-events").readAll().count == 43)

        let producer = try KafkaProducer(config: ["bootstrap.servers": cluster.bootstrapServers])
        let transition = #"{"specversion":"1.0","type":"segmentd.transition","data":{"contact_id":"c-1","group":"lifecycle","from":null,"to":"new_subscriber","at":"2026-03-02T09:00:00.000Z","cause":{"kind":"event","event_type":"subscribed"}}}"#
        try producer.produce(topic: "segment-transitions", key: Array("c-1".utf8), value: Array(transition.utf8))
        try producer.flush(timeoutMs: 10_000)
        try producer.close()
        let t = try Self.segmentd(["tail", "--brokers", cluster.bootstrapServers, "--from-beginning", "--count", "1"], environment: Self.cleanEnvironment)
        #expect(t.status == 0, "\(t.stderr)")
        #expect(t.stdout == "2026-03-02T09:00:00.000Z  c-1  lifecycle: (none) -> new_subscriber  (event subscribed)\n", "\(t.stdout) \(t.stderr)")
    }

    @Test("produce, tail and report from a cluster: an unreachable one is 69 with what to check; no brokers is 65")
    func produceTailRefusals() throws {
        let port = Self.closedPort()
        let p = try Self.segmentd(["produce", "/dev/null", "--brokers", "127.0.0.1:\(port)"], environment: Self.cleanEnvironment)
        #expect(p.status == 69, "\(p.stderr)")
        #expect(p.stderr.contains("cannot reach the Kafka brokers 127.0.0.1:\(port)"), "\(p.stderr)")
        #expect(!p.stderr.split(separator: "\n").contains { $0.hasPrefix("%") }, "\(p.stderr)")
        let r = try Self.segmentd(["report", "--brokers", "127.0.0.1:\(port)"], environment: Self.cleanEnvironment)
        #expect(r.status == 69, "\(r.stderr)")
        #expect(r.stderr.contains("cannot reach the Kafka brokers 127.0.0.1:\(port)"), "\(r.stderr)")
        let t = try Self.segmentd(["tail"], environment: Self.cleanEnvironment)
        #expect(t.status == 65, "\(t.stderr)")
        #expect(t.stderr.contains("no brokers"), "\(t.stderr)")
        let e = try Self.segmentd(["tail", "--brokers", "embedded"], environment: Self.cleanEnvironment)
        #expect(e.status == 65, "\(e.stderr)")
    }

    @Test("demo serves the HTTP operations on its traffic and says where")
    func demoHTTP() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.bin)
        p.arguments = ["demo", "--seconds", "8", "--http-address", "127.0.0.1:0"]
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("segmentd-demo-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: log) }
        p.standardError = try FileHandle(forWritingTo: log)
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        var port: Int?
        let deadline = Date().addingTimeInterval(20)
        while port == nil && Date() < deadline && p.isRunning {
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            if let r = text.range(of: "HTTP on http://127.0.0.1:") { port = Int(text[r.upperBound...].prefix { $0.isNumber }) }
            usleep(100_000)
        }
        let found = try #require(port, "\((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
        let metrics = httpGet(port: found, path: "/metrics")
        #expect(metrics?.hasPrefix("HTTP/1.1 200") == true, "\(metrics ?? "no answer")")
        #expect(metrics?.contains("segmentd_records_total") == true)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
    }
}

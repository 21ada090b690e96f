import Foundation
import SegmentdKafka
import Testing
@testable import SegmentdReport

/// `segmentd report --brokers`: the transitions read from the output topic of a cluster (the
/// in-process mock cluster on 127.0.0.1), each contact on its own partition as the daemon keys
/// them; the figures are those of the same transitions read from a file.
@Suite("report from the output topic")
struct TopicSourceTests {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let bin = repoRoot.appendingPathComponent(".build/debug/segmentd").path

    static func report(_ arguments: [String]) throws -> (json: Data, stderr: String, status: Int32) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: bin)
        p.arguments = ["report", "--format", "json", "--quiet"] + arguments
        let out = Pipe()
        let errFile = FileManager.default.temporaryDirectory.appendingPathComponent("segmentd-report-\(UUID().uuidString).err")
        guard FileManager.default.createFile(atPath: errFile.path, contents: nil) else { throw CocoaError(.fileWriteUnknown) }
        defer { try? FileManager.default.removeItem(at: errFile) }
        p.standardOutput = out
        p.standardError = try FileHandle(forWritingTo: errFile)
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (data, (try? String(contentsOf: errFile, encoding: .utf8)) ?? "", p.terminationStatus)
    }

    @Test("sizes, flows and bad records from the topic equal those from the file")
    func topicEqualsFile() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.bin) else {
            Issue.record("build the segmentd binary first (swift build)")
            return
        }
        let cluster = try MockCluster()
        defer { cluster.close() }
        try cluster.createTopic("transitions", partitions: 3)
        let producer = try KafkaProducer(config: ["bootstrap.servers": cluster.bootstrapServers])
        var lines = handLines
        lines.insert("{not json", at: 4)
        for line in lines {
            // Each contact on its own partition, as the daemon keys them; the bad record third on 0.
            let partitions: [String: Int32] = ["c1": 0, "c2": 1, "c3": 2]
            let partition = partitions.first { line.contains("\"subject\":\"\($0.key)\"") }?.value ?? 0
            try producer.produce(topic: "transitions", partition: partition, key: nil, value: Array(line.utf8))
        }
        try producer.flush(timeoutMs: 10_000)

        let until = ["--until", "2026-03-11T00:00:00.000Z", "--min-size", "2"]
        let fromTopic = try Self.report(["--brokers", cluster.bootstrapServers, "--output-topic", "transitions", "--topic-timeout", "30s"] + until)
        #expect(fromTopic.status == 0, "\(fromTopic.stderr)")
        #expect(fromTopic.stderr.contains("transitions[0]@2: invalid JSON"))
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("segmentd-report-\(UUID().uuidString).ndjson")
        try Data(lines.joined(separator: "\n").utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let fromFile = try Self.report([file.path] + until)
        #expect(fromFile.status == 0, "\(fromFile.stderr)")

        let a = try JSONReport.decode(fromTopic.json), b = try JSONReport.decode(fromFile.json)
        #expect(a.input.transitions == 9 && a.input.badLines == 1)
        #expect(a.period == b.period)
        for g in b.groups {
            let t = a.group(g.name)
            for s in g.segments {
                #expect(t.segment(s.name).dailySize == s.dailySize, "\(g.name)/\(s.name)")
                #expect(t.segment(s.name).weeklyEntries == s.weeklyEntries)
                #expect(t.segment(s.name).timeInSegment == s.timeInSegment)
            }
            #expect(Set(t.flows.map { "\($0.from ?? "-")>\($0.to ?? "-")=\($0.count)" }) == Set(g.flows.map { "\($0.from ?? "-")>\($0.to ?? "-")=\($0.count)" }))
        }
        #expect(a.group("lifecycle").segment("a").size == 2)
    }

    @Test("a FILE and --brokers together are refused; no brokers anywhere is refused")
    func refusals() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.bin) else { return }
        let both = try Self.report(["x.ndjson", "--brokers", "127.0.0.1:1"])
        #expect(both.status != 0 && both.stderr.contains("not both"))
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("segmentd-report-empty-\(UUID().uuidString).yaml")
        try Data("group_id: x\n".utf8).write(to: empty)
        defer { try? FileManager.default.removeItem(at: empty) }
        let none = try Self.report(["--config", empty.path])
        #expect(none.status != 0 && none.stderr.contains("no brokers"))
    }

    @Test("--read-from since: each partition read from the records written at --since less max_future (offsets for times)")
    func readFromSince() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.bin) else {
            Issue.record("build the segmentd binary first (swift build)")
            return
        }
        let cluster = try MockCluster()
        defer { cluster.close() }
        try cluster.createTopic("transitions", partitions: 3)
        let producer = try KafkaProducer(config: ["bootstrap.servers": cluster.bootstrapServers])
        let partitions: [String: Int32] = ["c1": 0, "c2": 1, "c3": 2]
        for line in handLines {
            // Written five minutes after the transition's instant, as a daemon would.
            let at = try #require(line.firstRange(of: "\"at\":\"").map { String(line[$0.upperBound...].prefix(24)) })
            let written = ms(at) + 300_000
            let partition = partitions.first { line.contains("\"subject\":\"\($0.key)\"") }?.value ?? 0
            try producer.produce(topic: "transitions", partition: partition, key: nil, value: Array(line.utf8), timestampMs: written)
        }
        try producer.flush(timeoutMs: 10_000)
        let common = ["--brokers", cluster.bootstrapServers, "--output-topic", "transitions", "--topic-timeout", "30s",
                      "--since", "2026-03-05T00:30:00.000Z", "--until", "2026-03-11T00:00:00.000Z"]
        let sought = try Self.report(common + ["--read-from", "since"])
        #expect(sought.status == 0, "\(sought.stderr)")
        let whole = try Self.report(common)
        #expect(whole.status == 0, "\(whole.stderr)")
        let a = try JSONReport.decode(sought.json), b = try JSONReport.decode(whole.json)
        // Written at or after 2026-03-04T23:30 (since less the default max_future of 1 h): c3's
        // move at 03-05T00:00 (written 00:05), c1's tier at 03-06 and c1's exit on 03-10.
        #expect(a.input.transitions == 3)
        #expect(b.input.transitions == handLines.count)
        #expect(a.period == b.period)
        // Every transition of the period is read either way: the flows agree.
        for g in b.groups {
            #expect(Set(a.group(g.name).flows.map { "\($0.from ?? "-")>\($0.to ?? "-")=\($0.count)" })
                == Set(g.flows.map { "\($0.from ?? "-")>\($0.to ?? "-")=\($0.count)" }), "\(g.name)")
        }
        #expect(b.group("lifecycle").flows.contains { $0.from == "b" && $0.to == nil && $0.count == 1 })
        let refused = try Self.report(["--brokers", cluster.bootstrapServers, "--read-from", "since"])
        #expect(refused.status != 0 && refused.stderr.contains("needs --since"))
    }
}

import Foundation
import Testing
@testable import SegmentdReport

/// `segmentd report` as a user runs it: a file or standard input, the built-in default model,
/// bad lines on stderr with their line numbers, an empty input.
@Suite("the report command")
struct ReportCommandTests {
    static func run(_ arguments: [String], stdin: String? = nil) throws -> (out: Data, err: String, status: Int32) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: TopicSourceTests.bin)
        p.arguments = ["report"] + arguments
        let out = Pipe(), input = Pipe()
        let errFile = FileManager.default.temporaryDirectory.appendingPathComponent("segmentd-report-\(UUID().uuidString).err")
        guard FileManager.default.createFile(atPath: errFile.path, contents: nil) else { throw CocoaError(.fileWriteUnknown) }
        defer { try? FileManager.default.removeItem(at: errFile) }
        p.standardOutput = out
        p.standardError = try FileHandle(forWritingTo: errFile)
        p.standardInput = input
        try p.run()
        try input.fileHandleForWriting.write(contentsOf: Data((stdin ?? "").utf8))
        try input.fileHandleForWriting.close()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (data, (try? String(contentsOf: errFile, encoding: .utf8)) ?? "", p.terminationStatus)
    }

    static var built: Bool { FileManager.default.isExecutableFile(atPath: TopicSourceTests.bin) }

    @Test("default-model transitions on stdin: every segment of the model listed, the unseen ones flagged, a bad line reported")
    func defaultModel() throws {
        guard Self.built else { Issue.record("build the segmentd binary first (swift build)"); return }
        let lines = [
            transitionLine("c1", "lifecycle", nil, "new_subscriber", "2026-03-02T09:00:00.000Z", version: "default-1"),
            "{\"oops\":",
            transitionLine("c1", "engagement_tier", nil, "cold", "2026-03-02T09:00:00.000Z", version: "default-1"),
            transitionLine("c1", "lifecycle", "new_subscriber", "active_evaluator", "2026-04-01T09:00:00.000Z", kind: "time", version: "default-1"),
        ]
        let r = try Self.run(["-", "--format", "json", "--min-size", "1", "--overlap", "engagement_tier,lifecycle"], stdin: lines.joined(separator: "\n") + "\n")
        #expect(r.status == 0, "\(r.err)")
        #expect(r.err.contains("stdin: line 2: invalid JSON"))
        let report = try JSONReport.decode(r.out)
        #expect(report.segmentOrder.contains("built-in default model"))
        #expect(report.groups.map(\.name) == ["lifecycle", "lead_score", "engagement_tier", "hot_lead"])
        let lifecycle = report.group("lifecycle")
        #expect(lifecycle.segments.map(\.name) == ["suppressed", "customer", "new_subscriber", "active_evaluator", "engaged_non_converter", "inactive"])
        #expect(lifecycle.segment("active_evaluator").size == 1)
        #expect(lifecycle.segment("new_subscriber").timeInSegment.median == DurationEstimate(ms: 30 * day, atLeast: false))
        #expect(report.flags.contains(SegmentFlag(group: "lifecycle", segment: "customer", kind: .nobodyEntered, size: 0)))
        #expect(!report.flags.contains { $0.segment == "active_evaluator" })
        #expect(report.input.badLines == 1 && report.input.badLineSamples == [BadLine(line: 2, reason: "invalid JSON")])
        #expect(report.overlaps.map(\.rowGroup) == ["engagement_tier"] && report.overlaps.map(\.columnGroup) == ["lifecycle"])
    }

    @Test("an empty input writes a page that says so, and exits 0")
    func emptyInput() throws {
        guard Self.built else { Issue.record("build the segmentd binary first (swift build)"); return }
        let r = try Self.run([], stdin: "")
        #expect(r.status == 0, "\(r.err)")
        let page = String(decoding: r.out, as: UTF8.self)
        #expect(page.hasPrefix("<!doctype html>"))
        #expect(page.contains("No transitions to report."))
        #expect(!page.contains("<script"))
        #expect(!page.contains("http://") && !page.contains("https://"))
    }

    @Test("bad options are refused with the reason")
    func refusals() throws {
        guard Self.built else { return }
        let since = try Self.run(["--since", "yesterday"], stdin: "")
        #expect(since.status != 0 && since.err.contains("--since 'yesterday' is not an RFC 3339 date-time"))
        let overlap = try Self.run(["--overlap", "lifecycle"], stdin: "")
        #expect(overlap.status != 0 && overlap.err.contains("is not ROWS,COLUMNS"))
        let order = try Self.run(["--since", "2026-05-01T00:00:00Z", "--until", "2026-04-01T00:00:00Z"], stdin: "")
        #expect(order.status != 0 && order.err.contains("--since is after --until"))
    }
}

import Foundation
import Testing
@testable import SegmentdReport

/// Opens the HTML report in headless Chromium (Debian's `chromium`) and reads the rendered
/// DOM back; saves a screenshot as an artifact. Skipped, with the reason printed, when no
/// Chromium is installed.
@Suite("the report in a real browser", .serialized)
struct BrowserTests {
    static let chromium: String? = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
        .first { FileManager.default.isExecutableFile(atPath: $0) }

    /// Where screenshots go: `REPORT_TEST_ARTIFACTS`, or a temporary directory.
    static let artifacts: URL = {
        let dir = ProcessInfo.processInfo.environment["REPORT_TEST_ARTIFACTS"].map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("segmentd-report-artifacts")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }()

    /// Runs Chromium headless on `page` with `arguments`; returns stdout and stderr.
    static func runChromium(_ page: URL, _ arguments: [String]) throws -> (out: String, err: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/timeout")
        process.arguments = ["90", chromium!, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                             "--no-first-run", "--hide-scrollbars", "--enable-logging=stderr", "--v=0"] + arguments + [page.absoluteString]
        // stderr to a file, stdout through a pipe read to its end: nothing can block Chromium.
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
        let errText = (try? String(contentsOf: errURL, encoding: .utf8)) ?? ""
        return (String(decoding: outData, as: UTF8.self), errText)
    }

    static func write(_ html: String, name: String) throws -> URL {
        let url = artifacts.appendingPathComponent(name)
        try Data(html.utf8).write(to: url)
        return url
    }

    @Test("the rendered page has every chart and shows the hand-computed figures")
    func renderedDOM() throws {
        guard Self.chromium != nil else {
            print("BrowserTests skipped: no chromium installed (apt-get install -y chromium)")
            return
        }
        let report = build(handLines, ReportOptions(until: ms("2026-03-11T00:00:00.000Z"), minSize: 2, catalog: handCatalog))
        let page = try Self.write(HTMLReport.render(report), name: "report-hand.html")
        let (dom, log) = try Self.runChromium(page, ["--dump-dom"])
        #expect(dom.contains("<svg class=\"chart size-bars\""))
        #expect(dom.components(separatedBy: "class=\"chart sankey\"").count - 1 == 2)
        #expect(dom.components(separatedBy: "class=\"chart daily-size\"").count - 1 == 5)
        #expect(dom.components(separatedBy: "class=\"chart weekly\"").count - 1 == 5)
        #expect(dom.components(separatedBy: "class=\"chart stays\"").count - 1 == 2)
        // Sizes, entries and exits of segment a as the card shows them.
        #expect(dom.contains("data-segment=\"a\" data-size=\"2\" data-entries=\"3\" data-exits=\"1\""))
        #expect(dom.contains("data-segment=\"b\" data-size=\"0\" data-entries=\"2\" data-exits=\"2\""))
        // The flow a -> b and the overlap cell (a, cold).
        #expect(dom.contains("data-from=\"a\" data-to=\"b\" data-count=\"1\""))
        #expect(dom.contains("data-row=\"a\" data-column=\"cold\" data-count=\"1\""))
        // Flags listed, the period said.
        #expect(dom.contains("data-segment=\"c\" data-kind=\"nobody_entered\""))
        #expect(dom.contains("data-since=\"2026-03-02T10:00:00.000Z\" data-until=\"2026-03-11T00:00:00.000Z\""))
        // Median of b: 2 days; a: a lower bound.
        #expect(dom.contains("median 2.0 d · p90 6.0 d"))
        #expect(dom.contains("median &gt; 8.5 d"))
        #expect(!log.contains("Uncaught"), "the page logged a script error: \(log)")
        #expect(!log.contains("net::ERR"), "the page tried to load something: \(log)")

        let shot = Self.artifacts.appendingPathComponent("report-hand.png")
        try? FileManager.default.removeItem(at: shot)
        _ = try Self.runChromium(page, ["--screenshot=\(shot.path)", "--window-size=1280,2400"])
        #expect(FileManager.default.fileExists(atPath: shot.path))
        print("BrowserTests: page \(page.path), screenshot \(shot.path)")
    }

    @Test("an empty input renders a clear page")
    func emptyPage() throws {
        guard Self.chromium != nil else {
            print("BrowserTests skipped: no chromium installed")
            return
        }
        let page = try Self.write(HTMLReport.render(build(["nonsense"], ReportOptions(catalog: handCatalog))), name: "report-empty.html")
        let (dom, _) = try Self.runChromium(page, ["--dump-dom"])
        #expect(dom.contains("id=\"empty\""))
        #expect(dom.contains("No transitions to report."))
        #expect(dom.contains("line 1: invalid JSON"))
    }
}

import Foundation
import Testing

/// `segmentd preview`: a threshold change on a known stream moves exactly the contacts a hand
/// check says, with the new model's reasons.
@Suite("Preview of a model change")
struct PreviewTests {
    @Test("engaged_non_converter at 2 engagements instead of 3: exactly the contact with two moves")
    func thresholdChange() throws {
        let defaultText = try String(contentsOf: repoRoot.appendingPathComponent("config/default-model.yaml"), encoding: .utf8)
        let changed = defaultText
            .replacingOccurrences(of: "version: default-1", with: "version: two-opens")
            .replacingOccurrences(of: "{name: engaged_non_converter, when: {at_least: 3, of: email_engagement, within: 30d}}",
                                  with: "{name: engaged_non_converter, when: {at_least: 2, of: email_engagement, within: 30d}}")
        #expect(changed.contains("at_least: 2, of: email_engagement"))
        let model = try OperatorTests.temporaryFile(changed)
        func open(_ c: String, _ day: Int) -> String {
            #"{"contact_id":"\#(c)","type":"email_open","ts":"2026-03-0\#(day)T10:00:00Z","event_id":"\#(c)-\#(day)","props":{"machine_open":false}}"#
        }
        // a: two human opens (moves); b: three (engaged under both); c: one (under neither).
        let events = try OperatorTests.temporaryFile([open("a", 1), open("a", 2), open("b", 1), open("b", 2), open("b", 3), open("c", 1)]
            .joined(separator: "\n") + "\n", ext: "ndjson")
        let page = FileManager.default.temporaryDirectory.appendingPathComponent("preview-\(UUID().uuidString).html").path
        defer { try? FileManager.default.removeItem(atPath: page) }
        let r = try OperatorTests.segmentd(["preview", events, "--model", model, "--html", page])
        #expect(r.status == 0, "\(r.stderr)")
        let text = r.stdout
        #expect(text.contains("preview: model 'default-1' -> 'two-opens', 3 contacts, at the end of the events"), "\(text)")
        #expect(text.contains("group lifecycle: 1 contacts move"), "\(text)")
        #expect(text.contains("  engaged_non_converter: 1 -> 2\n"), "\(text)")
        #expect(text.contains("  none: 2 -> 1\n"), "\(text)")
        #expect(text.contains("  move none -> engaged_non_converter: 1\n    a: "), "\(text)")
        #expect(text.contains("✓ engaged_non_converter: 2+ of at least 2 'email_engagement' in the last 30d"), "\(text)")
        for group in ["lead_score", "engagement_tier", "hot_lead"] {
            #expect(text.contains("group \(group): 0 contacts move"), "\(group)")
        }
        let html = try String(contentsOfFile: page, encoding: .utf8)
        #expect(html.contains(#"data-from="none" data-to="engaged_non_converter">1<"#))
        #expect(html.components(separatedBy: "class=\"move\"").count == 2, "one moved cell in all")
        // At an instant when the opens have left the 30-day window, nobody is engaged under either.
        let later = try OperatorTests.segmentd(["preview", events, "--model", model, "--at", "2026-04-10T00:00:00Z"])
        #expect(later.stdout.contains("group lifecycle: 0 contacts move"), "\(later.stdout)")
        #expect(try OperatorTests.segmentd(["preview", events, "--model", model, "--at", "soon"]).status == 64)
    }
}

import Foundation
import Testing
@testable import SegmentdEngine

@Suite("Model files")
struct ModelTests {
    @Test("config/default-model.yaml is the embedded default")
    func defaultFileMatches() throws {
        let text = try String(contentsOf: repoRoot.appendingPathComponent("config/default-model.yaml"), encoding: .utf8)
        #expect(text == DefaultModel.yaml)
        let m = try Model.load(yaml: text, file: "default-model.yaml")
        #expect(m.groups.map(\.name) == ["lifecycle", "lead_score", "engagement_tier", "hot_lead"])
        #expect(m.version == "default-1")
    }

    @Test("the compiled state is minimal: K most recent times per counted filter")
    func compiledState() {
        let m = Model.defaultModel()
        let byName = Dictionary(uniqueKeysWithValues: m.lists.map { (m.filterNames[$0.filter] ?? "?", $0.capacity) })
        #expect(byName["email_engagement"] == 3)
        #expect(byName["pricing_visit"] == 2)
        #expect(byName["engagement"] == 1)
        #expect(m.scores[0].parts[1].eventCapacity == 10)
    }

    func error(_ yaml: String) -> ModelError? {
        do { _ = try Model.load(yaml: yaml, file: "m.yaml"); return nil } catch { return error }
    }

    @Test("a wrong model is refused with file, line, column and reason")
    func errors() {
        let base = "version: v1\ngroups:\n"
        var e = error(base + "  - name: g\n    flag: {at_least: 2, of: nope, within: 7d}\n")
        #expect(e?.line == 4)
        #expect(e?.message.contains("unknown filter 'nope'") == true)
        e = error(base + "  - name: g\n    flag: {at_least: 2, of: {type: page_view}, within: 7 days}\n")
        #expect(e?.message.contains("not a duration") == true)
        e = error(base + "  - name: g\n    flag: {at_least: 1, of: {type: page_viewed}, within: 7d}\n")
        #expect(e?.message.contains("unknown event type 'page_viewed'") == true)
        e = error(base + "  - name: g\n    segments:\n      - {name: a, whenn: always}\n")
        #expect(e?.message.contains("unknown key 'whenn'") == true)
        #expect(e?.line == 5)
        #expect(e?.column == 19)
        e = error("groups: [\n")
        #expect(e?.message.contains("YAML") == true)
        e = error("groups:\n  - name: g\n    flag: always\n")
        #expect(e?.message.contains("version") == true)
        #expect(e.map { "\($0)" }?.hasPrefix("m.yaml:") == true)
    }

    @Test("a user model: own names, windows and thresholds")
    func customModel() throws {
        let yaml = """
        version: custom-2
        filters:
          visit: {type: page_view}
        groups:
          - name: busy
            segments:
              - {name: very, when: {at_least: 3, of: visit, within: 1h}}
              - {name: bit, when: {at_least: 1, of: visit, within: 15m}}
        """
        let m = try Model.load(yaml: yaml, file: "custom.yaml")
        let out = replay([
            ev("c", "page_view", "2026-03-02T09:00:00.000Z"),
            ev("c", "page_view", "2026-03-02T09:10:00.000Z"),
            ev("c", "page_view", "2026-03-02T09:20:00.000Z"),
        ], model: m, until: "2026-03-02T12:00:00.000Z")
        #expect(path(out, "c", "busy") == [
            "null->bit@2026-03-02T09:00:00.000Z/event",
            "bit->very@2026-03-02T09:20:00.000Z/event",
            // At 10:00 the first visit leaves the hour; the last left the 15 minutes at 09:35.
            "very->null@2026-03-02T10:00:00.000Z/time",
        ])
    }
}

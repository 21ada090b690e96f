import Testing
@testable import SegmentdEngine

/// `SegmentEngine.takeOver(from:)`: the switch of a rebuild, by hand.
@Suite("Rebuild switch")
struct TakeOverTests {
    /// The default model with a new flag over docs pages, which the default model does not count.
    static let newModel = try! Model.load(yaml: DefaultModel.yaml
        .replacingOccurrences(of: "version: default-1", with: "version: docs-1")
        .replacingOccurrences(of: "    flag: {at_least: 2, of: pricing_visit, within: 7d}", with: """
            flag: {at_least: 2, of: pricing_visit, within: 7d}
          - name: docs_reader
            flag: {at_least: 3, of: {type: page_view, prop: path, starts_with: /docs}, within: 14d}
        """), file: "docs.yaml")

    static func line(_ id: String, _ contact: String, _ type: String, _ ts: String, path: String? = nil) -> String {
        #"{"event_id":"\#(id)","contact_id":"\#(contact)","type":"\#(type)","ts":"\#(ts)"\#(path.map { #","props":{"path":"\#($0)"}"# } ?? "")}"#
    }

    static func history(_ contact: String, lastDocsDay: Int) -> [String] {
        [line("\(contact)-s", contact, "subscribed", "2026-03-01T09:00:00Z"),
         line("\(contact)-1", contact, "page_view", "2026-03-02T10:00:00Z", path: "/docs/start"),
         line("\(contact)-2", contact, "page_view", "2026-03-03T10:00:00Z", path: "/docs/api"),
         line("\(contact)-3", contact, "page_view", "2026-03-0\(lastDocsDay)T10:00:00Z", path: "/docs/faq")]
    }

    func run(_ p: Pipeline, _ lines: [String]) {
        for l in lines { _ = p.process(Array(l.utf8)) }
    }

    @Test("both: only the differences, at the switch; only rebuilt: from no segment; only old: adopted by meaning; then the new rules run on")
    func switchByHand() throws {
        let m = TakeOverTests.newModel
        // The instance's state: a and b under the default model.
        let old = Pipeline(model: .defaultModel())
        run(old, TakeOverTests.history("a", lastDocsDay: 4) + TakeOverTests.history("b", lastDocsDay: 5))
        _ = old.engine.takeTransitions()
        // The rebuild's history holds a and d (b's records expired).
        let rebuilt = Pipeline(model: m)
        run(rebuilt, TakeOverTests.history("a", lastDocsDay: 4) + [TakeOverTests.line("d-1", "d", "email_open", "2026-03-04T09:00:00Z")])
        #expect(!rebuilt.engine.takeTransitions().isEmpty, "history's transitions")
        #expect(rebuilt.engine.watermark < old.engine.watermark)
        rebuilt.engine.advanceWatermark(to: old.engine.watermark)
        _ = rebuilt.engine.takeTransitions()

        let counts = rebuilt.engine.takeOver(from: old.engine)
        #expect(counts == TakeOverCounts(rebuilt: 1, onlyRebuilt: 1, onlyOld: 1, changedContacts: 2))
        let switchAt = old.engine.watermark  // the later of the watermark and the clocks: b's last event made it
        let transitions = rebuilt.engine.takeTransitions().map { t in
            "\(String(decoding: t.contactId, as: UTF8.self)) \(m.groups[t.group].name) \(t.from.map { m.groups[t.group].segments[$0].name } ?? "null")->\(t.to.map { m.groups[t.group].segments[$0].name } ?? "null") \(t.at == switchAt ? "switch" : EventTime.format(t.at)) \(t.cause)"
        }
        #expect(transitions == [
            "a docs_reader null->docs_reader switch model(previousVersion: \"default-1\")",
            "d lead_score null->top_of_funnel switch model(previousVersion: \"default-1\")",
            "d engagement_tier null->warm switch model(previousVersion: \"default-1\")",
        ])
        // b: moved by meaning, as a reload moves it (the new flag starts empty for it).
        let adopted = SegmentEngine(model: m)
        adopted.adopt(from: old.engine)
        let b = Array("b".utf8)
        #expect(rebuilt.engine.memberships(of: b) == adopted.memberships(of: b))
        #expect(rebuilt.engine.memberships(of: b)?.last == .some(nil))
        #expect(rebuilt.engine.explain(b).map { "\($0)" } == adopted.explain(b).map { "\($0)" })
        // Every contact's state is due to the changelog.
        #expect(rebuilt.engine.takeDirtyContacts().count == 3)

        // The new rules run on: a leaves docs_reader when its first docs page is 14 days old.
        rebuilt.engine.advanceWatermark(to: EventTime.parseRFC3339("2026-03-20T00:00:00Z")!)
        let later = rebuilt.engine.takeTransitions().filter { $0.contactId == Array("a".utf8) && $0.group == m.groups.count - 1 }
        #expect(later.count == 1)
        #expect(later.first?.cause == .time)
        #expect(later.first.map { EventTime.format($0.at) } == "2026-03-16T10:00:00.000Z")
    }

    @Test("history that starts later than the old state: what the old state knew from before it fills in what both models count alike")
    func filledFromOld() throws {
        let m = TakeOverTests.newModel
        let before = [TakeOverTests.line("e-s", "e", "subscribed", "2026-03-01T09:00:00Z"),
                      #"{"event_id":"e-t","contact_id":"e","type":"traits","ts":"2026-03-01T10:00:00Z","props":{"industry":"software","company_size":200}}"#,
                      TakeOverTests.line("e-o", "e", "email_open", "2026-03-02T10:00:00Z")]
        let after = [TakeOverTests.line("e-1", "e", "page_view", "2026-03-03T10:00:00Z", path: "/docs/a"),
                     TakeOverTests.line("e-2", "e", "page_view", "2026-03-04T10:00:00Z", path: "/pricing")]
        let old = Pipeline(model: .defaultModel()), whole = Pipeline(model: m), rebuilt = Pipeline(model: m)
        run(old, before + after)
        run(whole, before + after)
        run(rebuilt, after)  // the topic kept only these
        for p in [old, whole, rebuilt] { _ = p.engine.takeTransitions() }
        let e = Array("e".utf8)
        #expect(rebuilt.engine.memberships(of: e) != whole.engine.memberships(of: e), "the retained events alone tell less")
        _ = rebuilt.engine.takeOver(from: old.engine)
        #expect(rebuilt.engine.takeTransitions().isEmpty, "nothing differs from what was said")
        #expect(rebuilt.engine.memberships(of: e) == whole.engine.memberships(of: e))
        let at = EventTime.parseRFC3339("2026-03-04T10:00:00Z")!
        #expect(rebuilt.engine.explain(e, at: at).map { "\($0.groups)" } == whole.engine.explain(e, at: at).map { "\($0.groups)" })
        #expect(rebuilt.engine.explain(e)?.firstSeen == EventTime.parseRFC3339("2026-03-01T09:00:00Z")!)
        // A redelivery of an event older than the history is still a duplicate.
        if case .duplicate = rebuilt.process(Array(TakeOverTests.line("e-o", "e", "email_open", "2026-03-02T10:00:00Z").utf8)) {} else {
            Issue.record("the old state's duplicate memory was not carried over")
        }
    }

    @Test("the same model and the same history: the switch emits nothing")
    func nothingChanged() {
        let lines = TakeOverTests.history("a", lastDocsDay: 4) + TakeOverTests.history("b", lastDocsDay: 5)
        let old = Pipeline(model: .defaultModel()), rebuilt = Pipeline(model: .defaultModel())
        run(old, lines)
        run(rebuilt, lines)
        _ = old.engine.takeTransitions()
        _ = rebuilt.engine.takeTransitions()
        let counts = rebuilt.engine.takeOver(from: old.engine)
        #expect(counts == TakeOverCounts(rebuilt: 2, onlyRebuilt: 0, onlyOld: 0, changedContacts: 0))
        #expect(rebuilt.engine.takeTransitions().isEmpty)
    }
}

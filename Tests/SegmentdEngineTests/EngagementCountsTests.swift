import Testing
@testable import SegmentdEngine

@Suite("Engagement counted under the segment each event found its contact in")
struct EngagementCountsTests {
    let model = try! Model.load(yaml: """
        version: e-1
        groups:
          - name: tier
            segments:
              - {name: hot, when: {at_least: 2, of: {type: page_view}, within: 1d}}
              - {name: warm, when: {at_least: 1, of: {type: page_view}, within: 1d}}
          - name: opener
            flag: {at_least: 1, of: {type: email_open}, within: 1h}
        """, file: "e.yaml")

    @Test("after the boundaries before the event, before the event; a late event at the clock; new contacts under none")
    func counts() {
        let p = Pipeline(model: model)
        #expect(p.engine.engagement == nil)
        p.engine.countsEngagement = true
        for line in [
            ev("a", "page_view", "2026-03-01T10:00:00Z"),   // new: none
            ev("a", "page_view", "2026-03-01T11:00:00Z"),   // warm (then hot)
            // The boundaries at 03-02T10:00 and 11:00 fire first: hot, warm, then none.
            ev("a", "email_open", "2026-03-03T10:00:00Z"),  // none (then opener)
            ev("a", "page_view", "2026-03-02T12:00:00Z"),   // late: at the clock, none (then warm)
            ev("a", "email_open", "2026-03-03T10:30:00Z"),  // warm; opener already
        ] { _ = p.process(Array(line.utf8)) }
        let counts = p.engine.engagement!
        let pageView = Int(CanonicalTypes.pageView), open = Int(CanonicalTypes.index(of: "email_open")!)
        #expect(counts.count(group: 0, segment: nil, type: pageView) == 2)
        #expect(counts.count(group: 0, segment: 1, type: pageView) == 1)
        #expect(counts.count(group: 0, segment: 0, type: pageView) == 0)
        #expect(counts.count(group: 0, segment: nil, type: open) == 1)
        #expect(counts.count(group: 0, segment: 1, type: open) == 1)
        // The late page view found the contact an opener (the open at 10:00 is within the hour).
        #expect(counts.count(group: 1, segment: nil, type: pageView) == 2)
        #expect(counts.count(group: 1, segment: 0, type: pageView) == 1)
        #expect(counts.count(group: 1, segment: nil, type: open) == 1)
        #expect(counts.count(group: 1, segment: 0, type: open) == 1)
        #expect(counts.counts.reduce(0, +) == 10, "each of 5 events once per group")
        #expect(counts.labels(of: counts.index(group: 1, segment: 0, type: open)) == (1, 0, open))
        #expect(counts.labels(of: counts.index(group: 0, segment: nil, type: pageView)) == (0, nil, pageView))
        p.engine.countsEngagement = false
        #expect(p.engine.engagement == nil)
    }
}

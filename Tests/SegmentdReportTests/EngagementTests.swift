import Foundation
import Testing
@testable import SegmentdReport

@Suite("engagement per segment")
struct EngagementTests {
    @Test("events count under the segment the contact was in just before them, per contact-week")
    func counts() throws {
        let builder = ReportBuilder(options: ReportOptions(
            until: ms("2026-03-11T00:00:00.000Z"), catalog: handCatalog, engagement: EngagementMeasure.standard))
        for line in handLines { builder.add(line: Data(line.utf8), lineNumber: 0) }
        builder.addEvent(contactId: "c1", type: "email_open", at: ms("2026-03-03T00:00:00.000Z"))
        // At the very instant c1 moves from a to b: it happened in a.
        builder.addEvent(contactId: "c1", type: "email_click", at: ms("2026-03-04T10:00:00.000Z"))
        builder.addEvent(contactId: "c2", type: "form_submit", at: ms("2026-03-09T00:00:00.000Z"))
        builder.addEvent(contactId: "c7", type: "email_open", at: ms("2026-03-09T00:00:00.000Z"))
        builder.addEvent(contactId: "c1", type: "email_open", at: ms("2026-03-01T00:00:00.000Z"))  // before the period
        builder.addEvent(contactId: "c1", type: "page_view", at: ms("2026-03-05T00:00:00.000Z"))  // not a measure
        builder.addUnusableEvent()
        let e = try #require(builder.finish().engagement)
        #expect(e.eventsRead == 7 && e.eventsNotUsable == 1)
        #expect(e.eventsCounted == 3 && e.eventsOfContactsWithoutSegments == 1)
        let lifecycle = try #require(e.groups.first { $0.group == "lifecycle" })
        let a = try #require(lifecycle.segments.first { $0.segment == "a" })
        #expect(a.counts == [1, 1, 1])
        #expect(a.contactWeeks == 2.71)  // 19 contact-days
        #expect(a.perContactPerWeek == [0.368, 0.368, 0.368])
        #expect(lifecycle.segments.first { $0.segment == "b" }?.counts == [0, 0, 0])
        #expect(lifecycle.segments.last?.segment == nil)
        let tier = try #require(e.groups.first { $0.group == "tier" })
        #expect(tier.segments.first { $0.segment == "cold" }?.counts == [1, 1, 1])
        #expect(tier.segments.first { $0.segment == "hot" }?.counts == [0, 0, 0])
    }
}

import Foundation
import Testing
@testable import SegmentdReport

@Suite("report figures on hand-made transitions")
struct ReportFiguresTests {
    let options = ReportOptions(until: ms("2026-03-11T00:00:00.000Z"), minSize: 2, catalog: handCatalog)

    @Test("the period: from the earliest transition to --until, days and Monday weeks")
    func period() throws {
        let r = build(handLines, options)
        let p = try #require(r.period)
        #expect(p.since == "2026-03-02T10:00:00.000Z")
        #expect(p.until == "2026-03-11T00:00:00.000Z")
        #expect(p.days.count == 10)
        #expect(p.days.first == "2026-03-02" && p.days.last == "2026-03-11")
        #expect(p.weeks == [Week(start: "2026-03-02", daysInPeriod: 7), Week(start: "2026-03-09", daysInPeriod: 3)])
        #expect(r.contacts == 3)
        #expect(r.modelVersions.map(\.version) == ["v1"])
        #expect(r.modelVersions[0].transitions == 9)
        #expect(r.causes == [CauseCount(kind: "event", transitions: 7), CauseCount(kind: "time", transitions: 2)])
    }

    @Test("sizes at the end of every day, and now")
    func dailySizes() {
        let g = build(handLines, options).group("lifecycle")
        #expect(g.segment("a").dailySize == [2, 2, 1, 2, 2, 2, 2, 2, 2, 2])
        #expect(g.segment("b").dailySize == [0, 1, 2, 1, 1, 1, 1, 1, 0, 0])
        #expect(g.segment("c").dailySize == Array(repeating: 0, count: 10))
        #expect(g.noSegment.dailySize == [0, 0, 0, 0, 0, 0, 0, 0, 1, 1])
        #expect(g.segments.map(\.size) == [2, 0, 0])
        #expect(g.noSegment.size == 1)
        #expect(g.contacts == 3)
        #expect(g.segment("a").sizeAtStart == 0)
    }

    @Test("entries and exits per week")
    func weekly() {
        let g = build(handLines, options).group("lifecycle")
        #expect(g.segment("a").weeklyEntries == [3, 0])
        #expect(g.segment("a").weeklyExits == [1, 0])
        #expect(g.segment("b").weeklyEntries == [2, 0])
        #expect(g.segment("b").weeklyExits == [1, 1])
        #expect(g.segment("c").weeklyEntries == [0, 0])
        #expect(g.segment("a").entries == 3 && g.segment("a").exits == 1)
    }

    @Test("flows between segments, no segment included")
    func flows() {
        let g = build(handLines, options).group("lifecycle")
        #expect(g.flow(nil, "a") == 2)
        #expect(g.flow(nil, "b") == 1)
        #expect(g.flow("a", "b") == 1)
        #expect(g.flow("b", "a") == 1)
        #expect(g.flow("b", nil) == 1)
        #expect(g.flows.reduce(0) { $0 + $1.count } == 6)
        #expect(g.transitionsInPeriod == 6)
        // Largest first.
        #expect(g.flows.first == Flow(from: nil, to: "a", count: 2))
    }

    @Test("time in segment: ended stays, open stays censored at the end (Kaplan-Meier)")
    func durations() {
        let g = build(handLines, options).group("lifecycle")
        // a: c1 2 d (ended); c2 8.5 d and c3 6 d still inside. S(2 d) = 2/3, never 0.5.
        let a = g.segment("a").timeInSegment
        #expect(a.stays == 3 && a.ended == 1 && a.stillInside == 2)
        #expect(a.median == DurationEstimate(ms: 8 * day + 12 * hour, atLeast: true))
        #expect(a.p90 == DurationEstimate(ms: 8 * day + 12 * hour, atLeast: true))
        // b: c3 2 d, c1 6 d, both ended.
        let b = g.segment("b").timeInSegment
        #expect(b.stays == 2 && b.ended == 2 && b.stillInside == 0)
        #expect(b.median == DurationEstimate(ms: 2 * day, atLeast: false))
        #expect(b.p90 == DurationEstimate(ms: 6 * day, atLeast: false))
        #expect(g.segment("c").timeInSegment.stays == 0)
        #expect(g.segment("c").timeInSegment.median == nil)
    }

    @Test("flags: below the size floor, nobody entered")
    func flags() {
        let r = build(handLines, options)
        #expect(r.flags == [
            SegmentFlag(group: "lifecycle", segment: "b", kind: .belowMinSize, size: 0),
            SegmentFlag(group: "lifecycle", segment: "c", kind: .nobodyEntered, size: 0),
            SegmentFlag(group: "lifecycle", segment: "c", kind: .belowMinSize, size: 0),
            SegmentFlag(group: "tier", segment: "hot", kind: .belowMinSize, size: 1),
            SegmentFlag(group: "tier", segment: "cold", kind: .belowMinSize, size: 1),
        ])
        let g = r.group("lifecycle")
        #expect(g.segment("a").belowMinSize == false && g.segment("a").nobodyEntered == false)
        #expect(g.segment("c").nobodyEntered)
    }

    @Test("overlap of two groups at the end, contacts missing from one group in its no segment")
    func overlap() throws {
        let r = build(handLines, options)
        let o = try #require(r.overlaps.first)
        #expect(r.overlaps.count == 1)
        #expect(o.rowGroup == "lifecycle" && o.columnGroup == "tier")
        #expect(o.rows == ["a", "b", "c", nil])
        #expect(o.columns == ["hot", "cold", nil])
        #expect(o.counts == [[0, 1, 1], [0, 0, 0], [0, 0, 0], [1, 0, 0]])
    }

    @Test("--since: earlier transitions set the starting sizes; only stays begun inside count")
    func since() throws {
        var o = options
        o.since = ms("2026-03-05T00:00:00.000Z")
        let r = build(handLines, o)
        let p = try #require(r.period)
        #expect(p.days.count == 7)
        let g = r.group("lifecycle")
        #expect(g.segment("a").sizeAtStart == 1 && g.segment("b").sizeAtStart == 2)
        #expect(g.segment("a").dailySize == [2, 2, 2, 2, 2, 2, 2])
        #expect(g.segment("b").dailySize == [1, 1, 1, 1, 1, 0, 0])
        #expect(g.segment("a").entries == 1 && g.segment("b").entries == 0)
        #expect(g.segment("b").nobodyEntered)
        #expect(g.segment("a").timeInSegment == StayFigures(stays: 1, ended: 0, stillInside: 1, median: DurationEstimate(ms: 6 * day, atLeast: true), p90: DurationEstimate(ms: 6 * day, atLeast: true)))
        #expect(g.segment("b").timeInSegment.stays == 0)
        #expect(r.input.beforePeriod == 6)
        #expect(g.flows.reduce(0) { $0 + $1.count } == 2)
    }

    @Test("--until cuts: later transitions are ignored and counted")
    func until() {
        var o = options
        o.until = ms("2026-03-05T23:59:59.999Z")
        let r = build(handLines, o)
        #expect(r.input.afterPeriod == 2)
        #expect(r.group("lifecycle").segment("b").size == 1)
        #expect(r.group("tier").segment("hot").size == 0)
    }

    @Test("bad lines are counted with their line numbers and skipped; a repeated id is skipped")
    func badInput() {
        var lines = handLines
        lines.insert("not json", at: 3)
        lines.insert(#"{"data":{"contact_id":"c9","group":"lifecycle","from":null,"to":"a"}}"#, at: 5)
        lines.insert(lines[2], at: 6)  // c2's entry again, same id
        lines.insert("", at: 7)
        let r = build(lines, options)
        #expect(r.input.badLines == 2)
        #expect(r.input.badLineSamples == [BadLine(line: 4, reason: "invalid JSON"), BadLine(line: 6, reason: "missing field 'data.at'")])
        #expect(r.input.duplicatesSkipped == 1)
        #expect(r.input.transitions == 10)
        #expect(r.group("lifecycle").segment("a").dailySize == [2, 2, 1, 2, 2, 2, 2, 2, 2, 2])
    }

    @Test("a contact first seen leaving a segment was in it from the start; a broken chain is counted")
    func midStream() {
        let lines = [
            transitionLine("c9", "lifecycle", "a", "b", "2026-03-03T00:00:00.000Z"),
            transitionLine("c9", "lifecycle", "a", "c", "2026-03-04T00:00:00.000Z"),
        ]
        let r = build(lines, ReportOptions(until: ms("2026-03-04T12:00:00.000Z"), catalog: handCatalog))
        let g = r.group("lifecycle")
        #expect(r.input.startedInsideSegment == 1)
        #expect(r.input.chainBreaks == 1)
        #expect(g.segment("a").sizeAtStart == 1)
        #expect(g.segment("a").dailySize == [0, 0])
        #expect(g.segment("b").dailySize == [1, 0])
        #expect(g.segment("c").dailySize == [0, 1])
        // The stay in a had no known entry: not measured.
        #expect(g.segment("a").timeInSegment.stays == 0)
    }

    @Test("empty input: no period, every catalog segment flagged, a clear page")
    func empty() {
        let r = build([], ReportOptions(catalog: handCatalog))
        #expect(r.period == nil)
        #expect(r.groups.count == 2)
        #expect(r.flags.count == 10)
        let html = HTMLReport.render(r)
        #expect(html.contains("No transitions to report."))
    }

    @Test("an assumed catalog whose version the transitions do not carry is not used")
    func assumedCatalog() {
        let r = build(handLines, ReportOptions(until: ms("2026-03-11T00:00:00.000Z"), catalog: SegmentCatalog(
            groups: [.init(name: "other", segments: ["x"]), .init(name: "lifecycle", segments: ["z", "a", "b"])],
            origin: "assumed", modelVersion: "v9"), catalogIsAssumed: true))
        #expect(r.groups.map(\.name) == ["lifecycle", "tier"])
        #expect(r.group("lifecycle").segments.map(\.name) == ["a", "b"])
        #expect(r.segmentOrder.contains("v1"))
    }

    @Test("JSON: snake_case, null for no segment, and it reads back equal")
    func json() throws {
        let r = build(handLines, options)
        let data = try JSONReport.render(r)
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.contains(#""daily_size" : ["#))
        #expect(text.contains(#""from" : null"#))
        #expect(text.contains(#""schema" : "segmentd.report\/1""#) || text.contains(#""schema" : "segmentd.report/1""#))
        #expect(try JSONReport.decode(data) == r)
    }

    @Test("names from the input are escaped on the page")
    func escaping() {
        let evil = "<img src=x onerror=alert(1)>"
        let lines = [
            transitionLine("c1", "g\\\"<b>", nil, evil, "2026-03-02T10:00:00.000Z", version: "<v>"),
            "{\"data\":{\"contact_id\":\"c2\",\"group\":\"x\",\"from\":null,\"to\":\"a\",\"at\":\"<script>\"}}",
        ]
        let r = build(lines, ReportOptions())
        #expect(r.group("g\"<b>").segments.map(\.name) == [evil])
        let html = HTMLReport.render(r)
        #expect(!html.contains("<img"))
        #expect(!html.contains("<script"))
        #expect(!html.contains("<b>") && !html.contains("<v>"))
        #expect(html.contains("&lt;img src=x onerror=alert(1)&gt;"))
    }
}

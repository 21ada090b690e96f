import Foundation
import SegmentdEngine
import Testing
@testable import SegmentdReport

/// The report against the engine itself: a generated stream replayed, its transitions written
/// as `replay` writes them and reported; the sizes at the end must be the engine's own
/// membership counts, and the flows its transition counts.
@Suite("the report agrees with replay")
struct ReplayAgreementTests {
    /// A deterministic mixed stream: 400 contacts, 90 days, every kind of event the default model reads.
    static func events() -> [String] {
        var state: UInt64 = 0x2545_f491_4f6c_dd1d
        func next(_ n: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(n))
        }
        let start = ms("2026-01-01T00:00:00.000Z")
        let kinds = [
            #""type":"email_open""#, #""type":"email_click","props":{"url":"https://x.com/case-studies/a"}"#,
            #""type":"page_view","props":{"path":"/pricing"}"#, #""type":"page_view","props":{"path":"/blog"}"#,
            #""type":"subscribed""#, #""type":"form_submit","props":{"form":"demo"}"#, #""type":"meeting_booked""#,
            #""type":"unsubscribed""#, #""type":"crm_stage","props":{"stage":"customer"}"#,
            #""type":"traits","props":{"industry":"software","company_size":250,"country":"DE"}"#,
        ]
        return (0..<6000).map { i in
            let ts = start + Int64(i) * 90 * 86_400_000 / 6000 + Int64(next(3_600_000))
            return #"{"event_id":"e\#(i)","contact_id":"c\#(next(400))",\#(kinds[next(kinds.count)]),"ts":\#(ts)}"#
        }
    }

    @Test("sizes at the end equal the engine's memberships; flows sum to its transitions")
    func agreement() throws {
        let model = Model.defaultModel()
        let pipeline = Pipeline(model: model)
        var lines: [String] = []
        func drain() {
            pipeline.engine.drainTransitions { t in
                var line: [UInt8] = []
                pipeline.encoder.encode(t, to: &line)
                lines.append(String(decoding: line, as: UTF8.self))
            }
        }
        for e in Self.events() {
            _ = pipeline.process(Array(e.utf8))
            drain()
        }
        let until = ms("2026-04-15T00:00:00.000Z")
        pipeline.engine.advanceWatermark(to: until)
        drain()
        #expect(lines.count > 1000)

        let report = build(lines, ReportOptions(until: until, catalog: SegmentCatalog(model: model, origin: "default"), catalogIsAssumed: true))
        #expect(report.input.badLines == 0 && report.input.chainBreaks == 0 && report.input.startedInsideSegment == 0)
        var expected = model.groups.map { Array(repeating: 0, count: $0.segments.count) }
        for i in 0..<pipeline.engine.contactCount {
            let memberships = try #require(pipeline.engine.memberships(of: pipeline.engine.contactId(at: i)))
            for (g, s) in memberships.enumerated() { if let s { expected[g][s] += 1 } }
        }
        for (g, group) in model.groups.enumerated() {
            let figures = report.group(group.name)
            #expect(figures.segments.map(\.name) == group.segments.map(\.name))
            #expect(figures.segments.map(\.size) == expected[g], "\(group.name)")
            #expect(figures.flows.reduce(0) { $0 + $1.count } == pipeline.engine.stats.transitionsByGroup[g])
            // Every contact entered or left as often as its size changed.
            for s in figures.segments { #expect(s.sizeAtStart + s.entries - s.exits == s.size, "\(group.name)/\(s.name)") }
        }
    }
}

import Testing
@testable import SegmentdReport

@Suite("time in segment: Kaplan-Meier quantiles with censoring")
struct StayDurationsTests {
    func stays(ended: [Int64], open: [Int64] = []) -> StayDurations {
        var s = StayDurations()
        ended.forEach { s.addEnded($0) }
        open.forEach { s.addOpen($0) }
        return s
    }

    @Test("no censoring: the shortest duration where the survival falls to 1 - q")
    func uncensored() {
        let s = stays(ended: [4, 1, 3, 2])
        #expect(s.quantile(0.5) == DurationEstimate(ms: 2, atLeast: false))  // S: .75, .5
        #expect(s.quantile(0.9) == DurationEstimate(ms: 4, atLeast: false))
        #expect(stays(ended: Array(1...10)).quantile(0.9) == DurationEstimate(ms: 9, atLeast: false))
    }

    @Test("stays still open leave the risk set at their time: the estimate moves up, not down")
    func censoredInTheMiddle() {
        // At 1: 4/5 = .8; open at 2 leaves 3 at risk; at 3: .8 x 2/3 = .533; open at 4 leaves 1; at 5: 0.
        let s = stays(ended: [1, 3, 5], open: [2, 4])
        #expect(s.quantile(0.5) == DurationEstimate(ms: 5, atLeast: false))
        // Dropping the open stays would have said 3; counting them as ended, 3 as well.
        #expect(stays(ended: [1, 3, 5]).quantile(0.5) == DurationEstimate(ms: 3, atLeast: false))
    }

    @Test("an ending and a censoring at the same time: the ending first")
    func ties() {
        #expect(stays(ended: [2], open: [2]).quantile(0.5) == DurationEstimate(ms: 2, atLeast: false))
    }

    @Test("not reached: at least the longest stay observed")
    func notReached() {
        #expect(stays(ended: [], open: [7, 3]).quantile(0.5) == DurationEstimate(ms: 7, atLeast: true))
        #expect(stays(ended: [1], open: [5, 9]).quantile(0.5) == DurationEstimate(ms: 9, atLeast: true))
        #expect(stays(ended: []).quantile(0.5) == nil)
        let f = stays(ended: [1, 2], open: [3]).figures
        #expect(f.stays == 3 && f.ended == 2 && f.stillInside == 1)
    }
}

@Suite("numbers and dates on the page")
struct FormattingTests {
    @Test("counts, durations, axis tops, month ticks")
    func formats() {
        #expect(Formatting.count(1_234_567) == "1,234,567")
        #expect(Formatting.count(999) == "999")
        #expect(Formatting.count(-1200) == "−1,200")
        #expect(Formatting.duration(Int64(45_000)) == "45 s")
        #expect(Formatting.duration(Int64(12 * 60_000)) == "12 min")
        #expect(Formatting.duration(Int64(5.3 * 3_600_000)) == "5.3 h")
        #expect(Formatting.duration(Int64(3.2 * 86_400_000)) == "3.2 d")
        #expect(Formatting.duration(Int64(41 * 86_400_000)) == "41 d")
        #expect(Formatting.duration(DurationEstimate(ms: 41 * 86_400_000, atLeast: true)) == "> 41 d")
        #expect(Formatting.niceCeiling(1976) == 2000)
        #expect(Formatting.niceCeiling(465) == 500)
        #expect(Formatting.niceCeiling(0) == 1)
        #expect(Formatting.rate(0.3684) == "0.37")
        #expect(Formatting.instant("2026-03-02T09:05:00.000Z") == "2026-03-02 09:05 UTC")
        let days = (CalendarDays.day(of: ms("2025-12-29T00:00:00.000Z"))...CalendarDays.day(of: ms("2026-04-30T00:00:00.000Z"))).map(CalendarDays.label(ofDay:))
        #expect(TimeAxis.monthTicks(days).map(\.label) == ["2026", "Feb", "Mar", "Apr"])
        #expect(TimeAxis.short("2026-03-02") == "Mar 2")
        #expect(CalendarDays.label(ofDay: CalendarDays.monday(onOrBefore: CalendarDays.day(of: ms("2026-03-05T12:00:00.000Z")))) == "2026-03-02")
        #expect(CalendarDays.day(of: -1) == -1)
        #expect(HTMLText.escape("<a & \"b\">") == "&lt;a &amp; &quot;b&quot;&gt;")
    }
}

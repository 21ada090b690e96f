import SegmentdEngine

/// The charts and style of the daemon's live console (`GET /`), drawn by the report's chart
/// code so both pages look and read alike: the same style sheet, palette (a segment has the same
/// colour in both), bars with their numbers, and every mark's figures in `data-*` attributes
/// and a tooltip.
public enum ConsoleCharts {
    /// The report's style sheet and the console's few additions.
    public static let css = ReportStyle.css + """

    .live { display: inline-block; width: 9px; height: 9px; border-radius: 50%; background: #009e73; margin-right: 6px; vertical-align: 0; }
    .live.stale { background: var(--alert); }
    .scope { background: var(--soft); border: 1px solid var(--line); border-radius: 8px; padding: 6px 12px; font-size: 14px; }
    form.search { display: flex; gap: 8px; flex-wrap: wrap; margin: 8px 0; }
    form.search input { font: inherit; padding: 5px 8px; border: 1px solid var(--line); border-radius: 6px; min-width: 260px; }
    form.search button { font: inherit; padding: 5px 14px; border: 1px solid #0b5cad; background: #0b5cad; color: #fff; border-radius: 6px; cursor: pointer; }
    .explanation { border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; margin-top: 8px; }
    .explanation .groups { display: grid; grid-template-columns: repeat(auto-fill, minmax(340px, 1fr)); gap: 12px; }
    .explanation ul { list-style: none; padding: 0; margin: 4px 0; font-size: 13px; }
    .explanation li { padding: 2px 0 2px 20px; text-indent: -20px; }
    .explanation li.met::before { content: "✓"; color: #007a56; font-weight: 700; display: inline-block; width: 20px; text-indent: 0; }
    .explanation li.unmet::before { content: "✗"; color: var(--muted); display: inline-block; width: 20px; text-indent: 0; }
    .explanation li.note::before { content: "·"; color: var(--muted); display: inline-block; width: 20px; text-indent: 0; }
    .explanation li.met .cond { font-weight: 600; }
    .segment-badge { display: inline-block; font-size: 13px; font-weight: 600; border-radius: 10px; padding: 1px 9px; color: #fff; }
    .error { color: var(--alert); }
    td.left, th.left { text-align: left; }
    .stack { display: grid; gap: 14px; }
    .pair { display: grid; grid-template-columns: repeat(auto-fit, minmax(440px, 1fr)); gap: 8px 28px; align-items: start; }
    .table-scroll.tall { max-height: 560px; overflow-y: auto; }
    .table-scroll.tall thead th { position: sticky; top: 0; }
    """

    /// Every segment's size now, the number at each bar; `noSegment` adds the contacts in none.
    public static func sizeBars(group: String, segments: [(name: String, size: Int)], noSegment: Int?) -> String {
        var rows = segments.enumerated().map { i, s in SizeBarChart.Row(name: s.name, size: s.size, colour: Palette.segment(i)) }
        if let noSegment { rows.append(SizeBarChart.Row(name: nil, size: noSegment, colour: Palette.noSegment)) }
        return SizeBarChart.svg(groupName: group, rows: rows, minSize: 0)
    }

    /// Transitions per minute: one bar per minute (`starts`, wall-clock ms, oldest first), the
    /// busiest minute numbered, the axis in UTC.
    public static func perMinute(group: String, starts: [Millis], counts: [Int]) -> String {
        let width = 760.0, height = 150.0, left = 46.0, right = 12.0, top = 14.0, bottom = 22.0
        let plotWidth = width - left - right, plotHeight = height - top - bottom
        let largest = Formatting.niceCeiling(Double(max(counts.max() ?? 0, 1)))
        let slot = plotWidth / Double(max(starts.count, 1))
        let barWidth = max(1, slot * 0.72)
        let base = top + plotHeight
        var out = "<svg class=\"chart per-minute\" data-group=\"\(HTMLText.escape(group))\" viewBox=\"0 0 \(HTMLText.n(width)) \(HTMLText.n(height))\" role=\"img\" aria-label=\"Transitions per minute over the last hour, \(HTMLText.escape(group))\">"
        for fraction in [0.5, 1.0] where (largest * fraction).rounded() == largest * fraction {
            let y = base - fraction * plotHeight
            out += "<line class=\"grid\" x1=\"\(HTMLText.n(left))\" x2=\"\(HTMLText.n(width - right))\" y1=\"\(HTMLText.n(y))\" y2=\"\(HTMLText.n(y))\"/>"
            out += "<text class=\"axis\" x=\"\(HTMLText.n(left - 5))\" y=\"\(HTMLText.n(y + 4))\" text-anchor=\"end\">\(Formatting.count(Int(largest * fraction)))</text>"
        }
        out += "<text class=\"axis\" x=\"\(HTMLText.n(left - 5))\" y=\"\(HTMLText.n(base + 4))\" text-anchor=\"end\">0</text>"
        for (i, start) in starts.enumerated() {
            let n = counts.indices.contains(i) ? counts[i] : 0
            let x = left + Double(i) * slot + (slot - barWidth) / 2
            let h = Double(n) / largest * plotHeight
            out += "<g class=\"minute\" data-start=\"\(EventTime.format(start))\" data-count=\"\(n)\"><title>\(clock(start)) UTC: \(Formatting.count(n)) transition\(n == 1 ? "" : "s")</title>"
            out += "<rect x=\"\(HTMLText.n(x))\" y=\"\(HTMLText.n(base - h))\" width=\"\(HTMLText.n(barWidth))\" height=\"\(HTMLText.n(h))\" fill=\"\(Palette.entries)\"/></g>"
        }
        out += "<line class=\"zero\" x1=\"\(HTMLText.n(left))\" x2=\"\(HTMLText.n(width - right))\" y1=\"\(HTMLText.n(base))\" y2=\"\(HTMLText.n(base))\"/>"
        if let busiest = counts.indices.max(by: { counts[$0] < counts[$1] }), counts[busiest] > 0 {
            let cx = min(max(left + (Double(busiest) + 0.5) * slot, left + 14), width - right - 14)
            let y = max(base - Double(counts[busiest]) / largest * plotHeight - 4, top - 3)
            out += "<text class=\"annotation\" x=\"\(HTMLText.n(cx))\" y=\"\(HTMLText.n(y))\" text-anchor=\"middle\">\(Formatting.count(counts[busiest]))</text>"
        }
        // A time label every 15 minutes, and the current minute at the right.
        for (i, start) in starts.enumerated() where (start / 60_000) % 15 == 0 || i == starts.count - 1 {
            let x = left + (Double(i) + 0.5) * slot
            if i != starts.count - 1 && Double(starts.count - 1 - i) * slot < 40 { continue }
            out += "<text class=\"axis\" x=\"\(HTMLText.n(x))\" y=\"\(HTMLText.n(height - 4))\" text-anchor=\"middle\">\(clock(start))</text>"
        }
        out += "</svg>"
        return out
    }

    /// `HH:MM` of a wall-clock instant, UTC.
    static func clock(_ ms: Millis) -> String {
        let text = EventTime.format(ms)
        let chars = Array(text)
        return chars.count >= 16 ? String(chars[11..<16]) : text
    }

    /// The colour of segment `index` of a group (nil: no segment), as in the report.
    public static func segmentColour(_ index: Int?) -> String { Palette.segment(index) }

    /// Text for HTML.
    public static func escape(_ s: String) -> String { HTMLText.escape(s) }

    /// `12,345`.
    public static func count(_ n: Int) -> String { Formatting.count(n) }

    /// `2026-03-02T09:00:00.000Z` as `2026-03-02 09:00 UTC`.
    public static func instant(_ ms: Millis) -> String { Formatting.instant(EventTime.format(ms)) }
}

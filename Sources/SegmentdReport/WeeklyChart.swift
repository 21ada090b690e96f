/// One segment's entries (up) and exits (down) per week, each bar with its tooltip, the
/// largest week of each labelled with its number.
enum WeeklyChart {
    static let width = 340.0, height = 150.0
    static let left = 46.0, right = 12.0, top = 14.0, bottom = 22.0

    static func svg(name: String?, entries: [Int], exits: [Int], weeks: [Week]) -> String {
        let plotWidth = width - left - right, plotHeight = height - top - bottom
        let largest = Double(max(entries.max() ?? 0, exits.max() ?? 0, 1))
        let half = plotHeight / 2
        let zero = top + half
        let slot = plotWidth / Double(max(weeks.count, 1))
        let barWidth = max(1, slot * 0.72)
        var out = "<svg class=\"chart weekly\" viewBox=\"0 0 \(HTMLText.n(width)) \(HTMLText.n(height))\" role=\"img\" aria-label=\"Entries and exits per week, \(HTMLText.segment(name))\">"
        out += "<text class=\"axis\" x=\"\(HTMLText.n(left - 5))\" y=\"\(HTMLText.n(top + 4))\" text-anchor=\"end\">+\(Formatting.count(Int(largest)))</text>"
        out += "<text class=\"axis\" x=\"\(HTMLText.n(left - 5))\" y=\"\(HTMLText.n(zero + 4))\" text-anchor=\"end\">0</text>"
        out += "<text class=\"axis\" x=\"\(HTMLText.n(left - 5))\" y=\"\(HTMLText.n(top + plotHeight + 4))\" text-anchor=\"end\">−\(Formatting.count(Int(largest)))</text>"
        for (w, week) in weeks.enumerated() {
            let x = left + Double(w) * slot + (slot - barWidth) / 2
            let entered = entries.indices.contains(w) ? entries[w] : 0
            let exited = exits.indices.contains(w) ? exits[w] : 0
            let upHeight = Double(entered) / largest * half, downHeight = Double(exited) / largest * half
            let partial = week.daysInPeriod < 7 ? " (\(week.daysInPeriod) of 7 days in the period)" : ""
            out += "<g class=\"week\" data-week=\"\(week.start)\" data-entries=\"\(entered)\" data-exits=\"\(exited)\"><title>week of \(TimeAxis.short(week.start))\(partial): \(Formatting.count(entered)) entered, \(Formatting.count(exited)) left</title>"
            out += "<rect x=\"\(HTMLText.n(x))\" y=\"\(HTMLText.n(zero - upHeight))\" width=\"\(HTMLText.n(barWidth))\" height=\"\(HTMLText.n(upHeight))\" fill=\"\(Palette.entries)\"\(week.daysInPeriod < 7 ? " fill-opacity=\"0.5\"" : "")/>"
            out += "<rect x=\"\(HTMLText.n(x))\" y=\"\(HTMLText.n(zero))\" width=\"\(HTMLText.n(barWidth))\" height=\"\(HTMLText.n(downHeight))\" fill=\"\(Palette.exits)\"\(week.daysInPeriod < 7 ? " fill-opacity=\"0.5\"" : "")/>"
            out += "</g>"
        }
        out += "<line class=\"zero\" x1=\"\(HTMLText.n(left))\" x2=\"\(HTMLText.n(width - right))\" y1=\"\(HTMLText.n(zero))\" y2=\"\(HTMLText.n(zero))\"/>"
        // The busiest week of each direction, numbered.
        func mark(_ values: [Int], up: Bool) {
            guard let w = values.indices.max(by: { values[$0] < values[$1] }), values[w] > 0 else { return }
            let cx = min(max(left + (Double(w) + 0.5) * slot, left + 14), width - right - 14)
            let barEnd = Double(values[w]) / largest * half
            let y = up ? max(zero - barEnd - 4, top - 3) : min(zero + barEnd + 12, top + plotHeight + 11)
            out += "<text class=\"annotation\" x=\"\(HTMLText.n(cx))\" y=\"\(HTMLText.n(y))\" text-anchor=\"middle\">\(up ? "+" : "−")\(Formatting.count(values[w]))</text>"
        }
        mark(entries, up: true)
        mark(exits, up: false)
        if let first = weeks.first, let last = weeks.last {
            out += "<text class=\"axis\" x=\"\(HTMLText.n(left))\" y=\"\(HTMLText.n(height - 4))\">\(TimeAxis.short(first.start))</text>"
            out += "<text class=\"axis\" x=\"\(HTMLText.n(width - right))\" y=\"\(HTMLText.n(height - 4))\" text-anchor=\"end\">wk of \(TimeAxis.short(last.start))</text>"
        }
        out += "</svg>"
        return out
    }
}

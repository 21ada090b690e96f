/// Horizontal bars: every segment's size at the end of the period, the number at each bar,
/// the size floor as a dashed line, flagged segments said in words beside their number.
/// The report draws it per group at the end of the period; the daemon's live console
/// (`ConsoleCharts.sizeBars`) per group now.
enum SizeBarChart {
    /// One bar: a segment (nil: no segment), its size, its colour and words said beside it.
    struct Row {
        var name: String?
        var size: Int
        var colour: String
        var notes: [String] = []
    }

    static func svg(_ group: GroupFigures, minSize: Int) -> String {
        var rows: [Row] = []
        for (i, s) in group.segments.enumerated() {
            var notes: [String] = []
            if s.belowMinSize { notes.append("below floor") }
            if s.nobodyEntered { notes.append("nobody entered") }
            rows.append(Row(name: s.name, size: s.size, colour: Palette.segment(i), notes: notes))
        }
        rows.append(Row(name: nil, size: group.noSegment.size, colour: Palette.noSegment))
        return svg(groupName: group.name, rows: rows, minSize: minSize)
    }

    /// The chart of `rows`, with the floor line when `minSize` > 0.
    static func svg(groupName: String, rows: [Row], minSize: Int) -> String {
        let width = 760.0, labelWidth = 190.0, textWidth = 230.0, rowHeight = 30.0, top = 26.0
        let barSpace = width - labelWidth - textWidth
        let height = top + Double(rows.count) * rowHeight + 8
        let largest = max(rows.map(\.size).max() ?? 0, minSize, 1)
        let scale = barSpace / Double(largest)
        var out = "<svg class=\"chart size-bars\" viewBox=\"0 0 \(HTMLText.n(width)) \(HTMLText.n(height))\" role=\"img\" aria-label=\"Current size of each segment of \(HTMLText.escape(groupName))\">"
        if minSize > 0 {
            let x = labelWidth + Double(minSize) * scale
            out += "<line class=\"floor\" x1=\"\(HTMLText.n(x))\" x2=\"\(HTMLText.n(x))\" y1=\"\(HTMLText.n(top - 6))\" y2=\"\(HTMLText.n(height - 4))\"/>"
            out += "<text class=\"floor-label\" x=\"\(HTMLText.n(x))\" y=\"\(HTMLText.n(top - 10))\" text-anchor=\"middle\">size floor \(Formatting.count(minSize))</text>"
        }
        func row(_ i: Int, name: String?, size: Int, colour: String, notes: [String]) {
            let y = top + Double(i) * rowHeight
            let barWidth = max(Double(size) * scale, size > 0 ? 1.5 : 0)
            out += "<g class=\"bar\" data-segment=\"\(HTMLText.escape(name ?? ""))\" data-size=\"\(size)\">"
            out += "<title>\(HTMLText.segment(name)): \(Formatting.count(size)) contacts\(notes.isEmpty ? "" : " (" + notes.joined(separator: ", ") + ")")</title>"
            out += "<text class=\"label\" x=\"\(HTMLText.n(labelWidth - 8))\" y=\"\(HTMLText.n(y + rowHeight / 2 + 4))\" text-anchor=\"end\">\(HTMLText.segment(name))</text>"
            out += "<rect x=\"\(HTMLText.n(labelWidth))\" y=\"\(HTMLText.n(y + 5))\" width=\"\(HTMLText.n(barWidth))\" height=\"\(HTMLText.n(rowHeight - 10))\" fill=\"\(colour)\" rx=\"2\"/>"
            out += "<text class=\"value\" x=\"\(HTMLText.n(labelWidth + barWidth + 6))\" y=\"\(HTMLText.n(y + rowHeight / 2 + 4))\">\(Formatting.count(size))"
            for note in notes { out += "<tspan class=\"flag-text\" dx=\"8\">\(note)</tspan>" }
            out += "</text></g>"
        }
        for (i, r) in rows.enumerated() { row(i, name: r.name, size: r.size, colour: r.colour, notes: r.notes) }
        out += "</svg>"
        return out
    }
}

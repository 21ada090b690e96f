/// Horizontal bars: every segment's size at the end of the period, the number at each bar,
/// the size floor as a dashed line, flagged segments said in words beside their number.
enum SizeBarChart {
    static func svg(_ group: GroupFigures, minSize: Int) -> String {
        let width = 760.0, labelWidth = 190.0, textWidth = 230.0, rowHeight = 30.0, top = 26.0
        let barSpace = width - labelWidth - textWidth
        let rows = group.segments.count + 1
        let height = top + Double(rows) * rowHeight + 8
        let largest = max(group.segments.map(\.size).max() ?? 0, group.noSegment.size, minSize, 1)
        let scale = barSpace / Double(largest)
        var out = "<svg class=\"chart size-bars\" viewBox=\"0 0 \(HTMLText.n(width)) \(HTMLText.n(height))\" role=\"img\" aria-label=\"Current size of each segment of \(HTMLText.escape(group.name))\">"
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
        for (i, s) in group.segments.enumerated() {
            var notes: [String] = []
            if s.belowMinSize { notes.append("below floor") }
            if s.nobodyEntered { notes.append("nobody entered") }
            row(i, name: s.name, size: s.size, colour: Palette.segment(i), notes: notes)
        }
        row(group.segments.count, name: nil, size: group.noSegment.size, colour: Palette.noSegment, notes: [])
        out += "</svg>"
        return out
    }
}

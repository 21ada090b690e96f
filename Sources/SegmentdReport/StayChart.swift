/// Time spent in each segment: a dark bar to the median and a light one on to the 90th
/// percentile, both numbered; an estimate that is only a lower bound (too many contacts still
/// inside) is drawn open-ended and written "> …".
enum StayChart {
    static func svg(_ group: GroupFigures, index: Int) -> String {
        let width = 760.0, labelWidth = 190.0, textWidth = 250.0, rowHeight = 30.0, top = 8.0
        let barSpace = width - labelWidth - textWidth
        let segments = group.segments
        let height = top + Double(segments.count) * rowHeight + 6
        let longest = segments.compactMap { s in [s.timeInSegment.median?.ms, s.timeInSegment.p90?.ms].compactMap { $0 }.max() }.max() ?? 0
        let scale = barSpace / Double(max(longest, 1))
        var out = "<svg class=\"chart stays\" viewBox=\"0 0 \(HTMLText.n(width)) \(HTMLText.n(height))\" role=\"img\" aria-label=\"Median and 90th percentile time in each segment of \(HTMLText.escape(group.name))\">"
        out += "<defs><pattern id=\"open-\(index)\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\"><rect width=\"3\" height=\"6\" fill=\"#000\" fill-opacity=\"0.18\"/></pattern></defs>"
        for (i, s) in segments.enumerated() {
            let y = top + Double(i) * rowHeight
            let colour = Palette.segment(i)
            let stays = s.timeInSegment
            out += "<g class=\"stay\" data-segment=\"\(HTMLText.escape(s.name))\" data-median-ms=\"\(stays.median.map { String($0.ms) } ?? "")\" data-p90-ms=\"\(stays.p90.map { String($0.ms) } ?? "")\">"
            out += "<title>\(HTMLText.escape(s.name)): \(Formatting.count(stays.stays)) stays began in the period, \(Formatting.count(stays.ended)) ended, \(Formatting.count(stays.stillInside)) still inside at the end</title>"
            out += "<text class=\"label\" x=\"\(HTMLText.n(labelWidth - 8))\" y=\"\(HTMLText.n(y + rowHeight / 2 + 4))\" text-anchor=\"end\">\(HTMLText.escape(s.name))</text>"
            var textX = labelWidth + 6
            if let p90 = stays.p90 {
                let w = max(1.5, Double(p90.ms) * scale)
                out += "<rect x=\"\(HTMLText.n(labelWidth))\" y=\"\(HTMLText.n(y + 7))\" width=\"\(HTMLText.n(w))\" height=\"\(HTMLText.n(rowHeight - 14))\" fill=\"\(colour)\" fill-opacity=\"0.35\"/>"
                if p90.atLeast {
                    out += "<rect x=\"\(HTMLText.n(labelWidth))\" y=\"\(HTMLText.n(y + 7))\" width=\"\(HTMLText.n(w))\" height=\"\(HTMLText.n(rowHeight - 14))\" fill=\"url(#open-\(index))\"/>"
                }
                textX = labelWidth + w + 6
            }
            if let median = stays.median {
                let w = max(1.5, Double(median.ms) * scale)
                out += "<rect x=\"\(HTMLText.n(labelWidth))\" y=\"\(HTMLText.n(y + 7))\" width=\"\(HTMLText.n(w))\" height=\"\(HTMLText.n(rowHeight - 14))\" fill=\"\(colour)\"/>"
                if median.atLeast {
                    out += "<rect x=\"\(HTMLText.n(labelWidth))\" y=\"\(HTMLText.n(y + 7))\" width=\"\(HTMLText.n(w))\" height=\"\(HTMLText.n(rowHeight - 14))\" fill=\"url(#open-\(index))\"/>"
                }
                textX = max(textX, labelWidth + w + 6)
            }
            let text = stays.stays == 0
                ? "no stays began in the period"
                : "median \(Formatting.duration(stays.median)) · p90 \(Formatting.duration(stays.p90))"
            out += "<text class=\"value\" x=\"\(HTMLText.n(textX))\" y=\"\(HTMLText.n(y + rowHeight / 2 + 4))\">\(text)</text>"
            out += "</g>"
        }
        out += "</svg>"
        return out
    }
}

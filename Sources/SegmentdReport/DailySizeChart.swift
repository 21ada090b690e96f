/// One segment's size at the end of every day: an area line with its own y scale (labelled),
/// month ticks, the size floor dashed when it is in range (the scale reaches up to it for a
/// segment below the floor, so the gap shows), the last value at the end.
enum DailySizeChart {
    static let width = 340.0, height = 150.0
    static let left = 46.0, right = 12.0, top = 12.0, bottom = 22.0

    static func svg(name: String?, sizes: [Int], days: [String], colour: String, minSize: Int, belowFloor: Bool) -> String {
        let plotWidth = width - left - right, plotHeight = height - top - bottom
        let yMax = Formatting.niceCeiling(Double(max(sizes.max() ?? 0, belowFloor ? minSize : 0, 1)))
        let xStep = sizes.count > 1 ? plotWidth / Double(sizes.count - 1) : 0
        func x(_ i: Int) -> Double { left + (sizes.count > 1 ? Double(i) * xStep : plotWidth / 2) }
        func y(_ v: Double) -> Double { top + plotHeight - v / yMax * plotHeight }
        var out = "<svg class=\"chart daily-size\" viewBox=\"0 0 \(HTMLText.n(width)) \(HTMLText.n(height))\" role=\"img\" aria-label=\"Daily size of \(HTMLText.segment(name))\">"
        // Grid and y labels: 0, half, top.
        for v in [0, yMax / 2, yMax] {
            out += "<line class=\"grid\" x1=\"\(HTMLText.n(left))\" x2=\"\(HTMLText.n(width - right))\" y1=\"\(HTMLText.n(y(v)))\" y2=\"\(HTMLText.n(y(v)))\"/>"
            out += "<text class=\"axis\" x=\"\(HTMLText.n(left - 5))\" y=\"\(HTMLText.n(y(v) + 4))\" text-anchor=\"end\">\(Formatting.count(Int(v)))</text>"
        }
        for tick in TimeAxis.monthTicks(days, maxTicks: 6) {
            out += "<line class=\"tick\" x1=\"\(HTMLText.n(x(tick.index)))\" x2=\"\(HTMLText.n(x(tick.index)))\" y1=\"\(HTMLText.n(top + plotHeight))\" y2=\"\(HTMLText.n(top + plotHeight + 4))\"/>"
            out += "<text class=\"axis\" x=\"\(HTMLText.n(x(tick.index)))\" y=\"\(HTMLText.n(height - 6))\" text-anchor=\"middle\">\(tick.label)</text>"
        }
        if minSize > 0 && Double(minSize) <= yMax {
            out += "<line class=\"floor\" x1=\"\(HTMLText.n(left))\" x2=\"\(HTMLText.n(width - right))\" y1=\"\(HTMLText.n(y(Double(minSize))))\" y2=\"\(HTMLText.n(y(Double(minSize))))\"><title>size floor \(Formatting.count(minSize))</title></line>"
        }
        if !sizes.isEmpty {
            var line = ""
            for (i, s) in sizes.enumerated() { line += "\(i == 0 ? "M" : "L")\(HTMLText.n(x(i))),\(HTMLText.n(y(Double(s))))" }
            let area = line + "L\(HTMLText.n(x(sizes.count - 1))),\(HTMLText.n(y(0)))L\(HTMLText.n(x(0))),\(HTMLText.n(y(0)))Z"
            out += "<path d=\"\(area)\" fill=\"\(colour)\" fill-opacity=\"0.14\"/>"
            out += "<path d=\"\(line)\" fill=\"none\" stroke=\"\(colour)\" stroke-width=\"2\" stroke-linejoin=\"round\"/>"
            let last = sizes.count - 1
            out += "<circle cx=\"\(HTMLText.n(x(last)))\" cy=\"\(HTMLText.n(y(Double(sizes[last]))))\" r=\"3\" fill=\"\(colour)\"><title>\(days.last.map { TimeAxis.short($0) } ?? ""): \(Formatting.count(sizes[last]))</title></circle>"
            // The peak, labelled when the end is below it.
            if let peak = sizes.indices.max(by: { sizes[$0] < sizes[$1] }), sizes[peak] > sizes[last] {
                out += "<text class=\"annotation\" x=\"\(HTMLText.n(min(max(x(peak), left + 20), width - right - 20)))\" y=\"\(HTMLText.n(max(y(Double(sizes[peak])) - 5, top + 8)))\" text-anchor=\"middle\">peak \(Formatting.count(sizes[peak]))<title>\(TimeAxis.short(days[peak])): \(Formatting.count(sizes[peak]))</title></text>"
            }
        }
        out += "</svg>"
        return out
    }
}

/// The flows between segments over the period as a two-column Sankey diagram: segments left
/// (left from) and right (entered), bands as wide as their transition counts, every node and
/// every band wide enough to hold it labelled with its count (all of them in tooltips).
enum SankeyDiagram {
    static let width = 980.0, nodeWidth = 14.0, labelSpace = 240.0, gap = 16.0, top = 28.0

    private struct Node {
        var segment: Int?  // index in the group; nil: no segment
        var count: Int
        var y = 0.0
        var height = 0.0
        var cursor = 0.0
    }

    static func svg(_ group: GroupFigures) -> String {
        let order: [String?] = group.segments.map(\.name) + [nil]
        func position(_ name: String?) -> Int { order.firstIndex(of: name) ?? order.count }
        let flows = group.flows.filter { $0.count > 0 }
        guard !flows.isEmpty else {
            return "<p class=\"empty\">No transitions in this group during the period.</p>"
        }
        let total = flows.reduce(0) { $0 + $1.count }
        func nodes(_ key: (Flow) -> String?) -> [Node] {
            var counts: [Int: Int] = [:]
            for f in flows { counts[position(key(f)), default: 0] += f.count }
            return counts.keys.sorted().map { p in Node(segment: p < group.segments.count ? p : nil, count: counts[p]!) }
        }
        var sources = nodes { $0.from }, targets = nodes { $0.to }
        let rows = max(sources.count, targets.count)
        let plotHeight = max(260.0, 34.0 * Double(rows))
        let scale = (plotHeight - gap * Double(rows - 1)) / Double(total)
        func layout(_ list: inout [Node]) {
            var y = top
            for i in list.indices {
                list[i].y = y
                list[i].height = max(3, Double(list[i].count) * scale)
                list[i].cursor = y
                y += list[i].height + gap
            }
        }
        layout(&sources)
        layout(&targets)
        let height = max(sources.last.map { $0.y + $0.height } ?? 0, targets.last.map { $0.y + $0.height } ?? 0) + 12
        let leftX = labelSpace, rightX = width - labelSpace - nodeWidth
        func name(_ n: Node) -> String { HTMLText.segment(n.segment.map { group.segments[$0].name }) }
        var out = "<svg class=\"chart sankey\" viewBox=\"0 0 \(HTMLText.n(width)) \(HTMLText.n(height))\" role=\"img\" aria-label=\"Transitions between segments of \(HTMLText.escape(group.name))\">"
        out += "<text class=\"column-head\" x=\"\(HTMLText.n(leftX + nodeWidth))\" y=\"14\" text-anchor=\"end\">left this segment</text>"
        out += "<text class=\"column-head\" x=\"\(HTMLText.n(rightX))\" y=\"14\">entered this one</text>"
        // Bands: from each source in target order, into each target in source order.
        let sorted = flows.sorted { (position($0.from), position($0.to)) < (position($1.from), position($1.to)) }
        var bandStart: [Int: Double] = [:]
        for (k, f) in sorted.enumerated() {
            guard let s = sources.firstIndex(where: { position($0.segment.map { group.segments[$0].name }) == position(f.from) }) else { continue }
            bandStart[k] = sources[s].cursor
            sources[s].cursor += Double(f.count) * scale
        }
        var bandEnd: [Int: Double] = [:]
        let byTarget = sorted.indices.sorted { (position(sorted[$0].to), position(sorted[$0].from)) < (position(sorted[$1].to), position(sorted[$1].from)) }
        for k in byTarget {
            let f = sorted[k]
            guard let t = targets.firstIndex(where: { position($0.segment.map { group.segments[$0].name }) == position(f.to) }) else { continue }
            bandEnd[k] = targets[t].cursor
            targets[t].cursor += Double(f.count) * scale
        }
        let x0 = leftX + nodeWidth, x1 = rightX, mid = (x0 + x1) / 2
        for (k, f) in sorted.enumerated() {
            guard let y0 = bandStart[k], let y1 = bandEnd[k] else { continue }
            let thickness = max(0.8, Double(f.count) * scale)
            let colour = Palette.segment(f.from.flatMap { n in group.segments.firstIndex { $0.name == n } })
            var d = "M\(HTMLText.n(x0)),\(HTMLText.n(y0))C\(HTMLText.n(mid)),\(HTMLText.n(y0)) \(HTMLText.n(mid)),\(HTMLText.n(y1)) \(HTMLText.n(x1)),\(HTMLText.n(y1))"
            d += "L\(HTMLText.n(x1)),\(HTMLText.n(y1 + thickness))C\(HTMLText.n(mid)),\(HTMLText.n(y1 + thickness)) \(HTMLText.n(mid)),\(HTMLText.n(y0 + thickness)) \(HTMLText.n(x0)),\(HTMLText.n(y0 + thickness))Z"
            let share = Double(f.count) / Double(total) * 100
            out += "<path class=\"band\" d=\"\(d)\" fill=\"\(colour)\" data-from=\"\(HTMLText.escape(f.from ?? ""))\" data-to=\"\(HTMLText.escape(f.to ?? ""))\" data-count=\"\(f.count)\"><title>\(HTMLText.segment(f.from)) → \(HTMLText.segment(f.to)): \(Formatting.count(f.count)) transitions (\(Formatting.oneDecimal(share))%)</title></path>"
            if thickness >= 13 {
                out += "<text class=\"band-label\" x=\"\(HTMLText.n(x0 + 6))\" y=\"\(HTMLText.n(y0 + thickness / 2 + 4))\">\(Formatting.count(f.count)) → \(HTMLText.segment(f.to))</text>"
            }
        }
        for n in sources {
            let colour = Palette.segment(n.segment)
            out += "<rect class=\"node\" x=\"\(HTMLText.n(leftX))\" y=\"\(HTMLText.n(n.y))\" width=\"\(HTMLText.n(nodeWidth))\" height=\"\(HTMLText.n(n.height))\" fill=\"\(colour)\"><title>\(name(n)): \(Formatting.count(n.count)) left</title></rect>"
            out += "<text class=\"node-label\" x=\"\(HTMLText.n(leftX - 8))\" y=\"\(HTMLText.n(n.y + n.height / 2 + 4))\" text-anchor=\"end\">\(name(n)) <tspan class=\"count\">\(Formatting.count(n.count))</tspan></text>"
        }
        for n in targets {
            let colour = Palette.segment(n.segment)
            out += "<rect class=\"node\" x=\"\(HTMLText.n(rightX))\" y=\"\(HTMLText.n(n.y))\" width=\"\(HTMLText.n(nodeWidth))\" height=\"\(HTMLText.n(n.height))\" fill=\"\(colour)\"><title>\(name(n)): \(Formatting.count(n.count)) entered</title></rect>"
            out += "<text class=\"node-label\" x=\"\(HTMLText.n(rightX + nodeWidth + 8))\" y=\"\(HTMLText.n(n.y + n.height / 2 + 4))\">\(name(n)) <tspan class=\"count\">\(Formatting.count(n.count))</tspan></text>"
        }
        out += "</svg>"
        return out
    }
}

/// One group's part of the page: sizes now, a card per segment (daily size, weekly entries
/// and exits), flows, time in segment, and the exact weekly numbers.
enum GroupSection {
    static func html(_ group: GroupFigures, index: Int, period: Period, minSize: Int) -> String {
        var out = "<section class=\"group\" id=\"group-\(index)\" data-group=\"\(HTMLText.escape(group.name))\">"
        out += "<h2>\(HTMLText.escape(group.name))<small>\(Formatting.count(group.contacts)) contacts · \(Formatting.count(group.transitionsInPeriod)) transitions in the period\(group.isFlag ? " · flag group" : "")\(group.inModel ? "" : " · not in the model")</small></h2>"
        if group.segments.isEmpty {
            return out + "<p class=\"empty\">No segment of this group appears in the transitions.</p></section>"
        }
        out += "<h3>Size now</h3><p class=\"note\">Contacts in each segment at the end of the period; the dashed line is the size floor.</p>"
        out += "<div class=\"wide\">\(SizeBarChart.svg(group, minSize: minSize))</div>"

        out += "<h3>Each segment over time</h3><p class=\"note\">Top: size at the end of each day, each on its own scale, the floor dashed. Bottom: contacts per week who <span class=\"nowrap\"><span class=\"key\" style=\"background:\(Palette.entries)\"></span>entered (up)</span> and <span class=\"nowrap\"><span class=\"key\" style=\"background:\(Palette.exits)\"></span>left (down)</span>; paler: a week partly outside the period.</p>"
        out += "<div class=\"cards\">"
        for (i, s) in group.segments.enumerated() { out += card(s, colour: Palette.segment(i), period: period, minSize: minSize) }
        out += "</div>"

        out += "<h3>Flows between segments</h3><p class=\"note\">Every transition of the period, from the segment left (left) to the segment entered (right); band width is the number of transitions.</p>"
        out += "<div class=\"wide\">\(SankeyDiagram.svg(group))</div>"
        out += flowTable(group)

        out += "<h3>Time in segment</h3><p class=\"note\">Median (dark) and 90th percentile (light) time from entering to leaving, stays still open at the end counted as censored; hatched: a lower bound.</p>"
        out += "<div class=\"wide\">\(StayChart.svg(group, index: index))</div>"
        out += stayTable(group)
        out += dailyTable(group, period: period)
        out += weeklyTable(group, period: period)
        out += "</section>"
        return out
    }

    private static func badges(_ s: SegmentFigures) -> String {
        var out = ""
        if s.belowMinSize { out += "<span class=\"badge below-floor\">below floor</span>" }
        if s.nobodyEntered { out += "<span class=\"badge nobody-entered\">nobody entered</span>" }
        if !s.inModel { out += "<span class=\"badge not-in-model\">not in the model</span>" }
        return out
    }

    private static func card(_ s: SegmentFigures, colour: String, period: Period, minSize: Int) -> String {
        let flagged = s.belowMinSize || s.nobodyEntered
        var out = "<article class=\"card\(flagged ? " flagged" : "")\" data-segment=\"\(HTMLText.escape(s.name))\" data-size=\"\(s.size)\" data-entries=\"\(s.entries)\" data-exits=\"\(s.exits)\">"
        out += "<h4><span class=\"swatch\" style=\"background:\(colour)\"></span>\(HTMLText.escape(s.name))\(badges(s))</h4>"
        let change = s.size - s.sizeAtStart
        out += "<p class=\"size\"><strong>\(Formatting.count(s.size))</strong>now · \(change >= 0 ? "+" : "")\(Formatting.count(change)) since the start</p>"
        out += DailySizeChart.svg(name: s.name, sizes: s.dailySize, days: period.days, colour: colour, minSize: minSize, belowFloor: s.belowMinSize)
        out += "<p class=\"caption\"><span class=\"key\" style=\"background:\(Palette.entries)\"></span>\(Formatting.count(s.entries)) entered<span class=\"key\" style=\"background:\(Palette.exits)\"></span>\(Formatting.count(s.exits)) left</p>"
        out += WeeklyChart.svg(name: s.name, entries: s.weeklyEntries, exits: s.weeklyExits, weeks: period.weeks)
        out += s.timeInSegment.stays == 0
            ? "<p class=\"caption\">time inside: no stays began in the period</p>"
            : "<p class=\"caption\">time inside: median \(Formatting.duration(s.timeInSegment.median)) · p90 \(Formatting.duration(s.timeInSegment.p90))</p>"
        out += "</article>"
        return out
    }

    private static func flowTable(_ group: GroupFigures) -> String {
        guard !group.flows.isEmpty else { return "" }
        var out = "<details><summary>All \(group.flows.count) flows as a table</summary><div class=\"table-scroll\"><table class=\"flows\"><thead><tr><th scope=\"col\">from</th><th scope=\"col\">to</th><th scope=\"col\">transitions</th></tr></thead><tbody>"
        for f in group.flows {
            out += "<tr><th scope=\"row\">\(HTMLText.segment(f.from))</th><th scope=\"row\">\(HTMLText.segment(f.to))</th><td>\(Formatting.count(f.count))</td></tr>"
        }
        return out + "</tbody></table></div></details>"
    }

    private static func stayTable(_ group: GroupFigures) -> String {
        var out = "<details><summary>Stays in numbers</summary><div class=\"table-scroll\"><table class=\"stays\"><thead><tr><th scope=\"col\">segment</th><th scope=\"col\">stays begun</th><th scope=\"col\">ended</th><th scope=\"col\">still inside</th><th scope=\"col\">median</th><th scope=\"col\">p90</th></tr></thead><tbody>"
        for s in group.segments {
            let t = s.timeInSegment
            out += "<tr><th scope=\"row\">\(HTMLText.escape(s.name))</th><td>\(Formatting.count(t.stays))</td><td>\(Formatting.count(t.ended))</td><td>\(Formatting.count(t.stillInside))</td><td>\(Formatting.duration(t.median))</td><td>\(Formatting.duration(t.p90))</td></tr>"
        }
        return out + "</tbody></table></div></details>"
    }

    private static func dailyTable(_ group: GroupFigures, period: Period) -> String {
        var out = "<details><summary>Daily sizes as a table</summary><div class=\"table-scroll\"><table class=\"daily\"><thead><tr><th scope=\"col\">end of day</th>"
        for s in group.segments { out += "<th scope=\"col\">\(HTMLText.escape(s.name))</th>" }
        out += "<th scope=\"col\">(no segment)</th></tr></thead><tbody>"
        for (d, day) in period.days.enumerated() {
            out += "<tr><th scope=\"row\">\(day)</th>"
            for s in group.segments { out += "<td>\(Formatting.count(s.dailySize[d]))</td>" }
            out += "<td>\(Formatting.count(group.noSegment.dailySize[d]))</td></tr>"
        }
        return out + "</tbody></table></div></details>"
    }

    private static func weeklyTable(_ group: GroupFigures, period: Period) -> String {
        var out = "<details><summary>Weekly entries and exits as a table</summary><div class=\"table-scroll\"><table class=\"weekly\"><thead><tr><th scope=\"col\" rowspan=\"2\">week of</th>"
        for s in group.segments { out += "<th scope=\"colgroup\" colspan=\"2\">\(HTMLText.escape(s.name))</th>" }
        out += "</tr><tr>"
        for _ in group.segments { out += "<th scope=\"col\">in</th><th scope=\"col\">out</th>" }
        out += "</tr></thead><tbody>"
        for (w, week) in period.weeks.enumerated() {
            out += "<tr><th scope=\"row\">\(week.start)\(week.daysInPeriod < 7 ? " (\(week.daysInPeriod) d)" : "")</th>"
            for s in group.segments {
                out += "<td>\(Formatting.count(s.weeklyEntries[w]))</td><td>\(Formatting.count(s.weeklyExits[w]))</td>"
            }
            out += "</tr>"
        }
        return out + "</tbody></table></div></details>"
    }
}

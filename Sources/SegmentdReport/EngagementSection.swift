/// Engagement per segment on the page: a table per group, the rate per contact per week shaded
/// within each measure, with the raw counts.
enum EngagementSection {
    static func html(_ engagement: Engagement) -> String {
        var out = "<section id=\"engagement\"><h2>Engagement per segment<small>\(Formatting.count(engagement.eventsCounted)) events counted</small></h2>"
        out += "<p class=\"note\">Events per contact per week, under the segment the contact was in at the event's time: "
        out += engagement.measures.map { "<strong>\(HTMLText.escape($0.name))</strong> (\($0.eventTypes.map(HTMLText.escape).joined(separator: ", ")))" }.joined(separator: ", ")
        out += ". The small figure is the number of events. \(Formatting.count(engagement.eventsRead)) event records read, \(Formatting.count(engagement.eventsNotUsable)) not usable, \(Formatting.count(engagement.eventsOfContactsWithoutSegments)) from contacts before their first transition.</p>"
        for g in engagement.groups {
            let largest = engagement.measures.indices.map { m in g.segments.map { $0.perContactPerWeek[m] }.max() ?? 0 }
            out += "<div class=\"table-scroll\"><table class=\"engagement\" data-group=\"\(HTMLText.escape(g.group))\"><caption><strong>\(HTMLText.escape(g.group))</strong></caption><thead><tr><th scope=\"col\">segment</th><th scope=\"col\">contact-weeks</th>"
            for m in engagement.measures { out += "<th scope=\"col\">\(HTMLText.escape(m.name)) per contact per week</th>" }
            out += "</tr></thead><tbody>"
            for s in g.segments {
                out += "<tr><th scope=\"row\">\(HTMLText.segment(s.segment))</th><td>\(Formatting.count(Int(s.contactWeeks.rounded())))</td>"
                for m in engagement.measures.indices {
                    let rate = s.perContactPerWeek[m]
                    let alpha = largest[m] > 0 ? 0.06 + 0.5 * rate / largest[m] : 0
                    out += "<td style=\"background:rgba(0,158,115,\(HTMLText.opacity(alpha)))\" data-measure=\"\(HTMLText.escape(engagement.measures[m].name))\" data-count=\"\(s.counts[m])\">\(Formatting.rate(rate))<small>\(Formatting.count(s.counts[m]))</small></td>"
                }
                out += "</tr>"
            }
            out += "</tbody></table></div>"
        }
        out += "</section>"
        return out
    }
}

/// The report as one self-contained HTML page: inline CSS, inline SVG, no script, nothing
/// fetched when it is opened. The same figures as `--format json`; numbers are also in
/// `data-*` attributes so a test (or a scraper) can read them back from the DOM.
public enum HTMLReport {
    public static func render(_ report: SegmentReport) -> String {
        var out = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        out += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        out += "<title>Segment health\(report.period.map { " · " + String($0.since.prefix(10)) + " to " + String($0.until.prefix(10)) } ?? "")</title>"
        out += "<style>\(ReportStyle.css)</style></head><body><main>"
        out += header(report)
        if let period = report.period {
            out += summary(report)
            out += attention(report)
            for (i, group) in report.groups.enumerated() {
                out += GroupSection.html(group, index: i, period: period, minSize: report.minSize)
            }
            if !report.overlaps.isEmpty {
                out += "<section id=\"overlap\"><h2>Overlap of groups <small>at the end of the period</small></h2>"
                for overlap in report.overlaps { out += OverlapTable.html(overlap) }
                out += "</section>"
            }
            if let engagement = report.engagement { out += EngagementSection.html(engagement) }
        } else {
            out += "<div class=\"empty-report\" id=\"empty\"><strong>No transitions to report.</strong> "
            out += report.input.transitions == 0
                ? "The input held no transition (\(Formatting.count(report.input.lines)) non-empty lines, \(Formatting.count(report.input.badLines)) of them not transitions)."
                : "None of the \(Formatting.count(report.input.transitions)) transitions falls in the period asked for."
            out += "</div>"
        }
        out += about(report)
        out += "<footer>Written by <code>segmentd report</code>. Sizes are reconstructed exactly from the transitions: a contact is in the segment its latest transition in a group entered. All times UTC.</footer>"
        out += "</main></body></html>\n"
        return out
    }

    private static func header(_ report: SegmentReport) -> String {
        var out = "<header class=\"page\"><h1>Segment health</h1>"
        if let p = report.period {
            out += "<p class=\"period\" data-since=\"\(p.since)\" data-until=\"\(p.until)\">\(Formatting.instant(p.since)) to \(Formatting.instant(p.until)) · \(p.days.count) days · model \(versionsText(report))\(report.source.map { " · from " + HTMLText.escape($0) } ?? "")</p>"
            out += "<nav class=\"groups\" aria-label=\"Groups\">"
            for (i, g) in report.groups.enumerated() { out += "<a href=\"#group-\(i)\">\(HTMLText.escape(g.name))</a>" }
            if !report.overlaps.isEmpty { out += "<a href=\"#overlap\">overlap</a>" }
            if report.engagement != nil { out += "<a href=\"#engagement\">engagement</a>" }
            out += "<a href=\"#about\">period, models, input</a></nav>"
        }
        out += "</header>"
        return out
    }

    static func versionsText(_ report: SegmentReport) -> String {
        report.modelVersions.isEmpty ? "version unknown" : report.modelVersions.map { HTMLText.escape($0.version) }.joined(separator: ", ")
    }

    private static func summary(_ report: SegmentReport) -> String {
        let inPeriod = report.causes.reduce(0) { $0 + $1.transitions }
        func tile(_ figure: String, _ what: String, id: String, alert: Bool = false) -> String {
            "<div class=\"tile\(alert ? " alert" : "")\" id=\"\(id)\"><span class=\"figure\">\(figure)</span><span class=\"what\">\(what)</span></div>"
        }
        var out = "<section class=\"tiles\" aria-label=\"Summary\">"
        out += tile(Formatting.count(report.contacts), "contacts", id: "tile-contacts")
        out += tile(Formatting.count(inPeriod), "transitions in the period", id: "tile-transitions")
        out += tile(String(report.groups.count), report.groups.count == 1 ? "group" : "groups", id: "tile-groups")
        let flagged = Set(report.flags.map { "\($0.group)/\($0.segment)" }).count
        out += tile(String(flagged), "segments flagged", id: "tile-flagged", alert: flagged > 0)
        if report.input.badLines > 0 {
            out += tile(Formatting.count(report.input.badLines), "input lines skipped (not transitions)", id: "tile-bad-lines", alert: true)
        }
        out += "</section>"
        return out
    }

    private static func attention(_ report: SegmentReport) -> String {
        if report.flags.isEmpty {
            return "<section class=\"attention ok\" id=\"attention\"><p>Every segment had entries in the period and has at least \(Formatting.count(report.minSize)) contacts.</p></section>"
        }
        var out = "<section class=\"attention\" id=\"attention\"><strong>Needs attention</strong><ul>"
        for f in report.flags {
            let what = f.kind == .belowMinSize
                ? "\(Formatting.count(f.size)) \(f.size == 1 ? "contact" : "contacts"), below the size floor of \(Formatting.count(report.minSize))"
                : "nobody entered it during the period"
            out += "<li class=\"flag\" data-group=\"\(HTMLText.escape(f.group))\" data-segment=\"\(HTMLText.escape(f.segment))\" data-kind=\"\(f.kind.rawValue)\"><strong>\(HTMLText.escape(f.group)) / \(HTMLText.escape(f.segment))</strong>: \(what)</li>"
        }
        out += "</ul></section>"
        return out
    }

    private static func about(_ report: SegmentReport) -> String {
        var out = "<section id=\"about\"><h2>Period, models and input</h2>"
        if let p = report.period {
            out += "<p>Period: <strong>\(Formatting.instant(p.since))</strong> to <strong>\(Formatting.instant(p.until))</strong> (\(p.days.count) days, \(p.weeks.count) weeks).</p>"
        }
        if let source = report.source { out += "<p>Read from: \(HTMLText.escape(source)).</p>" }
        out += "<p>Segment order and names: \(HTMLText.escape(report.segmentOrder)).</p>"
        if !report.modelVersions.isEmpty {
            out += "<div class=\"table-scroll\"><table id=\"model-versions\"><caption>Model versions of the transitions in the period</caption><thead><tr><th scope=\"col\">version</th><th scope=\"col\">transitions</th><th scope=\"col\">first</th><th scope=\"col\">last</th></tr></thead><tbody>"
            for v in report.modelVersions {
                out += "<tr><th scope=\"row\">\(HTMLText.escape(v.version))</th><td>\(Formatting.count(v.transitions))</td><td>\(Formatting.instant(v.firstAt))</td><td>\(Formatting.instant(v.lastAt))</td></tr>"
            }
            out += "</tbody></table></div>"
        }
        if !report.causes.isEmpty {
            out += "<p>Causes: " + report.causes.map { "\(HTMLText.escape($0.kind)) \(Formatting.count($0.transitions))" }.joined(separator: " · ") + ".</p>"
        }
        let i = report.input
        out += "<div class=\"table-scroll\"><table id=\"input-summary\"><caption>Input</caption><tbody>"
        func row(_ what: String, _ n: Int, id: String) { out += "<tr id=\"\(id)\"><th scope=\"row\">\(what)</th><td>\(Formatting.count(n))</td></tr>" }
        row("non-empty lines", i.lines, id: "input-lines")
        row("transitions", i.transitions, id: "input-transitions")
        row("lines skipped: not a transition", i.badLines, id: "input-bad-lines")
        row("repeated transitions skipped (same id again)", i.duplicatesSkipped, id: "input-duplicates")
        row("before the period (set the starting sizes)", i.beforePeriod, id: "input-before")
        row("after the period (ignored)", i.afterPeriod, id: "input-after")
        row("contacts already inside a segment at their first transition", i.startedInsideSegment, id: "input-started-inside")
        row("transitions whose <code>from</code> is not the previous <code>to</code>", i.chainBreaks, id: "input-chain-breaks")
        row("transitions earlier than the contact's previous one", i.outOfOrder, id: "input-out-of-order")
        out += "</tbody></table></div>"
        if !i.badLineSamples.isEmpty {
            out += "<details open><summary>Skipped lines\(i.badLines > i.badLineSamples.count ? " (the first \(i.badLineSamples.count) of \(Formatting.count(i.badLines)))" : "")</summary><ul id=\"bad-lines\">"
            for b in i.badLineSamples { out += "<li>line \(b.line): \(HTMLText.escape(b.reason))</li>" }
            out += "</ul></details>"
        }
        out += "<h3>How the figures are computed</h3><dl class=\"definitions\">"
        out += "<dt>Size</dt><dd>A contact is in the segment its latest transition in the group entered (<code>to</code>). The size on a day is the count at the end of that UTC day; on the last day, at the end of the period. Transitions before the period set the sizes at its start.</dd>"
        out += "<dt>Entries and exits</dt><dd>Transitions into and out of a segment, counted in the UTC week (Monday to Sunday) they happen in. Weeks only partly inside the period are drawn paler.</dd>"
        out += "<dt>Flows</dt><dd>Every transition in the period, from the segment left to the segment entered; “(no segment)” is a contact in none of the group's segments.</dd>"
        out += "<dt>Time in segment</dt><dd>From entering a segment to leaving it, for stays that began in the period. Contacts still inside at the end are right-censored there (they stayed at least that long): the median and 90th percentile are Kaplan-Meier estimates, so open stays neither vanish nor count as ended. “&gt; 41 d” means so many contacts are still inside that the estimate is not reached: it is longer than the longest stay seen.</dd>"
        out += "<dt>Overlap</dt><dd>Contacts by their segment in two groups at the end of the period; a contact with no transition in one of the groups is in its “(no segment)” row or column.</dd>"
        if report.engagement != nil {
            out += "<dt>Engagement</dt><dd>Each event counts under the segment the contact was in just before it (the open that makes a cold contact warm counts for cold, where it happened). Per contact per week: events over the segment's contact-weeks, the sum of its daily sizes divided by 7.</dd>"
        }
        out += "<dt>Flags</dt><dd>“below floor”: fewer than \(Formatting.count(report.minSize)) contacts at the end (<code>--min-size</code>). “nobody entered”: no transition into the segment during the period.</dd>"
        out += "</dl></section>"
        return out
    }
}

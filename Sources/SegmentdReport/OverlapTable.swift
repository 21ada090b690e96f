/// Two groups crossed at the end of the period: an HTML table shaded by count, with the share
/// of its row in each cell and totals.
enum OverlapTable {
    static func html(_ overlap: Overlap) -> String {
        let largest = max(overlap.counts.flatMap { $0 }.max() ?? 0, 1)
        let columnTotals = overlap.columns.indices.map { c in overlap.counts.reduce(0) { $0 + $1[c] } }
        let total = columnTotals.reduce(0, +)
        var out = "<div class=\"table-scroll\"><table class=\"overlap\" data-rows=\"\(HTMLText.escape(overlap.rowGroup))\" data-columns=\"\(HTMLText.escape(overlap.columnGroup))\">"
        out += "<caption>Contacts by <strong>\(HTMLText.escape(overlap.rowGroup))</strong> (rows) and <strong>\(HTMLText.escape(overlap.columnGroup))</strong> (columns) at the end of the period; the small figure is the share of the row.</caption>"
        out += "<thead><tr><th scope=\"col\">\(HTMLText.escape(overlap.rowGroup)) ↓ · \(HTMLText.escape(overlap.columnGroup)) →</th>"
        for c in overlap.columns { out += "<th scope=\"col\">\(HTMLText.segment(c))</th>" }
        out += "<th scope=\"col\">total</th></tr></thead><tbody>"
        for (r, row) in overlap.rows.enumerated() {
            let rowTotal = overlap.counts[r].reduce(0, +)
            out += "<tr><th scope=\"row\">\(HTMLText.segment(row))</th>"
            for (c, column) in overlap.columns.enumerated() {
                let n = overlap.counts[r][c]
                let alpha = n == 0 ? 0 : 0.08 + 0.62 * Double(n) / Double(largest)
                let share = n == 0 ? "" : "<small>\(Formatting.oneDecimal(Double(n) / Double(rowTotal) * 100))%</small>"
                let dark = alpha > 0.45 ? " class=\"dark\"" : ""
                out += "<td\(dark) style=\"background:rgba(0,114,178,\(HTMLText.opacity(alpha)))\" data-row=\"\(HTMLText.escape(row ?? ""))\" data-column=\"\(HTMLText.escape(column ?? ""))\" data-count=\"\(n)\" title=\"\(HTMLText.segment(row)) and \(HTMLText.segment(column)): \(Formatting.count(n))\">\(Formatting.count(n))\(share)</td>"
            }
            out += "<td class=\"total\">\(Formatting.count(rowTotal))</td></tr>"
        }
        out += "</tbody><tfoot><tr><th scope=\"row\">total</th>"
        for t in columnTotals { out += "<td class=\"total\">\(Formatting.count(t))</td>" }
        out += "<td class=\"total\">\(Formatting.count(total))</td></tr></tfoot></table></div>"
        return out
    }
}

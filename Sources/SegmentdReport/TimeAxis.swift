/// Month ticks for a chart over `YYYY-MM-DD` days: the first of each month, thinned so the
/// labels do not collide.
enum TimeAxis {
    struct Tick {
        var index: Int
        var label: String
    }

    static let monthNames = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// Ticks at the first day of months (every `step` months so at most `maxTicks` show).
    static func monthTicks(_ days: [String], maxTicks: Int = 7) -> [Tick] {
        let firsts = days.indices.filter { days[$0].hasSuffix("-01") }
        let step = max(1, (firsts.count + maxTicks - 1) / maxTicks)
        return firsts.enumerated().compactMap { k, i in
            guard k % step == 0 else { return nil }
            let day = Array(days[i])
            let month = Int(String(day[5...6])) ?? 1
            let label = month == 1 ? String(day[0...3]) : monthNames[month - 1]
            return Tick(index: i, label: label)
        }
    }

    /// `2026-03-02` as `Mar 2`.
    static func short(_ day: String) -> String {
        let d = Array(day)
        guard d.count == 10, let month = Int(String(d[5...6])), let dayOfMonth = Int(String(d[8...9])), (1...12).contains(month) else { return day }
        return "\(monthNames[month - 1]) \(dayOfMonth)"
    }
}

/// Numbers and durations as the page writes them.
enum Formatting {
    /// `12,345`.
    static func count(_ n: Int) -> String {
        let digits = String(n.magnitude)
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return n < 0 ? "−" + out : out
    }

    /// `45 s`, `12 min`, `5.3 h`, `3.2 d`, `41 d`: two significant figures at most.
    static func duration(_ ms: Int64) -> String {
        let s = Double(ms) / 1000
        if s < 60 { return "\(Int(s.rounded())) s" }
        if s < 3600 { return "\(Int((s / 60).rounded())) min" }
        if s < 86_400 { return oneDecimal(s / 3600) + " h" }
        return oneDecimal(s / 86_400) + " d"
    }

    static func duration(_ estimate: DurationEstimate?) -> String {
        guard let estimate else { return "–" }
        return (estimate.atLeast ? "> " : "") + duration(estimate.ms)
    }

    /// One decimal below 10, none above.
    static func oneDecimal(_ v: Double) -> String {
        if v >= 9.95 { return String(Int(v.rounded())) }
        let tenths = Int((v * 10).rounded())
        return "\(tenths / 10).\(tenths % 10)"
    }

    /// `2026-03-02T09:00:00.000Z` as `2026-03-02 09:00 UTC`.
    static func instant(_ rfc3339: String) -> String {
        let chars = Array(rfc3339)
        guard chars.count >= 16 else { return rfc3339 }
        return String(chars[0..<10]) + " " + String(chars[11..<16]) + " UTC"
    }

    /// A value rounded up to 1, 2 or 5 times a power of ten: the top of a chart's axis.
    static func niceCeiling(_ v: Double) -> Double {
        if v <= 0 { return 1 }
        var magnitude = 1.0
        while magnitude * 10 <= v { magnitude *= 10 }
        while magnitude > v { magnitude /= 10 }
        for step in [1.0, 2.0, 2.5, 5.0, 10.0] where step * magnitude >= v { return step * magnitude }
        return 10 * magnitude
    }

    /// A rate: two decimals below 10, none above.
    static func rate(_ v: Double) -> String {
        if v >= 9.995 { return count(Int(v.rounded())) }
        let hundredths = Int((v * 100).rounded())
        return "\(hundredths / 100)." + (hundredths % 100 < 10 ? "0" : "") + String(hundredths % 100)
    }
}

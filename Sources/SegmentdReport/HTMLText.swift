/// Escaping for text placed in HTML and SVG.
enum HTMLText {
    static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }

    /// A segment name, or the label of "no segment".
    static func segment(_ name: String?) -> String { name.map(escape) ?? "(no segment)" }

    /// A number for an SVG attribute: at most one decimal.
    static func n(_ v: Double) -> String {
        let r = (v * 10).rounded() / 10
        return r == r.rounded() ? String(Int(r)) : String(r)
    }

    /// An opacity (0 to 1) with two decimals.
    static func opacity(_ v: Double) -> String {
        let hundredths = Int((min(max(v, 0), 1) * 100).rounded())
        return hundredths == 100 ? "1" : "0." + (hundredths < 10 ? "0" : "") + String(hundredths)
    }
}

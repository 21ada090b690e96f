/// "Did you mean" for a misspelt name: the known name closest to it by edit distance
/// (insertions, deletions, substitutions and swaps of adjacent characters, ignoring case), when
/// it is close enough to be a typo rather than another word: at most a third of the name's
/// length, and at least one edit.
public enum Suggestions {
    /// The closest known name, or nil when none is close.
    public static func closest(to name: String, among known: some Sequence<String>) -> String? {
        let target = Array(name.lowercased())
        let limit = max(1, target.count / 3)
        var best: (name: String, distance: Int)?
        for candidate in known where candidate != name {
            let d = distance(target, Array(candidate.lowercased()))
            guard d <= limit else { continue }
            // Ties go to the name first in alphabetical order, so the hint never depends on
            // the order of `known`.
            if let b = best, d > b.distance || (d == b.distance && candidate >= b.name) { continue }
            best = (candidate, d)
        }
        return best?.name
    }

    /// ` (did you mean 'x'?)` for the closest known name, or "" when none is close: appended
    /// to an error message.
    public static func hint(for name: String, among known: some Sequence<String>) -> String {
        closest(to: name, among: known).map { " (did you mean '\($0)'?)" } ?? ""
    }

    /// Optimal string alignment distance (Damerau-Levenshtein without repeated edits of a
    /// substring).
    public static func distance(_ a: [Character], _ b: [Character]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous2 = [Int](repeating: 0, count: b.count + 1)
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                    current[j] = min(current[j], previous2[j - 2] + 1)
                }
            }
            (previous2, previous, current) = (previous, current, previous2)
        }
        return previous[b.count]
    }
}

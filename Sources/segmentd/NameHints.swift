import SegmentdDaemon
import SegmentdEngine
import Yams

/// "Did you mean" for an unknown name in the engine's messages (a model error such as
/// `unknown filter 'hi_intent'` or `unknown key 'withn' in … (expected one of: …)`, a bad
/// record's `unknown event type 'page_veiw'`): the names it could have been are the model's own
/// (read again from its text), the ones the message lists, or the canonical event types.
enum NameHints {
    /// `error`'s text, with ` (did you mean 'x'?)` after the message when a known name is close.
    static func withHint(_ error: ModelError, modelText: String) -> String {
        guard let (kind, name) = unknownName(in: error.message) else { return error.description }
        let candidates: [String]
        switch kind {
        case "event type": candidates = CanonicalTypes.all
        case "key": candidates = expectedList(in: error.message)
        default: candidates = definedNames(kind, in: modelText)
        }
        let hint = Suggestions.hint(for: name, among: candidates)
        return error.description + hint
    }

    /// ` (did you mean 'x'?)` for the event type of a bad record's `unknown event type 'NAME'`
    /// detail, among the model's event types (canonical and declared), or "". An edit
    /// distance to every type costs far more than decoding a record, and a stream of
    /// undeclared types repeats a few names: each name's hint is computed once, for the first
    /// `limit` distinct names (later new names get none, so no stream can make hints costly).
    struct TypeHints {
        let eventTypes: [String]
        var known: [String: String] = [:]
        static let limit = 1024

        init(eventTypes: [String]) { self.eventTypes = eventTypes }

        mutating func hint(_ message: String) -> String {
            // The decoder's detail is exactly `unknown event type 'NAME'`.
            let prefix = "unknown event type '"
            guard message.utf8.starts(with: prefix.utf8), message.utf8.last == UInt8(ascii: "'") else { return "" }
            let name = String(decoding: message.utf8.dropFirst(prefix.utf8.count).dropLast(), as: UTF8.self)
            if let cached = known[name] { return cached }
            guard known.count < TypeHints.limit else { return "" }
            let hint = Suggestions.hint(for: name, among: eventTypes)
            known[name] = hint
            return hint
        }
    }

    /// The kind and the name of `unknown KIND 'NAME'` in a message.
    static func unknownName(in message: String) -> (kind: String, name: String)? {
        for kind in ["event type", "filter", "condition", "attribute", "score", "key"] {
            guard let r = message.firstRange(of: "unknown \(kind) '") else { continue }
            let name = message[r.upperBound...].prefix { $0 != "'" }
            return (kind, String(name))
        }
        return nil
    }

    /// The names of `(expected one of: a, b, c)` in a message.
    static func expectedList(in message: String) -> [String] {
        guard let r = message.firstRange(of: "expected one of: ") else { return [] }
        return message[r.upperBound...].prefix { $0 != ")" }.split(separator: ",").map { String($0.drop { $0 == " " }) }
    }

    /// The names a model text defines under `filters`, `conditions`, `attributes` or `scores`
    /// (for `kind` filter, condition, attribute, score).
    static func definedNames(_ kind: String, in text: String) -> [String] {
        guard let root = try? Yams.compose(yaml: text), case let .mapping(top) = root,
              case let .mapping(section)? = top[kind + "s"] else { return [] }
        return section.keys.compactMap(\.string)
    }
}

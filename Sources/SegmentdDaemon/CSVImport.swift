import SegmentdEngine
import Yams

/// How the columns of an email tool's CSV export become events (`segmentd bootstrap --csv
/// FILE --mapping M`). The mapping file is YAML: the column holding the contact id, and for
/// each role the export's column that plays it:
///
/// ```yaml
/// contact_id: Email Address
/// columns:
///   created_at: OPTIN_TIME          # one `subscribed` at that time
///   last_opened_at: LAST_OPEN       # one `email_open` at that time
///   last_clicked_at: LAST_CLICK     # one `email_click` at that time
///   unsubscribed_at: UNSUB_TIME     # one `unsubscribed` at that time
///   lifecycle_stage: Lifecycle      # one `crm_stage` (stage = the value) at `as_of`
///   industry: Industry              # these three make one `traits` event at `as_of`
///   company_size: Employees
///   country: Country
///   as_of: LAST_CHANGED             # when the stage and traits held (default: just before T)
/// timezone: "+00:00"                # for times written without an offset (default: refused)
/// ```
///
/// An empty cell gives no event. A cell that cannot be read (a time that is not a time, a
/// company size that is not a whole number) is reported with its row and column and gives no
/// event; the row's other cells still count.
public struct CSVMapping: Sendable, Equatable {
    public static let timeRoles: [(role: String, type: String)] = [
        ("created_at", "subscribed"), ("last_opened_at", "email_open"), ("last_clicked_at", "email_click"),
        ("unsubscribed_at", "unsubscribed"),
    ]
    public static let traitRoles = ["industry", "company_size", "country"]
    public static let roles = timeRoles.map(\.role) + ["lifecycle_stage"] + traitRoles + ["as_of"]

    public var contactIdColumn: String
    /// Role → column name.
    public var columns: [String: String]
    /// `±hh:mm` (or `Z`) for times written without an offset; nil: such times are refused.
    public var timezone: String?

    public init(contactIdColumn: String, columns: [String: String], timezone: String? = nil) {
        self.contactIdColumn = contactIdColumn
        self.columns = columns
        self.timezone = timezone
    }

    public struct Error: Swift.Error, CustomStringConvertible {
        public var description: String
    }

    /// Reads a mapping file; unknown keys and roles are refused with a "did you mean".
    public static func load(yaml: String, file: String) throws(Error) -> CSVMapping {
        let root: Node
        do {
            guard let n = try Yams.compose(yaml: yaml) else { throw Error(description: "\(file): the mapping is empty") }
            root = n
        } catch let e as Error {
            throw e
        } catch {
            throw Error(description: "\(file): \(error)")
        }
        func at(_ n: Node) -> String { "\(file):\(n.mark?.line ?? 1):\(n.mark?.column ?? 1)" }
        guard case let .mapping(m) = root else { throw Error(description: "\(at(root)): the mapping must be a YAML mapping with contact_id and columns") }
        var contact: String?
        var columns: [String: String] = [:]
        var timezone: String?
        for (k, v) in m {
            guard let key = k.string else { throw Error(description: "\(at(k)): a key must be a string") }
            switch key {
            case "contact_id":
                guard case .scalar = v, let s = v.string, !s.isEmpty else { throw Error(description: "\(at(v)): contact_id must name a column") }
                contact = s
            case "timezone":
                guard case .scalar = v, let s = v.string, s == "Z" || EventTime.parseRFC3339("2000-01-01T00:00:00" + s) != nil else {
                    throw Error(description: "\(at(v)): timezone must be Z or an offset like +00:00 or -05:00")
                }
                timezone = s
            case "columns":
                guard case let .mapping(cm) = v else { throw Error(description: "\(at(v)): columns must map roles to column names") }
                for (rk, rv) in cm {
                    guard let role = rk.string else { throw Error(description: "\(at(rk)): a role must be a string") }
                    guard roles.contains(role) else {
                        let hint = Suggestions.closest(to: role, among: roles).map { " (did you mean '\($0)'?)" } ?? ""
                        throw Error(description: "\(at(rk)): unknown role '\(role)'\(hint); roles are \(roles.joined(separator: ", "))")
                    }
                    guard case .scalar = rv, let col = rv.string, !col.isEmpty else { throw Error(description: "\(at(rv)): the column of \(role) must be a name") }
                    columns[role] = col
                }
            default:
                let hint = Suggestions.closest(to: key, among: ["contact_id", "columns", "timezone"]).map { " (did you mean '\($0)'?)" } ?? ""
                throw Error(description: "\(at(k)): unknown key '\(key)'\(hint); a mapping has contact_id, columns and timezone")
            }
        }
        guard let contact else { throw Error(description: "\(file): contact_id (the column holding the contact id) is missing") }
        guard columns.keys.contains(where: { $0 != "as_of" }) else { throw Error(description: "\(file): columns maps no role to a column: nothing would be read") }
        return CSVMapping(contactIdColumn: contact, columns: columns, timezone: timezone)
    }

    /// Reads a time cell: RFC 3339, epoch milliseconds, or (with `timezone`) `YYYY-MM-DD`,
    /// `YYYY-MM-DD HH:MM` or `YYYY-MM-DD HH:MM:SS[.fff]` in that offset.
    func parseTime(_ cell: String) -> Millis? {
        let s = cell
        if let t = EventTime.parseRFC3339(s), EventTime.isInRange(t) { return t }
        if !s.isEmpty, s.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), s.utf8.count <= 15, let v = Int64(s), EventTime.isInRange(v) { return v }
        guard let tz = timezone else { return nil }
        var text = s.replacingFirst(" ", with: "T")
        if !text.contains("T") { text += "T00:00:00" } else if text.split(separator: "T").last?.count == 5 { text += ":00" }
        guard let t = EventTime.parseRFC3339(text + tz), EventTime.isInRange(t) else { return nil }
        return t
    }
}

extension String {
    func replacingFirst(_ a: Character, with b: Character) -> String {
        guard let i = firstIndex(of: a) else { return self }
        var s = self
        s.replaceSubrange(i...i, with: String(b))
        return s
    }
}

/// RFC 4180 CSV: fields separated by commas, optionally quoted with `"` (a quote inside is
/// doubled), records ended by LF or CRLF (a quoted field may hold line breaks); a UTF-8 byte
/// order mark at the start is skipped.
public struct CSVReader {
    let bytes: [UInt8]
    var i = 0
    /// Line (1-based) where the record last returned starts.
    public private(set) var line = 1
    var nextLine = 1

    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { i = 3 }
    }

    public struct Error: Swift.Error, CustomStringConvertible {
        public var line: Int
        public var description: String
    }

    /// The next record's fields, nil at the end.
    public mutating func next() throws(Error) -> [String]? {
        guard i < bytes.count else { return nil }
        line = nextLine
        var fields: [String] = []
        var field: [UInt8] = []
        while true {
            if i < bytes.count && bytes[i] == 34 && field.isEmpty {
                // A quoted field.
                i += 1
                while true {
                    guard i < bytes.count else { throw Error(line: line, description: "a quoted field is not closed") }
                    let c = bytes[i]
                    if c == 34 {
                        if i + 1 < bytes.count && bytes[i + 1] == 34 { field.append(34); i += 2; continue }
                        i += 1
                        break
                    }
                    if c == 10 { nextLine += 1 }
                    field.append(c)
                    i += 1
                }
                guard i >= bytes.count || bytes[i] == 44 || bytes[i] == 10 || bytes[i] == 13 else {
                    throw Error(line: line, description: "text after the closing quote of a field")
                }
            }
            while i < bytes.count && bytes[i] != 44 && bytes[i] != 10 && bytes[i] != 13 {
                if bytes[i] == 34 { throw Error(line: line, description: "a quote inside an unquoted field") }
                field.append(bytes[i])
                i += 1
            }
            fields.append(String(decoding: field, as: UTF8.self))
            field.removeAll(keepingCapacity: true)
            if i >= bytes.count { return fields }
            if bytes[i] == 44 { i += 1; continue }
            // End of record: CRLF or LF (or a lone CR).
            if bytes[i] == 13 { i += 1 }
            if i < bytes.count && bytes[i] == 10 { i += 1 }
            nextLine += 1
            return fields
        }
    }
}

extension HistoryStore {
    /// One problem of a CSV export, with where it is.
    public struct CSVProblem: Sendable, Equatable, CustomStringConvertible {
        public var line: Int
        public var reason: String
        public var detail: String
        public var description: String { "line \(line): \(reason): \(detail)" }
    }

    /// Reads a CSV export through `mapping`: each row's cells become native records (see
    /// `CSVMapping`), offered like NDJSON lines. Attribute-like columns (stage, traits) take
    /// their time from the `as_of` column, else the last instant before the hand-off. Each
    /// problem is handed to `report`. Throws when the file is not CSV or lacks a mapped column.
    public func addCSV(_ bytes: [UInt8], mapping: CSVMapping, source: String, report: (CSVProblem) -> Void) throws(CSVMapping.Error) {
        var reader = CSVReader(bytes)
        let first: [String]?
        do {
            first = try reader.next()
        } catch {
            throw CSVMapping.Error(description: "\(source):\(error.line): \(error.description)")
        }
        guard let header = first else { throw CSVMapping.Error(description: "\(source): empty file (a CSV export starts with a header row)") }
        let trimmed = header.map { $0.trimmingCharacters() }
        func column(_ name: String) throws(CSVMapping.Error) -> Int {
            guard let i = trimmed.firstIndex(of: name) else {
                let hint = Suggestions.closest(to: name, among: trimmed).map { " (did you mean '\($0)'?)" } ?? ""
                throw CSVMapping.Error(description: "\(source): the mapping names column '\(name)', which the header does not have\(hint); columns: \(trimmed.joined(separator: ", "))")
            }
            return i
        }
        let contactCol = try column(mapping.contactIdColumn)
        var roleCol: [String: Int] = [:]
        for (role, name) in mapping.columns { roleCol[role] = try column(name) }
        let defaultAsOf = until - 1
        var out: [UInt8] = []
        while true {
            let row: [String]
            do {
                guard let r = try reader.next() else { break }
                row = r
            } catch {
                countLine()
                countBad("invalid_csv")
                report(CSVProblem(line: error.line, reason: "invalid_csv", detail: error.description + " (the rest of the file is not read)"))
                return
            }
            let line = reader.line
            if row.count == 1 && row[0].isEmpty { continue }  // an empty line
            countLine()
            func cell(_ i: Int) -> String { i < row.count ? row[i].trimmingCharacters() : "" }
            func problem(_ reason: String, _ detail: String) {
                countBad(reason)
                report(CSVProblem(line: line, reason: reason, detail: detail))
            }
            guard row.count == header.count else {
                problem("invalid_csv", "\(row.count) fields, the header has \(header.count): row not read")
                continue
            }
            let contact = cell(contactCol)
            guard !contact.isEmpty else {
                problem("missing_field", "column '\(mapping.contactIdColumn)' (contact_id) is empty: row not read")
                continue
            }
            func time(_ role: String) -> Millis? {
                guard let c = roleCol[role] else { return nil }
                let v = cell(c)
                if v.isEmpty { return nil }
                guard let t = mapping.parseTime(v) else {
                    problem("invalid_time", "column '\(mapping.columns[role]!)' (\(role)): '\(v)' is not an RFC 3339 time, epoch milliseconds\(mapping.timezone == nil ? ", or (with timezone in the mapping) a date and time" : " or a date and time")")
                    return nil
                }
                return t
            }
            func emit(_ type: String, _ ts: Millis, props: [(String, String, Bool)] = []) {
                out.removeAll(keepingCapacity: true)
                out.append(contentsOf: #"{"contact_id":"#.utf8)
                JSONWriter.string(contact, to: &out)
                out.append(contentsOf: #","type":"\#(type)","ts":\#(ts)"#.utf8)
                if !props.isEmpty {
                    out.append(contentsOf: #","props":{"#.utf8)
                    for (k, (name, value, quoted)) in props.enumerated() {
                        if k > 0 { out.append(44) }
                        JSONWriter.string(name, to: &out)
                        out.append(58)
                        if quoted { JSONWriter.string(value, to: &out) } else { out.append(contentsOf: value.utf8) }
                    }
                    out.append(125)
                }
                out.append(125)
                let outcome = out.withUnsafeBufferPointer { add(record: $0) }
                if case .bad(let e) = outcome { report(CSVProblem(line: line, reason: e.reason.rawValue, detail: e.detail)) }
            }
            for (role, type) in CSVMapping.timeRoles {
                if let t = time(role) { emit(type, t) }
            }
            let asOf = roleCol["as_of"] == nil ? defaultAsOf : time("as_of")
            if let c = roleCol["lifecycle_stage"], !cell(c).isEmpty {
                if let asOf { emit("crm_stage", asOf, props: [("stage", cell(c), true)]) }
            }
            var traits: [(String, String, Bool)] = []
            for role in CSVMapping.traitRoles {
                guard let c = roleCol[role] else { continue }
                let v = cell(c)
                if v.isEmpty { continue }
                if role == "company_size" {
                    let digits = v.filter { $0 != "," && $0 != "_" }
                    guard !digits.isEmpty, digits.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), digits.utf8.count <= 18 else {
                        problem("wrong_type", "column '\(mapping.columns[role]!)' (company_size): '\(v)' is not a whole number of employees")
                        continue
                    }
                    traits.append((role, digits, false))
                } else {
                    traits.append((role, v, true))
                }
            }
            if !traits.isEmpty, let asOf { emit("traits", asOf, props: traits) }
        }
    }
}

extension String {
    /// Without leading and trailing spaces and tabs.
    func trimmingCharacters() -> String {
        let u = Array(utf8)
        var a = 0, b = u.count
        while a < b && (u[a] == 32 || u[a] == 9) { a += 1 }
        while b > a && (u[b - 1] == 32 || u[b - 1] == 9) { b -= 1 }
        return String(decoding: u[a..<b], as: UTF8.self)
    }
}

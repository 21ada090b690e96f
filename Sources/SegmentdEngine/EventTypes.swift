/// The canonical event types of the contract (section 1), in a fixed order: an event's type is
/// carried through the engine as an index into this list.
public enum CanonicalTypes {
    public static let all: [String] = [
        "subscribed", "email_open", "email_click", "email_reply", "page_view", "resource_download",
        "form_submit", "meeting_booked", "unsubscribed", "bounced", "spam_complaint", "crm_stage",
        "traits",
    ]

    public static let crmStage = UInt8(all.firstIndex(of: "crm_stage")!)
    public static let traits = UInt8(all.firstIndex(of: "traits")!)
    public static let pageView = UInt8(all.firstIndex(of: "page_view")!)

    /// The index of a canonical type name (byte-exact: `Page_View` is not `page_view`).
    public static func index(of name: String) -> UInt8? {
        guard let i = all.firstIndex(where: { $0.utf8.elementsEqual(name.utf8) }) else { return nil }
        return UInt8(i)
    }
}

/// A property value as the model sees it, after decoding.
public enum PropValue: Sendable, Equatable {
    case absent
    case null
    case bool(Bool)
    case int(Int64)
    /// A number with a fraction or an exponent.
    case number(Double)
    case string(String)
    /// An object or an array: never equal to anything the model can name.
    case composite

    var isAbsentOrNull: Bool {
        switch self {
        case .absent, .null: return true
        default: return false
        }
    }
}

/// Byte-exact string comparison: Swift's `String ==` uses Unicode canonical equivalence, which
/// the contract forbids for ids and property values (`café` in NFC and NFD differ).
@inline(__always)
func bytesEqual(_ a: String, _ b: String) -> Bool { a.utf8.elementsEqual(b.utf8) }

func bytesHasPrefix(_ s: String, _ p: String) -> Bool { s.utf8.starts(with: p.utf8) }

func bytesContains(_ s: String, _ needle: String) -> Bool {
    let h = Array(s.utf8)
    let n = Array(needle.utf8)
    if n.isEmpty { return true }
    if n.count > h.count { return false }
    var i = 0
    while i + n.count <= h.count {
        if h[i] == n[0] && Array(h[i..<(i + n.count)]) == n { return true }
        i += 1
    }
    return false
}

/// ASCII-only lower-casing: the case-insensitive comparisons of the contract (industry,
/// country) are over ASCII names and codes; non-ASCII bytes are kept as they are.
func asciiLowercased(_ s: String) -> String {
    var b = Array(s.utf8)
    for i in b.indices where b[i] >= 65 && b[i] <= 90 { b[i] += 32 }
    return String(decoding: b, as: UTF8.self)
}

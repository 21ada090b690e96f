/// A validating JSON parser that writes a flat *tape* of nodes instead of a tree of values.
///
/// Decoding sits on the per-event hot path, so this parser allocates nothing per document once
/// its tape has grown: every node is a range into the input bytes, strings are decoded only when
/// a caller asks for one, and the tape array is reused from one record to the next. It accepts
/// exactly RFC 8259 JSON (no NaN, no trailing commas, no single quotes) and rejects invalid UTF-8
/// anywhere in the document.
struct JSONTape {
    enum Kind: UInt8 {
        case null, bool, number, string, object, array
    }

    struct Node {
        var kind: Kind
        /// For a string: the string has backslash escapes. For a number: it has a fraction or exponent.
        var flag: Bool
        /// `true`/`false` for bools.
        var boolValue: Bool
        /// Byte range in the input: for strings, the contents between the quotes.
        var start: Int32
        var end: Int32
        /// Index of the node after this one's whole subtree (the next sibling).
        var next: Int32
    }

    struct ParseError: Error {
        var message: String
        var offset: Int
    }

    private(set) var nodes: [Node] = []
    private(set) var base: UnsafeBufferPointer<UInt8> = UnsafeBufferPointer(start: nil, count: 0)
    let maxDepth = 64

    init() { nodes.reserveCapacity(64) }

    /// Parses `input`. The tape refers to `input`, which must stay alive and unchanged while
    /// the tape is read.
    mutating func parse(_ input: UnsafeBufferPointer<UInt8>) -> ParseError? {
        nodes.removeAll(keepingCapacity: true)
        base = input
        var p = Parser(s: input, nodes: nodes, maxDepth: maxDepth)
        nodes = []
        let err = p.parseDocument()
        nodes = p.nodes
        return err
    }

    // MARK: reading

    @inline(__always) func node(_ i: Int) -> Node { nodes[i] }

    /// The index of the value for `key` in the object at `object`, or nil. A key that appears
    /// more than once means its last value, as in most JSON parsers (Python's, JavaScript's).
    func lookup(_ object: Int, _ key: StaticString) -> Int? {
        let n = nodes[object]
        guard n.kind == .object else { return nil }
        var i = object + 1
        let end = Int(n.next)
        let kp = key.utf8Start
        let kc = key.utf8CodeUnitCount
        var found: Int? = nil
        while i < end {
            let k = nodes[i]
            let v = i + 1
            if keyEquals(k, kp, kc) { found = v }
            i = Int(nodes[v].next)
        }
        return found
    }

    /// Like `lookup(_:_:)` for a key known only at run time (model and mapping property names).
    func lookup(_ object: Int, _ key: [UInt8]) -> Int? {
        let n = nodes[object]
        guard n.kind == .object else { return nil }
        var i = object + 1
        let end = Int(n.next)
        return key.withUnsafeBufferPointer { kb in
            var found: Int? = nil
            while i < end {
                let k = nodes[i]
                let v = i + 1
                if keyEquals(k, kb.baseAddress!, kb.count) { found = v }
                i = Int(nodes[v].next)
            }
            return found
        }
    }

    private func keyEquals(_ k: Node, _ p: UnsafePointer<UInt8>, _ count: Int) -> Bool {
        if !k.flag {
            guard Int(k.end - k.start) == count else { return false }
            return memcmp(base.baseAddress! + Int(k.start), p, count) == 0
        }
        let decoded = stringBytes(k)
        guard decoded.count == count else { return false }
        return decoded.withUnsafeBufferPointer { memcmp($0.baseAddress!, p, count) == 0 }
    }

    /// The decoded UTF-8 bytes of a string node.
    func stringBytes(_ n: Node) -> [UInt8] {
        let raw = UnsafeBufferPointer(rebasing: base[Int(n.start)..<Int(n.end)])
        if !n.flag { return Array(raw) }
        return JSONTape.unescape(raw)
    }

    func string(_ i: Int) -> String {
        let n = nodes[i]
        if !n.flag {
            return String(decoding: UnsafeBufferPointer(rebasing: base[Int(n.start)..<Int(n.end)]), as: UTF8.self)
        }
        return String(decoding: stringBytes(n), as: UTF8.self)
    }

    func rawBytes(_ n: Node) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(rebasing: base[Int(n.start)..<Int(n.end)])
    }

    /// An integer value of a number node without fraction or exponent, if it fits in Int64.
    func integer(_ i: Int) -> Int64? {
        let n = nodes[i]
        guard n.kind == .number, !n.flag else { return nil }
        return JSONTape.parseInt(rawBytes(n))
    }

    func double(_ i: Int) -> Double? {
        let n = nodes[i]
        guard n.kind == .number else { return nil }
        return Double(String(decoding: rawBytes(n), as: UTF8.self))
    }

    /// Flags (bit 7 of a byte) the bytes of the little-endian word `w` that are a quote, a
    /// backslash, a control character or non-ASCII, for scanning strings eight bytes at a time:
    /// zero exactly when there is none, and the lowest flag is the first such byte (a flag
    /// above it may be false: the subtractions borrow).
    @inline(__always)
    static func specialBytes(_ w: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let high: UInt64 = 0x8080_8080_8080_8080
        // One test for control bytes and the quote: with bit 1 flipped, exactly the bytes
        // below 0x20 and the quote (0x22 -> 0x20) are below 0x21 (0x20 -> 0x22, 0x21 -> 0x23).
        let flipped = w ^ (ones &* 0x02), b = w ^ (ones &* 92)
        return (((flipped &- ones &* 0x21) & ~flipped) | ((b &- ones) & ~b) | w) & high
    }

    static func parseInt(_ b: UnsafeBufferPointer<UInt8>) -> Int64? {
        var i = 0
        var neg = false
        if b.first == 45 { neg = true; i = 1 }
        guard i < b.count else { return nil }
        var v: Int64 = 0
        while i < b.count {
            let d = Int64(b[i] &- 48)
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(d)
            if o1 || o2 { return nil }
            v = a
            i += 1
        }
        return neg ? -v : v
    }

    static func unescape(_ raw: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(raw.count)
        var i = 0
        func hex4(_ j: Int) -> UInt32 {
            var v: UInt32 = 0
            for k in j..<(j + 4) {
                let c = raw[k]
                let d: UInt32
                switch c {
                case 48...57: d = UInt32(c - 48)
                case 65...70: d = UInt32(c - 55)
                default: d = UInt32(c - 87)
                }
                v = v << 4 | d
            }
            return v
        }
        func putScalar(_ u: UInt32) {
            let s = Unicode.Scalar(u) ?? "\u{FFFD}"
            out.append(contentsOf: Array(String(Character(s)).utf8))
        }
        while i < raw.count {
            let c = raw[i]
            if c != 92 { out.append(c); i += 1; continue }
            let e = raw[i + 1]
            i += 2
            switch e {
            case 110: out.append(10)
            case 116: out.append(9)
            case 114: out.append(13)
            case 98: out.append(8)
            case 102: out.append(12)
            case 117:
                var u = hex4(i)
                i += 4
                if u >= 0xD800 && u < 0xDC00, i + 6 <= raw.count, raw[i] == 92, raw[i + 1] == 117 {
                    let lo = hex4(i + 2)
                    if lo >= 0xDC00 && lo < 0xE000 {
                        u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00)
                        i += 6
                    }
                }
                putScalar(u)
            default: out.append(e)  // \" \\ \/
            }
        }
        return out
    }
}

private struct Parser {
    let s: UnsafeBufferPointer<UInt8>
    var nodes: [JSONTape.Node]
    let maxDepth: Int
    var i = 0
    var depth = 0

    init(s: UnsafeBufferPointer<UInt8>, nodes: [JSONTape.Node], maxDepth: Int) {
        self.s = s
        self.nodes = nodes
        self.maxDepth = maxDepth
    }

    mutating func fail(_ m: String) -> JSONTape.ParseError { JSONTape.ParseError(message: m, offset: i) }

    @inline(__always) mutating func skipWS() {
        while i < s.count {
            let c = s[i]
            if c == 32 || c == 10 || c == 13 || c == 9 { i += 1 } else { break }
        }
    }

    mutating func parseDocument() -> JSONTape.ParseError? {
        skipWS()
        if let e = parseValue() { return e }
        skipWS()
        if i != s.count { return fail("unexpected data after the JSON value") }
        return nil
    }

    mutating func parseValue() -> JSONTape.ParseError? {
        guard i < s.count else { return fail("unexpected end of input") }
        let c = s[i]
        switch c {
        case 123: return parseObject()
        case 91: return parseArray()
        case 34: return parseString()
        case 116: return literal("true", .bool, true)
        case 102: return literal("false", .bool, false)
        case 110: return literal("null", .null, false)
        case 45, 48...57: return parseNumber()
        default: return fail("unexpected character")
        }
    }

    mutating func literal(_ word: StaticString, _ kind: JSONTape.Kind, _ b: Bool) -> JSONTape.ParseError? {
        let n = word.utf8CodeUnitCount
        guard i + n <= s.count, memcmp(s.baseAddress! + i, word.utf8Start, n) == 0 else {
            return fail("invalid literal")
        }
        let start = i
        i += n
        nodes.append(.init(kind: kind, flag: false, boolValue: b, start: Int32(start), end: Int32(i), next: Int32(nodes.count + 1)))
        return nil
    }

    mutating func parseNumber() -> JSONTape.ParseError? {
        let start = i
        var frac = false
        if s[i] == 45 { i += 1 }
        guard i < s.count else { return fail("invalid number") }
        if s[i] == 48 {
            i += 1
        } else if s[i] >= 49 && s[i] <= 57 {
            while i < s.count && s[i] >= 48 && s[i] <= 57 { i += 1 }
        } else {
            return fail("invalid number")
        }
        if i < s.count && s[i] == 46 {
            frac = true
            i += 1
            let d0 = i
            while i < s.count && s[i] >= 48 && s[i] <= 57 { i += 1 }
            if i == d0 { return fail("invalid number") }
        }
        if i < s.count && (s[i] == 101 || s[i] == 69) {
            frac = true
            i += 1
            if i < s.count && (s[i] == 43 || s[i] == 45) { i += 1 }
            let d0 = i
            while i < s.count && s[i] >= 48 && s[i] <= 57 { i += 1 }
            if i == d0 { return fail("invalid number") }
        }
        nodes.append(.init(kind: .number, flag: frac, boolValue: false, start: Int32(start), end: Int32(i), next: Int32(nodes.count + 1)))
        return nil
    }

    mutating func parseString() -> JSONTape.ParseError? {
        i += 1  // opening quote
        let start = i
        var escaped = false
        let count = s.count
        let base = s.baseAddress!  // not empty: s[i - 1] is the opening quote
        while true {
            // Eight bytes at a time while none is a quote, a backslash, a control character or
            // non-ASCII (each test is exact: nonzero iff some byte qualifies). Any such byte, or
            // a false alarm, goes to the byte-at-a-time code below.
            while i &+ 8 <= count {
                if JSONTape.specialBytes(UnsafeRawPointer(base + i).loadUnaligned(as: UInt64.self)) != 0 { break }
                i &+= 8
            }
            guard i < count else { return fail("unterminated string") }
            let c = s[i]
            if c == 34 { break }
            if c == 92 {
                escaped = true
                guard i + 1 < s.count else { return fail("unterminated string") }
                let e = s[i + 1]
                switch e {
                case 34, 92, 47, 98, 102, 110, 114, 116: i += 2
                case 117:
                    guard i + 6 <= s.count else { return fail("invalid \\u escape") }
                    for k in (i + 2)..<(i + 6) {
                        let h = s[k]
                        let ok = (h >= 48 && h <= 57) || (h >= 65 && h <= 70) || (h >= 97 && h <= 102)
                        if !ok { return fail("invalid \\u escape") }
                    }
                    i += 6
                default: return fail("invalid escape")
                }
                continue
            }
            if c < 0x20 { return fail("control character in string") }
            if c < 0x80 { i += 1; continue }
            // Multi-byte UTF-8: validate the sequence.
            var len = 0
            var minScalar: UInt32 = 0
            var scalar: UInt32 = 0
            if c & 0xE0 == 0xC0 { len = 2; minScalar = 0x80; scalar = UInt32(c & 0x1F) }
            else if c & 0xF0 == 0xE0 { len = 3; minScalar = 0x800; scalar = UInt32(c & 0x0F) }
            else if c & 0xF8 == 0xF0 { len = 4; minScalar = 0x10000; scalar = UInt32(c & 0x07) }
            else { return fail("invalid UTF-8") }
            guard i + len <= s.count else { return fail("invalid UTF-8") }
            for k in 1..<len {
                let cc = s[i + k]
                guard cc & 0xC0 == 0x80 else { return fail("invalid UTF-8") }
                scalar = scalar << 6 | UInt32(cc & 0x3F)
            }
            if scalar < minScalar || scalar > 0x10FFFF || (scalar >= 0xD800 && scalar <= 0xDFFF) {
                return fail("invalid UTF-8")
            }
            i += len
        }
        nodes.append(.init(kind: .string, flag: escaped, boolValue: false, start: Int32(start), end: Int32(i), next: Int32(nodes.count + 1)))
        i += 1
        return nil
    }

    mutating func parseObject() -> JSONTape.ParseError? {
        depth += 1
        if depth > maxDepth { return fail("nesting too deep") }
        let me = nodes.count
        nodes.append(.init(kind: .object, flag: false, boolValue: false, start: Int32(i), end: 0, next: 0))
        i += 1
        skipWS()
        if i < s.count && s[i] == 125 {
            i += 1
        } else {
            while true {
                skipWS()
                guard i < s.count, s[i] == 34 else { return fail("expected a string key") }
                if let e = parseString() { return e }
                skipWS()
                guard i < s.count, s[i] == 58 else { return fail("expected ':'") }
                i += 1
                skipWS()
                if let e = parseValue() { return e }
                skipWS()
                guard i < s.count else { return fail("unterminated object") }
                if s[i] == 44 { i += 1; continue }
                if s[i] == 125 { i += 1; break }
                return fail("expected ',' or '}'")
            }
        }
        nodes[me].end = Int32(i)
        nodes[me].next = Int32(nodes.count)
        depth -= 1
        return nil
    }

    mutating func parseArray() -> JSONTape.ParseError? {
        depth += 1
        if depth > maxDepth { return fail("nesting too deep") }
        let me = nodes.count
        nodes.append(.init(kind: .array, flag: false, boolValue: false, start: Int32(i), end: 0, next: 0))
        i += 1
        skipWS()
        if i < s.count && s[i] == 93 {
            i += 1
        } else {
            while true {
                skipWS()
                if let e = parseValue() { return e }
                skipWS()
                guard i < s.count else { return fail("unterminated array") }
                if s[i] == 44 { i += 1; continue }
                if s[i] == 93 { i += 1; break }
                return fail("expected ',' or ']'")
            }
        }
        nodes[me].end = Int32(i)
        nodes[me].next = Int32(nodes.count)
        depth -= 1
        return nil
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a record was refused. `reason` is a stable code (the dead-letter `error.reason` header
/// and the metrics label); `detail` says what exactly was wrong, for a person.
public struct DecodeError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Reason: String, Sendable, CaseIterable {
        case invalidJSON = "invalid_json"
        case notAnObject = "not_an_object"
        case tooLarge = "too_large"
        case missingField = "missing_field"
        case wrongType = "wrong_type"
        case invalidContactId = "invalid_contact_id"
        case invalidTime = "invalid_time"
        case unknownType = "unknown_type"
        case invalidValue = "invalid_value"
    }

    public var reason: Reason
    public var detail: String

    public var description: String { "\(reason.rawValue): \(detail)" }
}

/// A record that is valid but carries nothing for the engine (anonymous Segment traffic,
/// unmapped track events, screen/group/alias calls). Counted, never dead-lettered.
public enum IgnoreReason: String, Sendable, CaseIterable {
    case anonymous
    case unmappedTrackEvent = "unmapped_track_event"
    case unsupportedCall = "unsupported_call"
}

/// An engagement event ready for the engine: the filters it matches are already evaluated, so
/// the engine never looks at JSON or property values.
public struct EngineEvent: Sendable {
    public var contactId: [UInt8]
    /// The event id, nil when absent or empty.
    public var eventId: String?
    public var type: UInt8
    public var ts: Millis
    /// Bit i set: the event matches the model's filter i.
    public var filterMask: UInt64
    /// Attribute updates this event carries (attribute index, value).
    public var attributes: [(Int, AttributeValue)]

    public init(contactId: [UInt8], eventId: String?, type: UInt8, ts: Millis, filterMask: UInt64, attributes: [(Int, AttributeValue)]) {
        self.contactId = contactId
        self.eventId = eventId
        self.type = type
        self.ts = ts
        self.filterMask = filterMask
        self.attributes = attributes
    }
}

public enum AttributeValue: Sendable, Equatable {
    case string(String)
    case int(Int64)
}

/// Which shape a record had.
public enum InputShape: String, Sendable { case native, segment }

/// What one input record decodes to.
public enum DecodeResult: Sendable {
    /// One record yields one event, or two (a Segment identify with a lifecycle stage): the
    /// two are applied in order and count as one record for duplicate detection.
    case events(EngineEvent, EngineEvent?, InputShape)
    case ignored(IgnoreReason)
    case bad(DecodeError)
}

/// Decodes input records of both shapes (contract section 1) into engine events.
///
/// One decoder per thread: it reuses its JSON tape and property buffer between records.
public struct EventDecoder {
    public let model: Model
    public var maxRecordBytes: Int
    private var tape = JSONTape()
    private var props: [PropValue]
    private let propKeyBytes: [[UInt8]]
    private let trackByName: [[UInt8]: TrackMapping]

    public init(model: Model, maxRecordBytes: Int = 1 << 20) {
        self.model = model
        self.maxRecordBytes = maxRecordBytes
        self.props = Array(repeating: .absent, count: model.propKeys.count)
        self.propKeyBytes = model.propKeys.map { Array($0.utf8) }
        var t: [[UInt8]: TrackMapping] = [:]
        for (k, v) in model.trackMappings { t[Array(k.utf8)] = v }
        self.trackByName = t
    }

    public mutating func decode(_ bytes: [UInt8]) -> DecodeResult {
        bytes.withUnsafeBufferPointer { decode($0) }
    }

    public mutating func decode(_ bytes: UnsafeBufferPointer<UInt8>) -> DecodeResult {
        if bytes.count > maxRecordBytes {
            return .bad(.init(reason: .tooLarge, detail: "record is \(bytes.count) bytes, over the limit of \(maxRecordBytes)"))
        }
        if let e = tape.parse(bytes) {
            return .bad(.init(reason: .invalidJSON, detail: "\(e.message) at byte \(e.offset)"))
        }
        let root = 0
        guard tape.node(root).kind == .object else {
            return .bad(.init(reason: .notAnObject, detail: "the record is a JSON \(tape.node(root).kind), not an object"))
        }
        guard let typeIdx = tape.lookup(root, "type") else {
            return .bad(.init(reason: .missingField, detail: "field 'type' is missing"))
        }
        let typeNode = tape.node(typeIdx)
        guard typeNode.kind == .string else {
            return .bad(.init(reason: typeNode.kind == .null ? .missingField : .wrongType, detail: "field 'type' must be a string, not \(typeNode.kind)"))
        }
        let typeBytes = typeNode.flag ? tape.stringBytes(typeNode) : Array(tape.rawBytes(typeNode))
        if let call = SegmentCall(typeBytes) {
            return decodeSegment(call)
        }
        return decodeNative(typeBytes)
    }

    // MARK: native shape

    private mutating func decodeNative(_ typeBytes: [UInt8]) -> DecodeResult {
        let root = 0
        let contact: [UInt8]
        switch contactId(root, "contact_id") {
        case .value(let c): contact = c
        case .anonymous: return .bad(.init(reason: .missingField, detail: "field 'contact_id' is missing or null"))
        case .error(let e): return .bad(e)
        }
        guard let type = CanonicalTypes.indexByBytes[typeBytes] else {
            return .bad(.init(reason: .unknownType, detail: "unknown event type '\(String(decoding: typeBytes, as: UTF8.self))'"))
        }
        let ts: Millis
        switch time(root, "ts") {
        case .success(let t): ts = t
        case .failure(let e): return .bad(e)
        }
        let eventId: String?
        switch optionalString(root, "event_id") {
        case .success(let s): eventId = s
        case .failure(let e): return .bad(e)
        }
        var propsNode: Int? = nil
        if let p = tape.lookup(root, "props") {
            let k = tape.node(p).kind
            if k == .object { propsNode = p } else if k != .null {
                return .bad(.init(reason: .wrongType, detail: "field 'props' must be an object, not \(k)"))
            }
        }
        for i in props.indices {
            if let pn = propsNode, let v = tape.lookup(pn, propKeyBytes[i]) { props[i] = propValue(v) } else { props[i] = .absent }
        }
        if type == CanonicalTypes.crmStage {
            guard let pn = propsNode, let s = tape.lookup(pn, "stage") else {
                return .bad(.init(reason: .missingField, detail: "a crm_stage event needs props.stage"))
            }
            guard tape.node(s).kind == .string else {
                return .bad(.init(reason: .wrongType, detail: "props.stage must be a string, not \(tape.node(s).kind)"))
            }
        }
        return .events(makeEvent(contact, eventId, type, ts), nil, .native)
    }

    // MARK: Segment Spec shape

    private enum SegmentCall {
        case track, page, identify, screen, group, alias
        init?(_ b: [UInt8]) {
            switch String(decoding: b, as: UTF8.self) {
            case "track": self = .track
            case "page": self = .page
            case "identify": self = .identify
            case "screen": self = .screen
            case "group": self = .group
            case "alias": self = .alias
            default: return nil
            }
        }
    }

    private mutating func decodeSegment(_ call: SegmentCall) -> DecodeResult {
        let root = 0
        let contact: [UInt8]
        switch contactId(root, "userId") {
        case .value(let c): contact = c
        case .anonymous: return .ignored(.anonymous)
        case .error(let e): return .bad(e)
        }
        let ts: Millis
        switch time(root, "timestamp") {
        case .success(let t): ts = t
        case .failure(let e): return .bad(e)
        }
        let eventId: String?
        switch optionalString(root, "messageId") {
        case .success(let s): eventId = s
        case .failure(let e): return .bad(e)
        }
        let objectKey: StaticString = call == .identify ? "traits" : "properties"
        var obj: Int? = nil
        if let p = tape.lookup(root, objectKey) {
            let k = tape.node(p).kind
            if k == .object { obj = p } else if k != .null {
                return .bad(.init(reason: .wrongType, detail: "field '\(objectKey)' must be an object, not \(k)"))
            }
        }
        for i in props.indices { props[i] = .absent }
        switch call {
        case .screen, .group, .alias:
            return .ignored(.unsupportedCall)
        case .track:
            guard let en = tape.lookup(root, "event") else {
                return .bad(.init(reason: .missingField, detail: "a track call needs 'event'"))
            }
            guard tape.node(en).kind == .string else {
                return .bad(.init(reason: .wrongType, detail: "field 'event' must be a string, not \(tape.node(en).kind)"))
            }
            guard let mapping = trackByName[tape.stringBytes(tape.node(en))] else { return .ignored(.unmappedTrackEvent) }
            if let o = obj {
                for (target, sources) in mapping.props {
                    guard let k = propKeyIndex(target) else { continue }
                    for s in sources {
                        if let v = tape.lookup(o, Array(s.utf8)), tape.node(v).kind != .null {
                            props[k] = propValue(v)
                            break
                        }
                    }
                }
            }
            return .events(makeEvent(contact, eventId, mapping.type, ts), nil, .segment)
        case .page:
            if let k = propKeyIndex("path") {
                var path: String? = nil
                if let o = obj {
                    if let p = tape.lookup(o, "path"), tape.node(p).kind == .string {
                        let s = tape.string(p)
                        if !s.isEmpty { path = s }
                    }
                    if path == nil, let u = tape.lookup(o, "url"), tape.node(u).kind == .string {
                        path = EventDecoder.pathOfURL(tape.string(u))
                    }
                }
                props[k] = path.map { .string($0) } ?? .absent
            }
            return .events(makeEvent(contact, eventId, CanonicalTypes.pageView, ts), nil, .segment)
        case .identify:
            var stage: String? = nil
            if let o = obj {
                if let s = tape.lookup(o, "lifecycle_stage") {
                    guard tape.node(s).kind == .string else {
                        return .bad(.init(reason: .wrongType, detail: "traits.lifecycle_stage must be a string, not \(tape.node(s).kind)"))
                    }
                    stage = tape.string(s)
                }
                for name in ["industry", "country"] {
                    if let k = propKeyIndex(name), let v = tape.lookup(o, Array(name.utf8)) { props[k] = propValue(v) }
                }
                if let k = propKeyIndex("company_size") {
                    if let v = tape.lookup(o, "company_size"), tape.node(v).kind != .null {
                        props[k] = propValue(v)
                    } else if let v = tape.lookup(o, "employees") {
                        props[k] = propValue(v)
                    }
                }
            }
            let traits = makeEvent(contact, eventId, CanonicalTypes.traits, ts)
            guard let stage else { return .events(traits, nil, .segment) }
            for i in props.indices { props[i] = .absent }
            if let k = propKeyIndex("stage") { props[k] = .string(stage) }
            return .events(traits, makeEvent(contact, eventId, CanonicalTypes.crmStage, ts), .segment)
        }
    }

    /// The path of a URL: what follows the authority, without query or fragment; nil if the
    /// URL has none.
    static func pathOfURL(_ url: String) -> String? {
        var b = Substring(url)
        if let r = b.range(of: "://") {
            b = b[r.upperBound...]
            guard let slash = b.firstIndex(of: "/") else { return nil }
            let stop = b.firstIndex(where: { $0 == "?" || $0 == "#" })
            if let stop, stop < slash { return nil }
            b = b[slash...]
        }
        if let stop = b.firstIndex(where: { $0 == "?" || $0 == "#" }) { b = b[..<stop] }
        guard b.hasPrefix("/") else { return nil }
        return String(b)
    }

    // MARK: fields

    private enum ContactField { case value([UInt8]), anonymous, error(DecodeError) }

    private func contactId(_ root: Int, _ key: StaticString) -> ContactField {
        guard let i = tape.lookup(root, key) else { return .anonymous }
        let n = tape.node(i)
        switch n.kind {
        case .null: return .anonymous
        case .string:
            let b = n.flag ? tape.stringBytes(n) : Array(tape.rawBytes(n))
            if b.isEmpty { return "\(key)" == "userId" ? .anonymous : .error(.init(reason: .invalidContactId, detail: "'\(key)' is empty")) }
            if b.count > 256 { return .error(.init(reason: .invalidContactId, detail: "'\(key)' is \(b.count) bytes, over 256")) }
            return .value(b)
        default:
            return .error(.init(reason: .wrongType, detail: "'\(key)' must be a string, not \(n.kind)"))
        }
    }

    private func time(_ root: Int, _ key: StaticString) -> Result<Millis, DecodeError> {
        guard let i = tape.lookup(root, key) else { return .failure(.init(reason: .missingField, detail: "field '\(key)' is missing")) }
        let n = tape.node(i)
        switch n.kind {
        case .string:
            let raw = n.flag ? tape.stringBytes(n) : Array(tape.rawBytes(n))
            if let t = raw.withUnsafeBufferPointer({ EventTime.parseRFC3339($0) }) { return .success(t) }
            return .failure(.init(reason: .invalidTime, detail: "'\(key)' \"\(String(decoding: raw, as: UTF8.self))\" is not an RFC 3339 date-time with an offset"))
        case .number:
            if let v = tape.integer(i) { return .success(v) }
            if let d = tape.double(i), d.isFinite, abs(d) < 9.0e15 { return .success(Millis(d.rounded(.down))) }
            return .failure(.init(reason: .invalidTime, detail: "'\(key)' is not a usable epoch-milliseconds number"))
        case .null:
            return .failure(.init(reason: .missingField, detail: "field '\(key)' is null"))
        default:
            return .failure(.init(reason: .invalidTime, detail: "'\(key)' must be an RFC 3339 string or epoch milliseconds, not \(n.kind)"))
        }
    }

    private func optionalString(_ root: Int, _ key: StaticString) -> Result<String?, DecodeError> {
        guard let i = tape.lookup(root, key) else { return .success(nil) }
        let n = tape.node(i)
        switch n.kind {
        case .null: return .success(nil)
        case .string:
            let s = tape.string(i)
            return .success(s.isEmpty ? nil : s)
        default:
            return .failure(.init(reason: .wrongType, detail: "'\(key)' must be a string, not \(n.kind)"))
        }
    }

    private func propValue(_ i: Int) -> PropValue {
        let n = tape.node(i)
        switch n.kind {
        case .null: return .null
        case .bool: return .bool(n.boolValue)
        case .string: return .string(tape.string(i))
        case .number:
            if let v = tape.integer(i) { return .int(v) }
            return .number(tape.double(i) ?? .nan)
        case .object, .array: return .composite
        }
    }

    private func propKeyIndex(_ name: String) -> Int? {
        model.propKeys.firstIndex(where: { bytesEqual($0, name) })
    }

    private func makeEvent(_ contact: [UInt8], _ eventId: String?, _ type: UInt8, _ ts: Millis) -> EngineEvent {
        var mask: UInt64 = 0
        for i in model.filters.indices where matches(model.filters[i], type, mask) {
            mask |= 1 << UInt64(i)
        }
        var attrs: [(Int, AttributeValue)] = []
        for (i, a) in model.attributes.enumerated() where a.fromType == type {
            switch (a.kind, props[a.propKey]) {
            case (.string, .string(let s)): attrs.append((i, .string(a.caseInsensitive ? asciiLowercased(s) : s)))
            case (.integer, .int(let v)): attrs.append((i, .int(v)))
            case (.integer, .string(let s)):
                if !s.isEmpty, s.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let v = Int64(s) { attrs.append((i, .int(v))) }
            default: break
            }
        }
        return EngineEvent(contactId: contact, eventId: eventId, type: type, ts: ts, filterMask: mask, attributes: attrs)
    }

    /// Evaluates a filter; `mask` holds the filters already evaluated (references point back).
    private func matches(_ f: FilterExpr, _ type: UInt8, _ mask: UInt64) -> Bool {
        switch f {
        case .types(let ts): return ts.contains(type)
        case .prop(let key, let test): return EventDecoder.test(props[key], test)
        case .all(let fs): return fs.allSatisfy { matches($0, type, mask) }
        case .any(let fs): return fs.contains { matches($0, type, mask) }
        case .not(let x): return !matches(x, type, mask)
        case .ref(let i): return mask & (1 << UInt64(i)) != 0
        }
    }

    static func test(_ v: PropValue, _ t: PropTest) -> Bool {
        switch t {
        case .equals(let lit): return equals(v, lit)
        case .startsWith(let p):
            if case .string(let s) = v { return bytesHasPrefix(s, p) }
            return false
        case .contains(let p):
            if case .string(let s) = v { return bytesContains(s, p) }
            return false
        case .oneOf(let lits): return lits.contains { equals(v, $0) }
        }
    }

    static func equals(_ v: PropValue, _ lit: PropTest.Literal) -> Bool {
        switch (v, lit) {
        case (.string(let a), .string(let b)): return bytesEqual(a, b)
        case (.bool(let a), .bool(let b)): return a == b
        case (.int(let a), .int(let b)): return a == b
        case (.number(let a), .int(let b)): return a == Double(b)
        case (.absent, .null), (.null, .null): return true
        default: return false
        }
    }
}

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
    /// A provider webhook event the model has no use for (delivered, processed, …).
    case unusedProviderEvent = "unused_provider_event"
}

/// An engagement event ready for the engine: the filters it matches are already evaluated, so
/// the engine never looks at JSON or property values.
///
/// **A view, valid until the next `decode` by the decoder that made it.** `contactId`,
/// `eventId` and the attribute strings point into memory that the decoder owns and reuses for
/// every record (copies of a decoder share it), so nothing is allocated or reference-counted
/// per event. Whoever keeps any of these bytes longer copies them (the engine does: ids go into
/// its contact arena, attribute strings into its intern table).
public struct EngineEvent {
    public var contactId: UnsafeBufferPointer<UInt8>
    /// The event id's UTF-8 bytes, nil when absent or empty.
    public var eventId: UnsafeBufferPointer<UInt8>?
    public var type: UInt8
    public var ts: Millis
    /// Bit i set: the event matches the model's filter i.
    public var filterMask: UInt64
    /// Attribute updates this event carries (attribute index, value).
    public var attributes: AttributeUpdates
    /// The values this event adds to the model's sums: (sum list index, value), for each sum
    /// list whose filter it matches and whose property it carries as a finite number.
    public var sums: SummedValues = SummedValues(values: UnsafeBufferPointer(start: nil, count: 0))
}

/// An event's values for the model's sum lists: a view into the decoder's memory, valid as
/// long as the event holding it.
public struct SummedValues: Sequence {
    let values: UnsafeBufferPointer<(Int, Double)>

    public var isEmpty: Bool { values.isEmpty }
    public func makeIterator() -> UnsafeBufferPointer<(Int, Double)>.Iterator { values.makeIterator() }
}

/// The attribute updates of one event, (attribute index, value) in the model's order: a view
/// into the decoder's memory, valid as long as the event holding it.
public struct AttributeUpdates: Sequence {
    let updates: UnsafeBufferPointer<(Int, AttributeValue)>

    public var count: Int { updates.count }
    public var isEmpty: Bool { updates.isEmpty }
    public func makeIterator() -> UnsafeBufferPointer<(Int, AttributeValue)>.Iterator { updates.makeIterator() }
}

public enum AttributeValue {
    /// The value's UTF-8 bytes (ASCII lower-cased for a case-insensitive attribute), a view
    /// valid as long as the event carrying it.
    case string(UnsafeBufferPointer<UInt8>)
    case int(Int64)
}

/// Which shape a record had.
public enum InputShape: String, Sendable { case native, segment }

/// What one input record decodes to. The events are views into the decoder's memory (see
/// `EngineEvent`).
public enum DecodeResult: CustomStringConvertible {
    /// One record yields one event, or two (a Segment identify with a lifecycle stage): the
    /// two are applied in order and count as one record for duplicate detection.
    case events(EngineEvent, EngineEvent?, InputShape)
    case ignored(IgnoreReason)
    case bad(DecodeError)

    /// Every field of the result as text (ids and strings as bytes): two decodings agree
    /// exactly when their descriptions are equal. For the differential tests of the decoder.
    public var description: String {
        func bytes(_ b: UnsafeBufferPointer<UInt8>) -> String { b.map { String($0) }.joined(separator: ",") }
        func event(_ e: EngineEvent) -> String {
            let attributes = e.attributes.map { index, value -> String in
                switch value {
                case .int(let v): return "\(index)=int:\(v)"
                case .string(let s): return "\(index)=string:[\(bytes(s))]"
                }
            }
            return "contact [\(bytes(e.contactId))] id \(e.eventId.map { "[\(bytes($0))]" } ?? "none") type \(e.type) ts \(e.ts) mask \(e.filterMask) attributes \(attributes)"
        }
        switch self {
        case let .events(first, second, shape):
            return "events \(shape.rawValue): \(event(first))" + (second.map { "; then " + event($0) } ?? "")
        case .ignored(let reason): return "ignored \(reason.rawValue)"
        case .bad(let error): return "bad \(error)"
        }
    }
}

/// Decodes input records of both shapes (contract section 1) into engine events.
///
/// Two paths give the same result for every record. The fast path (`decodeFast`, in
/// FastDecoder.swift) reads a record in one pass and either decodes it completely or says it is
/// not sure (escapes, non-ASCII bytes, a repeated known key, deep nesting, numbers it would have
/// to convert, anything bad); then the generic path (`decodeGeneric`) parses it into a JSON tape
/// and decides, so every bad-record reason and detail comes from one place.
///
/// One decoder per thread. Nothing is allocated per record: the events' ids and attribute
/// strings go into a byte arena that is reused (and grown only for a record larger than any
/// before), properties and attribute updates into buffers allocated once, and the model's
/// filters are compiled into flat tables (`FilterProgram`) evaluated over property bytes.
/// Copies of a decoder share that memory: use one copy at a time.
public struct EventDecoder {
    public let model: Model
    public var maxRecordBytes: Int
    private var tape = JSONTape()
    /// Bytes of the string property values of the current record, for the generic path
    /// (`Prop.start..<Prop.end`).
    private var scratch: [UInt8] = []
    /// Owns the memory below; the pointers are kept here so the per-record path reads plain
    /// struct fields.
    private let storage: DecodeStorage
    /// The current record's properties, by model property key (`propKeyCount` of them).
    let props: UnsafeMutablePointer<Prop>
    let propKeyCount: Int
    /// The current record's attribute updates (at most two events' worth).
    let attributeUpdates: UnsafeMutablePointer<(Int, AttributeValue)>
    var attributeUpdateCount = 0
    /// The current record's values for sum lists (`EngineEvent.sums`), and what reads them:
    /// per sum list, its filter's bit and its property's key.
    let summedValues: UnsafeMutablePointer<(Int, Double)>
    var summedValueCount = 0
    private let sumPlan: [(bit: UInt64, propKey: Int)]
    private let hasSums: Bool
    /// The byte arena of the current record's events: contact id, event id, attribute strings.
    var arena: UnsafeMutablePointer<UInt8>
    var arenaCapacity: Int
    var arenaUsed = 0
    /// Per byte of record, the most the arena can need beyond the contact id: the event id and
    /// one value per string attribute.
    let arenaBytesPerRecordByte: Int
    /// The model's event type names (canonical, then declared: `Model.eventTypes`), then the
    /// Segment calls.
    let typeNames: NameTable
    /// How many event types the model has (`typeNames` indices from here are Segment calls).
    let eventTypeCount: Int
    /// Per declared type (type index minus the canonical count), its properties' keys and kinds.
    private let declaredProps: [[(name: String, key: Int, kind: DeclaredType.PropKind)]]
    private let propKeyBytes: [[UInt8]]
    let tracks: [CompiledTrack]
    let trackNames: NameTable
    private let filters: FilterMasks
    private let attrPlan: [AttrPlan]
    /// Bit t set: some attribute is read from events of canonical type t.
    private let attrTypes: UInt64
    let pathKey: Int?, industryKey: Int?, countryKey: Int?, companySizeKey: Int?, stageKey: Int?
    /// What the fast path needs (FastDecoder.swift); its memory is freed by `storage`.
    let fastPlan: FastPlan

    struct CompiledTrack {
        var type: UInt8
        /// (prop key index, source property names, first present non-null wins)
        var props: [(Int, [[UInt8]])]
    }

    struct AttrPlan { var index: Int; var fromType: UInt8; var propKey: Int; var kind: AttributeSpec.Kind; var caseInsensitive: Bool }

    public init(model: Model, maxRecordBytes: Int = 1 << 20) {
        self.model = model
        self.maxRecordBytes = maxRecordBytes
        self.propKeyBytes = model.propKeys.map { Array($0.utf8) }
        func key(_ name: String) -> Int? { model.propKeys.firstIndex(where: { bytesEqual($0, name) }) }
        var tracks: [CompiledTrack] = []
        var trackNames: [[UInt8]] = []
        for (name, mapping) in model.trackMappings {
            var props = mapping.props.compactMap { (target, sources) -> (Int, [[UInt8]])? in
                guard let i = key(target) else { return nil }
                return (i, sources.map { Array($0.utf8) })
            }
            // A declared type's properties the mapping does not rename are read under their own names.
            let declared = Int(mapping.type) - CanonicalTypes.all.count
            if declared >= 0 {
                for prop in model.declaredTypes[declared].props where !props.contains(where: { $0.0 == prop.key }) {
                    props.append((prop.key, [Array(prop.name.utf8)]))
                }
            }
            trackNames.append(Array(name.utf8))
            tracks.append(CompiledTrack(type: mapping.type, props: props))
        }
        self.tracks = tracks
        self.trackNames = NameTable(trackNames)
        self.typeNames = NameTable((model.eventTypes + SegmentCall.names).map { Array($0.utf8) })
        self.eventTypeCount = model.eventTypes.count
        self.declaredProps = model.declaredTypes.map(\.props)
        let filters = FilterProgram(model: model)
        self.filters = FilterMasks(filters)
        var plan: [AttrPlan] = []
        var types: UInt64 = 0
        for (i, a) in model.attributes.enumerated() {
            plan.append(AttrPlan(index: i, fromType: a.fromType, propKey: a.propKey, kind: a.kind, caseInsensitive: a.caseInsensitive))
            types |= 1 << UInt64(a.fromType)
        }
        self.attrPlan = plan
        self.attrTypes = types
        pathKey = key("path"); industryKey = key("industry"); countryKey = key("country")
        companySizeKey = key("company_size"); stageKey = key("stage")
        propKeyCount = model.propKeys.count
        arenaBytesPerRecordByte = 1 + plan.filter { $0.kind == .string }.count
        sumPlan = model.sums.map { (1 << UInt64($0.filter), $0.propKey) }
        hasSums = !model.sums.isEmpty
        storage = DecodeStorage(props: propKeyCount, attributeUpdates: 2 * plan.count, summedValues: 2 * model.sums.count, bytes: 4096)
        summedValues = storage.summedValues
        props = storage.props
        attributeUpdates = storage.attributeUpdates
        arena = storage.bytes
        arenaCapacity = storage.byteCapacity
        storage.tables = [typeNames, self.trackNames]
        storage.filters = self.filters
        var keysReadStart: [Int32] = [0], keysRead: [Int32] = []
        for t in 0..<model.eventTypes.count {
            var keys = filters.tableStart[t] >= 0 ? filters.propKeys(of: UInt8(t)) : Array(0..<model.propKeys.count)
            for a in plan where Int(a.fromType) == t && !keys.contains(a.propKey) { keys.append(a.propKey) }
            // A sum's filter may select events of any type.
            for s in model.sums where !keys.contains(s.propKey) { keys.append(s.propKey) }
            // A declared type's properties are checked (`checkDeclaredProps`).
            if t >= CanonicalTypes.all.count {
                for p in model.declaredTypes[t - CanonicalTypes.all.count].props where !keys.contains(p.key) { keys.append(p.key) }
            }
            keysRead.append(contentsOf: keys.map { Int32($0) })
            keysReadStart.append(Int32(keysRead.count))
        }
        fastPlan = FastPlan(model: model, tracks: tracks, keysReadStart: keysReadStart, keysRead: keysRead)
        storage.fastPlan = fastPlan
    }

    /// Decodes one record (see `EngineEvent` for how long the events' bytes stay valid).
    public mutating func decode(_ bytes: [UInt8]) -> DecodeResult {
        bytes.withUnsafeBufferPointer { decode($0) }
    }

    @inline(__always)
    public mutating func decode(_ bytes: UnsafeBufferPointer<UInt8>) -> DecodeResult {
        if let result = decodeFast(bytes) { return result }
        return decodeGeneric(bytes)
    }

    /// Makes the arena hold the events of a record of `recordBytes` bytes, and empties it and
    /// the attribute updates. The arena only grows here, before any event points into it.
    mutating func startRecord(_ recordBytes: Int) {
        let need = 256 + recordBytes * arenaBytesPerRecordByte
        if need > arenaCapacity {
            storage.growBytes(to: need)
            arena = storage.bytes
            arenaCapacity = storage.byteCapacity
        }
        arenaUsed = 0
        attributeUpdateCount = 0
        summedValueCount = 0
    }

    /// Copies `bytes` into the arena (which `startRecord` made large enough).
    @inline(__always)
    mutating func keep(_ bytes: UnsafeBufferPointer<UInt8>) -> UnsafeBufferPointer<UInt8> {
        let start = arena + arenaUsed
        if let source = bytes.baseAddress { ShortCopy.copy(source, to: start, count: bytes.count) }
        arenaUsed += bytes.count
        return UnsafeBufferPointer(start: start, count: bytes.count)
    }

    /// The generic path: parses the record into the JSON tape, then looks fields up. Decides
    /// every record the fast path is not sure about, and gives every bad record its reason.
    public mutating func decodeGeneric(_ bytes: [UInt8]) -> DecodeResult {
        bytes.withUnsafeBufferPointer { decodeGeneric($0) }
    }

    public mutating func decodeGeneric(_ bytes: UnsafeBufferPointer<UInt8>) -> DecodeResult {
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
        startRecord(bytes.count)
        scratch.removeAll(keepingCapacity: true)
        if typeNode.flag {
            let b = tape.stringBytes(typeNode)
            return b.withUnsafeBufferPointer { decodeTyped($0) }
        }
        return decodeTyped(tape.rawBytes(typeNode))
    }

    private mutating func decodeTyped(_ typeBytes: UnsafeBufferPointer<UInt8>) -> DecodeResult {
        let type = typeNames.index(typeBytes)
        if let type, type >= eventTypeCount {
            return decodeSegment(SegmentCall(rawValue: type - eventTypeCount)!)
        }
        return decodeNative(typeBytes, type.map { UInt8($0) })
    }

    // MARK: native shape

    private mutating func decodeNative(_ typeBytes: UnsafeBufferPointer<UInt8>, _ canonicalType: UInt8?) -> DecodeResult {
        let root = 0
        let contact: UnsafeBufferPointer<UInt8>
        switch contactId(root, "contact_id") {
        case .value(let c): contact = c
        case .anonymous: return .bad(.init(reason: .missingField, detail: "field 'contact_id' is missing or null"))
        case .error(let e): return .bad(e)
        }
        guard let type = canonicalType else {
            return .bad(.init(reason: .unknownType, detail: "unknown event type '\(String(decoding: typeBytes, as: UTF8.self))'"))
        }
        let ts: Millis
        switch time(root, "ts") {
        case .success(let t): ts = t
        case .failure(let e): return .bad(e)
        }
        let eventId: UnsafeBufferPointer<UInt8>?
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
        for k in 0..<propKeyCount {
            if let pn = propsNode, let v = tape.lookup(pn, propKeyBytes[k]) { props[k] = propValue(v) } else { props[k] = Prop() }
        }
        if type == CanonicalTypes.crmStage {
            guard let pn = propsNode, let s = tape.lookup(pn, "stage") else {
                return .bad(.init(reason: .missingField, detail: "a crm_stage event needs props.stage"))
            }
            guard tape.node(s).kind == .string else {
                return .bad(.init(reason: .wrongType, detail: "props.stage must be a string, not \(tape.node(s).kind)"))
            }
        }
        if let e = checkDeclaredProps(type) { return .bad(e) }
        return .events(makeEvent(contact, eventId, type, ts), nil, .native)
    }

    /// For an event of a declared type: a property of the wrong kind (absent and null are
    /// fine: declared properties are optional).
    func checkDeclaredProps(_ type: UInt8) -> DecodeError? {
        let declared = Int(type) - CanonicalTypes.all.count
        guard declared >= 0, declared < declaredProps.count else { return nil }
        for (name, key, kind) in declaredProps[declared] {
            let value = props[key]
            let fits: Bool
            switch value.kind {
            case .absent, .null: fits = true
            case .int, .number: fits = kind == .number
            case .string: fits = kind == .string
            case .bool: fits = kind == .boolean
            case .composite: fits = false
            }
            if !fits {
                return DecodeError(reason: .wrongType, detail: "props.\(name) of a '\(model.eventTypes[Int(type)])' event must be a \(kind.rawValue), not \(value.kindName)")
            }
        }
        return nil
    }

    // MARK: Segment Spec shape

    /// The Segment calls, in the order of `names` (which follow the canonical types in
    /// `typeNames`).
    enum SegmentCall: Int {
        case track, page, identify, screen, group, alias
        static let names = ["track", "page", "identify", "screen", "group", "alias"]
    }

    private mutating func decodeSegment(_ call: SegmentCall) -> DecodeResult {
        let root = 0
        let contact: UnsafeBufferPointer<UInt8>
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
        let eventId: UnsafeBufferPointer<UInt8>?
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
        for k in 0..<propKeyCount { props[k] = Prop() }
        switch call {
        case .screen, .group, .alias:
            return .ignored(.unsupportedCall)
        case .track:
            guard let en = tape.lookup(root, "event") else {
                return .bad(.init(reason: .missingField, detail: "a track call needs 'event'"))
            }
            let enNode = tape.node(en)
            guard enNode.kind == .string else {
                return .bad(.init(reason: .wrongType, detail: "field 'event' must be a string, not \(enNode.kind)"))
            }
            let found: Int? = withStringBytes(enNode) { trackNames.index($0) }
            guard let ti = found else { return .ignored(.unmappedTrackEvent) }
            let mapping = tracks[ti]
            if let o = obj {
                for (k, sources) in mapping.props {
                    for s in sources {
                        if let v = tape.lookup(o, s), tape.node(v).kind != .null {
                            props[k] = propValue(v)
                            break
                        }
                    }
                }
            }
            if let e = checkDeclaredProps(mapping.type) { return .bad(e) }
            return .events(makeEvent(contact, eventId, mapping.type, ts), nil, .segment)
        case .page:
            if let k = pathKey {
                var path = Prop()
                if let o = obj {
                    if let p = tape.lookup(o, "path"), tape.node(p).kind == .string {
                        let v = propValue(p)
                        if v.end > v.start { path = v }
                    }
                    if path.kind == .absent, let u = tape.lookup(o, "url"), tape.node(u).kind == .string {
                        path = pathOfURL(u)
                    }
                }
                props[k] = path
            }
            return .events(makeEvent(contact, eventId, CanonicalTypes.pageView, ts), nil, .segment)
        case .identify:
            var stage: Int? = nil
            if let o = obj {
                if let s = tape.lookup(o, "lifecycle_stage") {
                    guard tape.node(s).kind == .string else {
                        return .bad(.init(reason: .wrongType, detail: "traits.lifecycle_stage must be a string, not \(tape.node(s).kind)"))
                    }
                    stage = s
                }
                if let k = industryKey, let v = tape.lookup(o, "industry") { props[k] = propValue(v) }
                if let k = countryKey, let v = tape.lookup(o, "country") { props[k] = propValue(v) }
                if let k = companySizeKey {
                    if let v = tape.lookup(o, "company_size"), tape.node(v).kind != .null {
                        props[k] = propValue(v)
                    } else if let v = tape.lookup(o, "employees") {
                        props[k] = propValue(v)
                    }
                }
            }
            let traits = makeEvent(contact, eventId, CanonicalTypes.traits, ts)
            guard let stage else { return .events(traits, nil, .segment) }
            for k in 0..<propKeyCount { props[k] = Prop() }
            if let k = stageKey { props[k] = propValue(stage) }
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

    /// `pathOfURL` over ASCII bytes (where characters are bytes, so the result is the same):
    /// the range of the path in `u`, or nil.
    static func pathOfASCIIURL(_ u: UnsafeBufferPointer<UInt8>) -> Range<Int>? {
        var lo = 0
        let n = u.count
        var i = 0
        while i + 3 <= n {
            if u[i] == 58 && u[i + 1] == 47 && u[i + 2] == 47 { break }
            i += 1
        }
        if i + 3 <= n {
            lo = i + 3
            var slash = lo
            while slash < n && u[slash] != 47 { slash += 1 }
            if slash == n { return nil }
            var stop = lo
            while stop < slash && u[stop] != 63 && u[stop] != 35 { stop += 1 }
            if stop < slash { return nil }
            lo = slash
        }
        var hi = lo
        while hi < n && u[hi] != 63 && u[hi] != 35 { hi += 1 }
        guard hi > lo && u[lo] == 47 else { return nil }
        return lo..<hi
    }

    /// The page path taken from the string node `u` (a URL), as a property.
    private mutating func pathOfURL(_ u: Int) -> Prop {
        let n = tape.node(u)
        let raw = tape.rawBytes(n)
        var ascii = !n.flag
        if ascii { for c in raw where c >= 0x80 { ascii = false; break } }
        if ascii {
            guard let r = EventDecoder.pathOfASCIIURL(raw) else { return Prop() }
            return stringProp(UnsafeBufferPointer(rebasing: raw[r]))
        }
        guard let path = EventDecoder.pathOfURL(tape.string(u)) else { return Prop() }
        let b = Array(path.utf8)
        return b.withUnsafeBufferPointer { stringProp($0) }
    }

    // MARK: fields

    private enum ContactField { case value(UnsafeBufferPointer<UInt8>), anonymous, error(DecodeError) }

    /// Calls `body` with the decoded bytes of a string node (no copy unless it has escapes).
    private func withStringBytes<R>(_ n: JSONTape.Node, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        if !n.flag { return body(tape.rawBytes(n)) }
        return tape.stringBytes(n).withUnsafeBufferPointer(body)
    }

    private mutating func contactId(_ root: Int, _ key: StaticString) -> ContactField {
        guard let i = tape.lookup(root, key) else { return .anonymous }
        let n = tape.node(i)
        switch n.kind {
        case .null: return .anonymous
        case .string:
            let count = withStringBytes(n) { $0.count }
            if count == 0 { return "\(key)" == "userId" ? .anonymous : .error(.init(reason: .invalidContactId, detail: "'\(key)' is empty")) }
            if count > 256 { return .error(.init(reason: .invalidContactId, detail: "'\(key)' is \(count) bytes, over 256")) }
            return .value(withStringBytes(n) { keep($0) })
        default:
            return .error(.init(reason: .wrongType, detail: "'\(key)' must be a string, not \(n.kind)"))
        }
    }

    private func time(_ root: Int, _ key: StaticString) -> Result<Millis, DecodeError> {
        guard let i = tape.lookup(root, key) else { return .failure(.init(reason: .missingField, detail: "field '\(key)' is missing")) }
        let n = tape.node(i)
        var outOfRange: DecodeError { DecodeError(reason: .invalidTime, detail: "'\(key)' is outside the years 0000 to 9999 (UTC)") }
        switch n.kind {
        case .string:
            if let t = withStringBytes(n, { EventTime.parseRFC3339($0) }) {
                return EventTime.isInRange(t) ? .success(t) : .failure(outOfRange)
            }
            let raw = withStringBytes(n) { Array($0) }
            return .failure(.init(reason: .invalidTime, detail: "'\(key)' \"\(String(decoding: raw, as: UTF8.self))\" is not an RFC 3339 date-time with an offset"))
        case .number:
            if let v = tape.integer(i) { return EventTime.isInRange(v) ? .success(v) : .failure(outOfRange) }
            if let d = tape.double(i), d.isFinite {
                // Compared as a double first: converting a huge double to Int64 would trap.
                guard d >= Double(Millis.earliestEventTime), d < Double(Millis.latestEventTime) + 1 else { return .failure(outOfRange) }
                return .success(Millis(d.rounded(.down)))
            }
            return .failure(.init(reason: .invalidTime, detail: "'\(key)' is not a usable epoch-milliseconds number"))
        case .null:
            return .failure(.init(reason: .missingField, detail: "field '\(key)' is null"))
        default:
            return .failure(.init(reason: .invalidTime, detail: "'\(key)' must be an RFC 3339 string or epoch milliseconds, not \(n.kind)"))
        }
    }

    private mutating func optionalString(_ root: Int, _ key: StaticString) -> Result<UnsafeBufferPointer<UInt8>?, DecodeError> {
        guard let i = tape.lookup(root, key) else { return .success(nil) }
        let n = tape.node(i)
        switch n.kind {
        case .null: return .success(nil)
        case .string:
            let kept = withStringBytes(n) { keep($0) }
            return .success(kept.isEmpty ? nil : kept)
        default:
            return .failure(.init(reason: .wrongType, detail: "'\(key)' must be a string, not \(n.kind)"))
        }
    }

    private mutating func stringProp(_ b: UnsafeBufferPointer<UInt8>) -> Prop {
        let start = Int32(scratch.count)
        scratch.append(contentsOf: b)
        var p = Prop()
        p.kind = .string
        p.start = start
        p.end = Int32(scratch.count)
        return p
    }

    private mutating func propValue(_ i: Int) -> Prop {
        let n = tape.node(i)
        var p = Prop()
        switch n.kind {
        case .null: p.kind = .null
        case .bool: p.kind = .bool; p.bool = n.boolValue
        case .string:
            if n.flag {
                let b = tape.stringBytes(n)
                return b.withUnsafeBufferPointer { stringProp($0) }
            }
            return stringProp(tape.rawBytes(n))
        case .number:
            if let v = tape.integer(i) { p.kind = .int; p.int = v } else { p.kind = .number; p.number = tape.double(i) ?? .nan }
        case .object, .array: p.kind = .composite
        }
        return p
    }

    /// The event of the current properties (the generic path's strings are in `scratch`).
    private mutating func makeEvent(_ contact: UnsafeBufferPointer<UInt8>, _ eventId: UnsafeBufferPointer<UInt8>?, _ type: UInt8, _ ts: Millis) -> EngineEvent {
        let propBytes = scratch
        return propBytes.withUnsafeBufferPointer { makeEvent(contact, eventId, type, ts, propBytes: $0) }
    }

    /// The event of the current properties `props`, whose strings are ranges of `propBytes`:
    /// its filter mask, and its attribute updates, which go after the record's others in
    /// `attributeUpdates` with their strings copied into the arena.
    mutating func makeEvent(_ contact: UnsafeBufferPointer<UInt8>, _ eventId: UnsafeBufferPointer<UInt8>?, _ type: UInt8, _ ts: Millis,
                            propBytes: UnsafeBufferPointer<UInt8>) -> EngineEvent {
        let mask = filters.mask(type: type, props: UnsafeBufferPointer(start: props, count: propKeyCount), bytes: propBytes)
        let first = attributeUpdateCount
        if attrTypes & (1 << UInt64(type)) != 0 {
            for attribute in attrPlan where attribute.fromType == type {
                let property = props[attribute.propKey]
                let value = UnsafeBufferPointer(rebasing: propBytes[Int(property.start)..<Int(property.end)])
                switch (attribute.kind, property.kind) {
                case (.string, .string):
                    let kept = keep(value)
                    if attribute.caseInsensitive {
                        let lower = UnsafeMutableBufferPointer(mutating: kept)
                        for i in lower.indices where lower[i] >= 65 && lower[i] <= 90 { lower[i] += 32 }
                    }
                    attributeUpdates[attributeUpdateCount] = (attribute.index, .string(kept))
                    attributeUpdateCount += 1
                case (.integer, .int):
                    attributeUpdates[attributeUpdateCount] = (attribute.index, .int(property.int))
                    attributeUpdateCount += 1
                case (.date, .string):
                    if let instant = EventTime.parseDate(value) {
                        attributeUpdates[attributeUpdateCount] = (attribute.index, .int(instant))
                        attributeUpdateCount += 1
                    }
                case (.integer, .string):
                    if !value.isEmpty, value.allSatisfy({ $0 >= 48 && $0 <= 57 }), let number = JSONTape.parseInt(value) {
                        attributeUpdates[attributeUpdateCount] = (attribute.index, .int(number))
                        attributeUpdateCount += 1
                    }
                default: break
                }
            }
        }
        let updates = UnsafeBufferPointer(start: attributeUpdates + first, count: attributeUpdateCount - first)
        var event = EngineEvent(contactId: contact, eventId: eventId, type: type, ts: ts, filterMask: mask, attributes: AttributeUpdates(updates: updates))
        if hasSums {
            let firstValue = summedValueCount
            for (index, sum) in sumPlan.enumerated() where mask & sum.bit != 0 {
                let property = props[sum.propKey]
                let value: Double
                switch property.kind {
                case .int: value = Double(property.int)
                case .number: value = property.number
                default: continue
                }
                guard value.isFinite else { continue }
                summedValues[summedValueCount] = (index, value)
                summedValueCount += 1
            }
            event.sums = SummedValues(values: UnsafeBufferPointer(start: summedValues + firstValue, count: summedValueCount - firstValue))
        }
        return event
    }
}

/// The memory an `EventDecoder` reuses for every record, allocated once (the byte arena grows
/// for a record larger than any before) and freed with the last copy of the decoder.
final class DecodeStorage {
    let props: UnsafeMutablePointer<Prop>
    let attributeUpdates: UnsafeMutablePointer<(Int, AttributeValue)>
    let summedValues: UnsafeMutablePointer<(Int, Double)>
    private(set) var bytes: UnsafeMutablePointer<UInt8>
    private(set) var byteCapacity: Int
    var fastPlan: FastPlan? = nil
    var filters: FilterMasks? = nil
    /// Name tables the decoder reads, freed here.
    var tables: [NameTable] = []

    init(props: Int, attributeUpdates: Int, summedValues: Int, bytes: Int) {
        self.summedValues = .allocate(capacity: max(summedValues, 1))
        self.summedValues.initialize(repeating: (0, 0), count: max(summedValues, 1))
        self.props = .allocate(capacity: max(props, 1))
        self.props.initialize(repeating: Prop(), count: max(props, 1))
        self.attributeUpdates = .allocate(capacity: max(attributeUpdates, 1))
        self.attributeUpdates.initialize(repeating: (0, .int(0)), count: max(attributeUpdates, 1))
        self.bytes = .allocate(capacity: bytes)
        byteCapacity = bytes
    }

    func growBytes(to capacity: Int) {
        bytes.deallocate()
        bytes = .allocate(capacity: capacity)
        byteCapacity = capacity
    }

    deinit {
        props.deallocate()
        attributeUpdates.deallocate()
        summedValues.deallocate()
        bytes.deallocate()
        for table in tables { table.deallocate() }
        filters?.deallocate()
        fastPlan?.deallocate()
    }
}

/// A `FilterProgram`'s per-type tables in plain memory, for `mask`, read for every event
/// (array reads are bounds-checked and the arrays retained): `testStart`, `tableStart` and
/// `maskTable` copied, and per test k of `testNodes` its property key and its `Test`. Freed by
/// `deallocate()` (a decoder's `DecodeStorage` calls it).
struct FilterMasks {
    let program: FilterProgram
    private let testStart: UnsafeMutablePointer<Int32>
    private let tableStart: UnsafeMutablePointer<Int32>
    private let table: UnsafeMutablePointer<UInt64>
    private let testKeys: UnsafeMutablePointer<Int32>
    private let tests: UnsafeMutablePointer<FilterProgram.Test>
    private let lits: UnsafeMutableBufferPointer<FilterProgram.Lit>
    private let litBytes: UnsafeMutableBufferPointer<UInt8>
    private let typeCount: Int

    init(_ program: FilterProgram) {
        self.program = program
        func copy<T>(_ values: [T]) -> UnsafeMutablePointer<T> {
            let memory = UnsafeMutablePointer<T>.allocate(capacity: max(values.count, 1))
            memory.initialize(from: values, count: values.count)
            return memory
        }
        typeCount = program.tableStart.count
        testStart = copy(program.testStart)
        tableStart = copy(program.tableStart)
        table = copy(program.maskTable)
        testKeys = copy(program.testNodes.map { program.nodes[Int($0)].a })
        tests = copy(program.testNodes.map { program.tests[Int(program.nodes[Int($0)].b)] })
        lits = UnsafeMutableBufferPointer(start: copy(program.lits), count: program.lits.count)
        litBytes = UnsafeMutableBufferPointer(start: copy(program.litBytes), count: program.litBytes.count)
    }

    func deallocate() {
        testStart.deallocate()
        tableStart.deallocate()
        table.deallocate()
        testKeys.deallocate()
        tests.deallocate()
        lits.baseAddress!.deallocate()
        litBytes.baseAddress!.deallocate()
    }

    /// The mask of the filters an event matches: its type's property tests, then the table.
    func mask(type: UInt8, props: UnsafeBufferPointer<Prop>, bytes: UnsafeBufferPointer<UInt8>) -> UInt64 {
        let t = Int(type)
        guard t < typeCount, tableStart[t] >= 0 else { return program.maskReference(type: type, props: props, bytes: bytes) }
        let first = Int(testStart[t]), end = Int(testStart[t &+ 1])
        var outcomes = 0
        var k = first
        while k < end {
            // A test's key is one of the model's (checked as the array read was).
            let key = Int(testKeys[k])
            precondition(key < props.count)
            if FilterProgram.test(props[key], tests[k], lits: UnsafeBufferPointer(lits), litBytes: UnsafeBufferPointer(litBytes), bytes) {
                outcomes |= 1 &<< (k &- first)
            }
            k &+= 1
        }
        return table[Int(tableStart[t]) &+ outcomes]
    }
}

/// A property value of the record being decoded. A string is a byte range in the decoder's
/// scratch buffer, so no `String` is made for it.
struct Prop {
    enum Kind: UInt8 { case absent, null, bool, int, number, string, composite }
    var kindName: String {
        switch kind {
        case .absent: "absent"
        case .null: "null"
        case .bool: "a boolean"
        case .int, .number: "a number"
        case .string: "a string"
        case .composite: "an object or array"
        }
    }
    var kind: Kind = .absent
    var bool = false
    var int: Int64 = 0
    /// A number with a fraction or an exponent (or an integer too large for Int64).
    var number: Double = 0
    var start: Int32 = 0
    var end: Int32 = 0
}

/// The model's event filters compiled into flat tables, evaluated in order over one event's
/// type and properties (a filter may refer to an earlier one through the mask built so far).
/// Matching is byte for byte, exactly as `PropTest` defines it.
struct FilterProgram {
    enum Op: UInt8 { case types, prop, all, any, not, ref }
    /// types: `mask` of canonical types; prop: `a` key, `b` test; all/any: children
    /// `kids[a..<b]`; not: child `a`; ref: filter `a`.
    struct Node { var op: Op; var a: Int32 = 0; var b: Int32 = 0; var mask: UInt64 = 0 }
    enum TestKind: UInt8 { case equals, startsWith, contains, oneOf, atLeast, atMost }
    /// The test's literals are `lits[start..<end]` (one for all but oneOf).
    struct Test { var kind: TestKind; var start: Int32; var end: Int32 }
    enum LitKind: UInt8 { case string, int, bool, null }
    /// A string literal's bytes are `litBytes[start..<end]`; a numeric bound is `number`.
    struct Lit { var kind: LitKind; var int: Int64 = 0; var bool = false; var start: Int32 = 0; var end: Int32 = 0; var number: Double = 0 }

    var nodes: [Node] = []
    var kids: [Int32] = []
    var tests: [Test] = []
    var lits: [Lit] = []
    var litBytes: [UInt8] = []
    var roots: [Int32] = []

    /// Per canonical type t: the property tests (`.prop` nodes) its filters depend on,
    /// `testNodes[testStart[t] ..< testStart[t + 1]]`, and the mask for every outcome of those
    /// tests, `maskTable[tableStart[t] + outcomes]` (bit j of `outcomes`: test j holds). The
    /// table is built by evaluating the filters in order for each outcome, as `maskReference`
    /// does, so an event costs its type's few tests and one load. A type with more than
    /// `maxTableTests` tests has no table (`tableStart[t] == -1`): `maskReference` decides.
    var testStart: [Int32] = [0]
    var testNodes: [Int32] = []
    var tableStart: [Int32] = []
    var maskTable: [UInt64] = []
    static let maxTableTests = 8

    init(model: Model) {
        for f in model.filters { roots.append(compile(f)) }
        for t in 0..<model.eventTypes.count {
            // The filters the type alone decides (`fixed`), and the others in order (`dynamic`).
            var state: [Tri] = []
            var fixed: UInt64 = 0
            var dynamic: [Int] = []
            for (i, r) in roots.enumerated() {
                let v = partial(r, UInt8(t), i, state)
                state.append(v)
                if v == .yes { fixed |= 1 << UInt64(i) }
                if v == .unknown { dynamic.append(i) }
            }
            var found: [Int32] = []
            for i in dynamic { collectTests(roots[i], into: &found) }
            testNodes.append(contentsOf: found)
            testStart.append(Int32(testNodes.count))
            guard found.count <= FilterProgram.maxTableTests else {
                tableStart.append(-1)
                continue
            }
            tableStart.append(Int32(maskTable.count))
            for outcomes in 0..<(1 << found.count) {
                var mask = fixed
                for i in dynamic {
                    let before = i < 64 ? mask & ((1 << UInt64(i)) &- 1) : mask
                    if matches(roots[i], UInt8(t), before, tests: found, outcomes: outcomes) { mask |= 1 << UInt64(i) }
                }
                maskTable.append(mask)
            }
        }
    }

    /// The property tests under node `ni` (not through references: a referenced filter's
    /// tests are collected as its own).
    private func collectTests(_ ni: Int32, into found: inout [Int32]) {
        let n = nodes[Int(ni)]
        switch n.op {
        case .prop: if !found.contains(ni) { found.append(ni) }
        case .all, .any: for k in Int(n.a)..<Int(n.b) { collectTests(kids[k], into: &found) }
        case .not: collectTests(n.a, into: &found)
        case .types, .ref: break
        }
    }

    /// `matches` with the outcome of each property test given: test node `tests[j]` holds
    /// when bit j of `outcomes` is set.
    private func matches(_ ni: Int32, _ type: UInt8, _ mask: UInt64, tests found: [Int32], outcomes: Int) -> Bool {
        let n = nodes[Int(ni)]
        switch n.op {
        case .types: return n.mask & (1 << UInt64(type)) != 0
        case .prop: return outcomes & (1 << found.firstIndex(of: ni)!) != 0
        case .all:
            for k in Int(n.a)..<Int(n.b) where !matches(kids[k], type, mask, tests: found, outcomes: outcomes) { return false }
            return true
        case .any:
            for k in Int(n.a)..<Int(n.b) where matches(kids[k], type, mask, tests: found, outcomes: outcomes) { return true }
            return false
        case .not: return !matches(n.a, type, mask, tests: found, outcomes: outcomes)
        case .ref: return mask & (1 << UInt64(n.a)) != 0
        }
    }

    /// The property keys the filters of events of `type` read.
    func propKeys(of type: UInt8) -> [Int] {
        var keys: [Int] = []
        for k in Int(testStart[Int(type)])..<Int(testStart[Int(type) + 1]) {
            let key = Int(nodes[Int(testNodes[k])].a)
            if !keys.contains(key) { keys.append(key) }
        }
        return keys
    }

    enum Tri { case no, yes, unknown }

    /// What filter node `ni` gives for any event of `type`, as far as the type alone decides,
    /// while filter `current` is being evaluated (`state`: the earlier filters' results).
    private func partial(_ ni: Int32, _ type: UInt8, _ current: Int, _ state: [Tri]) -> Tri {
        let n = nodes[Int(ni)]
        switch n.op {
        case .types: return n.mask & (1 << UInt64(type)) != 0 ? .yes : .no
        case .prop: return .unknown
        case .all, .any:
            let isAll = n.op == .all
            var sawUnknown = false
            var k = Int(n.a)
            while k < Int(n.b) {
                switch partial(kids[k], type, current, state) {
                case .unknown: sawUnknown = true
                case .yes: if !isAll { return .yes }
                case .no: if isAll { return .no }
                }
                k += 1
            }
            return sawUnknown ? .unknown : (isAll ? .yes : .no)
        case .not:
            switch partial(n.a, type, current, state) {
            case .yes: return .no
            case .no: return .yes
            case .unknown: return .unknown
            }
        case .ref:
            // `matches` reads the mask built so far: only earlier filters can be set in it.
            let j = Int(n.a)
            guard j < current, j < 64 else { return .no }
            return state[j]
        }
    }

    private mutating func lit(_ l: PropTest.Literal) -> Lit {
        switch l {
        case .string(let s):
            let start = Int32(litBytes.count)
            litBytes.append(contentsOf: s.utf8)
            return Lit(kind: .string, start: start, end: Int32(litBytes.count))
        case .int(let i): return Lit(kind: .int, int: i)
        case .bool(let b): return Lit(kind: .bool, bool: b)
        case .null: return Lit(kind: .null)
        }
    }

    private mutating func compile(_ f: FilterExpr) -> Int32 {
        var n: Node
        switch f {
        case .types(let ts):
            var m: UInt64 = 0
            for t in ts { m |= 1 << UInt64(t) }
            n = Node(op: .types, mask: m)
        case .prop(let key, let test):
            let start = Int32(lits.count)
            let kind: TestKind
            switch test {
            case .equals(let l): kind = .equals; lits.append(lit(l))
            case .startsWith(let s): kind = .startsWith; lits.append(lit(.string(s)))
            case .contains(let s): kind = .contains; lits.append(lit(.string(s)))
            case .oneOf(let ls): kind = .oneOf; for l in ls { lits.append(lit(l)) }
            case .atLeast(let bound): kind = .atLeast; lits.append(Lit(kind: .null, number: bound))
            case .atMost(let bound): kind = .atMost; lits.append(Lit(kind: .null, number: bound))
            }
            tests.append(Test(kind: kind, start: start, end: Int32(lits.count)))
            n = Node(op: .prop, a: Int32(key), b: Int32(tests.count - 1))
        case .all(let fs), .any(let fs):
            let sub = fs.map { compile($0) }
            let start = Int32(kids.count)
            kids.append(contentsOf: sub)
            let isAll: Bool
            if case .all = f { isAll = true } else { isAll = false }
            n = Node(op: isAll ? .all : .any, a: start, b: Int32(kids.count))
        case .not(let x): n = Node(op: .not, a: compile(x))
        case .ref(let i): n = Node(op: .ref, a: Int32(i))
        }
        nodes.append(n)
        return Int32(nodes.count - 1)
    }

    /// Every filter evaluated in order (what `mask` computes).
    func maskReference(type: UInt8, props: UnsafeBufferPointer<Prop>, bytes: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var mask: UInt64 = 0
        for (i, r) in roots.enumerated() where matches(r, type, mask, props, bytes) {
            mask |= 1 << UInt64(i)
        }
        return mask
    }

    private func matches(_ ni: Int32, _ type: UInt8, _ mask: UInt64, _ props: UnsafeBufferPointer<Prop>, _ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        let n = nodes[Int(ni)]
        switch n.op {
        case .types: return n.mask & (1 << UInt64(type)) != 0
        case .prop: return test(props[Int(n.a)], tests[Int(n.b)], bytes)
        case .all:
            var k = Int(n.a)
            while k < Int(n.b) { if !matches(kids[k], type, mask, props, bytes) { return false }; k += 1 }
            return true
        case .any:
            var k = Int(n.a)
            while k < Int(n.b) { if matches(kids[k], type, mask, props, bytes) { return true }; k += 1 }
            return false
        case .not: return !matches(n.a, type, mask, props, bytes)
        case .ref: return mask & (1 << UInt64(n.a)) != 0
        }
    }

    private func test(_ v: Prop, _ t: Test, _ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        lits.withUnsafeBufferPointer { lits in
            litBytes.withUnsafeBufferPointer { FilterProgram.test(v, t, lits: lits, litBytes: $0, bytes) }
        }
    }

    /// Whether property `v` (its string bytes in `bytes`) passes test `t`, whose literals are
    /// in `lits` and `litBytes` (the program's, or `FilterMasks`' copies in plain memory).
    @inline(__always)
    static func test(_ v: Prop, _ t: Test, lits: UnsafeBufferPointer<Lit>, litBytes: UnsafeBufferPointer<UInt8>,
                     _ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        // Literal indices are the program's own (`lits` has them all).
        precondition(Int(t.end) <= lits.count && t.start >= 0)
        switch t.kind {
        case .equals: return equals(v, lits[Int(t.start)], litBytes, bytes)
        case .atLeast: return FilterProgram.atLeast(v, lits[Int(t.start)].number)
        case .atMost: return FilterProgram.atMost(v, lits[Int(t.start)].number)
        case .oneOf:
            var k = Int(t.start)
            while k < Int(t.end) { if equals(v, lits[k], litBytes, bytes) { return true }; k += 1 }
            return false
        case .startsWith, .contains:
            guard v.kind == .string else { return false }
            let l = lits[Int(t.start)]
            let n = Int(l.end - l.start)
            let h = Int(v.end - v.start)
            if n == 0 { return true }
            if n > h { return false }
            let np = litBytes.baseAddress! + Int(l.start)
            let hp = bytes.baseAddress! + Int(v.start)
            if t.kind == .startsWith { return memcmp(hp, np, n) == 0 }
            var i = 0
            while i + n <= h {
                if hp[i] == np[0] && memcmp(hp + i, np, n) == 0 { return true }
                i += 1
            }
            return false
        }
    }

    /// Whether the property is a number at least `bound`: integers exactly (`v >= ceil(bound)`),
    /// other numbers as doubles.
    static func atLeast(_ v: Prop, _ bound: Double) -> Bool {
        switch v.kind {
        case .int:
            let b = bound.rounded(.up)
            if b <= -9.223372036854775808e18 { return true }
            if b >= 9.223372036854775808e18 { return false }
            return v.int >= Int64(b)
        case .number: return v.number >= bound
        default: return false
        }
    }

    /// Whether the property is a number at most `bound` (as `atLeast`, with `floor`).
    static func atMost(_ v: Prop, _ bound: Double) -> Bool {
        switch v.kind {
        case .int:
            let b = bound.rounded(.down)
            if b >= 9.223372036854775808e18 { return true }
            if b < -9.223372036854775808e18 { return false }
            return v.int <= Int64(b)
        case .number: return v.number <= bound
        default: return false
        }
    }

    private static func equals(_ v: Prop, _ l: Lit, _ litBytes: UnsafeBufferPointer<UInt8>, _ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        switch (v.kind, l.kind) {
        case (.string, .string):
            let n = Int(l.end - l.start)
            guard Int(v.end - v.start) == n else { return false }
            if n == 0 { return true }
            return memcmp(litBytes.baseAddress! + Int(l.start), bytes.baseAddress! + Int(v.start), n) == 0
        case (.bool, .bool): return v.bool == l.bool
        case (.int, .int): return v.int == l.int
        case (.number, .int): return v.number == Double(l.int)
        case (.absent, .null), (.null, .null): return true
        default: return false
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

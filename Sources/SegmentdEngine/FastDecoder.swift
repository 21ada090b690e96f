/// The decoder's fast path: one pass over the record, schema-directed.
///
/// The keys of the root object and of its property object (`props`, `properties` or
/// `traits`) are read once each and dispatched at once: root keys by a switch on their length
/// and bytes, property names through a `NameTable` of the names the model and the Segment
/// mapping read. Values are read in place (strings stay ranges of the record), everything
/// else is validated and skipped. Nothing is allocated; the filters run over the record's
/// bytes (`FilterProgram`: per-type masks plus the few property tests the type needs).
///
/// The fast path is exact by construction: it decodes a record only when every check the
/// generic path makes is known to pass, and otherwise returns nil ("not sure") so that the
/// generic path decides. It is not sure about: a backslash escape or a byte outside ASCII in
/// any string, a known key given twice, nesting deeper than 32, a number it would have to
/// convert (a fraction, an exponent, more than 18 digits) where it reads one, more than one
/// property object, and every record the generic path would refuse or that has an unknown
/// type. Those are rare in real streams; all are tested against the generic path
/// (DecoderTests' differential suite, the records fuzz target).
extension EventDecoder {
    /// The fast path: the record's result, or nil when the generic path must decide.
    public mutating func decodeFast(_ bytes: UnsafeBufferPointer<UInt8>) -> DecodeResult? {
        guard let plan = fastPlan, let base = bytes.baseAddress, bytes.count <= maxRecordBytes else { return nil }
        var scan = RecordScan(record: base, count: bytes.count, fields: plan.fields, slots: plan.slots)
        guard scan.scanRecord(plan.names) else { return nil }
        let typeField = plan.fields[RootField.type.rawValue]
        guard scan.has(.type), typeField.kind == .string, let typeIndex = typeNames.index(base, typeField) else { return nil }
        startRecord(bytes.count)
        if typeIndex < CanonicalTypes.all.count {
            return decodeFastNative(UInt8(typeIndex), scan, plan, bytes)
        }
        return decodeFastSegment(SegmentCall(rawValue: typeIndex - CanonicalTypes.all.count)!, scan, plan, bytes)
    }

    public mutating func decodeFast(_ bytes: [UInt8]) -> DecodeResult? {
        bytes.withUnsafeBufferPointer { decodeFast($0) }
    }

    private mutating func decodeFastNative(_ type: UInt8, _ scan: RecordScan, _ plan: FastPlan, _ record: UnsafeBufferPointer<UInt8>) -> DecodeResult? {
        guard scan.has(.contactId), let contact = fastContactId(plan.fields[RootField.contactId.rawValue], record) else { return nil }
        guard scan.has(.ts), let ts = EventDecoder.fastTime(plan.fields[RootField.ts.rawValue], record) else { return nil }
        var eventId: UnsafeBufferPointer<UInt8>? = nil
        guard fastEventId(scan, .eventId, plan, record, into: &eventId) else { return nil }
        guard let haveProps = scan.propertyObject(.props, plan) else { return nil }
        if haveProps {
            for k in 0..<propKeyCount { props[k] = scan.prop(k) }
        } else {
            for k in 0..<propKeyCount { props[k] = Prop() }
        }
        if type == CanonicalTypes.crmStage {
            guard haveProps, scan.prop(plan.stage).kind == .string else { return nil }
        }
        return .events(makeEvent(contact, eventId, type, ts, propBytes: record), nil, .native)
    }

    private mutating func decodeFastSegment(_ call: SegmentCall, _ scan: RecordScan, _ plan: FastPlan, _ record: UnsafeBufferPointer<UInt8>) -> DecodeResult? {
        let userId = plan.fields[RootField.userId.rawValue]
        if !scan.has(.userId) || userId.kind == .null || (userId.kind == .string && userId.start == userId.end) {
            return .ignored(.anonymous)
        }
        guard let contact = fastContactId(userId, record) else { return nil }
        guard scan.has(.timestamp), let ts = EventDecoder.fastTime(plan.fields[RootField.timestamp.rawValue], record) else { return nil }
        var eventId: UnsafeBufferPointer<UInt8>? = nil
        guard fastEventId(scan, .messageId, plan, record, into: &eventId) else { return nil }
        guard let haveObject = scan.propertyObject(call == .identify ? .traits : .properties, plan) else { return nil }
        for k in 0..<propKeyCount { props[k] = Prop() }
        switch call {
        case .screen, .group, .alias:
            return .ignored(.unsupportedCall)
        case .track:
            let event = plan.fields[RootField.event.rawValue]
            guard scan.has(.event), event.kind == .string else { return nil }
            guard let track = trackNames.index(record.baseAddress!, event) else { return .ignored(.unmappedTrackEvent) }
            if haveObject {
                var k = Int(plan.trackProps[track])
                while k < Int(plan.trackProps[track + 1]) {
                    let target = plan.trackTargets[k]
                    var source = Int(plan.trackSourceStart[k])
                    while source < Int(plan.trackSourceStart[k + 1]) {
                        let value = scan.prop(Int(plan.trackSources[source]))
                        if value.kind != .absent && value.kind != .null {
                            props[Int(target)] = value
                            break
                        }
                        source += 1
                    }
                    k += 1
                }
            }
            return .events(makeEvent(contact, eventId, tracks[track].type, ts, propBytes: record), nil, .segment)
        case .page:
            if let pathKey, haveObject {
                let path = scan.prop(plan.path)
                if path.kind == .string && path.end > path.start {
                    props[pathKey] = path
                } else {
                    let url = scan.prop(plan.url)
                    if url.kind == .string, let range = EventDecoder.pathOfASCIIURL(UnsafeBufferPointer(rebasing: record[Int(url.start)..<Int(url.end)])) {
                        var value = Prop()
                        value.kind = .string
                        value.start = url.start + Int32(range.lowerBound)
                        value.end = url.start + Int32(range.upperBound)
                        props[pathKey] = value
                    }
                }
            }
            return .events(makeEvent(contact, eventId, CanonicalTypes.pageView, ts, propBytes: record), nil, .segment)
        case .identify:
            var stage = Prop()
            if haveObject {
                stage = scan.prop(plan.lifecycleStage)
                if stage.kind != .absent && stage.kind != .string { return nil }
                if let industryKey { props[industryKey] = scan.prop(plan.industry) }
                if let countryKey { props[countryKey] = scan.prop(plan.country) }
                if let companySizeKey {
                    let companySize = scan.prop(plan.companySize)
                    props[companySizeKey] = companySize.kind != .absent && companySize.kind != .null ? companySize : scan.prop(plan.employees)
                }
            }
            let traits = makeEvent(contact, eventId, CanonicalTypes.traits, ts, propBytes: record)
            guard stage.kind == .string else { return .events(traits, nil, .segment) }
            for k in 0..<propKeyCount { props[k] = Prop() }
            if let stageKey { props[stageKey] = stage }
            return .events(traits, makeEvent(contact, eventId, CanonicalTypes.crmStage, ts, propBytes: record), .segment)
        }
    }

    /// A contact id the generic path accepts (a string of 1 to 256 bytes), kept in the arena.
    private mutating func fastContactId(_ field: ScannedValue, _ record: UnsafeBufferPointer<UInt8>) -> UnsafeBufferPointer<UInt8>? {
        guard field.kind == .string, field.end > field.start, field.end - field.start <= 256 else { return nil }
        return keep(UnsafeBufferPointer(rebasing: record[Int(field.start)..<Int(field.end)]))
    }

    /// An optional event id into `id` (absent, null or a string; empty means none), kept in
    /// the arena; false when of another JSON type.
    private mutating func fastEventId(_ scan: RecordScan, _ field: RootField, _ plan: FastPlan, _ record: UnsafeBufferPointer<UInt8>,
                                      into id: inout UnsafeBufferPointer<UInt8>?) -> Bool {
        guard scan.has(field) else { return true }
        let value = plan.fields[field.rawValue]
        switch value.kind {
        case .null: return true
        case .string:
            if value.end > value.start { id = keep(UnsafeBufferPointer(rebasing: record[Int(value.start)..<Int(value.end)])) }
            return true
        default: return false
        }
    }

    /// A time the generic path accepts without converting a double: an RFC 3339 string or
    /// an integer of epoch milliseconds, in range.
    private static func fastTime(_ field: ScannedValue, _ record: UnsafeBufferPointer<UInt8>) -> Millis? {
        switch field.kind {
        case .string:
            guard let t = EventTime.parseRFC3339(UnsafeBufferPointer(rebasing: record[Int(field.start)..<Int(field.end)])),
                  EventTime.isInRange(t) else { return nil }
            return t
        case .number:
            guard field.isSmallInt, EventTime.isInRange(field.int) else { return nil }
            return field.int
        default: return nil
        }
    }
}

/// The root keys the fast path reads, by bit in `RecordScan.fieldsSeen`.
enum RootField: Int {
    case type, contactId, ts, eventId, props, userId, timestamp, messageId, properties, traits, event
    static let count = 11

    /// The field a root key names, if any: a switch on the length, then the bytes.
    @inline(__always)
    static func of(_ key: UnsafePointer<UInt8>, _ length: Int) -> RootField? {
        @inline(__always) func equal(_ name: StaticString) -> Bool { memcmp(key, name.utf8Start, length) == 0 }
        switch length {
        case 2: return key[0] == 116 && key[1] == 115 ? .ts : nil
        case 4: return equal("type") ? .type : nil
        case 5: return key[0] == 112 ? (equal("props") ? .props : nil) : (equal("event") ? .event : nil)
        case 6: return key[0] == 117 ? (equal("userId") ? .userId : nil) : (equal("traits") ? .traits : nil)
        case 8: return equal("event_id") ? .eventId : nil
        case 9: return key[0] == 116 ? (equal("timestamp") ? .timestamp : nil) : (equal("messageId") ? .messageId : nil)
        case 10: return key[0] == 99 ? (equal("contact_id") ? .contactId : nil) : (equal("properties") ? .properties : nil)
        default: return nil
        }
    }

    var isPropertyObject: Bool { self == .props || self == .properties || self == .traits }
}

/// A value the scan found: its JSON kind and where it is in the record.
struct ScannedValue {
    var kind: JSONTape.Kind = .null
    var bool = false
    /// A number without fraction or exponent and of at most 18 digits: its value is `int`.
    var isSmallInt = false
    var int: Int64 = 0
    /// A string's bytes between the quotes (the scan refuses escapes, so they are its value).
    var start: Int32 = 0
    var end: Int32 = 0
}

/// What the fast path precomputes from the model: the property names it records (the model's
/// property keys first, so slot k is key k, then the names the Segment mapping reads) and the
/// slots of the names it needs by name, and the memory the scan writes into.
final class FastPlan {
    let names: NameTable
    let stage: Int, path: Int, url: Int, lifecycleStage: Int, industry: Int, country: Int, companySize: Int, employees: Int
    /// Track mapping t's properties are `trackProps[t] ..< trackProps[t + 1]`: property k goes
    /// to key `trackTargets[k]` from the first present non-null of the slots
    /// `trackSources[trackSourceStart[k] ..< trackSourceStart[k + 1]]`.
    let trackProps: [Int32]
    let trackTargets: [Int32]
    let trackSourceStart: [Int32]
    let trackSources: [Int32]
    /// The root fields' values (by `RootField`) and the property slots' values of the record
    /// being scanned, in memory owned by `owner`.
    let fields: UnsafeMutablePointer<ScannedValue>
    let slots: UnsafeMutablePointer<ScannedValue>
    private let owner: ScanStorage

    /// Nil when there are more than 64 names to record (the scan keeps one bit per name).
    init?(model: Model, tracks: [EventDecoder.CompiledTrack]) {
        var names = model.propKeys.map { Array($0.utf8) }
        func slot(_ name: [UInt8]) -> Int {
            if let i = names.firstIndex(of: name) { return i }
            names.append(name)
            return names.count - 1
        }
        func slot(_ name: String) -> Int { slot(Array(name.utf8)) }
        stage = slot("stage"); path = slot("path"); url = slot("url"); lifecycleStage = slot("lifecycle_stage")
        industry = slot("industry"); country = slot("country"); companySize = slot("company_size"); employees = slot("employees")
        var trackProps: [Int32] = [0], targets: [Int32] = [], sourceStart: [Int32] = [0], sources: [Int32] = []
        for track in tracks {
            for (key, sourceNames) in track.props {
                targets.append(Int32(key))
                for name in sourceNames { sources.append(Int32(slot(name))) }
                sourceStart.append(Int32(sources.count))
            }
            trackProps.append(Int32(targets.count))
        }
        guard names.count <= 64 else { return nil }
        self.trackProps = trackProps
        trackTargets = targets
        trackSourceStart = sourceStart
        trackSources = sources
        self.names = NameTable(names)
        owner = ScanStorage(count: RootField.count + names.count)
        fields = owner.values
        slots = owner.values + RootField.count
    }
}

/// The scan's value memory, allocated once per decoder.
final class ScanStorage {
    let values: UnsafeMutablePointer<ScannedValue>
    init(count: Int) {
        values = .allocate(capacity: count)
        values.initialize(repeating: ScannedValue(), count: count)
    }
    deinit { values.deallocate() }
}

/// One pass over one record. Every function returns false (or nil) when it is not sure, and
/// the fast path then gives the record to the generic path.
struct RecordScan {
    let record: UnsafePointer<UInt8>
    let count: Int
    let fields: UnsafeMutablePointer<ScannedValue>
    let slots: UnsafeMutablePointer<ScannedValue>
    var position = 0
    /// Bit `RootField.rawValue`: the root key was seen.
    var fieldsSeen: UInt32 = 0
    /// Bit i: property slot i was seen in the property object.
    var slotsSeen: UInt64 = 0
    /// Which root key the property object scanned into the slots was under.
    var propertyObjectField: RootField? = nil

    init(record: UnsafePointer<UInt8>, count: Int, fields: UnsafeMutablePointer<ScannedValue>, slots: UnsafeMutablePointer<ScannedValue>) {
        self.record = record
        self.count = count
        self.fields = fields
        self.slots = slots
    }

    func has(_ field: RootField) -> Bool { fieldsSeen & (1 << UInt32(field.rawValue)) != 0 }

    /// Property slot `slot` as the generic path's property value: absent when not seen.
    func prop(_ slot: Int) -> Prop {
        var p = Prop()
        guard slotsSeen & (1 << UInt64(slot)) != 0 else { return p }
        let v = slots[slot]
        switch v.kind {
        case .null: p.kind = .null
        case .bool: p.kind = .bool; p.bool = v.bool
        case .number: p.kind = .int; p.int = v.int  // `scanProperties` took only small integers
        case .string: p.kind = .string; p.start = v.start; p.end = v.end
        case .object, .array: p.kind = .composite
        }
        return p
    }

    /// Whether the optional object `field` is there (true: its properties are the slots), not
    /// (absent or null: false), or nil when of another JSON type.
    func propertyObject(_ field: RootField, _ plan: FastPlan) -> Bool? {
        guard has(field) else { return false }
        switch plan.fields[field.rawValue].kind {
        case .null: return false
        case .object: return propertyObjectField == field ? true : nil
        default: return nil
        }
    }

    @inline(__always)
    mutating func skipWhitespace() {
        while position < count {
            let c = record[position]
            if c == 32 || c == 9 || c == 10 || c == 13 { position += 1 } else { return }
        }
    }

    /// The root object, then nothing but whitespace.
    mutating func scanRecord(_ names: NameTable) -> Bool {
        skipWhitespace()
        guard position < count, record[position] == 123 else { return false }
        position += 1
        skipWhitespace()
        guard position < count, record[position] != 125 else { return false }  // {} has no type
        while true {
            guard let key = key() else { return false }
            if let field = RootField.of(record + key.lowerBound, key.count) {
                let bit = UInt32(1) << UInt32(field.rawValue)
                guard fieldsSeen & bit == 0 else { return false }
                fieldsSeen |= bit
                if field.isPropertyObject && position < count && record[position] == 123 {
                    guard propertyObjectField == nil, scanProperties(names) else { return false }
                    propertyObjectField = field
                    fields[field.rawValue].kind = .object
                } else {
                    guard value(&fields[field.rawValue], depth: 1) else { return false }
                }
            } else {
                var ignored = ScannedValue()
                guard value(&ignored, depth: 1) else { return false }
            }
            guard let more = next(close: 125) else { return false }
            if !more { break }
        }
        skipWhitespace()
        return position == count
    }

    /// A key and its colon; the key's byte range. At the key's opening quote (after whitespace).
    @inline(__always)
    private mutating func key() -> Range<Int>? {
        skipWhitespace()
        guard position < count, record[position] == 34 else { return nil }
        position += 1
        let start = position
        guard string() else { return nil }
        let end = position - 1
        skipWhitespace()
        guard position < count, record[position] == 58 else { return nil }
        position += 1
        skipWhitespace()
        return start..<end
    }

    /// After a member or element: true at a comma (another follows), false at `close` (the
    /// end), nil otherwise.
    @inline(__always)
    private mutating func next(close: UInt8) -> Bool? {
        skipWhitespace()
        guard position < count else { return nil }
        let c = record[position]
        position += 1
        if c == 44 { return true }
        if c == close { return false }
        return nil
    }

    /// The property object (at its `{`): the values of the names in `names` go to their slots.
    private mutating func scanProperties(_ names: NameTable) -> Bool {
        position += 1
        skipWhitespace()
        if position < count && record[position] == 125 { position += 1; return true }
        while true {
            guard let key = key() else { return false }
            if let slot = names.index(record + key.lowerBound, key.count) {
                let bit = UInt64(1) << UInt64(slot)
                guard slotsSeen & bit == 0, value(&slots[slot], depth: 2) else { return false }
                slotsSeen |= bit
                if slots[slot].kind == .number && !slots[slot].isSmallInt { return false }
            } else {
                var ignored = ScannedValue()
                guard value(&ignored, depth: 2) else { return false }
            }
            guard let more = next(close: 125) else { return false }
            if !more { return true }
        }
    }

    /// Any JSON value (at its first byte), into `v`; objects and arrays are validated and
    /// skipped. `depth`: of the value's container.
    private mutating func value(_ v: inout ScannedValue, depth: Int) -> Bool {
        guard position < count else { return false }
        switch record[position] {
        case 34:
            position += 1
            let start = position
            guard string() else { return false }
            v.kind = .string
            v.start = Int32(start)
            v.end = Int32(position - 1)
            return true
        case 45, 48...57:
            return number(&v)
        case 116:
            guard literal("true") else { return false }
            v.kind = .bool
            v.bool = true
            return true
        case 102:
            guard literal("false") else { return false }
            v.kind = .bool
            v.bool = false
            return true
        case 110:
            guard literal("null") else { return false }
            v.kind = .null
            return true
        case 123:
            guard depth < 32 else { return false }
            position += 1
            skipWhitespace()
            if position < count && record[position] == 125 {
                position += 1
            } else {
                var ignored = ScannedValue()
                while true {
                    guard key() != nil, value(&ignored, depth: depth + 1), let more = next(close: 125) else { return false }
                    if !more { break }
                }
            }
            v.kind = .object
            return true
        case 91:
            guard depth < 32 else { return false }
            position += 1
            skipWhitespace()
            if position < count && record[position] == 93 {
                position += 1
            } else {
                var ignored = ScannedValue()
                while true {
                    skipWhitespace()
                    guard value(&ignored, depth: depth + 1), let more = next(close: 93) else { return false }
                    if !more { break }
                }
            }
            v.kind = .array
            return true
        default:
            return false
        }
    }

    /// After a string's opening quote: moves past its closing quote. Not sure about an escape,
    /// a control byte or a byte outside ASCII.
    @inline(__always)
    private mutating func string() -> Bool {
        while position &+ 8 <= count {
            let word = UnsafeRawPointer(record + position).loadUnaligned(as: UInt64.self)
            if JSONTape.hasSpecialByte(word) { break }
            position &+= 8
        }
        while position < count {
            let c = record[position]
            position += 1
            if c == 34 { return true }
            if c == 92 || c < 0x20 || c >= 0x80 { return false }
        }
        return false
    }

    private mutating func literal(_ word: StaticString) -> Bool {
        let length = word.utf8CodeUnitCount
        guard position + length <= count, memcmp(record + position, word.utf8Start, length) == 0 else { return false }
        position += length
        return true
    }

    /// A JSON number (at its `-` or first digit), with its value when it is a small integer.
    private mutating func number(_ v: inout ScannedValue) -> Bool {
        let negative = record[position] == 45
        if negative { position += 1 }
        guard position < count else { return false }
        var value: Int64 = 0
        var digits = 0
        let first = record[position]
        if first == 48 {
            position += 1
            digits = 1
        } else if first >= 49 && first <= 57 {
            while position < count, case let d = record[position] &- 48, d < 10 {
                if digits < 18 { value = value &* 10 &+ Int64(d) }
                digits += 1
                position += 1
            }
        } else {
            return false
        }
        var integral = digits <= 18
        if position < count && record[position] == 46 {
            integral = false
            position += 1
            guard skipDigits() else { return false }
        }
        if position < count && (record[position] == 101 || record[position] == 69) {
            integral = false
            position += 1
            if position < count && (record[position] == 43 || record[position] == 45) { position += 1 }
            guard skipDigits() else { return false }
        }
        v.kind = .number
        v.isSmallInt = integral
        v.int = negative ? -value : value
        return true
    }

    /// One or more digits.
    private mutating func skipDigits() -> Bool {
        let start = position
        while position < count, record[position] &- 48 < 10 { position += 1 }
        return position > start
    }
}

/// Byte strings to their indices: open addressing over a hash of the length and three bytes,
/// every hit confirmed byte for byte. For the few dozen names of a model (property names,
/// event types, track event names), built once.
struct NameTable {
    private var table: [Int32]
    private let mask: Int
    private var bytes: [UInt8] = []
    private var offsets: [Int] = [0]

    /// A name given twice keeps its first index.
    init(_ names: [[UInt8]]) {
        var size = 16
        while size < names.count * 4 { size <<= 1 }
        table = Array(repeating: -1, count: size)
        mask = size - 1
        for (i, name) in names.enumerated() {
            bytes.append(contentsOf: name)
            offsets.append(bytes.count)
            let found = name.withUnsafeBufferPointer { index($0) }
            if found != nil { continue }
            var slot = name.withUnsafeBufferPointer { NameTable.hash($0.baseAddress, $0.count) } & mask
            while table[slot] >= 0 { slot = (slot + 1) & mask }
            table[slot] = Int32(i)
        }
    }

    @inline(__always)
    private static func hash(_ p: UnsafePointer<UInt8>?, _ n: Int) -> Int {
        guard let p, n > 0 else { return 0 }
        var h = UInt(n) &* 0x9E37_79B9
        h = (h ^ UInt(p[0])) &* 0x85EB_CA6B
        h = (h ^ UInt(p[n - 1])) &* 0xC2B2_AE35
        h = (h ^ UInt(p[n >> 1])) &* 0x27D4_EB2F
        return Int(truncatingIfNeeded: h ^ (h >> 15))
    }

    /// The index of the name `p[0..<n]`, or nil.
    @inline(__always)
    func index(_ p: UnsafePointer<UInt8>, _ n: Int) -> Int? {
        var slot = NameTable.hash(p, n) & mask
        while true {
            let i = Int(table[slot])
            if i < 0 { return nil }
            let start = offsets[i]
            if offsets[i + 1] - start == n && bytes.withUnsafeBufferPointer({ n == 0 || memcmp($0.baseAddress! + start, p, n) == 0 }) {
                return i
            }
            slot = (slot + 1) & mask
        }
    }

    func index(_ b: UnsafeBufferPointer<UInt8>) -> Int? {
        guard let p = b.baseAddress else { return b.isEmpty ? emptyIndex : nil }
        return index(p, b.count)
    }

    /// The index of the string value `v` of the record at `record`.
    func index(_ record: UnsafePointer<UInt8>, _ v: ScannedValue) -> Int? {
        index(record + Int(v.start), Int(v.end - v.start))
    }

    private var emptyIndex: Int? {
        var i = 0
        while i + 1 < offsets.count { if offsets[i + 1] == offsets[i] { return i }; i += 1 }
        return nil
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

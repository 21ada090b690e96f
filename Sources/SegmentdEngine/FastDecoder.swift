/// The decoder's fast path: one pass over the record, schema-directed.
///
/// The keys of the root object and of its property object (`props`, `properties` or
/// `traits`) are read once each and dispatched at once: most by two word compares against
/// the keys that followed the previous key in earlier records (`KeyPredictions`: a stream
/// repeats its key orders), the others through `NameTable`s (a hash of the length and first
/// word, confirmed by word compares): the root keys both shapes use, and the property names
/// the model and the Segment mapping read. Values are read in place (strings
/// stay ranges of the record), everything else is validated and skipped. Nothing is
/// allocated or reference-counted; the filter mask is the type's table entry for the outcome
/// of the few property tests the type's filters make (`FilterProgram`), and only the
/// properties the type's filters and attributes read are looked at.
///
/// The fast path is exact by construction: it decodes a record only when every check the
/// generic path makes is known to pass, and otherwise returns nil ("not sure") so that the
/// generic path decides. It is not sure about: a backslash escape or a byte outside ASCII in
/// any string, a known key given twice, nesting deeper than 32, a number it would have to
/// convert (a fraction, an exponent, more than 18 digits) where it reads one, more than one
/// property object, and every record the generic path would refuse or that has an unknown
/// type. Those are rare in real streams; all are tested against the generic path
/// (`DecoderDifferentialTests`, the `records` fuzz target).
extension EventDecoder {
    /// The fast path: the record's result, or nil when the generic path must decide. Inlined
    /// with `decodeFastNative` into `decode`: the result (about 180 bytes) is then built where
    /// the caller reads it instead of being copied (memcpy) on every return.
    @inline(__always)
    public mutating func decodeFast(_ bytes: UnsafeBufferPointer<UInt8>) -> DecodeResult? {
        // The plan is read in place (`fastPlan.…`): a copy of it, or one passed on, is a memcpy.
        guard fastPlan.enabled, let base = bytes.baseAddress, bytes.count <= maxRecordBytes, bytes.count < Int(Int32.max) else { return nil }
        var scan = RecordScan(record: base, count: bytes.count, fields: fastPlan.fields, slots: fastPlan.slots)
        guard scan.scanRecord(fastPlan.rootNames, fastPlan.names, fastPlan.rootKeys, fastPlan.propertyKeys) else { return nil }
        let typeField = fastPlan.fields[RootField.type.rawValue]
        guard scan.has(.type), typeField.kind == .string, let typeIndex = typeNames.index(base, bytes.count, typeField) else { return nil }
        startRecord(bytes.count)
        if typeIndex < eventTypeCount {
            return decodeFastNative(UInt8(typeIndex), scan, bytes)
        }
        return decodeFastSegment(SegmentCall(rawValue: typeIndex - eventTypeCount)!, scan, bytes)
    }

    public mutating func decodeFast(_ bytes: [UInt8]) -> DecodeResult? {
        bytes.withUnsafeBufferPointer { decodeFast($0) }
    }

    @inline(__always)
    private mutating func decodeFastNative(_ type: UInt8, _ scan: RecordScan, _ record: UnsafeBufferPointer<UInt8>) -> DecodeResult? {
        guard scan.has(.contactId), let contact = fastContactId(fastPlan.fields[RootField.contactId.rawValue], record) else { return nil }
        guard scan.has(.ts), let ts = EventDecoder.fastTime(fastPlan.fields[RootField.ts.rawValue], record) else { return nil }
        var eventId: UnsafeBufferPointer<UInt8>? = nil
        guard fastEventId(scan, .eventId, record, into: &eventId) else { return nil }
        guard let haveProps = scan.propertyObject(.props) else { return nil }
        // Only the keys this type's filters and attributes read: the others are not looked at.
        var k = Int(fastPlan.keysReadStart[Int(type)])
        let end = Int(fastPlan.keysReadStart[Int(type) &+ 1])
        while k < end {
            let key = Int(fastPlan.keysRead[k])
            props[key] = haveProps ? scan.prop(key) : Prop()
            k += 1
        }
        if type == CanonicalTypes.crmStage {
            guard haveProps, scan.prop(fastPlan.stage).kind == .string else { return nil }
        }
        // A declared property of the wrong kind: the generic path words the reason.
        if Int(type) >= CanonicalTypes.all.count, checkDeclaredProps(type) != nil { return nil }
        return .events(makeEvent(contact, eventId, type, ts, propBytes: record), nil, .native)
    }

    private mutating func decodeFastSegment(_ call: SegmentCall, _ scan: RecordScan, _ record: UnsafeBufferPointer<UInt8>) -> DecodeResult? {
        let userId = fastPlan.fields[RootField.userId.rawValue]
        if !scan.has(.userId) || userId.kind == .null || (userId.kind == .string && userId.start == userId.end) {
            return .ignored(.anonymous)
        }
        guard let contact = fastContactId(userId, record) else { return nil }
        guard scan.has(.timestamp), let ts = EventDecoder.fastTime(fastPlan.fields[RootField.timestamp.rawValue], record) else { return nil }
        var eventId: UnsafeBufferPointer<UInt8>? = nil
        guard fastEventId(scan, .messageId, record, into: &eventId) else { return nil }
        guard let haveObject = scan.propertyObject(call == .identify ? .traits : .properties) else { return nil }
        for k in 0..<propKeyCount { props[k] = Prop() }
        switch call {
        case .screen, .group, .alias:
            return .ignored(.unsupportedCall)
        case .track:
            let event = fastPlan.fields[RootField.event.rawValue]
            guard scan.has(.event), event.kind == .string else { return nil }
            guard let track = trackNames.index(record.baseAddress!, record.count, event) else { return .ignored(.unmappedTrackEvent) }
            if haveObject {
                var k = Int(fastPlan.trackProps[track])
                while k < Int(fastPlan.trackProps[track + 1]) {
                    let target = fastPlan.trackTargets[k]
                    var source = Int(fastPlan.trackSourceStart[k])
                    while source < Int(fastPlan.trackSourceStart[k + 1]) {
                        let value = scan.prop(Int(fastPlan.trackSources[source]))
                        if value.kind != .absent && value.kind != .null {
                            props[Int(target)] = value
                            break
                        }
                        source += 1
                    }
                    k += 1
                }
            }
            if let e = checkDeclaredProps(tracks[track].type) { return .bad(e) }
            return .events(makeEvent(contact, eventId, tracks[track].type, ts, propBytes: record), nil, .segment)
        case .page:
            if let pathKey, haveObject {
                let path = scan.prop(fastPlan.path)
                if path.kind == .string && path.end > path.start {
                    props[pathKey] = path
                } else {
                    let url = scan.prop(fastPlan.url)
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
                stage = scan.prop(fastPlan.lifecycleStage)
                if stage.kind != .absent && stage.kind != .string { return nil }
                if let industryKey { props[industryKey] = scan.prop(fastPlan.industry) }
                if let countryKey { props[countryKey] = scan.prop(fastPlan.country) }
                if let companySizeKey {
                    let companySize = scan.prop(fastPlan.companySize)
                    props[companySizeKey] = companySize.kind != .absent && companySize.kind != .null ? companySize : scan.prop(fastPlan.employees)
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
        return keep(field.bytes(of: record))
    }

    /// An optional event id into `id` (absent, null or a string; empty means none), kept in
    /// the arena; false when of another JSON type.
    private mutating func fastEventId(_ scan: RecordScan, _ field: RootField, _ record: UnsafeBufferPointer<UInt8>,
                                      into id: inout UnsafeBufferPointer<UInt8>?) -> Bool {
        guard scan.has(field) else { return true }
        let value = fastPlan.fields[field.rawValue]
        switch value.kind {
        case .null: return true
        case .string:
            if value.end > value.start { id = keep(value.bytes(of: record)) }
            return true
        default: return false
        }
    }

    /// A time the generic path accepts without converting a double: an RFC 3339 string or
    /// an integer of epoch milliseconds, in range.
    private static func fastTime(_ field: ScannedValue, _ record: UnsafeBufferPointer<UInt8>) -> Millis? {
        switch field.kind {
        case .string:
            guard let t = EventTime.parseRFC3339(field.bytes(of: record)),
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

    static let names = ["type", "contact_id", "ts", "event_id", "props", "userId", "timestamp", "messageId", "properties", "traits", "event"]

    /// Bit `rawValue` set for the keys of a property object.
    static let propertyObjects: UInt32 = 1 << 4 | 1 << 8 | 1 << 9
}

/// A key the scan learned, to recognise it next time with two word compares: its bytes from
/// the opening quote through the colon (`"name":`, at most 16 bytes, as it appeared in a
/// record), and what it is (a root field or property slot, -1 for a name not recorded).
struct LearnedKey {
    var first: UInt64 = 0
    var second: UInt64 = 0
    var firstMask: UInt64 = 0
    var secondMask: UInt64 = 0
    /// Bytes through the colon; 0: nothing learned.
    var length = 0
    var index = -1
}

/// The keys seen after each key of one object level: for state s (a key's index, or `states
/// - 2` at the object's start, `states - 1` after a key not recorded), the `ways` keys that
/// last followed it, newest first (`keys[ways * s ..< ways * (s + 1)]`). Records of one stream repeat
/// their key order, so most keys are recognised by comparing words with the prediction
/// instead of scanning the key and looking it up; any other key is read the long way and
/// learned. A prediction only names bytes: it matches exactly when the record has them.
struct KeyPredictions {
    let keys: UnsafeMutablePointer<LearnedKey>
    /// Known names plus the start and "not recorded" states.
    let states: Int

    /// Four: a stream mixing both shapes and several Segment calls has up to three keys
    /// after `type`, and a property object's first key depends on the event type.
    static let ways = 4

    init(names: Int) {
        states = names + 2
        keys = .allocate(capacity: KeyPredictions.ways * states)
        keys.initialize(repeating: LearnedKey(), count: KeyPredictions.ways * states)
    }

    var start: Int { @inline(__always) get { states &- 2 } }
    var unrecorded: Int { @inline(__always) get { states &- 1 } }

    func deallocate() { keys.deallocate() }
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

    /// A string's bytes in `record`, the record it was scanned from (the scan keeps `start`
    /// and `end` within it: no slice and its bounds checks).
    @inline(__always)
    func bytes(of record: UnsafeBufferPointer<UInt8>) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(start: record.baseAddress! + Int(start), count: Int(end &- start))
    }
}

/// What the fast path precomputes from the model: the property names it records (the model's
/// property keys first, so slot k is key k, then the names the Segment mapping reads) and the
/// slots of the names it needs by name, and the memory the scan writes into.
struct FastPlan {
    let rootNames: NameTable
    let names: NameTable
    let stage: Int, path: Int, url: Int, lifecycleStage: Int, industry: Int, country: Int, companySize: Int, employees: Int
    /// Track mapping t's properties are `trackProps[t] ..< trackProps[t + 1]`: property k goes
    /// to key `trackTargets[k]` from the first present non-null of the slots
    /// `trackSources[trackSourceStart[k] ..< trackSourceStart[k + 1]]`.
    let trackProps: UnsafeMutablePointer<Int32>
    let trackTargets: UnsafeMutablePointer<Int32>
    let trackSourceStart: UnsafeMutablePointer<Int32>
    let trackSources: UnsafeMutablePointer<Int32>
    /// Per canonical type t, the property keys its filters and attributes read:
    /// `keysRead[keysReadStart[t] ..< keysReadStart[t + 1]]` (all keys for a type whose filters
    /// have no mask table).
    let keysReadStart: UnsafeMutablePointer<Int32>
    let keysRead: UnsafeMutablePointer<Int32>
    /// The root fields' values (by `RootField`) and the property slots' values of the record
    /// being scanned.
    let fields: UnsafeMutablePointer<ScannedValue>
    let slots: UnsafeMutablePointer<ScannedValue>
    /// The key orders last seen in the root object and in the property object.
    let rootKeys: KeyPredictions
    let propertyKeys: KeyPredictions
    /// False when there are more than 64 names to record (the scan keeps one bit per name):
    /// then every record takes the generic path.
    let enabled: Bool

    /// All in plain memory (a plan is read on every record: arrays or a class would be
    /// reference-counted), freed by `deallocate()`, which `DecodeStorage` calls.
    init(model: Model, tracks: [EventDecoder.CompiledTrack], keysReadStart: [Int32], keysRead: [Int32]) {
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
        enabled = names.count <= 64
        func copy(_ values: [Int32]) -> UnsafeMutablePointer<Int32> {
            let memory = UnsafeMutablePointer<Int32>.allocate(capacity: max(values.count, 1))
            memory.initialize(from: values, count: values.count)
            return memory
        }
        self.trackProps = copy(trackProps)
        trackTargets = copy(targets)
        trackSourceStart = copy(sourceStart)
        trackSources = copy(sources)
        self.keysReadStart = copy(keysReadStart)
        self.keysRead = copy(keysRead)
        rootNames = NameTable(RootField.names.map { Array($0.utf8) })
        self.names = NameTable(names)
        fields = .allocate(capacity: RootField.count + names.count)
        fields.initialize(repeating: ScannedValue(), count: RootField.count + names.count)
        slots = fields + RootField.count
        rootKeys = KeyPredictions(names: RootField.count)
        propertyKeys = KeyPredictions(names: names.count)
    }

    func deallocate() {
        rootNames.deallocate()
        names.deallocate()
        trackProps.deallocate()
        trackTargets.deallocate()
        trackSourceStart.deallocate()
        trackSources.deallocate()
        keysReadStart.deallocate()
        keysRead.deallocate()
        fields.deallocate()
        rootKeys.deallocate()
        propertyKeys.deallocate()
    }
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

    @inline(__always)
    func has(_ field: RootField) -> Bool { fieldsSeen & (1 &<< UInt32(field.rawValue)) != 0 }

    /// Property slot `slot` as the generic path's property value: absent when not seen.
    func prop(_ slot: Int) -> Prop {
        var p = Prop()
        guard slotsSeen & (1 &<< UInt64(slot)) != 0 else { return p }
        let scanned = slots[slot]
        switch scanned.kind {
        case .null: p.kind = .null
        case .bool: p.kind = .bool; p.bool = scanned.bool
        case .number: p.kind = .int; p.int = scanned.int  // `scanProperties` took only small integers
        case .string: p.kind = .string; p.start = scanned.start; p.end = scanned.end
        case .object, .array: p.kind = .composite
        }
        return p
    }

    /// Whether the optional object `field` is there (true: its properties are the slots), not
    /// (absent or null: false), or nil when of another JSON type.
    func propertyObject(_ field: RootField) -> Bool? {
        guard has(field) else { return false }
        switch fields[field.rawValue].kind {
        case .null: return false
        case .object: return propertyObjectField == field ? true : nil
        default: return nil
        }
    }

    @inline(__always)
    mutating func skipWhitespace() {
        while position < count {
            let c = record[position]
            if c > 32 { return }
            if c == 32 || c == 9 || c == 10 || c == 13 { position += 1 } else { return }
        }
    }

    /// The key at `position` when it is one of the two `predictions` for `state`: moves past
    /// it, its colon and the whitespace after, and gives its index (-1: a name not recorded).
    /// Nil when neither matches (or fewer than 16 bytes are left): then `key()` reads it.
    @inline(__always)
    mutating func predictedKey(_ predictions: KeyPredictions, _ state: Int) -> Int? {
        guard position &+ 16 <= count else { return nil }
        let raw = UnsafeRawPointer(record + position)
        let first = UInt64(littleEndian: raw.loadUnaligned(as: UInt64.self))
        let second = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        let ways = predictions.keys + (state &* KeyPredictions.ways)
        var way = 0
        while way < KeyPredictions.ways {
            let learned = ways[way]
            // An empty way has length 0 and masks 0: it would match anything.
            if learned.length != 0 && first & learned.firstMask == learned.first && second & learned.secondMask == learned.second {
                // Moved one way up: the keys that follow most often end in the first ways.
                if way > 0 {
                    ways[way] = ways[way &- 1]
                    ways[way &- 1] = learned
                }
                position &+= learned.length
                if position < count && record[position] <= 32 { skipWhitespace() }
                return learned.index
            }
            way &+= 1
        }
        return nil
    }

    /// Learns the key just read by `key()` (its name's bytes `name`) as the newest prediction
    /// for `state` (the oldest is forgotten), when it is written `"name":` in at most 16 bytes with 16 bytes readable.
    @inline(never)
    func learnKey(_ predictions: KeyPredictions, _ state: Int, _ name: Range<Int>, index: Int) {
        let start = name.lowerBound &- 1, length = name.count &+ 3
        guard length <= 16, start &+ 16 <= count, record[name.upperBound &+ 1] == 58 else { return }
        let raw = UnsafeRawPointer(record + start)
        let firstMask: UInt64 = length >= 8 ? ~0 : (1 &<< UInt64(length &* 8)) &- 1
        let secondMask: UInt64 = length >= 16 ? ~0 : length <= 8 ? 0 : (1 &<< UInt64((length &- 8) &* 8)) &- 1
        let ways = predictions.keys + (state &* KeyPredictions.ways)
        var way = KeyPredictions.ways &- 1
        while way > 0 { ways[way] = ways[way &- 1]; way &-= 1 }
        ways.pointee = LearnedKey(first: UInt64(littleEndian: raw.loadUnaligned(as: UInt64.self)) & firstMask,
                                   second: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self)) & secondMask,
                                   firstMask: firstMask, secondMask: secondMask, length: length, index: index)
    }

    /// The record's bytes `i ..< i + 8` as a little-endian word, zero past the record's end:
    /// one load wherever the record has eight bytes (near its end, its last eight, shifted).
    @inline(__always)
    func word(at i: Int) -> UInt64 {
        if i &+ 8 <= count { return UInt64(littleEndian: UnsafeRawPointer(record + i).loadUnaligned(as: UInt64.self)) }
        if count >= 8 {
            let last = UInt64(littleEndian: UnsafeRawPointer(record + (count &- 8)).loadUnaligned(as: UInt64.self))
            return last >> UInt64((i &+ 8 &- count) &* 8)
        }
        return NameTable.word(record + i, count &- i, readable: count &- i)
    }

    /// The root object, then nothing but whitespace.
    @inline(__always)
    mutating func scanRecord(_ rootNames: NameTable, _ names: NameTable, _ rootKeys: KeyPredictions, _ propertyKeys: KeyPredictions) -> Bool {
        skipWhitespace()
        guard position < count, record[position] == 123 else { return false }
        position += 1
        skipWhitespace()
        guard position < count, record[position] != 125 else { return false }  // {} has no type
        var state = rootKeys.start
        while true {
            var index: Int
            if let predicted = predictedKey(rootKeys, state) {
                index = predicted
            } else {
                guard let key = key() else { return false }
                index = rootNames.index(record + key.lowerBound, key.count, readable: count - key.lowerBound) ?? -1
                learnKey(rootKeys, state, key, index: index)
            }
            if index >= 0 {
                state = index
                let bit = UInt32(1) &<< UInt32(index)
                guard fieldsSeen & bit == 0 else { return false }
                fieldsSeen |= bit
                if RootField.propertyObjects & bit != 0 && position < count && record[position] == 123 {
                    guard propertyObjectField == nil, scanProperties(names, propertyKeys) else { return false }
                    propertyObjectField = RootField(rawValue: index)
                    fields[index].kind = .object
                } else {
                    guard value(&fields[index], depth: 1) else { return false }
                }
            } else {
                state = rootKeys.unrecorded
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
        if position < count {
            let c = record[position]
            if c == 44 { position += 1; return true }
            if c == close { position += 1; return false }
        }
        skipWhitespace()
        guard position < count else { return nil }
        let c = record[position]
        position += 1
        if c == 44 { return true }
        if c == close { return false }
        return nil
    }

    /// The property object (at its `{`): the values of the names in `names` go to their slots.
    @inline(__always)
    private mutating func scanProperties(_ names: NameTable, _ predictions: KeyPredictions) -> Bool {
        position += 1
        skipWhitespace()
        if position < count && record[position] == 125 { position += 1; return true }
        var state = predictions.start
        while true {
            var slot: Int
            if let predicted = predictedKey(predictions, state) {
                slot = predicted
            } else {
                guard let key = key() else { return false }
                slot = names.index(record + key.lowerBound, key.count, readable: count - key.lowerBound) ?? -1
                learnKey(predictions, state, key, index: slot)
            }
            state = slot >= 0 ? slot : predictions.unrecorded
            if slot >= 0 {
                let bit = UInt64(1) &<< UInt64(slot)
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

    /// Any JSON value (at its first byte) into `found`: scalars are read in place, objects and
    /// arrays validated and skipped (`skipComposite`). `depth`: of the value's container.
    /// Strings, most values, are read here; numbers from a digit (`numberValue`) and the others
    /// out of line (`otherValue`).
    @inline(__always)
    private mutating func value(_ found: inout ScannedValue, depth: Int) -> Bool {
        guard position < count else { return false }
        let first = record[position]
        if first == 34 { return stringValue(&found) }
        if first &- 48 < 10 { return numberValue(&found) }
        return otherValue(&found, depth: depth)
    }

    /// A number (at its first digit) into `found`, out of line: `number` inlined into every
    /// `value` would crowd out the rest of the record's path.
    @inline(never)
    private mutating func numberValue(_ found: inout ScannedValue) -> Bool {
        number(&found)
    }

    /// A string (at its opening quote) into `found`.
    @inline(__always)
    private mutating func stringValue(_ found: inout ScannedValue) -> Bool {
        position += 1
        let start = position
        guard string() else { return false }
        found.kind = .string
        // `decodeFast` takes records of fewer than 2^31 bytes only.
        found.start = Int32(truncatingIfNeeded: start)
        found.end = Int32(truncatingIfNeeded: position &- 1)
        return true
    }

    @inline(never)
    private mutating func otherValue(_ found: inout ScannedValue, depth: Int) -> Bool {
        let c = record[position]
        if c == 123 || c == 91 {
            guard skipComposite(depth: depth) else { return false }
            found.kind = c == 123 ? .object : .array
            return true
        }
        return scalar(&found)
    }

    /// A string, number, `true`, `false` or `null` (at its first byte) into `found`.
    @inline(__always)
    private mutating func scalar(_ found: inout ScannedValue) -> Bool {
        switch record[position] {
        case 34:
            return stringValue(&found)
        case 45, 48...57:
            return number(&found)
        case 116:
            guard literal(0x6575_7274, length: 4) else { return false }
            found.kind = .bool
            found.bool = true
            return true
        case 102:
            guard literal(0x736C_6166, length: 5) else { return false }
            found.kind = .bool
            found.bool = false
            return true
        case 110:
            guard literal(0x6C6C_756E, length: 4) else { return false }
            found.kind = .null
            return true
        default:
            return false
        }
    }

    /// An object or an array (at its `{` or `[`), validated and skipped. Not sure deeper than
    /// 32 (the generic path allows 64).
    @inline(never)
    private mutating func skipComposite(depth: Int) -> Bool {
        guard depth < 32 else { return false }
        let isObject = record[position] == 123
        let close: UInt8 = isObject ? 125 : 93
        position += 1
        skipWhitespace()
        if position < count && record[position] == close {
            position += 1
            return true
        }
        var ignored = ScannedValue()
        while true {
            if isObject {
                guard key() != nil else { return false }
            } else {
                skipWhitespace()
            }
            guard position < count else { return false }
            let c = record[position]
            if c == 123 || c == 91 {
                guard skipComposite(depth: depth + 1) else { return false }
            } else {
                guard scalar(&ignored) else { return false }
            }
            guard let more = next(close: close) else { return false }
            if !more { return true }
        }
    }

    /// After a string's opening quote: moves past its closing quote. Not sure about an escape,
    /// a control byte or a byte outside ASCII.
    @inline(__always)
    private mutating func string() -> Bool {
        while position &+ 8 <= count {
            let special = JSONTape.specialBytes(UInt64(littleEndian: UnsafeRawPointer(record + position).loadUnaligned(as: UInt64.self)))
            if special != 0 {
                // The lowest flag marks the first special byte exactly.
                position &+= special.trailingZeroBitCount &>> 3
                let c = record[position]
                position += 1
                return c == 34
            }
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

    @inline(__always)
    /// `true` (0x6575_7274: its four bytes as a little-endian word), `null` (0x6C6C_756E) or
    /// `false` (0x736C_6166, "fals", then an "e"): one word compare, no call to memcmp.
    private mutating func literal(_ firstFour: UInt32, length: Int) -> Bool {
        guard position &+ length <= count,
              UInt32(littleEndian: UnsafeRawPointer(record + position).loadUnaligned(as: UInt32.self)) == firstFour,
              length == 4 || record[position &+ 4] == 101 else { return false }
        position &+= length
        return true
    }

    /// A JSON number (at its `-` or first digit), with its value when it is a small integer.
    @inline(__always)
    private mutating func number(_ found: inout ScannedValue) -> Bool {
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
            // Eight digits at a time; beyond 18 the value is not used (it wraps harmlessly).
            var i = position
            while true {
                let chunk = word(at: i)
                let run = DecimalDigits.leadingDigits(chunk)
                if run == 8 {
                    value = value &* 100_000_000 &+ Int64(DecimalDigits.value(ofEight: chunk))
                } else {
                    if run > 0 {
                        let scale = RecordScan.powerOfTen(run)
                        // The run's digits moved to the top, '0's below them: the same value.
                        let aligned = (chunk << UInt64((8 &- run) &* 8)) | (0x3030_3030_3030_3030 >> UInt64(run &* 8))
                        value = value &* scale &+ Int64(DecimalDigits.value(ofEight: aligned))
                    }
                    digits &+= run
                    i &+= run
                    break
                }
                digits &+= 8
                i &+= 8
            }
            position = i
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
        found.kind = .number
        found.isSmallInt = integral
        found.int = negative ? 0 &- value : value  // wrapped beyond 18 digits, then not used
        return true
    }

    /// 10^n for n from 1 to 7 (a lookup, not a loop).
    @inline(__always)
    static func powerOfTen(_ n: Int) -> Int64 {
        switch n {
        case 1: return 10
        case 2: return 100
        case 3: return 1_000
        case 4: return 10_000
        case 5: return 100_000
        case 6: return 1_000_000
        default: return 10_000_000
        }
    }

    /// One or more digits.
    @inline(__always)
    private mutating func skipDigits() -> Bool {
        let start = position
        while position < count, record[position] &- 48 < 10 { position += 1 }
        return position > start
    }
}

/// Byte strings to their indices, for the few dozen names of a model (root keys, property
/// names, event types, track event names), built once: open addressing over a hash of the
/// length and first eight bytes, a hit confirmed by comparing words (bytes past the 16th with
/// memcmp).
struct NameTable {
    struct Entry {
        var index: Int32 = -1
        var length: Int32 = 0
        /// The name's bytes 0..<8 and 8..<16, little-endian, zero past its end.
        var first: UInt64 = 0
        var second: UInt64 = 0
    }
    /// Plain memory, not arrays: a table is read on every record, and reading an array held
    /// by a class or by a decoder being mutated retains and releases it. Freed by
    /// `deallocate()`, which the table's owner calls (`FastPlan`, `DecodeStorage`).
    private let entries: UnsafeMutablePointer<Entry>
    private let mask: Int
    /// Every name's bytes, back to back (`offsets[i] ..< offsets[i + 1]`), for the tails of
    /// names longer than 16 bytes.
    private let bytes: UnsafeMutablePointer<UInt8>
    private let offsets: UnsafeMutablePointer<Int>

    /// A name given twice keeps its first index.
    init(_ names: [[UInt8]]) {
        var size = 16
        while size < names.count * 4 { size <<= 1 }
        entries = .allocate(capacity: size)
        entries.initialize(repeating: Entry(), count: size)
        mask = size - 1
        let all = names.flatMap { $0 }
        bytes = .allocate(capacity: max(all.count, 1))
        bytes.initialize(from: all, count: all.count)
        offsets = .allocate(capacity: names.count + 1)
        offsets[0] = 0
        for (i, name) in names.enumerated() { offsets[i + 1] = offsets[i] + name.count }
        for (i, name) in names.enumerated() {
            let known = name.withUnsafeBufferPointer { index($0) }
            if known != nil { continue }
            let entry = name.withUnsafeBufferPointer { b -> Entry in
                guard let p = b.baseAddress else { return Entry(index: Int32(i)) }
                return Entry(index: Int32(i), length: Int32(b.count), first: NameTable.word(p, b.count, readable: b.count),
                             second: b.count > 8 ? NameTable.word(p + 8, b.count - 8, readable: b.count - 8) : 0)
            }
            var slot = NameTable.hash(entry.first, length: name.count) & mask
            while entries[slot].index >= 0 { slot = (slot + 1) & mask }
            entries[slot] = entry
        }
    }

    func deallocate() {
        entries.deallocate()
        bytes.deallocate()
        offsets.deallocate()
    }

    /// Bytes `p[0 ..< min(n, 8)]` as a little-endian word, zero above; one load when eight
    /// bytes from `p` are `readable`.
    @inline(__always)
    static func word(_ p: UnsafePointer<UInt8>, _ n: Int, readable: Int) -> UInt64 {
        if readable >= 8 {
            let loaded = UInt64(littleEndian: UnsafeRawPointer(p).loadUnaligned(as: UInt64.self))
            return n >= 8 ? loaded : loaded & ((1 &<< UInt64(n &* 8)) &- 1)
        }
        var assembled: UInt64 = 0
        var i = 0
        while i < min(n, 8) { assembled |= UInt64(p[i]) &<< UInt64(i &* 8); i += 1 }
        return assembled
    }

    @inline(__always)
    private static func hash(_ first: UInt64, length: Int) -> Int {
        let mixed = (first ^ UInt64(truncatingIfNeeded: length) &* 0x9E37_79B9) &* 0xBF58_476D_1CE4_E5B9
        return Int(truncatingIfNeeded: mixed >> 40)
    }

    /// The index of the name `p[0..<n]`, or nil; `readable` bytes from `p` may be read.
    @inline(__always)
    func index(_ p: UnsafePointer<UInt8>, _ n: Int, readable: Int) -> Int? {
        let first = NameTable.word(p, n, readable: readable)
        var slot = NameTable.hash(first, length: n) & mask
        while true {
            let entry = entries[slot]
            if entry.index < 0 { return nil }
            if Int(entry.length) == n && entry.first == first {
                if n <= 8 { return Int(entry.index) }
                if entry.second == NameTable.word(p + 8, n - 8, readable: readable - 8)
                    && (n <= 16 || memcmp(bytes + offsets[Int(entry.index)] + 16, p + 16, n - 16) == 0) {
                    return Int(entry.index)
                }
            }
            slot = (slot + 1) & mask
        }
    }

    func index(_ b: UnsafeBufferPointer<UInt8>) -> Int? {
        if let p = b.baseAddress { return index(p, b.count, readable: b.count) }
        // An empty name: its entry has no bytes to compare.
        var slot = 0
        while slot <= mask {
            if entries[slot].index >= 0 && entries[slot].length == 0 { return Int(entries[slot].index) }
            slot += 1
        }
        return nil
    }

    /// The index of the string value `string` of the record at `record` (`count` bytes).
    @inline(__always)
    func index(_ record: UnsafePointer<UInt8>, _ count: Int, _ string: ScannedValue) -> Int? {
        index(record + Int(string.start), Int(string.end - string.start), readable: count - Int(string.start))
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

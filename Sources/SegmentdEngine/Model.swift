import Yams

/// A model file that cannot be used, with where and why.
public struct ModelError: Error, CustomStringConvertible, Sendable {
    public var file: String
    public var line: Int
    public var column: Int
    public var message: String

    public var description: String { "\(file):\(line):\(column): \(message)" }
}

/// A test on one event property.
public enum PropTest: Sendable, Equatable {
    case equals(Literal)
    case startsWith(String)
    case contains(String)
    case oneOf([Literal])
    /// The property is a number (integer or not) at least / at most the bound. Integers are
    /// compared exactly (an integer `v` is at least `b` when `v >= ceil(b)`); numbers with a
    /// fraction or an exponent as IEEE doubles. Anything that is not a number does not match.
    case atLeast(Double)
    case atMost(Double)

    public enum Literal: Sendable, Equatable {
        case string(String), int(Int64), bool(Bool), null
    }
}

/// An event filter: which events a condition counts.
public indirect enum FilterExpr: Sendable {
    case types([UInt8])
    case prop(key: Int, test: PropTest)
    case all([FilterExpr])
    case any([FilterExpr])
    case not(FilterExpr)
    /// Another filter, by index (always one defined earlier).
    case ref(Int)
}

/// An event type the model declares beside the canonical ones (`types:` in the model file),
/// with the properties its records may carry and their kinds.
public struct DeclaredType: Sendable {
    public enum PropKind: String, Sendable, CaseIterable {
        /// An integer, or a number with a fraction or an exponent.
        case number
        case string
        case boolean
    }
    public var name: String
    /// (property name, its key index in `Model.propKeys`, its kind)
    public var props: [(name: String, key: Int, kind: PropKind)]
}

/// An attribute kept as "latest by ts" (stage, traits).
public struct AttributeSpec: Sendable {
    /// `date`: an RFC 3339 date-time or a `YYYY-MM-DD` date (midnight UTC) held as the instant
    /// it names, for conditions relative to it (`Condition.dateWindow`).
    public enum Kind: Sendable { case string, integer, date }
    public var name: String
    public var fromType: UInt8
    public var propKey: Int
    public var kind: Kind
    public var caseInsensitive: Bool
}

/// A compiled membership condition.
public indirect enum Condition: Sendable {
    case always
    /// At least `count` events of list `list` with `t - window < ts <= t`.
    case atLeast(list: Int, count: Int, window: Millis)
    /// First seen at or before `t - age`.
    case firstSeenAtLeast(age: Millis)
    /// The latest event among latest-of tracker `tracker`'s filters matched one of `tags`
    /// (`negated`: matched none of them). With no such event at all, neither holds.
    case latestIs(tracker: Int, tags: [Int], negated: Bool)
    case attributeIn(attribute: Int, values: [AttrLiteral])
    case attributeBetween(attribute: Int, low: Int64, high: Int64)
    /// A date attribute's instant `v` is such that `v + from <= t < v + to` (nil: unbounded);
    /// an unset date holds nothing. It changes at `v + from` and `v + to`: boundaries.
    case dateWindow(attribute: Int, from: Millis?, to: Millis?)
    /// The sum of PROP over the `events` newest entries of sum list `list` with
    /// `t - window < ts <= t` (the list holds the most recent events of the filter with a
    /// numeric PROP, newest first) is at least / at most `bound`.
    case sum(list: Int, events: Int, window: Millis, bound: Double, atLeast: Bool)
    /// At least `count` distinct days of the model's time zone among the last `days` days
    /// (today included) have an event of day list `list`'s filter.
    case daysActive(list: Int, count: Int, days: Int)
    case scoreAtLeast(score: Int, threshold: Int)
    case all([Condition])
    case any([Condition])
    case not(Condition)

    public enum AttrLiteral: Sendable, Equatable { case string(String), int(Int64) }
}

/// The windowed memory of one filter: its `capacity` most recent event times are enough to
/// answer every "at least N in the last D" over it (N ≤ capacity), whatever D is.
public struct ListSpec: Sendable {
    public var filter: Int
    public var capacity: Int
    public var windows: [Millis]
}

/// The windowed memory of a numeric property over one filter's events: its `capacity` most
/// recent events with a numeric value, (time, value), for `sum` conditions.
public struct SumSpec: Sendable {
    public var filter: Int
    public var propKey: Int
    public var capacity: Int
    public var windows: [Millis]
}

/// The distinct days (of the model's time zone) with an event of one filter: its `capacity`
/// most recent, as day numbers, for `days_active` conditions.
public struct DaysSpec: Sendable {
    public var filter: Int
    public var capacity: Int
    public var windows: [Int]
}

/// "Latest of" several filters (suppression: the latest of subscribed, unsubscribed, spam,
/// hard bounce). Ties in ts go to the event applied last.
public struct LatestSpec: Sendable {
    public var filters: [Int]
}

public struct ScoreSpec: Sendable {
    public struct StaticTerm: Sendable { public var points: Int; public var when: Condition }
    public struct EventTerm: Sendable { public var points: Int; public var filter: Int }
    public struct Part: Sendable {
        public var name: String
        public var cap: Int
        public var staticTerms: [StaticTerm]
        public var eventTerms: [EventTerm]
        public var window: Millis
        /// Index of this part's event list in the contact's state (when it has event terms).
        public var eventList: Int
        /// Most entries the event list can need: the most recent events whose points reach
        /// the cap make every older event irrelevant (they leave the window first).
        public var eventCapacity: Int
    }
    public var name: String
    public var parts: [Part]
}

public struct GroupSpec: Sendable {
    public struct Segment: Sendable { public var name: String; public var when: Condition }
    public var name: String
    public var isFlag: Bool
    public var unless: Condition?
    /// Exclusive: first match wins. A flag has one segment named like the group.
    public var segments: [Segment]
}

/// A Segment Spec `track` event mapped to a canonical type, with its property renames.
public struct TrackMapping: Sendable {
    public var type: UInt8
    /// target prop name -> source property names, first present (non-null) wins.
    public var props: [(target: String, sources: [String])]
}

/// The compiled model: what every contact's state holds and how membership is computed.
public struct Model: Sendable {
    public var version: String
    public var filterNames: [String?]
    public var filters: [FilterExpr]
    /// Property names the filters and attributes read, by key index.
    public var propKeys: [String]
    public var attributes: [AttributeSpec]
    public var lists: [ListSpec]
    public var sums: [SumSpec] = []
    public var dayLists: [DaysSpec] = []
    /// The time zone days are counted in (`timezone:`, an IANA name; UTC by default).
    public var calendar: DayCalendar = DayCalendar(identifier: "UTC")!
    public var latest: [LatestSpec]
    public var scores: [ScoreSpec]
    public var groups: [GroupSpec]
    public var trackMappings: [String: TrackMapping]
    /// The event types the model declares (their type indices follow the canonical ones).
    public var declaredTypes: [DeclaredType] = []
    /// Every event type's name by type index: the canonical types, then the declared ones.
    public var eventTypes: [String] { CanonicalTypes.all + declaredTypes.map(\.name) }
    /// The largest window or age any condition looks back over.
    public var horizon: Millis
    /// The YAML the model was compiled from (the daemon keeps it in the changelog, so a
    /// restart under a changed model can read the old state and move it over).
    public var source: String = ""

    /// Identifies the model's exact text: `version` is the user's label, this changes with
    /// any edit (64-bit FNV-1a of the source, hex).
    public var fingerprint: String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for c in source.utf8 { h = (h ^ UInt64(c)) &* 0x0000_0100_0000_01B3 }
        let hex = String(h, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    public static let maxFilters = 64
    public static let maxGroups = 8
    /// Event types in all, canonical and declared (filters keep one bit per type).
    public static let maxEventTypes = 64
    /// The largest cap of a score part, and the largest points of a term (either sign for a
    /// static term). Sums of points can never overflow, and a scored event's points always fit
    /// its packed slot (`ScoredEvent`) and the row's two bytes for them (`EventTimes`).
    public static let maxPoints = 10_000
    /// The most events one list keeps per contact: the largest `at_least`, and the most
    /// scored events a score part can need (its cap over its smallest per-event points).
    public static let maxListCapacity = 64
    /// The most entries of event lists and scored events one contact's state may hold (5 or
    /// 8 bytes each, 2 KiB at most, + the fixed part): a model's memory is bounded before it is used.
    public static let maxEventSlots = 256
    /// The most conditions and filter expressions a model may compile (YAML aliases can make
    /// a small file stand for an enormous tree).
    public static let maxNodes = 10_000

    /// The default model (docs/default-model.md) with the default Segment mapping (docs/input.md).
    public static func defaultModel() -> Model {
        // The shipped default is validated by the test suite; failing here is a build defect.
        try! Model.load(yaml: DefaultModel.yaml, file: "default-model.yaml")
    }

    /// Parses and compiles a model file. Errors name the file, line and column.
    public static func load(yaml: String, file: String) throws(ModelError) -> Model {
        let node: Node
        do {
            guard let n = try Yams.compose(yaml: yaml) else {
                throw ModelError(file: file, line: 1, column: 1, message: "the model file is empty")
            }
            node = n
        } catch let e as ModelError {
            throw e
        } catch let e as YamlError {
            throw ModelError.fromYams(e, file: file)
        } catch {
            throw ModelError(file: file, line: 1, column: 1, message: "\(error)")
        }
        var c = ModelCompiler(file: file)
        var m = try c.compile(node)
        m.source = yaml
        return m
    }
}

extension ModelError {
    /// A Yams error as a positioned error, for any YAML file segmentd reads.
    public static func fromYamsError(_ e: YamlError, file: String) -> ModelError { fromYams(e, file: file) }

    static func fromYams(_ e: YamlError, file: String) -> ModelError {
        switch e {
        case let .scanner(_, problem, mark, _), let .parser(_, problem, mark, _):
            return ModelError(file: file, line: mark.line, column: mark.column, message: "YAML syntax: \(problem)")
        case let .composer(_, problem, mark, _):
            return ModelError(file: file, line: mark.line, column: mark.column, message: "YAML: \(problem)")
        default:
            return ModelError(file: file, line: 1, column: 1, message: "YAML: \(e)")
        }
    }
}

/// Turns the YAML tree into a `Model`, checking every name and value on the way.
struct ModelCompiler {
    let file: String
    var filterNames: [String?] = []
    var filters: [FilterExpr] = []
    var filterIndex: [String: Int] = [:]
    var propKeys: [String] = []
    var attributes: [AttributeSpec] = []
    var attributeIndex: [String: Int] = [:]
    var conditionIndex: [String: Condition] = [:]
    var lists: [ListSpec] = []
    var sums: [SumSpec] = []
    var dayLists: [DaysSpec] = []
    var latest: [LatestSpec] = []
    var scores: [ScoreSpec] = []
    var scoreIndex: [String: Int] = [:]
    var declaredTypes: [DeclaredType] = []
    var horizon: Millis = 0
    /// Conditions and filter expressions compiled so far (bounded by `Model.maxNodes`).
    var nodes = 0

    init(file: String) { self.file = file }

    /// Counts one more compiled node, refusing a model that is too large.
    mutating func countNode(_ n: Node) throws(ModelError) {
        nodes += 1
        guard nodes <= Model.maxNodes else {
            throw err(n, "the model is too large: more than \(Model.maxNodes) conditions and filters (YAML aliases count each time they are used)")
        }
    }

    /// Slots of event lists, summed values (two each) and scored events per contact so far.
    var eventSlots: Int {
        lists.reduce(0) { $0 + $1.capacity } + sums.reduce(0) { $0 + 2 * $1.capacity } + dayLists.reduce(0) { $0 + $1.capacity }
            + scores.reduce(0) { $0 + $1.parts.reduce(0) { $0 + $1.eventCapacity } }
    }

    /// Refuses the model at `n` when its per-contact event slots exceed `Model.maxEventSlots`.
    func checkEventSlots(_ extra: Int, _ n: Node) throws(ModelError) {
        let total = eventSlots + extra
        guard total <= Model.maxEventSlots else {
            throw err(n, "the model would keep \(total) event times per contact; at most \(Model.maxEventSlots) are supported (lower at_least counts or score caps)")
        }
    }

    func err(_ n: Node?, _ m: String) -> ModelError {
        ModelError(file: file, line: n?.mark?.line ?? 1, column: n?.mark?.column ?? 1, message: m)
    }

    func mapping(_ n: Node, _ what: String) throws(ModelError) -> [(String, Node, Node)] {
        guard case let .mapping(m) = n else { throw err(n, "\(what) must be a mapping") }
        var out: [(String, Node, Node)] = []
        var seen = Set<String>()
        for (k, v) in m {
            guard let ks = k.string else { throw err(k, "a key in \(what) must be a string") }
            guard seen.insert(ks).inserted else { throw err(k, "duplicate key '\(ks)' in \(what)") }
            out.append((ks, k, v))
        }
        return out
    }

    func sequence(_ n: Node, _ what: String) throws(ModelError) -> [Node] {
        guard case let .sequence(s) = n else { throw err(n, "\(what) must be a list") }
        return Array(s)
    }

    func string(_ n: Node, _ what: String) throws(ModelError) -> String {
        guard case let .scalar(s) = n else { throw err(n, "\(what) must be a string") }
        return s.string
    }

    func int(_ n: Node, _ what: String) throws(ModelError) -> Int {
        guard case .scalar = n, let v = n.int else { throw err(n, "\(what) must be a whole number") }
        return v
    }

    func duration(_ n: Node, _ what: String) throws(ModelError) -> Millis {
        let s = try string(n, what)
        guard let d = DurationSpec(parsing: s), d.millis > 0 else {
            throw err(n, "\(what) '\(s)' is not a duration like 500ms, 30s, 15m, 1h or 30d")
        }
        return d.millis
    }

    func strings(_ n: Node, _ what: String) throws(ModelError) -> [String] {
        if case .scalar = n { return [try string(n, what)] }
        var out: [String] = []
        for e in try sequence(n, what) { out.append(try string(e, what)) }
        return out
    }

    func checkKeys(_ m: [(String, Node, Node)], allowed: Set<String>, _ what: String) throws(ModelError) {
        for (k, kn, _) in m where !allowed.contains(k) {
            throw err(kn, "unknown key '\(k)' in \(what) (expected one of: \(allowed.sorted().joined(separator: ", ")))")
        }
    }

    mutating func compile(_ root: Node) throws(ModelError) -> Model {
        let top = try mapping(root, "the model")
        try checkKeys(top, allowed: ["version", "timezone", "types", "filters", "attributes", "conditions", "scores", "groups", "segment"], "the model")
        func get(_ k: String) -> Node? { top.first { $0.0 == k }?.2 }
        guard let vn = get("version") else { throw err(root, "the model needs a 'version' (it is carried into every transition)") }
        let version = try string(vn, "version")
        guard !version.isEmpty else { throw err(vn, "version must not be empty") }

        if let t = get("types") { try declareTypes(t) }
        var calendar = DayCalendar(identifier: "UTC")!
        if let z = get("timezone") {
            let name = try string(z, "timezone")
            guard let c = DayCalendar(identifier: name) else {
                throw err(z, "'\(name)' is not a time zone of the IANA database (for example UTC, Europe/Paris, America/New_York)")
            }
            calendar = c
        }

        if let f = get("filters") {
            for (name, kn, v) in try mapping(f, "filters") {
                guard filterIndex[name] == nil else { throw err(kn, "filter '\(name)' is defined twice") }
                let expr = try filterExpr(v)
                let i = try addFilter(expr, name: name, at: kn)
                filterIndex[name] = i
            }
        }
        if let a = get("attributes") {
            for (name, _, v) in try mapping(a, "attributes") {
                let m = try mapping(v, "attribute '\(name)'")
                try checkKeys(m, allowed: ["from", "prop", "kind", "case_insensitive"], "attribute '\(name)'")
                func g(_ k: String) -> Node? { m.first { $0.0 == k }?.2 }
                guard let fromN = g("from") else { throw err(v, "attribute '\(name)' needs 'from' (an event type)") }
                let from = try string(fromN, "from")
                let t = try typeIndex(from, at: fromN)
                guard let pn = g("prop") else { throw err(v, "attribute '\(name)' needs 'prop'") }
                let prop = try string(pn, "prop")
                var kind = AttributeSpec.Kind.string
                if let kn2 = g("kind") {
                    switch try string(kn2, "kind") {
                    case "string": kind = .string
                    case "integer": kind = .integer
                    case "date": kind = .date
                    case let other: throw err(kn2, "attribute kind '\(other)' is not 'string', 'integer' or 'date'")
                    }
                }
                var ci = false
                if let cn = g("case_insensitive") {
                    guard let b = cn.bool else { throw err(cn, "case_insensitive must be true or false") }
                    ci = b
                }
                attributeIndex[name] = attributes.count
                attributes.append(AttributeSpec(name: name, fromType: t, propKey: propKey(prop), kind: kind, caseInsensitive: ci))
            }
        }
        if let c = get("conditions") {
            for (name, kn, v) in try mapping(c, "conditions") {
                guard conditionIndex[name] == nil else { throw err(kn, "condition '\(name)' is defined twice") }
                conditionIndex[name] = try condition(v)
            }
        }
        if let s = get("scores") {
            for (name, _, v) in try mapping(s, "scores") {
                scoreIndex[name] = scores.count
                scores.append(try score(name, v))
            }
        }
        guard let gn = get("groups") else { throw err(root, "the model needs 'groups'") }
        var groups: [GroupSpec] = []
        var groupNames = Set<String>()
        for g in try sequence(gn, "groups") {
            let grp = try group(g)
            guard groupNames.insert(grp.name).inserted else { throw err(g, "group '\(grp.name)' is defined twice") }
            groups.append(grp)
        }
        guard !groups.isEmpty else { throw err(gn, "the model needs at least one group") }
        guard groups.count <= Model.maxGroups else { throw err(gn, "at most \(Model.maxGroups) groups are supported") }
        let mappings = try trackMappings(get("segment"))
        var model = Model(version: version, filterNames: filterNames, filters: filters, propKeys: propKeys,
                     attributes: attributes, lists: lists, latest: latest, scores: scores, groups: groups,
                     trackMappings: mappings, declaredTypes: declaredTypes, horizon: horizon)
        model.sums = sums
        model.dayLists = dayLists
        model.calendar = calendar
        return model
    }

    /// The `types:` section: each declared type's name and its properties' kinds.
    mutating func declareTypes(_ n: Node) throws(ModelError) {
        for (name, kn, v) in try mapping(n, "types") {
            guard !name.isEmpty else { throw err(kn, "an event type name must not be empty") }
            guard CanonicalTypes.index(of: name) == nil else {
                throw err(kn, "'\(name)' is a canonical event type: it cannot be declared again")
            }
            guard !EventDecoder.SegmentCall.names.contains(name) else {
                throw err(kn, "'\(name)' is a Segment call name: a native record of this type would read as a Segment call")
            }
            guard !declaredTypes.contains(where: { bytesEqual($0.name, name) }) else { throw err(kn, "event type '\(name)' is declared twice") }
            guard CanonicalTypes.all.count + declaredTypes.count < Model.maxEventTypes else {
                throw err(kn, "at most \(Model.maxEventTypes - CanonicalTypes.all.count) event types can be declared")
            }
            var props: [(name: String, key: Int, kind: DeclaredType.PropKind)] = []
            if case .scalar = v, v.null != nil {
                // `feature_used: ~`: a type without declared properties.
            } else {
                let m = try mapping(v, "type '\(name)'")
                try checkKeys(m, allowed: ["props"], "type '\(name)'")
                if let pn = m.first?.2, !(pn.null != nil) {
                    for (prop, pk, kindNode) in try mapping(pn, "the props of type '\(name)'") {
                        let kindName = try string(kindNode, "the kind of '\(prop)'")
                        guard let kind = DeclaredType.PropKind(rawValue: kindName) else {
                            throw err(kindNode, "property kind '\(kindName)' is not one of \(DeclaredType.PropKind.allCases.map(\.rawValue).joined(separator: ", "))")
                        }
                        guard !props.contains(where: { bytesEqual($0.name, prop) }) else { throw err(pk, "property '\(prop)' is declared twice") }
                        props.append((prop, propKey(prop), kind))
                    }
                }
            }
            declaredTypes.append(DeclaredType(name: name, props: props))
        }
    }

    /// The type index of a canonical or declared event type.
    func typeIndex(_ name: String, at n: Node) throws(ModelError) -> UInt8 {
        if let i = CanonicalTypes.index(of: name) { return i }
        if let d = declaredTypes.firstIndex(where: { bytesEqual($0.name, name) }) { return UInt8(CanonicalTypes.all.count + d) }
        let known = CanonicalTypes.all + declaredTypes.map(\.name)
        throw err(n, "unknown event type '\(name)' (event types: \(known.joined(separator: ", ")); declare your own under 'types')")
    }

    /// A numeric bound of `at_least` / `at_most`.
    func bound(_ n: Node, _ what: String) throws(ModelError) -> Double {
        guard case let .scalar(s) = n, s.style == .plain, let v = Double(s.string), v.isFinite else {
            throw err(n, "\(what) must be a number")
        }
        return v
    }

    mutating func propKey(_ name: String) -> Int {
        if let i = propKeys.firstIndex(where: { bytesEqual($0, name) }) { return i }
        propKeys.append(name)
        return propKeys.count - 1
    }

    mutating func addFilter(_ e: FilterExpr, name: String?, at n: Node) throws(ModelError) -> Int {
        guard filters.count < Model.maxFilters else { throw err(n, "at most \(Model.maxFilters) distinct filters are supported") }
        filters.append(e)
        filterNames.append(name)
        return filters.count - 1
    }

    func literal(_ n: Node) throws(ModelError) -> PropTest.Literal {
        guard case let .scalar(s) = n else { throw err(n, "a value must be a string, number, true, false or null") }
        if s.style == .plain {
            if n.null != nil { return .null }
            if let b = n.bool { return .bool(b) }
            if let i = n.int { return .int(Int64(i)) }
        }
        return .string(s.string)
    }

    /// A filter: a name, or a mapping of `type`, `prop` with one test, `any`, `all`, `not`
    /// (all keys present must hold).
    mutating func filterExpr(_ n: Node) throws(ModelError) -> FilterExpr {
        try countNode(n)
        if case let .scalar(s) = n {
            guard let i = filterIndex[s.string] else { throw err(n, "unknown filter '\(s.string)' (filters must be defined above their use)") }
            return .ref(i)
        }
        let m = try mapping(n, "a filter")
        try checkKeys(m, allowed: ["type", "prop", "equals", "starts_with", "contains", "in", "at_least", "at_most", "any", "all", "not"], "a filter")
        var parts: [FilterExpr] = []
        func g(_ k: String) -> Node? { m.first { $0.0 == k }?.2 }
        if let t = g("type") {
            var idx: [UInt8] = []
            for name in try strings(t, "type") { idx.append(try typeIndex(name, at: t)) }
            parts.append(.types(idx))
        }
        let tests = ["equals", "starts_with", "contains", "in", "at_least", "at_most"].filter { g($0) != nil }
        if let p = g("prop") {
            let key = propKey(try string(p, "prop"))
            guard tests.count == 1, let tn = g(tests[0]) else {
                throw err(p, "'prop' needs exactly one of equals, starts_with, contains, in, at_least, at_most")
            }
            let test: PropTest
            switch tests[0] {
            case "equals": test = .equals(try literal(tn))
            case "starts_with": test = .startsWith(try string(tn, "starts_with"))
            case "contains": test = .contains(try string(tn, "contains"))
            case "at_least": test = .atLeast(try bound(tn, "at_least"))
            case "at_most": test = .atMost(try bound(tn, "at_most"))
            default:
                var vals: [PropTest.Literal] = []
                for e in try sequence(tn, "in") { vals.append(try literal(e)) }
                test = .oneOf(vals)
            }
            parts.append(.prop(key: key, test: test))
        } else if let t = tests.first, let tn = g(t) {
            throw err(tn, "'\(t)' needs a 'prop' beside it")
        }
        if let a = g("any") {
            var sub: [FilterExpr] = []
            for e in try sequence(a, "any") { sub.append(try filterExpr(e)) }
            parts.append(.any(sub))
        }
        if let a = g("all") {
            var sub: [FilterExpr] = []
            for e in try sequence(a, "all") { sub.append(try filterExpr(e)) }
            parts.append(.all(sub))
        }
        if let x = g("not") { parts.append(.not(try filterExpr(x))) }
        guard !parts.isEmpty else { throw err(n, "an empty filter matches nothing useful; give a type, prop, any, all or not") }
        return parts.count == 1 ? parts[0] : .all(parts)
    }

    /// The filter index for a filter named or written inline at a use site.
    mutating func filterRef(_ n: Node) throws(ModelError) -> Int {
        if case let .scalar(s) = n {
            guard let i = filterIndex[s.string] else { throw err(n, "unknown filter '\(s.string)'") }
            return i
        }
        let e = try filterExpr(n)
        return try addFilter(e, name: nil, at: n)
    }

    mutating func list(for filter: Int, count: Int, window: Millis, at n: Node) throws(ModelError) -> Int {
        horizon = max(horizon, window)
        if let i = lists.firstIndex(where: { $0.filter == filter }) {
            try checkEventSlots(max(0, count - lists[i].capacity), n)
            lists[i].capacity = max(lists[i].capacity, count)
            if !lists[i].windows.contains(window) { lists[i].windows.append(window) }
            return i
        }
        try checkEventSlots(count, n)
        lists.append(ListSpec(filter: filter, capacity: count, windows: [window]))
        return lists.count - 1
    }

    mutating func condition(_ n: Node) throws(ModelError) -> Condition {
        try countNode(n)
        if case let .scalar(s) = n {
            if s.string == "always" { return .always }
            guard let c = conditionIndex[s.string] else { throw err(n, "unknown condition '\(s.string)'") }
            return c
        }
        let m = try mapping(n, "a condition")
        func g(_ k: String) -> Node? { m.first { $0.0 == k }?.2 }
        guard let (first, fk, _) = m.first else { throw err(n, "an empty condition") }
        switch first {
        case "at_least":
            try checkKeys(m, allowed: ["at_least", "of", "within"], "at_least")
            let count = try int(g("at_least")!, "at_least")
            guard count >= 1, count <= Model.maxListCapacity else {
                throw err(g("at_least"), "at_least must be between 1 and \(Model.maxListCapacity)")
            }
            guard let of = g("of") else { throw err(n, "at_least needs 'of' (a filter)") }
            guard let w = g("within") else { throw err(n, "at_least needs 'within' (a duration)") }
            let window = try duration(w, "within")
            let f = try filterRef(of)
            return .atLeast(list: try list(for: f, count: count, window: window, at: n), count: count, window: window)
        case "none_of":
            try checkKeys(m, allowed: ["none_of", "within"], "none_of")
            guard let w = g("within") else { throw err(n, "none_of needs 'within' (a duration)") }
            let window = try duration(w, "within")
            let f = try filterRef(g("none_of")!)
            return .not(.atLeast(list: try list(for: f, count: 1, window: window, at: n), count: 1, window: window))
        case "first_seen_at_least":
            try checkKeys(m, allowed: ["first_seen_at_least"], "first_seen_at_least")
            let age = try duration(g("first_seen_at_least")!, "first_seen_at_least")
            horizon = max(horizon, age)
            return .firstSeenAtLeast(age: age)
        case "latest_of":
            try checkKeys(m, allowed: ["latest_of", "is", "is_not"], "latest_of")
            var fs: [Int] = []
            var names: [String?] = []
            for e in try sequence(g("latest_of")!, "latest_of") {
                fs.append(try filterRef(e))
                names.append(e.string)
            }
            guard !fs.isEmpty else { throw err(g("latest_of"), "latest_of needs at least one filter") }
            let negated = g("is_not") != nil
            guard let isN = g("is") ?? g("is_not"), (g("is") == nil) != (g("is_not") == nil) else {
                throw err(n, "latest_of needs exactly one of 'is' or 'is_not'")
            }
            var tags: [Int] = []
            for name in try strings(isN, "is") {
                guard let t = names.firstIndex(of: name) else { throw err(isN, "'\(name)' is not one of the latest_of filters") }
                tags.append(t)
            }
            let tracker: Int
            if let i = latest.firstIndex(where: { $0.filters == fs }) { tracker = i } else {
                latest.append(LatestSpec(filters: fs))
                tracker = latest.count - 1
            }
            return .latestIs(tracker: tracker, tags: tags, negated: negated)
        case "attribute":
            try checkKeys(m, allowed: ["attribute", "equals", "in", "between", "is", "within_before", "within_after"], "attribute")
            let name = try string(g("attribute")!, "attribute")
            guard let a = attributeIndex[name] else { throw err(g("attribute"), "unknown attribute '\(name)'") }
            let spec = attributes[a]
            let dateKeys = ["is", "within_before", "within_after"].filter { g($0) != nil }
            if spec.kind == .date {
                guard dateKeys.count == 1, m.count == 2 else {
                    throw err(n, "date attribute '\(name)' needs exactly one of is (past or future), within_before, within_after")
                }
                switch dateKeys[0] {
                case "is":
                    switch try string(g("is")!, "is") {
                    case "past": return .dateWindow(attribute: a, from: 0, to: nil)
                    case "future": return .dateWindow(attribute: a, from: nil, to: 0)
                    case let other: throw err(g("is"), "'\(other)' is not past or future")
                    }
                case "within_before":
                    let d = try duration(g("within_before")!, "within_before")
                    return .dateWindow(attribute: a, from: -d, to: 0)
                default:
                    let d = try duration(g("within_after")!, "within_after")
                    return .dateWindow(attribute: a, from: 0, to: d)
                }
            }
            if let k = dateKeys.first { throw err(g(k), "\(k) needs a date attribute ('\(name)' is not kind: date)") }
            func lit(_ v: Node) throws(ModelError) -> Condition.AttrLiteral {
                switch spec.kind {
                case .integer:
                    guard let i = v.int else { throw err(v, "attribute '\(name)' is an integer") }
                    return .int(Int64(i))
                case .string:
                    let s = try string(v, "a value of '\(name)'")
                    return .string(spec.caseInsensitive ? asciiLowercased(s) : s)
                case .date:
                    throw err(v, "unreachable: date attributes are handled above")
                }
            }
            if let e = g("equals") { return .attributeIn(attribute: a, values: [try lit(e)]) }
            if let e = g("in") {
                var vals: [Condition.AttrLiteral] = []
                for v in try sequence(e, "in") { vals.append(try lit(v)) }
                return .attributeIn(attribute: a, values: vals)
            }
            if let b = g("between") {
                guard spec.kind == .integer else { throw err(b, "between needs an integer attribute") }
                let s = try sequence(b, "between")
                guard s.count == 2 else { throw err(b, "between takes [low, high]") }
                return .attributeBetween(attribute: a, low: Int64(try int(s[0], "low")), high: Int64(try int(s[1], "high")))
            }
            throw err(n, "attribute needs one of equals, in, between")
        case "count", "min", "max":
            return try aggregate(first, m, n)
        case "sum":
            return try sumCondition(m, n)
        case "days_active":
            try checkKeys(m, allowed: ["days_active", "within", "at_least"], "days_active")
            guard let w = g("within") else { throw err(n, "days_active needs 'within' (a whole number of days)") }
            let window = try duration(w, "within")
            guard window >= DayCalendar.dayMs, window % DayCalendar.dayMs == 0 else {
                throw err(w, "days_active counts whole days: within must be a whole number of days (7d), not \(DurationSpec(millis: window))")
            }
            let days = Int(window / DayCalendar.dayMs)
            guard let cn = g("at_least") else { throw err(n, "days_active needs 'at_least' (a number of days)") }
            let count = try int(cn, "at_least")
            guard count >= 1, count <= min(days, Model.maxListCapacity) else {
                throw err(cn, "at_least must be between 1 and \(min(days, Model.maxListCapacity)) (the days in the window)")
            }
            let filter = try filterRef(g("days_active")!)
            horizon = max(horizon, window)
            let list: Int
            if let i = dayLists.firstIndex(where: { $0.filter == filter }) {
                try checkEventSlots(max(0, count - dayLists[i].capacity), n)
                dayLists[i].capacity = max(dayLists[i].capacity, count)
                if !dayLists[i].windows.contains(days) { dayLists[i].windows.append(days) }
                list = i
            } else {
                try checkEventSlots(count, n)
                dayLists.append(DaysSpec(filter: filter, capacity: count, windows: [days]))
                list = dayLists.count - 1
            }
            return .daysActive(list: list, count: count, days: days)
        case "score":
            try checkKeys(m, allowed: ["score", "at_least"], "score")
            let name = try string(g("score")!, "score")
            guard let s = scoreIndex[name] else { throw err(g("score"), "unknown score '\(name)'") }
            guard let t = g("at_least") else { throw err(n, "score needs 'at_least'") }
            return .scoreAtLeast(score: s, threshold: try int(t, "at_least"))
        case "all", "any":
            try checkKeys(m, allowed: [first], first)
            var sub: [Condition] = []
            for e in try sequence(g(first)!, first) { sub.append(try condition(e)) }
            return first == "all" ? .all(sub) : .any(sub)
        case "not":
            try checkKeys(m, allowed: ["not"], "not")
            return .not(try condition(g("not")!))
        case "condition":
            return try condition(g("condition")!)
        default:
            throw err(fk, "unknown condition '\(first)' (expected at_least, none_of, count, sum, min, max, days_active, first_seen_at_least, latest_of, attribute, score, all, any, not, or a condition name)")
        }
    }

    /// `{count: F, within: D, at_least|at_most: N}` and `{min|max: PROP, of: F, within: D,
    /// at_least|at_most: X}`, compiled to the exact state they need, which is event lists:
    /// - count at least N: the N most recent times of F; at most N: not at least N + 1;
    /// - max at least X / min at most X: one event of F whose PROP is within the bound;
    /// - max at most X / min at least X: an event of F with a numeric PROP, and none whose
    ///   PROP is beyond the bound.
    /// Events of F without a numeric PROP take no part in a min or max; over no such events
    /// neither holds.
    mutating func aggregate(_ kind: String, _ m: [(String, Node, Node)], _ n: Node) throws(ModelError) -> Condition {
        func g(_ k: String) -> Node? { m.first { $0.0 == k }?.2 }
        try checkKeys(m, allowed: kind == "count" ? [kind, "within", "at_least", "at_most"] : [kind, "of", "within", "at_least", "at_most"], kind)
        guard let w = g("within") else { throw err(n, "\(kind) needs 'within' (a duration)") }
        let window = try duration(w, "within")
        guard (g("at_least") == nil) != (g("at_most") == nil), let boundNode = g("at_least") ?? g("at_most") else {
            throw err(n, "\(kind) needs exactly one of at_least, at_most")
        }
        let atLeast = g("at_least") != nil
        if kind == "count" {
            let f = try filterRef(g("count")!)
            let count = try int(boundNode, atLeast ? "at_least" : "at_most")
            let needed = atLeast ? count : count + 1
            guard count >= (atLeast ? 1 : 0), needed <= Model.maxListCapacity else {
                throw err(boundNode, atLeast ? "at_least must be between 1 and \(Model.maxListCapacity)" : "at_most must be between 0 and \(Model.maxListCapacity - 1)")
            }
            let c = Condition.atLeast(list: try list(for: f, count: needed, window: window, at: n), count: needed, window: window)
            return atLeast ? c : .not(c)
        }
        guard let of = g("of") else { throw err(n, "\(kind) needs 'of' (a filter)") }
        let propName = try string(g(kind)!, kind)
        let key = propKey(propName)
        let bound = try self.bound(boundNode, atLeast ? "at_least" : "at_most")
        let f = try filterRef(of)
        let base = filterNames[f] ?? "filter#\(f)"
        func one(_ test: FilterExpr, _ label: String) throws(ModelError) -> Condition {
            let filter = try addFilter(.all([.ref(f), test]), name: "\(base) with \(propName) \(label)", at: n)
            return .atLeast(list: try list(for: filter, count: 1, window: window, at: n), count: 1, window: window)
        }
        let boundText = bound == bound.rounded() && abs(bound) < 1e15 ? String(Int64(bound)) : String(bound)
        let numeric = FilterExpr.prop(key: key, test: .atLeast(-.infinity))
        // max >= X, min <= X: one event within the bound.
        if (kind == "max") == atLeast {
            return try one(.prop(key: key, test: atLeast ? .atLeast(bound) : .atMost(bound)), "\(atLeast ? ">=" : "<=") \(boundText)")
        }
        // max <= X, min >= X: some numeric value, none beyond the bound.
        let some = try one(numeric, "a number")
        let beyond = try one(.all([numeric, .not(.prop(key: key, test: atLeast ? .atLeast(bound) : .atMost(bound)))]),
                             "\(atLeast ? "<" : ">") \(boundText)")
        return .all([some, .not(beyond)])
    }

    /// `{sum: PROP, of: F, within: D, at_least|at_most: X, max_events: N}`: the sum of PROP
    /// over F's events with a numeric PROP in the last D, counting at most the N most recent
    /// of them. The bound is the user's: a sum's exact state grows with the events in its
    /// window, and segmentd keeps no state it cannot bound before the model is used.
    mutating func sumCondition(_ m: [(String, Node, Node)], _ n: Node) throws(ModelError) -> Condition {
        func g(_ k: String) -> Node? { m.first { $0.0 == k }?.2 }
        try checkKeys(m, allowed: ["sum", "of", "within", "at_least", "at_most", "max_events"], "sum")
        guard let of = g("of") else { throw err(n, "sum needs 'of' (a filter)") }
        guard let w = g("within") else { throw err(n, "sum needs 'within' (a duration)") }
        let window = try duration(w, "within")
        guard (g("at_least") == nil) != (g("at_most") == nil), let boundNode = g("at_least") ?? g("at_most") else {
            throw err(n, "sum needs exactly one of at_least, at_most")
        }
        let atLeast = g("at_least") != nil
        let bound = try self.bound(boundNode, atLeast ? "at_least" : "at_most")
        guard let capNode = g("max_events") else {
            throw err(n, "sum needs max_events (1 to \(Model.maxListCapacity)): the most recent events it adds up; a sum over every event in a window has no bounded state")
        }
        let capacity = try int(capNode, "max_events")
        guard capacity >= 1, capacity <= Model.maxListCapacity else {
            throw err(capNode, "max_events must be between 1 and \(Model.maxListCapacity)")
        }
        let key = propKey(try string(g("sum")!, "sum"))
        let filter = try filterRef(of)
        horizon = max(horizon, window)
        let list: Int
        if let i = sums.firstIndex(where: { $0.filter == filter && $0.propKey == key }) {
            try checkEventSlots(2 * max(0, capacity - sums[i].capacity), n)
            sums[i].capacity = max(sums[i].capacity, capacity)
            if !sums[i].windows.contains(window) { sums[i].windows.append(window) }
            list = i
        } else {
            try checkEventSlots(2 * capacity, n)
            sums.append(SumSpec(filter: filter, propKey: key, capacity: capacity, windows: [window]))
            list = sums.count - 1
        }
        return .sum(list: list, events: capacity, window: window, bound: bound, atLeast: atLeast)
    }

    mutating func score(_ name: String, _ n: Node) throws(ModelError) -> ScoreSpec {
        let m = try mapping(n, "score '\(name)'")
        try checkKeys(m, allowed: ["parts"], "score '\(name)'")
        guard let pn = m.first(where: { $0.0 == "parts" })?.2 else { throw err(n, "score '\(name)' needs 'parts'") }
        var parts: [ScoreSpec.Part] = []
        for p in try sequence(pn, "parts") {
            let pm = try mapping(p, "a score part")
            try checkKeys(pm, allowed: ["name", "cap", "terms", "per_event", "window"], "a score part")
            func g(_ k: String) -> Node? { pm.first { $0.0 == k }?.2 }
            let pname = try g("name").map { (x: Node) throws(ModelError) -> String in try string(x, "name") } ?? "part\(parts.count)"
            guard let capN = g("cap") else { throw err(p, "score part '\(pname)' needs a 'cap'") }
            let cap = try int(capN, "cap")
            guard cap > 0, cap <= Model.maxPoints else { throw err(capN, "cap must be between 1 and \(Model.maxPoints)") }
            var statics: [ScoreSpec.StaticTerm] = []
            if let t = g("terms") {
                for e in try sequence(t, "terms") {
                    let em = try mapping(e, "a term")
                    try checkKeys(em, allowed: ["points", "when"], "a term")
                    guard let pts = em.first(where: { $0.0 == "points" })?.2, let w = em.first(where: { $0.0 == "when" })?.2 else {
                        throw err(e, "a term needs 'points' and 'when'")
                    }
                    let points = try int(pts, "points")
                    guard abs(points) <= Model.maxPoints else {
                        throw err(pts, "points must be between -\(Model.maxPoints) and \(Model.maxPoints)")
                    }
                    statics.append(.init(points: points, when: try condition(w)))
                }
            }
            var events: [ScoreSpec.EventTerm] = []
            var window: Millis = 0
            if let t = g("per_event") {
                guard let wn = g("window") else { throw err(p, "per_event terms need a 'window'") }
                window = try duration(wn, "window")
                horizon = max(horizon, window)
                for e in try sequence(t, "per_event") {
                    let em = try mapping(e, "a per-event term")
                    try checkKeys(em, allowed: ["points", "filter"], "a per-event term")
                    guard let pts = em.first(where: { $0.0 == "points" })?.2, let f = em.first(where: { $0.0 == "filter" })?.2 else {
                        throw err(e, "a per-event term needs 'points' and 'filter'")
                    }
                    let points = try int(pts, "points")
                    guard points > 0, points <= Model.maxPoints else {
                        throw err(pts, "per-event points must be between 1 and \(Model.maxPoints) (a capped window score is kept exactly only for positive points)")
                    }
                    events.append(.init(points: points, filter: try filterRef(f)))
                }
            }
            let minPoints = events.map(\.points).min() ?? cap
            let capacity = events.isEmpty ? 0 : (cap + minPoints - 1) / minPoints
            guard capacity <= Model.maxListCapacity else {
                throw err(capN, "a cap of \(cap) with per-event terms of \(minPoints) points keeps up to \(capacity) events per contact; at most \(Model.maxListCapacity) are supported (lower the cap or raise the smallest points)")
            }
            try checkEventSlots(capacity + parts.reduce(0) { $0 + $1.eventCapacity }, capN)
            parts.append(.init(name: pname, cap: cap, staticTerms: statics, eventTerms: events, window: window, eventList: -1, eventCapacity: capacity))
        }
        return ScoreSpec(name: name, parts: parts)
    }

    mutating func group(_ n: Node) throws(ModelError) -> GroupSpec {
        let m = try mapping(n, "a group")
        try checkKeys(m, allowed: ["name", "segments", "flag", "unless"], "a group")
        func g(_ k: String) -> Node? { m.first { $0.0 == k }?.2 }
        guard let nn = g("name") else { throw err(n, "a group needs a 'name'") }
        let name = try string(nn, "name")
        let unless = try g("unless").map { (x: Node) throws(ModelError) -> Condition in try condition(x) }
        if let f = g("flag") {
            guard g("segments") == nil else { throw err(f, "a group is either a flag or has segments, not both") }
            return GroupSpec(name: name, isFlag: true, unless: unless, segments: [.init(name: name, when: try condition(f))])
        }
        guard let sn = g("segments") else { throw err(n, "group '\(name)' needs 'segments' or 'flag'") }
        var segs: [GroupSpec.Segment] = []
        for s in try sequence(sn, "segments") {
            let sm = try mapping(s, "a segment")
            try checkKeys(sm, allowed: ["name", "when"], "a segment")
            guard let snn = sm.first(where: { $0.0 == "name" })?.2 else { throw err(s, "a segment needs a 'name'") }
            guard let w = sm.first(where: { $0.0 == "when" })?.2 else { throw err(s, "a segment needs 'when'") }
            let sname = try string(snn, "name")
            guard !segs.contains(where: { $0.name == sname }) else { throw err(snn, "segment '\(sname)' appears twice in group '\(name)'") }
            segs.append(.init(name: sname, when: try condition(w)))
        }
        guard !segs.isEmpty, segs.count < 255 else { throw err(sn, "a group needs 1 to 254 segments") }
        return GroupSpec(name: name, isFlag: false, unless: unless, segments: segs)
    }

    mutating func trackMappings(_ n: Node?) throws(ModelError) -> [String: TrackMapping] {
        guard let n else { return try DefaultModel.defaultTrackMappings() }
        let m = try mapping(n, "segment")
        try checkKeys(m, allowed: ["track"], "segment")
        guard let t = m.first?.2 else { return [:] }
        var out: [String: TrackMapping] = [:]
        for (event, _, v) in try mapping(t, "segment.track") {
            let vm = try mapping(v, "the mapping of '\(event)'")
            try checkKeys(vm, allowed: ["type", "props"], "the mapping of '\(event)'")
            guard let tn = vm.first(where: { $0.0 == "type" })?.2 else { throw err(v, "the mapping of '\(event)' needs a 'type'") }
            let ti = try typeIndex(try string(tn, "type"), at: tn)
            var props: [(String, [String])] = []
            if let pn = vm.first(where: { $0.0 == "props" })?.2 {
                for (target, _, src) in try mapping(pn, "props") {
                    props.append((target, try strings(src, "props.\(target)")))
                }
            }
            out[event] = TrackMapping(type: ti, props: props)
        }
        return out
    }
}

import Foundation
import SegmentdEngine

/// Reconstructs segment membership from transitions and computes the report's figures.
///
/// A contact's segment in a group is the `to` of its latest transition there (transitions of
/// one contact arrive in order; contacts interleave freely). Sizes come from per-day deltas,
/// so they are exact at the end of every day whatever the order across contacts.
public final class ReportBuilder {
    public let options: ReportOptions
    private var input = InputSummary()
    private let parser = TransitionLineParser()

    /// Groups by index: the catalog's first, then any other the transitions name.
    var groups: [GroupTally] = []
    private var groupIndex: [String: Int] = [:]
    var contactIndex: [String: Int] = [:]
    var contacts: [ContactState] = []

    var engagementCounts: [[Int: [Int]]] = []
    var engagementRead = 0
    var engagementNotUsable = 0
    var engagementCounted = 0
    var engagementWithoutSegments = 0

    private var versions: [String: (count: Int, first: Millis, last: Millis)] = [:]
    private var causes: [String: Int] = [:]
    var firstAt: Millis = .max
    var lastAt: Millis = .min

    /// "No segment" as a segment index.
    static let none = -1
    /// The contact has no transition in the group yet.
    static let unseen = -2

    struct DayKey: Hashable {
        var day: Int64
        var segment: Int
    }

    struct FlowKey: Hashable {
        var from: Int
        var to: Int
    }

    final class GroupTally {
        let name: String
        let inModel: Bool
        let isFlag: Bool
        var segments: [String]
        var segmentIndex: [String: Int] = [:]
        /// How many segments the catalog gave; later ones come from the transitions.
        let modelSegments: Int
        var mentioned: Set<Int> = []
        var transitionsInPeriod = 0
        /// Size changes before the period (and of contacts found inside a segment at first sight).
        var initial: [Int: Int] = [:]
        var deltas: [DayKey: Int] = [:]
        var entries: [DayKey: Int] = [:]
        var exits: [DayKey: Int] = [:]
        var flows: [FlowKey: Int] = [:]
        var stays: [Int: StayDurations] = [:]

        init(name: String, segments: [String], isFlag: Bool, inModel: Bool) {
            self.name = name
            self.segments = segments
            self.isFlag = isFlag
            self.inModel = inModel
            modelSegments = segments.count
            for (i, s) in segments.enumerated() { segmentIndex[s] = i }
        }

        func index(of segment: String?) -> Int {
            guard let segment else { return ReportBuilder.none }
            if let i = segmentIndex[segment] { mentioned.insert(i); return i }
            segments.append(segment)
            segmentIndex[segment] = segments.count - 1
            mentioned.insert(segments.count - 1)
            return segments.count - 1
        }
    }

    struct GroupState {
        var current = ReportBuilder.unseen
        /// When the contact entered `current`; nil when that is before what the input shows.
        var enteredAt: Millis?
        var lastAt: Millis = .min
        var lastId: String?
        /// Every (time, segment entered) with `--events`, to find the segment at an event's time.
        var history: [(at: Millis, segment: Int)] = []
    }

    struct ContactState {
        var groups: [GroupState] = []
    }

    public init(options: ReportOptions) {
        self.options = options
        for g in options.catalog.groups {
            groupIndex[g.name] = groups.count
            groups.append(GroupTally(name: g.name, segments: g.segments, isFlag: g.isFlag, inModel: true))
        }
    }

    /// Reads one non-empty line; a line that is not a transition is counted and its reason
    /// returned (the caller reports it with `lineNumber`).
    @discardableResult
    public func add(line: Data, lineNumber: Int) -> TransitionLineError? {
        input.lines += 1
        switch parser.parse(line) {
        case let .success(record):
            input.transitions += 1
            add(record)
            return nil
        case let .failure(error):
            input.badLines += 1
            if input.badLineSamples.count < options.badLineSamples {
                input.badLineSamples.append(BadLine(line: lineNumber, reason: error.message))
            }
            return error
        }
    }

    private func group(named name: String) -> Int {
        if let i = groupIndex[name] { return i }
        groupIndex[name] = groups.count
        groups.append(GroupTally(name: name, segments: [], isFlag: false, inModel: false))
        return groups.count - 1
    }

    /// Applies one transition.
    public func add(_ record: TransitionRecord) {
        if let until = options.until, record.at > until {
            input.afterPeriod += 1
            return
        }
        let g = group(named: record.group)
        let tally = groups[g]
        let c: Int
        if let i = contactIndex[record.contactId] {
            c = i
        } else {
            c = contacts.count
            contactIndex[record.contactId] = c
            contacts.append(ContactState())
        }
        if contacts[c].groups.count <= g {
            contacts[c].groups += Array(repeating: GroupState(), count: g + 1 - contacts[c].groups.count)
        }
        var state = contacts[c].groups[g]
        if let id = record.id, id == state.lastId {
            input.duplicatesSkipped += 1
            return
        }
        let from = tally.index(of: record.from)
        let to = tally.index(of: record.to)
        let beforePeriod = options.since.map { record.at < $0 } ?? false

        var previous: Int
        if state.current == Self.unseen {
            previous = from
            if from != Self.none {
                // The input starts after this contact entered `from`: it was there all along.
                input.startedInsideSegment += 1
                tally.initial[from, default: 0] += 1
            }
        } else {
            previous = state.current
            if from != previous { input.chainBreaks += 1 }
        }
        if record.at < state.lastAt { input.outOfOrder += 1 }

        let day = CalendarDays.day(of: record.at)
        if beforePeriod {
            input.beforePeriod += 1
            if state.current != Self.unseen || previous != Self.none { tally.initial[previous, default: 0] -= 1 }
            tally.initial[to, default: 0] += 1
        } else {
            if state.current != Self.unseen || previous != Self.none { tally.deltas[DayKey(day: day, segment: previous), default: 0] -= 1 }
            tally.deltas[DayKey(day: day, segment: to), default: 0] += 1
            if to != Self.none { tally.entries[DayKey(day: day, segment: to), default: 0] += 1 }
            if previous != Self.none {
                tally.exits[DayKey(day: day, segment: previous), default: 0] += 1
                if let entered = state.enteredAt, options.since.map({ entered >= $0 }) ?? true {
                    tally.stays[previous, default: StayDurations()].addEnded(max(0, record.at - entered))
                }
            }
            tally.flows[FlowKey(from: previous, to: to), default: 0] += 1
            tally.transitionsInPeriod += 1
            firstAt = min(firstAt, record.at)
            lastAt = max(lastAt, record.at)
            if let v = record.modelVersion {
                let seen = versions[v] ?? (0, record.at, record.at)
                versions[v] = (seen.count + 1, min(seen.first, record.at), max(seen.last, record.at))
            }
            causes[record.causeKind ?? "unknown", default: 0] += 1
        }
        state.current = to
        state.enteredAt = to == Self.none ? nil : record.at
        state.lastAt = max(state.lastAt, record.at)
        state.lastId = record.id
        if options.engagement != nil { state.history.append((record.at, to)) }
        contacts[c].groups[g] = state
    }

    /// The figures, over the period.
    public func finish() -> SegmentReport {
        let reported = reportedGroups()
        let since = options.since ?? (firstAt == .max ? nil : firstAt)
        let until = options.until ?? (lastAt == .min ? nil : lastAt)
        var report = SegmentReport(
            period: nil, input: input, segmentOrder: segmentOrder(), minSize: options.minSize,
            contacts: contacts.count, modelVersions: modelVersions(), causes: causeCounts(),
            groups: [], overlaps: [], flags: [], engagement: nil)
        guard let since, let until, since <= until else {
            report.groups = reported.map { emptyFigures(groups[$0]) }
            report.flags = flags(report.groups)
            return report
        }
        let firstDay = CalendarDays.day(of: since), lastDay = CalendarDays.day(of: until)
        let firstMonday = CalendarDays.monday(onOrBefore: firstDay)
        let weekCount = Int((lastDay - firstMonday) / 7) + 1
        report.period = Period(
            since: EventTime.format(since), until: EventTime.format(until),
            days: (firstDay...lastDay).map(CalendarDays.label(ofDay:)),
            weeks: (0..<weekCount).map { w in
                let monday = firstMonday + Int64(w) * 7
                let inside = min(monday + 6, lastDay) - max(monday, firstDay) + 1
                return Week(start: CalendarDays.label(ofDay: monday), daysInPeriod: Int(inside))
            })
        addOpenStays(since: since, until: until)
        report.groups = reported.map { figures(groups[$0], firstDay: firstDay, lastDay: lastDay, firstMonday: firstMonday, weeks: weekCount) }
        report.flags = flags(report.groups)
        report.overlaps = overlaps(reported)
        if let measures = options.engagement { report.engagement = engagement(measures, report.groups, reported) }
        return report
    }

    /// Whether the catalog applies: given, or assumed and matching a version seen.
    private var catalogApplies: Bool {
        !options.catalogIsAssumed || options.catalog.modelVersion.map { versions[$0] != nil } ?? false
    }

    private func segmentOrder() -> String {
        if options.catalog.groups.isEmpty { return options.catalog.origin }
        if catalogApplies { return options.catalog.origin }
        let seen = versions.keys.sorted().joined(separator: ", ")
        return "the transitions (their model version \(seen.isEmpty ? "is unknown" : seen) is not \(options.catalog.modelVersion ?? "the assumed model"))"
    }

    /// Group indexes to report: all, or without an assumed catalog's groups and segments the
    /// transitions never name.
    private func reportedGroups() -> [Int] {
        if catalogApplies { return Array(groups.indices) }
        return groups.indices.filter { !groups[$0].mentioned.isEmpty }
    }

    private func reportedSegments(_ t: GroupTally) -> [Int] {
        if catalogApplies { return Array(t.segments.indices) }
        return t.segments.indices.filter { t.mentioned.contains($0) }
    }

    private func addOpenStays(since: Millis, until: Millis) {
        for contact in contacts {
            for (g, state) in contact.groups.enumerated() where state.current >= 0 {
                guard let entered = state.enteredAt, entered >= since else { continue }
                groups[g].stays[state.current, default: StayDurations()].addOpen(until - entered)
            }
        }
    }

    private func emptyFigures(_ t: GroupTally) -> GroupFigures {
        GroupFigures(
            name: t.name, isFlag: t.isFlag, inModel: t.inModel, transitionsInPeriod: 0, contacts: 0,
            segments: reportedSegments(t).map { s in
                SegmentFigures(
                    name: t.segments[s], inModel: s < t.modelSegments, size: 0, sizeAtStart: 0, dailySize: [],
                    entries: 0, exits: 0, weeklyEntries: [], weeklyExits: [], belowMinSize: options.minSize > 0,
                    nobodyEntered: true, timeInSegment: StayDurations().figures)
            },
            noSegment: NoSegmentFigures(size: 0, dailySize: []), flows: [])
    }

    private func figures(_ t: GroupTally, firstDay: Int64, lastDay: Int64, firstMonday: Int64, weeks: Int) -> GroupFigures {
        let days = Int(lastDay - firstDay) + 1
        func daily(_ s: Int) -> [Int] {
            var size = t.initial[s] ?? 0
            return (0..<days).map { d in
                size += t.deltas[DayKey(day: firstDay + Int64(d), segment: s)] ?? 0
                return size
            }
        }
        func weekly(_ counts: [DayKey: Int], _ s: Int) -> [Int] {
            var out = Array(repeating: 0, count: weeks)
            for (key, n) in counts where key.segment == s {
                out[Int((key.day - firstMonday) / 7)] += n
            }
            return out
        }
        let segments = reportedSegments(t).map { s -> SegmentFigures in
            let sizes = daily(s)
            let size = sizes.last ?? 0
            let entries = weekly(t.entries, s), exits = weekly(t.exits, s)
            let entered = entries.reduce(0, +)
            return SegmentFigures(
                name: t.segments[s], inModel: s < t.modelSegments, size: size, sizeAtStart: t.initial[s] ?? 0,
                dailySize: sizes, entries: entered, exits: exits.reduce(0, +), weeklyEntries: entries,
                weeklyExits: exits, belowMinSize: size < options.minSize, nobodyEntered: entered == 0,
                timeInSegment: (t.stays[s] ?? StayDurations()).figures)
        }
        let noSegment = daily(Self.none)
        let name = { (s: Int) in s == Self.none ? nil : t.segments[s] }
        let flows = t.flows.sorted { a, b in
            a.value != b.value ? a.value > b.value : (a.key.from, a.key.to) < (b.key.from, b.key.to)
        }.map { Flow(from: name($0.key.from), to: name($0.key.to), count: $0.value) }
        let inSegments = segments.reduce(0) { $0 + $1.size }
        return GroupFigures(
            name: t.name, isFlag: t.isFlag, inModel: t.inModel, transitionsInPeriod: t.transitionsInPeriod,
            contacts: inSegments + (noSegment.last ?? 0), segments: segments,
            noSegment: NoSegmentFigures(size: noSegment.last ?? 0, dailySize: noSegment), flows: flows)
    }

    private func flags(_ figures: [GroupFigures]) -> [SegmentFlag] {
        figures.flatMap { g in
            g.segments.flatMap { s -> [SegmentFlag] in
                var out: [SegmentFlag] = []
                if s.nobodyEntered { out.append(SegmentFlag(group: g.name, segment: s.name, kind: .nobodyEntered, size: s.size)) }
                if s.belowMinSize { out.append(SegmentFlag(group: g.name, segment: s.name, kind: .belowMinSize, size: s.size)) }
                return out
            }
        }
    }

    private func modelVersions() -> [ModelVersionUse] {
        versions.sorted { $0.value.first != $1.value.first ? $0.value.first < $1.value.first : $0.key < $1.key }.map {
            ModelVersionUse(version: $0.key, transitions: $0.value.count, firstAt: EventTime.format($0.value.first), lastAt: EventTime.format($0.value.last))
        }
    }

    private func causeCounts() -> [CauseCount] {
        causes.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map { CauseCount(kind: $0.key, transitions: $0.value) }
    }

    private func overlaps(_ reported: [Int]) -> [Overlap] {
        let pairs: [(Int, Int)]
        if let wanted = options.overlapPairs {
            pairs = wanted.compactMap { p in
                guard let r = groupIndex[p.rows], let c = groupIndex[p.columns], reported.contains(r), reported.contains(c) else { return nil }
                return (r, c)
            }
        } else if let first = reported.first {
            pairs = reported.dropFirst().filter { !groups[$0].isFlag && groups[$0].segments.count > 1 }.map { (first, $0) }
        } else {
            pairs = []
        }
        return pairs.map { overlap(rows: $0.0, columns: $0.1) }
    }

    private func overlap(rows r: Int, columns c: Int) -> Overlap {
        let rowSegments = reportedSegments(groups[r]), columnSegments = reportedSegments(groups[c])
        // Position of each segment index in the matrix; "no segment" is the last row/column.
        var rowAt: [Int: Int] = [Self.none: rowSegments.count]
        for (i, s) in rowSegments.enumerated() { rowAt[s] = i }
        var columnAt: [Int: Int] = [Self.none: columnSegments.count]
        for (i, s) in columnSegments.enumerated() { columnAt[s] = i }
        var counts = Array(repeating: Array(repeating: 0, count: columnSegments.count + 1), count: rowSegments.count + 1)
        for contact in contacts {
            let inRow = contact.groups.count > r ? contact.groups[r].current : Self.unseen
            let inColumn = contact.groups.count > c ? contact.groups[c].current : Self.unseen
            if inRow == Self.unseen && inColumn == Self.unseen { continue }
            guard let i = rowAt[max(inRow, Self.none)], let j = columnAt[max(inColumn, Self.none)] else { continue }
            counts[i][j] += 1
        }
        return Overlap(
            rowGroup: groups[r].name, columnGroup: groups[c].name,
            rows: rowSegments.map { groups[r].segments[$0] } + [nil],
            columns: columnSegments.map { groups[c].segments[$0] } + [nil], counts: counts)
    }
}

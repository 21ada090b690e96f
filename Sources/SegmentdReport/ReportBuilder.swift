import Foundation
import SegmentdEngine

/// Reconstructs segment membership from transitions and accumulates what the figures need
/// (`finish()`, in ReportBuilder+Figures.swift, turns it into a `SegmentReport`).
///
/// A contact's segment in a group is the `to` of its latest transition there (transitions of
/// one contact arrive in order; contacts interleave freely). Sizes come from per-day deltas,
/// so they are exact at the end of every day whatever the order across contacts.
public final class ReportBuilder {
    public let options: ReportOptions
    var input = InputSummary()
    private let parser = TransitionLineParser()

    /// Groups by index: the catalog's first, then any other the transitions name.
    var groups: [GroupTally] = []
    var groupIndex: [String: Int] = [:]
    var contactIndex: [String: Int] = [:]
    var contacts: [ContactState] = []

    /// Engagement (`--events`): per group, per segment index (`none` too), a count per measure.
    var engagementCounts: [[Int: [Int]]] = []
    var engagementRead = 0
    var engagementNotUsable = 0
    var engagementCounted = 0
    var engagementWithoutSegments = 0

    /// Transitions in the period by model version and by cause, and their first and last `at`.
    var versions: [String: (count: Int, first: Millis, last: Millis)] = [:]
    var causes: [String: Int] = [:]
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
}

/// What the engine answers about its contacts (segment sizes, memberships, clocks, `explain`),
/// and the interpreted evaluator behind `explain`: it walks the model's `Condition`s directly,
/// so a property test can check it against the compiled program the hot path uses.
extension EngineCore {
    // MARK: queries

    /// Makes room for `n` contacts in the contact table at once (restore knows how many come).
    mutating func reserveContacts(_ n: Int) { contacts.reserve(n) }

    /// How many contacts are in each segment: `[group][segment]`, counted over the rows.
    func segmentSizes() -> [[Int]] {
        var sizes = model.groups.map { Array(repeating: 0, count: $0.segments.count) }
        for idx in 0..<rows.count {
            let m = UInt64(bitPattern: rows.row(idx)[StateLayout.members]) & layout.membersMask
            for g in 0..<sizes.count {
                let v = Int((m >> UInt64(g * 8)) & 0xFF)
                if v != 0 { sizes[g][v - 1] += 1 }
            }
        }
        return sizes
    }

    /// How full the contacts' event lists and scored-event lists are: their slots, those that
    /// hold an entry, and those whose entry no window can count again: its time plus the
    /// longest window reading its list is at or before the contact's clock (rule 2), and no
    /// evaluation is ever before the clock. (Not the cursor: timers fire boundaries up to the
    /// watermark, and an event later than the clock but before the cursor is evaluated at its
    /// time.) What a compact row could leave out, measured.
    func listOccupancy() -> ListOccupancy {
        var occupancy = ListOccupancy()
        let places = model.lists.map { (capacity: $0.capacity, window: $0.windows.max() ?? 0) }
            + layout.scoreLists.map { (capacity: $0.capacity, window: $0.window) }
        for idx in 0..<rows.count {
            let row = rows.row(idx)
            let clock = max(row[StateLayout.maxTs], row[StateLayout.lastTransition])
            for (list, place) in places.enumerated() {
                occupancy.slots += place.capacity
                for k in 0..<place.capacity {
                    let ts = list < layout.lists.count ? layout.listTime(row, list, k) : layout.scoredEvent(row, list - layout.lists.count, k)?.ts ?? SegmentEngine.none
                    if ts == SegmentEngine.none { continue }
                    occupancy.held += 1
                    if ts + place.window <= clock {
                        occupancy.outsideEveryWindow += 1
                        if k == 0 { occupancy.newestOutsideEveryWindow += 1 }
                    }
                }
            }
        }
        return occupancy
    }

    /// Current memberships of a contact (segment index per group, nil for none).
    func memberships(of contactId: [UInt8]) -> [Int?]? {
        guard let idx = contacts.find(contactId) else { return nil }
        let m = UInt64(bitPattern: rows.row(idx)[StateLayout.members]) & layout.membersMask
        return (0..<model.groups.count).map { g in
            let v = Int((m >> UInt64(g * 8)) & 0xFF)
            return v == 0 ? nil : v - 1
        }
    }

    /// The contact's clock (contract §4 rule 2) and the next instant time alone could change it.
    func clock(of contactId: [UInt8]) -> (clock: Millis, next: Millis?)? {
        guard let idx = contacts.find(contactId) else { return nil }
        let row = rows.row(idx)
        let clock = max(row[StateLayout.maxTs], row[StateLayout.lastTransition])
        let nb = nextBoundary(row, after: max(clock, row[StateLayout.cursor]))
        return (clock, nb == SegmentEngine.unscheduled ? nil : nb)
    }

    /// The contact's first boundary after `c` and the one after it as one scan finds them
    /// (`CompiledProgram.nextBoundaryAndInputs`), and the boundary after the first as a scan
    /// from there finds it: a timer's evaluation relies on the two being the same.
    func boundaryScans(_ contactId: [UInt8], after c: Millis) -> (first: Millis, following: Millis, scannedAfterFirst: Millis)? {
        guard let idx = contacts.find(contactId) else { return nil }
        let row = rows.row(idx)
        let one = CompiledProgram.nextBoundaryAndInputs(program, row, after: c)
        let again = one.instant == SegmentEngine.unscheduled ? SegmentEngine.unscheduled : nextBoundary(row, after: one.instant)
        return (one.instant, one.following, again)
    }

    /// The segment of every group at `t` (default: the contact's cursor, the instant of its
    /// latest evaluation) by both evaluators: the compiled one that makes transitions and the
    /// interpreted one behind `explain`. They must always agree; a property test checks it.
    func segmentsByBothEvaluators(_ contactId: [UInt8], at t: Millis? = nil) -> (at: Millis, stored: [Int], compiled: [Int], interpreted: [Int])? {
        guard let idx = contacts.find(contactId) else { return nil }
        let row = rows.row(idx)
        let at = t ?? row[StateLayout.cursor]
        var ev = Evaluator(program, row, at, wide)
        let stored = UInt64(bitPattern: row[StateLayout.members]) & layout.membersMask
        let groups = 0..<model.groups.count
        return (at, groups.map { Int((stored >> UInt64($0 * 8)) & 0xFF) - 1 },
                groups.map { ev.segment($0) }, groups.map { segment(of: $0, row, at) })
    }

    /// Why a contact is where it is at `t`: for each group, the segment and the conditions
    /// with their figures.
    func explain(_ contactId: [UInt8], at t: Millis? = nil) -> Explanation? {
        guard let idx = contacts.find(contactId) else { return nil }
        let row = rows.row(idx)
        let clock = max(row[StateLayout.maxTs], row[StateLayout.lastTransition])
        let at = t ?? clock
        var groups: [Explanation.Group] = []
        for (g, spec) in model.groups.enumerated() {
            let seg = segment(of: g, row, at)
            var lines: [String] = []
            if let u = spec.unless {
                lines.append("unless \(describe(u, row, at))")
            }
            for (i, s) in spec.segments.enumerated() {
                let ok = holds(s.when, row, at)
                lines.append("\(ok ? "✓" : "✗") \(s.name): \(describe(s.when, row, at))")
                if i == seg { break }
            }
            groups.append(.init(name: spec.name, segment: seg < 0 ? nil : spec.segments[seg].name, reasons: lines))
        }
        let nb = nextBoundary(row, after: at)
        return Explanation(contactId: contacts.idString(idx), at: at, clock: clock,
                           firstSeen: row[StateLayout.firstSeen],
                           nextChange: nb == SegmentEngine.unscheduled ? nil : nb, groups: groups)
    }

    func describe(_ c: Condition, _ row: Row, _ t: Millis) -> String {
        switch c {
        case .always: return "always"
        case let .atLeast(list, count, window):
            let n = countInWindow(row, list, t, window)
            let name = model.filterNames[model.lists[list].filter] ?? "filter#\(model.lists[list].filter)"
            let latest = layout.listTime(row, list, 0)
            let latestText = latest == SegmentEngine.none ? "never" : EventTime.format(latest)
            return "\(min(n, count))\(n >= layout.lists[list].capacity ? "+" : "") of at least \(count) '\(name)' in the last \(DurationSpec(millis: window)) (latest \(latestText))"
        case let .firstSeenAtLeast(age):
            let fs = row[StateLayout.firstSeen]
            return "first seen \(fs == SegmentEngine.none ? "never" : EventTime.format(fs)), at least \(DurationSpec(millis: age)) ago: \(holds(c, row, t))"
        case let .latestIs(tracker, tags, negated):
            let latest = pair(row + layout.trackers[tracker].offset)
            let names = model.latest[tracker].filters.map { model.filterNames[$0] ?? "filter#\($0)" }
            let wanted = tags.map { names[$0] }.joined(separator: "/")
            guard let latest else { return "latest of \(names.joined(separator: ", ")): none; \(negated ? "is not" : "is") \(wanted): \(negated)" }
            return "latest of \(names.joined(separator: ", ")) is '\(names[Int(latest.value)])' at \(EventTime.format(latest.ts)); \(negated ? "is not" : "is") \(wanted): \(holds(c, row, t))"
        case let .attributeIn(a, values):
            let p = pair(row + layout.attributeOffsets[a])
            let spec = model.attributes[a]
            let cur: String
            if let p { cur = spec.kind == .integer ? "\(p.value)" : "'\(strings.string(p.value))'" } else { cur = "unset" }
            let vals = values.map { v -> String in switch v { case .int(let i): return "\(i)"; case .string(let s): return s } }
            return "\(spec.name) is \(cur), in [\(vals.joined(separator: ", "))]: \(holds(c, row, t))"
        case let .attributeBetween(a, low, high):
            let cur = pair(row + layout.attributeOffsets[a]).map { "\($0.value)" } ?? "unset"
            return "\(model.attributes[a].name) is \(cur), in \(low)..\(high): \(holds(c, row, t))"
        case let .daysActive(list, count, days):
            let spec = model.dayLists[list], l = layout.dayLists[list]
            let today = model.calendar.day(t)
            let active = (0..<l.capacity).filter { row[l.offset + $0] != SegmentEngine.none && row[l.offset + $0] > today - Int64(days) }.count
            let latest = row[l.offset] == SegmentEngine.none ? "never" : String(EventTime.format(model.calendar.start(ofDay: row[l.offset])).prefix(10))
            let name = model.filterNames[spec.filter] ?? FilterSignature.of(model, spec.filter)
            return "\(min(active, count))\(active >= l.capacity ? "+" : "") of at least \(count) days with '\(name)' among the last \(days) days (\(model.calendar.identifier); latest day starting \(latest)): \(active >= count)"
        case let .sum(list, events, window, bound, atLeast):
            let spec = model.sums[list]
            let total = CompiledProgram.sum(row + layout.sumLists[list].offset, events: events, after: t - window)
            let name = model.filterNames[spec.filter] ?? "filter#\(spec.filter)"
            return "sum of \(model.propKeys[spec.propKey]) over the last \(events) '\(name)' in the last \(DurationSpec(millis: window)) is \(total), \(atLeast ? "at least" : "at most") \(bound): \(holds(c, row, t))"
        case let .dateWindow(a, from, to):
            let cur = pair(row + layout.attributeOffsets[a], date: true).map { EventTime.format($0.value) } ?? "unset"
            let name = model.attributes[a].name
            let window: String
            switch (from, to) {
            case (.some(0), nil): window = "now at or after \(name)"
            case (nil, .some(0)): window = "now before \(name)"
            case let (.some(f), .some(0)): window = "now within \(DurationSpec(millis: -f)) before \(name)"
            case let (.some(0), .some(d)): window = "now within \(DurationSpec(millis: d)) after \(name)"
            default: window = "now in [\(name) + \(from ?? .min) ms, \(name) + \(to ?? .max) ms)"
            }
            return "\(name) is \(cur), \(window): \(holds(c, row, t))"
        case let .scoreAtLeast(s, threshold):
            let sc = score(s, row, t)
            let parts = zip(model.scores[s].parts, sc.parts).map { "\($0.name) \($1)/\($0.cap)" }.joined(separator: " + ")
            return "\(model.scores[s].name) = \(parts) = \(sc.total), at least \(threshold): \(sc.total >= threshold)"
        case .all(let cs): return "all(" + cs.map { describe($0, row, t) }.joined(separator: "; ") + ")"
        case .any(let cs): return "any(" + cs.map { describe($0, row, t) }.joined(separator: "; ") + ")"
        case .not(let x): return "not(" + describe(x, row, t) + ")"
        }
    }

    // MARK: the interpreted evaluator

    /// The segment of group `g` at `t` (-1: none).
    func segment(of g: Int, _ row: Row, _ t: Millis) -> Int {
        let group = model.groups[g]
        if let u = group.unless, holds(u, row, t) { return -1 }
        for (i, s) in group.segments.enumerated() where holds(s.when, row, t) { return i }
        return -1
    }

    func holds(_ c: Condition, _ row: Row, _ t: Millis) -> Bool {
        switch c {
        case .always: return true
        case let .atLeast(list, count, window):
            return countInWindow(row, list, t, window) >= count
        case let .firstSeenAtLeast(age):
            let fs = row[StateLayout.firstSeen]
            return fs != SegmentEngine.none && fs <= t - age
        case let .latestIs(tracker, tags, negated):
            // With no such event at all, neither `is` nor `is_not` holds (never subscribed nor
            // unsubscribed is not suppressed).
            guard let p = pair(row + layout.trackers[tracker].offset) else { return false }
            return tags.contains(Int(p.value)) != negated
        case let .attributeIn(a, values):
            guard let p = pair(row + layout.attributeOffsets[a]) else { return false }
            let v = p.value
            for lit in values {
                switch lit {
                case .int(let i): if v == i { return true }
                case .string(let s): if let id = strings.existingId(s), id == v { return true }
                }
            }
            return false
        case let .attributeBetween(a, low, high):
            guard let p = pair(row + layout.attributeOffsets[a]) else { return false }
            return p.value >= low && p.value <= high
        case let .sum(list, events, window, bound, atLeast):
            let total = CompiledProgram.sum(row + layout.sumLists[list].offset, events: events, after: t - window)
            return atLeast ? total >= bound : total <= bound
        case let .daysActive(list, count, days):
            let today = model.calendar.day(t)
            let l = layout.dayLists[list]
            var active = 0
            for k in 0..<l.capacity where row[l.offset + k] != SegmentEngine.none && row[l.offset + k] > today - Int64(days) { active += 1 }
            return active >= count
        case let .dateWindow(a, from, to):
            guard let p = pair(row + layout.attributeOffsets[a], date: true) else { return false }
            return (from.map { t >= p.value + $0 } ?? true) && (to.map { t < p.value + $0 } ?? true)
        case let .scoreAtLeast(score, threshold):
            return self.score(score, row, t).total >= threshold
        case .all(let cs): return cs.allSatisfy { holds($0, row, t) }
        case .any(let cs): return cs.contains { holds($0, row, t) }
        case .not(let x): return !holds(x, row, t)
        }
    }

    func countInWindow(_ row: Row, _ list: Int, _ t: Millis, _ window: Millis) -> Int {
        var n = 0
        while n < layout.lists[list].capacity {
            let v = layout.listTime(row, list, n)
            if v == SegmentEngine.none || v <= t - window { break }
            n += 1
        }
        return n
    }

    /// A score at `t`, with each part's capped value.
    func score(_ s: Int, _ row: Row, _ t: Millis) -> (total: Int, parts: [Int]) {
        let spec = model.scores[s]
        var total = 0
        var parts: [Int] = []
        for (pi, p) in spec.parts.enumerated() {
            var v = 0
            for term in p.staticTerms where holds(term.when, row, t) { v += term.points }
            if let sl = layout.scoreListIndex[s][pi] {
                var k = 0
                while k < layout.scoreLists[sl].capacity {
                    guard let e = layout.scoredEvent(row, sl, k), e.ts > t - p.window else { break }
                    v += Int(e.points)
                    k += 1
                }
            }
            v = min(v, p.cap)
            parts.append(v)
            total += v
        }
        return (total, parts)
    }
}

/// Slots of the contacts' event lists and scored-event lists, summed over contacts
/// (`SegmentEngine.listOccupancy()`).
public struct ListOccupancy: Sendable, Equatable {
    public var slots = 0
    /// Slots holding an entry.
    public var held = 0
    /// Entries no window of the model can count again.
    public var outsideEveryWindow = 0
    /// Of those, the newest entry of its list (what `explain` shows as the latest).
    public var newestOutsideEveryWindow = 0

    public init(slots: Int = 0, held: Int = 0, outsideEveryWindow: Int = 0, newestOutsideEveryWindow: Int = 0) {
        self.slots = slots
        self.held = held
        self.outsideEveryWindow = outsideEveryWindow
        self.newestOutsideEveryWindow = newestOutsideEveryWindow
    }
}

/// What `explain` reports about one contact.
public struct Explanation: Sendable {
    public struct Group: Sendable {
        public var name: String
        public var segment: String?
        public var reasons: [String]
    }
    public var contactId: String
    public var at: Millis
    public var clock: Millis
    public var firstSeen: Millis
    public var nextChange: Millis?
    public var groups: [Group]
}

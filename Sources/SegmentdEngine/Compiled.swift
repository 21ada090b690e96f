/// The model's conditions, scores, groups and boundaries compiled into flat tables of small
/// trivial structs, for the engine's hot path.
///
/// `Condition` is an indirect enum: walking it retains and releases its boxes on every
/// evaluation, and `attributeIn` would look string literals up by value each time. Here each
/// group is one *branching program*: a run of leaf tests (`Step`), each naming the step to go to
/// when it holds and when it does not, and ending in the group's segment. `all`, `any`, `not`,
/// `always` and the order of the segments and of `unless` are compiled into those jumps, so an
/// evaluation is one loop over the tests it needs, with no recursion and no child lists.
/// Literal strings are interned once at engine start, list conditions know their byte offset in
/// a contact's row, and the tables live in memory allocated once and never reference-counted
/// on the hot path. The semantics are exactly those of `SegmentEngine.holds` / `score` /
/// `nextBoundary`, which `explain` still uses (a property test compares the two evaluators).
struct CompiledProgram {
    enum Op: UInt8 { case atLeast, firstSeen, latestIs, attrIn, attrBetween, dateWindow, sum, daysActive, score }

    /// Where a step goes next: another step (its index, 0 or more), or the end of the program
    /// with a result (`Target.exit`: negative). A group's program ends in 0 for no segment and
    /// k + 1 for its segment k (the `members` byte); a score term's in 1 (holds) or 0.
    enum Target {
        @inline(__always) static func exit(_ result: Int) -> Int32 { ~Int32(result) }
        @inline(__always) static func result(_ target: Int32) -> Int { Int(~target) }
    }

    /// One leaf test of a branching program, and where to go after it.
    struct Step {
        var op: Op
        var negated: Bool = false
        /// atLeast: byte offset of the list's N-th entry (`EventTimes`); latestIs / attr*: slot
        /// offset; score: score index.
        var a: Int32 = 0
        /// atLeast: count; sum: events added up; attrIn: first literal.
        var b: Int32 = 0
        /// atLeast: window; firstSeen: age; latestIs: tag mask; attrBetween: low; score: threshold;
        /// attrIn: end of literals; dateWindow: from (`Int64.min`: unbounded).
        var x: Int64 = 0
        /// attrBetween: high; dateWindow: to (`Int64.max`: unbounded); sum: the bound's `Double`
        /// bits (`negated`: at most, else at least).
        var y: Int64 = 0
        /// The next step (or exit) when the test holds, and when it does not.
        var onTrue: Int32 = 0
        var onFalse: Int32 = 0
    }

    struct Part {
        var cap: Int64
        var termStart: Int32, termEnd: Int32
        /// Byte offsets of the part's scored-event times and points (`EventTimes`), or -1.
        var listOff: Int32
        var pointsOff: Int32
        var listCap: Int32
        var window: Int64
    }

    /// A static score term: its points, and where its condition's program starts (a step, or
    /// an exit when the condition is decided without a test).
    struct Term { var points: Int64; var entry: Int32 }

    /// A scored-event list (its times from byte `off`), whose every entry changes its part's
    /// sum when it leaves the window, at its time + `window`.
    struct BoundarySource { var off: Int32; var cap: Int32; var window: Int64; var input: UInt64 }

    /// The one list entry whose leaving can change an "at least N of F within W" condition:
    /// the list is newest first, so the condition holds exactly while its N-th newest entry
    /// (at byte `off`) is in the window, and changes only at that entry's time + W. The newer
    /// entries leaving change a count but never the condition, so they are not boundaries.
    struct EntryBoundary: Equatable { var off: Int32; var window: Int64; var input: UInt64 }

    /// A date attribute (time slot `off`, instant at `off + 1`) whose condition changes at
    /// instant + `offset`.
    struct DateBoundary: Equatable { var off: Int32; var offset: Int64; var input: UInt64 }

    /// A sum condition's entries (two slots each from `off`, the first `events`), each of which
    /// changes the sum when it leaves the window, at its time + `window`.
    struct SumBoundary: Equatable { var off: Int32; var events: Int32; var window: Int64; var input: UInt64 }

    /// The one day whose leaving can change "active on at least N of the last D days": the
    /// N-th newest distinct day (slot `off`) leaves at the start of that day + D.
    struct DayBoundary: Equatable { var off: Int32; var days: Int64; var input: UInt64 }

    private(set) var steps: UnsafeMutableBufferPointer<Step>
    private(set) var literals: UnsafeMutableBufferPointer<Int64>
    private(set) var parts: UnsafeMutableBufferPointer<Part>
    /// Score s has parts `scoreParts[s] ..< scoreParts[s + 1]`.
    private(set) var scoreParts: UnsafeMutableBufferPointer<Int32>
    private(set) var terms: UnsafeMutableBufferPointer<Term>
    /// Per group, where its program starts.
    private(set) var groupEntries: UnsafeMutableBufferPointer<Int32>
    private(set) var sources: UnsafeMutableBufferPointer<BoundarySource>
    private(set) var entryBoundaries: UnsafeMutableBufferPointer<EntryBoundary>
    /// The boundaries of sums, distinct days and dates, and the model's days, behind one
    /// pointer (nil when the model has none): the program stays a small value of plain
    /// pointers and integers, which the hot path reads without reference counting.
    struct LanguageTables {
        var sums: UnsafeMutableBufferPointer<SumBoundary>
        var days: UnsafeMutableBufferPointer<DayBoundary>
        var dates: UnsafeMutableBufferPointer<DateBoundary>
        /// This engine's days (its own cache of the model's calendar).
        let calendar: DayCache
    }
    let language: UnsafeMutablePointer<LanguageTables>?
    /// Per group, the inputs (`InputBits`) its segments and `unless` read.
    private(set) var groupInputs: UnsafeMutableBufferPointer<UInt64>
    /// Every group's bit: the groups an evaluation must compute when anything may have changed.
    let allGroups: UInt64
    let firstSeenInput: UInt64
    private(set) var ages: UnsafeMutableBufferPointer<Int64>
    let scoreCount: Int
    /// Where rows keep list times.
    let times: EventTimes

    static func copy<T>(_ a: [T]) -> UnsafeMutableBufferPointer<T> {
        let p = UnsafeMutableBufferPointer<T>.allocate(capacity: max(1, a.count))
        _ = p.initialize(from: a)
        return UnsafeMutableBufferPointer(rebasing: p[0..<a.count])
    }

    /// `intern` gives the id of a string literal, as the engine stores string attribute values.
    init(model: Model, layout: StateLayout, intern: (String) -> Int64) {
        var steps: [Step] = []
        var lits: [Int64] = []
        var entryBoundaries: [EntryBoundary] = []
        var dateBoundaries: [DateBoundary] = []
        var sumBoundaries: [SumBoundary] = []
        var dayBoundaries: [DayBoundary] = []
        let bits = InputBits(layout: layout)
        /// The program of `c` that goes on to `onTrue` when it holds and to `onFalse` when it
        /// does not: where it starts. Built backwards, each test in front of what follows it,
        /// so children are tested in the model's order and stop as soon as the result is known.
        func compile(_ c: Condition, onTrue: Int32, onFalse: Int32) -> Int32 {
            var n: Step
            switch c {
            case .always: return onTrue
            case let .atLeast(list, count, window):
                let nth = Int32(layout.lists[list].entries + (count - 1) * layout.times.width)
                n = Step(op: .atLeast, a: nth, b: Int32(count), x: window)
                let boundary = EntryBoundary(off: nth, window: window, input: bits.list(list))
                if !entryBoundaries.contains(boundary) { entryBoundaries.append(boundary) }
            case let .firstSeenAtLeast(age): n = Step(op: .firstSeen, x: age)
            case let .latestIs(tracker, tags, negated):
                var mask: Int64 = 0
                for t in tags { mask |= 1 << Int64(t) }
                n = Step(op: .latestIs, negated: negated, a: Int32(layout.trackers[tracker].offset), x: mask)
            case let .attributeIn(a, values):
                let start = Int32(lits.count)
                for v in values {
                    switch v {
                    case .int(let i): lits.append(i)
                    case .string(let s): lits.append(intern(s))
                    }
                }
                n = Step(op: .attrIn, a: Int32(layout.attributeOffsets[a]), b: start, x: Int64(lits.count))
            case let .attributeBetween(a, low, high):
                n = Step(op: .attrBetween, a: Int32(layout.attributeOffsets[a]), x: low, y: high)
            case let .sum(list, events, window, bound, atLeast):
                let off = Int32(layout.sumLists[list].offset)
                n = Step(op: .sum, negated: !atLeast, a: off, b: Int32(events), x: window, y: Int64(bitPattern: bound.bitPattern))
                let boundary = SumBoundary(off: off, events: Int32(events), window: window, input: bits.sumList(list))
                if !sumBoundaries.contains(boundary) { sumBoundaries.append(boundary) }
            case let .daysActive(list, count, days):
                let off = Int32(layout.dayLists[list].offset)
                n = Step(op: .daysActive, a: off, b: Int32(count), x: Int64(days))
                let boundary = DayBoundary(off: off + Int32(count) - 1, days: Int64(days), input: bits.dayList(list))
                if !dayBoundaries.contains(boundary) { dayBoundaries.append(boundary) }
            case let .dateWindow(a, from, to):
                let off = Int32(layout.attributeOffsets[a])
                n = Step(op: .dateWindow, a: off, x: from ?? .min, y: to ?? .max)
                for offset in [from, to].compactMap({ $0 }) {
                    let boundary = DateBoundary(off: off, offset: offset, input: bits.attribute(a))
                    if !dateBoundaries.contains(boundary) { dateBoundaries.append(boundary) }
                }
            case let .scoreAtLeast(score, threshold):
                n = Step(op: .score, a: Int32(score), x: Int64(threshold))
            case .all(let cs):
                var entry = onTrue
                for child in cs.reversed() { entry = compile(child, onTrue: entry, onFalse: onFalse) }
                return entry
            case .any(let cs):
                var entry = onFalse
                for child in cs.reversed() { entry = compile(child, onTrue: onTrue, onFalse: entry) }
                return entry
            case .not(let x):
                return compile(x, onTrue: onFalse, onFalse: onTrue)
            }
            n.onTrue = onTrue
            n.onFalse = onFalse
            steps.append(n)
            return Int32(steps.count - 1)
        }
        var parts: [Part] = []
        var scoreParts: [Int32] = [0]
        var terms: [Term] = []
        for (s, spec) in model.scores.enumerated() {
            for (pi, p) in spec.parts.enumerated() {
                let ts = Int32(terms.count)
                for term in p.staticTerms { terms.append(Term(points: Int64(term.points), entry: compile(term.when, onTrue: Target.exit(1), onFalse: Target.exit(0)))) }
                var off: Int32 = -1, pointsOff: Int32 = -1, cap: Int32 = 0
                if let sl = layout.scoreListIndex[s][pi] {
                    off = Int32(layout.scoreLists[sl].entries)
                    pointsOff = Int32(layout.scoreLists[sl].points)
                    cap = Int32(layout.scoreLists[sl].capacity)
                }
                parts.append(Part(cap: Int64(p.cap), termStart: ts, termEnd: Int32(terms.count), listOff: off, pointsOff: pointsOff, listCap: cap, window: p.window))
            }
            scoreParts.append(Int32(parts.count))
        }
        func inputs(_ c: Condition) -> UInt64 {
            switch c {
            case .always: return 0
            case let .atLeast(list, _, _): return bits.list(list)
            case let .sum(list, _, _, _, _): return bits.sumList(list)
            case let .daysActive(list, _, _): return bits.dayList(list)
            case .firstSeenAtLeast: return bits.firstSeen
            case let .latestIs(tracker, _, _): return bits.tracker(tracker)
            case let .attributeIn(a, _), let .attributeBetween(a, _, _), let .dateWindow(a, _, _): return bits.attribute(a)
            case let .scoreAtLeast(score, _):
                var used: UInt64 = 0
                for (pi, part) in model.scores[score].parts.enumerated() {
                    for term in part.staticTerms { used |= inputs(term.when) }
                    if let sl = layout.scoreListIndex[score][pi] { used |= bits.scoreList(sl) }
                }
                return used
            case .all(let cs), .any(let cs): return cs.reduce(0) { $0 | inputs($1) }
            case .not(let x): return inputs(x)
            }
        }
        var groupInputs: [UInt64] = []
        for g in model.groups {
            groupInputs.append(g.segments.reduce(g.unless.map(inputs) ?? 0) { $0 | inputs($1.when) })
        }
        // A group: `unless` first (holding: no segment), then each segment's condition in
        // order (the first that holds wins), then no segment.
        var groupEntries: [Int32] = []
        for g in model.groups {
            var entry = Target.exit(0)
            for (k, segment) in g.segments.enumerated().reversed() {
                entry = compile(segment.when, onTrue: Target.exit(k + 1), onFalse: entry)
            }
            if let unless = g.unless { entry = compile(unless, onTrue: Target.exit(0), onFalse: entry) }
            groupEntries.append(entry)
        }
        var sources: [BoundarySource] = []
        for (j, l) in layout.scoreLists.enumerated() {
            sources.append(BoundarySource(off: Int32(l.entries), cap: Int32(l.capacity), window: l.window, input: bits.scoreList(j)))
        }
        self.steps = CompiledProgram.copy(steps)
        self.literals = CompiledProgram.copy(lits)
        self.parts = CompiledProgram.copy(parts)
        self.scoreParts = CompiledProgram.copy(scoreParts)
        self.terms = CompiledProgram.copy(terms)
        self.groupEntries = CompiledProgram.copy(groupEntries)
        self.sources = CompiledProgram.copy(sources)
        self.entryBoundaries = CompiledProgram.copy(entryBoundaries)
        if sumBoundaries.isEmpty && dayBoundaries.isEmpty && dateBoundaries.isEmpty && model.dayLists.isEmpty {
            self.language = nil
        } else {
            let tables = UnsafeMutablePointer<LanguageTables>.allocate(capacity: 1)
            tables.initialize(to: LanguageTables(sums: CompiledProgram.copy(sumBoundaries), days: CompiledProgram.copy(dayBoundaries),
                                                 dates: CompiledProgram.copy(dateBoundaries), calendar: DayCache(model.calendar)))
            self.language = tables
        }
        self.groupInputs = CompiledProgram.copy(groupInputs)
        self.allGroups = model.groups.count >= 64 ? ~0 : (1 << UInt64(model.groups.count)) - 1
        self.firstSeenInput = bits.firstSeen
        self.ages = CompiledProgram.copy(layout.ages)
        self.scoreCount = model.scores.count
        self.times = layout.times
    }

    func deallocate() {
        for p in [UnsafeMutableRawPointer(steps.baseAddress),
                  UnsafeMutableRawPointer(literals.baseAddress), UnsafeMutableRawPointer(parts.baseAddress),
                  UnsafeMutableRawPointer(scoreParts.baseAddress), UnsafeMutableRawPointer(terms.baseAddress),
                  UnsafeMutableRawPointer(groupEntries.baseAddress),
                  UnsafeMutableRawPointer(sources.baseAddress), UnsafeMutableRawPointer(ages.baseAddress),
                  UnsafeMutableRawPointer(entryBoundaries.baseAddress), UnsafeMutableRawPointer(groupInputs.baseAddress)] {
            p?.deallocate()
        }
        if let language {
            language.pointee.sums.baseAddress?.deallocate()
            language.pointee.days.baseAddress?.deallocate()
            language.pointee.dates.baseAddress?.deallocate()
            language.deinitialize(count: 1)
            language.deallocate()
        }
    }
}

/// Evaluation of a compiled program over one contact's row at one instant.
///
/// A score is computed at most once per evaluation (the lead score is asked for by two
/// segments): `scoreValid` marks the cached ones. Scores must fit in 64 cached entries.
struct Evaluator {
    let p: UnsafePointer<CompiledProgram>
    let row: UnsafePointer<Int64>
    let t: Millis
    /// Latest-of and attribute pairs that do not fit their packed slot.
    unowned(unsafe) let wide: WideSlots
    /// The row's list times count from `timesBase` + 1 (`EventTimes`).
    let timesBase: Millis
    var scoreValid: UInt64 = 0
    var scores: (Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64) = (0, 0, 0, 0, 0, 0, 0, 0)

    init(_ p: UnsafePointer<CompiledProgram>, _ row: UnsafePointer<Int64>, _ t: Millis, _ wide: WideSlots) {
        self.p = p
        self.row = row
        self.t = t
        self.wide = wide
        timesBase = EventTimes.base(UnsafeRawPointer(row), p.pointee.times.baseByte) &- 1
    }

    /// Group `g`'s `members` byte at `t`: 0 for no segment, k + 1 for segment k.
    @inline(__always)
    mutating func member(_ g: Int) -> Int { run(p.pointee.groupEntries[g]) }

    /// The segment of group `g` at `t` (-1: none).
    @inline(__always)
    mutating func segment(_ g: Int) -> Int { member(g) - 1 }

    /// Runs a program from `entry` to its exit: its result (`CompiledProgram.Target`).
    @inline(__always)
    mutating func run(_ entry: Int32) -> Int {
        var at = entry
        while at >= 0 {
            let step = p.pointee.steps.baseAddress! + Int(at)
            at = test(step) ? step.pointee.onTrue : step.pointee.onFalse
        }
        return CompiledProgram.Target.result(at)
    }

    /// `PackedPair.read` of the slot at `off`, with the packed and empty cases first: `wide`
    /// (whose use retains and releases it) is touched only for an escaped slot.
    @inline(__always)
    func pair(_ off: Int32) -> (ts: Int64, value: Int64)? {
        let s = row[Int(off)]
        if s >= 0 { return (s >> PackedPair.valueBits, s & PackedPair.valueMask) }
        if s == SegmentEngine.none { return nil }
        return PackedPair.read(row + Int(off), wide)
    }

    /// Whether the leaf test of `step` holds at `t`.
    @inline(__always)
    mutating func test(_ step: UnsafePointer<CompiledProgram.Step>) -> Bool {
        let n = step.pointee
        let none = SegmentEngine.none
        switch n.op {
        case .atLeast:
            // The list is newest first: at least `count` in the window iff the count-th is.
            let s = EventTimes.stored(UnsafeRawPointer(row), Int(n.a), p.pointee.times.mask)
            return s != 0 && timesBase &+ Int64(bitPattern: s) > t - n.x
        case .firstSeen:
            let fs = row[StateLayout.firstSeen]
            return fs != none && fs <= t - n.x
        case .latestIs:
            // With no such event at all, neither `is` nor `is_not` holds.
            guard let pair = pair(n.a) else { return false }
            let tag = pair.value
            return (tag < 64 && (n.x >> tag) & 1 != 0) != n.negated
        case .attrIn:
            guard let pair = pair(n.a) else { return false }
            let v = pair.value
            var k = Int(n.b)
            while k < Int(n.x) {
                if p.pointee.literals[k] == v { return true }
                k += 1
            }
            return false
        case .attrBetween:
            guard let pair = pair(n.a) else { return false }
            let v = pair.value
            return v >= n.x && v <= n.y
        case .daysActive:
            // Newest first: at least `count` of the last `days` days iff the count-th is.
            let v = row[Int(n.a) + Int(n.b) - 1]
            return v != none && v > p.pointee.language!.pointee.calendar.day(t) - n.x
        case .sum:
            let total = CompiledProgram.sum(row + Int(n.a), events: Int(n.b), after: t - n.x)
            let bound = Double(bitPattern: UInt64(bitPattern: n.y))
            return n.negated ? total <= bound : total >= bound
        case .dateWindow:
            // Two plain slots: the time it was set (none: unset), the instant.
            if row[Int(n.a)] == none { return false }
            let instant = row[Int(n.a) + 1]
            return (n.x == .min || t >= instant + n.x) && (n.y == .max || t < instant + n.y)
        case .score:
            return score(Int(n.a)) >= n.x
        }
    }

    mutating func score(_ s: Int) -> Int64 {
        if s < 8 {
            if scoreValid & (1 << UInt64(s)) != 0 {
                return withUnsafeBytes(of: &scores) { $0.load(fromByteOffset: s * 8, as: Int64.self) }
            }
            let v = compute(s)
            withUnsafeMutableBytes(of: &scores) { $0.storeBytes(of: v, toByteOffset: s * 8, as: Int64.self) }
            scoreValid |= 1 << UInt64(s)
            return v
        }
        return compute(s)
    }

    /// The score's total: each part's static terms plus its in-window scored events, capped.
    mutating func compute(_ s: Int) -> Int64 {
        var total: Int64 = 0
        var pi = Int(p.pointee.scoreParts[s])
        let pe = Int(p.pointee.scoreParts[s + 1])
        while pi < pe {
            let part = p.pointee.parts[pi]
            var v: Int64 = 0
            var k = Int(part.termStart)
            while k < Int(part.termEnd) {
                let term = p.pointee.terms[k]
                if run(term.entry) == 1 { v += term.points }
                k += 1
            }
            if part.listOff >= 0 {
                let raw = UnsafeRawPointer(row)
                let times = p.pointee.times
                let lo = t - part.window
                var at = Int(part.listOff), pointsAt = Int(part.pointsOff)
                var j = 0
                while j < Int(part.listCap) {
                    let s = EventTimes.stored(raw, at, times.mask)
                    if s == 0 || timesBase &+ Int64(bitPattern: s) <= lo { break }
                    v += EventTimes.points(raw, pointsAt, times.pointsMask)
                    at &+= times.width
                    pointsAt &+= times.pointsWidth
                    j += 1
                }
            }
            total += min(v, part.cap)
            pi += 1
        }
        return total
    }
}

extension CompiledProgram {
    /// The sum of the values of a sum list's first `events` entries (two slots each, newest
    /// first) whose time is after `lo`, added newest first: the one definition both evaluators use.
    @inline(__always)
    static func sum(_ entries: UnsafePointer<Int64>, events: Int, after lo: Millis) -> Double {
        var total = 0.0
        var j = 0
        while j < events {
            let ts = entries[2 * j]
            if ts == SegmentEngine.none || ts <= lo { break }
            total += Double(bitPattern: UInt64(bitPattern: entries[2 * j + 1]))
            j += 1
        }
        return total
    }

    /// The groups that read any of `inputs`: after an event, only they can have changed.
    @inline(__always)
    func groups(reading inputs: UInt64) -> UInt64 {
        var touched: UInt64 = 0
        for g in 0..<groupInputs.count where groupInputs[g] & inputs != 0 { touched |= 1 << UInt64(g) }
        return touched
    }

    // The boundary functions are static over a pointer to the program: a method of the
    // program called through `program.pointee` where it was not inlined got a copy of the
    // whole program (280 bytes, a memcpy) at every call.

    /// The first boundary after `c` (`nextBoundary`), the inputs (`InputBits`) that change
    /// exactly there (only the groups reading them can change at that instant), and the
    /// boundary after that one (`following`; `unscheduled`: none). Asked where boundaries are
    /// evaluated; where one is only sought (a timer), `nextBoundary` is cheaper. An evaluation
    /// changes no list and not first seen, so once the first is evaluated the next boundary is
    /// `following`, without another scan.
    @inline(__always)
    static func nextBoundaryAndInputs(_ program: UnsafePointer<CompiledProgram>, _ row: UnsafePointer<Int64>,
                                      after c: Millis) -> (instant: Millis, inputs: UInt64, following: Millis) {
        var best = SegmentEngine.unscheduled
        var following = SegmentEngine.unscheduled
        var changing: UInt64 = 0
        forEachBoundary(program, row, after: c) { instant, input in
            if instant < best {
                following = best
                best = instant
                changing = input
            } else if instant == best {
                changing |= input
            } else if instant < following {
                following = instant
            }
        }
        return (best, changing, following)
    }

    /// The first instant after `c` at which time alone can change the membership of the
    /// contact in `row`, or `.max`.
    @inline(__always)
    static func nextBoundary(_ program: UnsafePointer<CompiledProgram>, _ row: UnsafePointer<Int64>, after c: Millis) -> Millis {
        var best = SegmentEngine.unscheduled
        forEachBoundary(program, row, after: c) { instant, _ in
            if instant < best { best = instant }
        }
        return best
    }

    /// Every boundary of the contact in `row` after `c`, with the input that changes there:
    /// an "at least N" condition's N-th newest entry leaving its window, a scored event
    /// leaving its part's window, first seen reaching an age. Instants at which nothing can
    /// change are not boundaries, so no timer is set for them. Lists are newest first, so a
    /// scored list's scan stops at the first entry whose boundary is not after `c`. The one
    /// definition of boundaries that `nextBoundary` and `nextBoundaryAndInputs` share.
    @inline(__always)
    private static func forEachBoundary(_ program: UnsafePointer<CompiledProgram>, _ row: UnsafePointer<Int64>, after c: Millis,
                                        _ visit: (Millis, UInt64) -> Void) {
        let raw = UnsafeRawPointer(row)
        let times = program.pointee.times
        let base = EventTimes.base(raw, times.baseByte) &- 1
        for e in program.pointee.entryBoundaries {
            let v = EventTimes.stored(raw, Int(e.off), times.mask)
            if v == 0 { continue }
            let b = base &+ Int64(bitPattern: v) &+ e.window
            if b > c { visit(b, e.input) }
        }
        for s in program.pointee.sources {
            var at = Int(s.off)
            var k = 0
            while k < Int(s.cap) {
                let v = EventTimes.stored(raw, at, times.mask)
                if v == 0 { break }
                let b = base &+ Int64(bitPattern: v) &+ s.window
                if b <= c { break }
                visit(b, s.input)
                at &+= times.width
                k += 1
            }
        }
        if let language = program.pointee.language { CompiledProgram.forEachLanguageBoundary(language, row, after: c, visit) }
        let fs = row[StateLayout.firstSeen]
        if fs != SegmentEngine.none {
            for age in program.pointee.ages {
                let b = fs + age
                if b > c { visit(b, program.pointee.firstSeenInput) }
            }
        }
    }

    /// The boundaries of sums (every entry of the first `events` leaving its window), of
    /// distinct days (the N-th newest day leaving, at the start of a local day) and of dates.
    @inline(__always)
    private static func forEachLanguageBoundary(_ language: UnsafeMutablePointer<LanguageTables>, _ row: UnsafePointer<Int64>,
                                                after c: Millis, _ visit: (Millis, UInt64) -> Void) {
        for s in language.pointee.sums {
            let off = Int(s.off)
            var k = 0
            while k < Int(s.events) {
                let ts = row[off + 2 * k]
                if ts == SegmentEngine.none { break }
                let b = ts + s.window
                if b <= c { break }
                visit(b, s.input)
                k += 1
            }
        }
        for d in language.pointee.days where row[Int(d.off)] != SegmentEngine.none {
            let b = language.pointee.calendar.start(ofDay: row[Int(d.off)] + d.days)
            if b > c { visit(b, d.input) }
        }
        for d in language.pointee.dates where row[Int(d.off)] != SegmentEngine.none {
            let b = row[Int(d.off) + 1] + d.offset
            if b > c { visit(b, d.input) }
        }
    }
}

/// Where an applied event goes in a contact's row, flattened from `StateLayout` into plain
/// memory allocated once (freed by the engine): inserting reads no arrays, so it retains
/// nothing and checks no bounds per event.
struct InsertPlan {
    /// `bit`: the filter's bit in an event's filter mask; `input`: the state's `InputBits` bit.
    /// `off`: the byte offset of the list's times (`EventTimes`); a scored list's points from `pointsOff`.
    struct List { var off: Int32; var cap: Int32; var bit: UInt64; var input: UInt64 }
    struct Scored { var off: Int32; var pointsOff: Int32; var cap: Int32; var scoreCap: Int64; var termStart: Int32; var termEnd: Int32; var input: UInt64 }
    struct Term { var bit: UInt64; var points: Int64 }
    struct Tracker { var off: Int32; var bitStart: Int32; var bitEnd: Int32; var input: UInt64 }
    struct Sum { var off: Int32; var cap: Int32; var input: UInt64 }
    struct Days { var off: Int32; var cap: Int32; var bit: UInt64; var input: UInt64 }

    let lists: UnsafeMutableBufferPointer<List>
    /// Per sum list (the index an event's `SummedValues` names).
    let sums: UnsafeMutableBufferPointer<Sum>
    let days: UnsafeMutableBufferPointer<Days>
    /// The program's day cache (nil without day lists), kept alive by the program's tables.
    unowned(unsafe) let calendar: DayCache?
    /// Whether `days` or `sums` has anything (one test on the hot path).
    let hasDaysOrSums: Bool
    let scored: UnsafeMutableBufferPointer<Scored>
    let times: EventTimes
    let terms: UnsafeMutableBufferPointer<Term>
    let trackers: UnsafeMutableBufferPointer<Tracker>
    let trackerBits: UnsafeMutableBufferPointer<UInt64>
    /// Each attribute's slot offset in the row, and whether it is a date (two plain slots).
    let attributeOffsets: UnsafeMutableBufferPointer<Int>
    let attributeIsDate: UnsafeMutableBufferPointer<Bool>
    let inputs: InputBits

    init(layout: StateLayout, calendar: DayCache?) {
        let inputs = InputBits(layout: layout)
        self.inputs = inputs
        self.calendar = calendar
        days = CompiledProgram.copy(layout.dayLists.enumerated().map { Days(off: Int32($1.offset), cap: Int32($1.capacity), bit: $1.bit, input: inputs.dayList($0)) })
        hasDaysOrSums = !layout.dayLists.isEmpty || !layout.sumLists.isEmpty
        lists = CompiledProgram.copy(layout.lists.enumerated().map { List(off: Int32($1.entries), cap: Int32($1.capacity), bit: $1.bit, input: inputs.list($0)) })
        sums = CompiledProgram.copy(layout.sumLists.enumerated().map { Sum(off: Int32($1.offset), cap: Int32($1.capacity), input: inputs.sumList($0)) })
        var scored: [Scored] = []
        var terms: [Term] = []
        for (j, s) in layout.scoreLists.enumerated() {
            let start = Int32(terms.count)
            for (bit, p) in s.terms { terms.append(Term(bit: bit, points: p)) }
            scored.append(Scored(off: Int32(s.entries), pointsOff: Int32(s.points), cap: Int32(s.capacity), scoreCap: s.cap, termStart: start, termEnd: Int32(terms.count), input: inputs.scoreList(j)))
        }
        self.scored = CompiledProgram.copy(scored)
        self.times = layout.times
        self.terms = CompiledProgram.copy(terms)
        var trackers: [Tracker] = []
        var bits: [UInt64] = []
        for (k, t) in layout.trackers.enumerated() {
            let start = Int32(bits.count)
            bits.append(contentsOf: t.bits)
            trackers.append(Tracker(off: Int32(t.offset), bitStart: start, bitEnd: Int32(bits.count), input: inputs.tracker(k)))
        }
        self.trackers = CompiledProgram.copy(trackers)
        self.trackerBits = CompiledProgram.copy(bits)
        self.attributeOffsets = CompiledProgram.copy(layout.attributeOffsets)
        self.attributeIsDate = CompiledProgram.copy(layout.attributeIsDate)
    }

    func deallocate() {
        for p in [UnsafeMutableRawPointer(lists.baseAddress), UnsafeMutableRawPointer(sums.baseAddress), UnsafeMutableRawPointer(days.baseAddress), UnsafeMutableRawPointer(scored.baseAddress),
                  UnsafeMutableRawPointer(terms.baseAddress), UnsafeMutableRawPointer(trackers.baseAddress),
                  UnsafeMutableRawPointer(trackerBits.baseAddress), UnsafeMutableRawPointer(attributeOffsets.baseAddress),
                  UnsafeMutableRawPointer(attributeIsDate.baseAddress)] {
            p?.deallocate()
        }
    }
}

/// One bit per piece of a contact's state that conditions read (each event list, scored list,
/// latest-of tracker and attribute, and first seen), so that an event's changes and a group's
/// inputs can be compared as masks. With more than 64 pieces, bits are shared (index modulo
/// 64): a shared bit can only make more groups be evaluated than needed, never fewer.
struct InputBits {
    private let sumListBase: Int, dayListBase: Int, scoreListBase: Int, trackerBase: Int, attributeBase: Int, firstSeenIndex: Int

    init(layout: StateLayout) {
        sumListBase = layout.lists.count
        dayListBase = sumListBase + layout.sumLists.count
        scoreListBase = dayListBase + layout.dayLists.count
        trackerBase = scoreListBase + layout.scoreLists.count
        attributeBase = trackerBase + layout.trackers.count
        firstSeenIndex = attributeBase + layout.attributeOffsets.count
    }

    @inline(__always) private static func bit(_ index: Int) -> UInt64 { 1 << UInt64(index % 64) }
    func list(_ i: Int) -> UInt64 { InputBits.bit(i) }
    func scoreList(_ j: Int) -> UInt64 { InputBits.bit(scoreListBase + j) }
    func sumList(_ j: Int) -> UInt64 { InputBits.bit(sumListBase + j) }
    func dayList(_ j: Int) -> UInt64 { InputBits.bit(dayListBase + j) }
    func tracker(_ k: Int) -> UInt64 { InputBits.bit(trackerBase + k) }
    func attribute(_ a: Int) -> UInt64 { InputBits.bit(attributeBase + a) }
    var firstSeen: UInt64 { InputBits.bit(firstSeenIndex) }
}

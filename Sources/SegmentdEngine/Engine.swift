/// Counters the engine keeps about what it did.
public struct EngineStats: Sendable, Equatable {
    public var eventsApplied = 0
    public var recordsApplied = 0
    public var duplicates = 0
    public var lateEvents = 0
    public var transitions = 0
    public var transitionsByGroup: [Int] = []
}

/// The engine's state and its hot path, as one value owned by `SegmentEngine`.
///
/// Everything mutable lives in this struct, so the per-record path mutates one `inout` value:
/// the compiler checks exclusive access statically, where a class's stored properties would be
/// checked at run time on every access (that cost about 8% of the instructions per event).
/// It holds raw buffers (rows, the compiled program): it is never copied while mutated, and
/// its owner frees them (`deallocate`).
struct EngineCore {
    let model: Model
    let lateness: Millis
    let dedupHorizon: Millis
    let layout: StateLayout

    var contacts = ContactTable()
    /// Every contact's row of `layout.stride` slots, in chunks that never move.
    private var rows: RowStore
    private var timers = TimerHeap()
    private var dedupOverflow = DuplicateOverflow()
    private let wide = WideSlots()
    /// Contacts changed since `takeDirtyContacts()` (their changelog record is due).
    private var dirty: [Int32] = []
    private var sameInstant: [UInt64: Int] = [:]
    /// Attribute strings as small integers (rows hold ids, not strings).
    private var strings = InternTable()
    /// Conditions, scores, groups and boundaries compiled for the hot path (string literals
    /// of attribute conditions are interned once, here).
    private let program: UnsafeMutablePointer<CompiledProgram>
    private let plan: InsertPlan
    /// The latest-of and attribute slots, as snapshots write them (`pairSlots(_:_:)`).
    private let pairSlots: [(offset: Int, isString: Bool, isDate: Bool)]
    /// The model version's bytes, as snapshots carry them.
    private let versionBytes: [UInt8]
    /// How a compact snapshot writes each row slot.
    private let snapshotSlotKinds: [SnapshotCodec.SlotKind]
    /// Where `restore` decodes a snapshot's slots and pairs before it checks them.
    private let restoreScratch: UnsafeMutablePointer<Int64>
    /// The event being applied, for the `cause` of the transitions it makes; its id is copied
    /// into `causeBytes` only when a transition needs it.
    private var curType: UInt8 = 0
    /// The event id's bytes, borrowed from the event for the duration of `apply` only.
    private var curEventId: UnsafeBufferPointer<UInt8>? = nil
    /// Where the current event's id sits in `causeBytes` (start -1: no id), once a transition
    /// of this event needed it.
    private var curEventCause: (start: Int32, end: Int32)? = nil

    /// Largest `ts` of the events applied so far (nil before the first).
    var streamTime: Millis { _streamTime }
    /// No event at or before the watermark is expected any more.
    var watermark: Millis { _watermark }
    var stats: EngineStats { _stats }
    // The storage behind the getters above (and `pending`) is private: the optimizer can then
    // prove that no other code accesses it during an update, and drops the dynamic exclusivity
    // checks that public stored properties of a class cost on every access.
    var _streamTime: Millis = .min
    var _watermark: Millis = .min
    var _stats = EngineStats()
    /// Transitions produced and not yet taken, in emission order, as plain values: the
    /// contact id stays in the contact table, the cause's text in `causeBytes`.
    private var _pending: [PendingTransition] = []
    /// Event ids and model versions the pending transitions' causes name.
    private var causeBytes: [UInt8] = []
    /// Events counted under their contact's segments, when on (`countEngagement`).
    var engagement: EngagementCounts? = nil
    /// Whether transitions wait to be taken.
    // The three below are `mutating` though they change nothing: `SegmentEngine` then reaches
    // them through its modify access to the core, where a read access copies the whole core
    // (576 bytes and a retain of every array) for the call. The daemon calls them at every commit.
    var hasPendingTransitions: Bool { mutating get { !_pending.isEmpty } }

    
    init(model: Model, lateness: Millis = 0, dedupHorizon: Millis = 7 * 86_400_000) {
        self.model = model
        self.lateness = lateness
        self.dedupHorizon = dedupHorizon
        let layout = StateLayout(model: model)
        self.layout = layout
        self.rows = RowStore(stride: layout.stride)
        var table = InternTable()
        self.program = .allocate(capacity: 1)
        self.program.initialize(to: CompiledProgram(model: model, layout: layout) { s in table.id(s) })
        self.plan = InsertPlan(layout: layout, calendar: program.pointee.language?.pointee.calendar)
        self.pairSlots = EngineCore.pairSlots(model, layout)
        self.versionBytes = Array(model.version.utf8)
        self.snapshotSlotKinds = SnapshotCodec.slotKinds(layout, pairSlots: pairSlots)
        self.restoreScratch = .allocate(capacity: layout.stride + 2 * pairSlots.count)
        self.strings = table
        _stats.transitionsByGroup = Array(repeating: 0, count: model.groups.count)
    }

    func deallocate() {
        restoreScratch.deallocate()
        program.pointee.deallocate()
        plan.deallocate()
        program.deinitialize(count: 1)
        program.deallocate()
        rows.deallocate()
    }

    /// Hands each transition produced so far to `body`, in emission order, then forgets them,
    /// keeping the buffers. The views borrow the engine's memory: they are valid only during
    /// the call, and `body` must not call back into the engine. Nothing is allocated or
    /// reference-counted per transition: replay and the benchmarks encode straight from here.
    mutating func drainTransitions(_ body: (TransitionView) -> Void) {
        if _pending.isEmpty { return }
        defer {
            _pending.removeAll(keepingCapacity: true)
            causeBytes.removeAll(keepingCapacity: true)
        }
        causeBytes.withUnsafeBufferPointer { causeText in
            contacts.withIds { ids in
                _pending.withUnsafeBufferPointer { pending in
                    for t in pending {
                        let cause: TransitionView.Cause
                        switch t.kind {
                        case .time: cause = .time
                        case .event:
                            cause = .event(eventId: t.causeStart < 0 ? nil : UnsafeBufferPointer(rebasing: causeText[Int(t.causeStart)..<Int(t.causeEnd)]), type: t.eventType)
                        case .model:
                            cause = .model(previousVersion: UnsafeBufferPointer(rebasing: causeText[Int(t.causeStart)..<Int(t.causeEnd)]))
                        }
                        body(TransitionView(contactId: ids.id(Int(t.contact)), group: Int(t.group),
                                                from: t.from < 0 ? nil : Int(t.from), to: t.to < 0 ? nil : Int(t.to),
                                                at: t.at, n: Int(t.n), cause: cause))
                    }
                }
            }
        }
    }

    /// Takes the transitions produced so far, as owned values.
    mutating func takeTransitions() -> [Transition] {
        if _pending.isEmpty { return [] }
        var taken: [Transition] = []
        taken.reserveCapacity(_pending.count)
        drainTransitions { taken.append($0.transition) }
        return taken
    }

    var contactCount: Int { contacts.count }

    /// Approximate bytes of state held (contact table, slots, timers, duplicate index).
    var stateBytes: Int {
        contacts.footprintBytes + rows.footprintBytes + timers.footprintBytes + dedupOverflow.footprintBytes + wide.map.count * 48
    }

    // MARK: applying records

    /// Applies one input record: one event, or two for a Segment identify with a stage.
    /// Returns false when the record was a duplicate (then nothing changed, not even time).
    /// After the events, the watermark moves and every due boundary of every contact fires.
    @discardableResult
    mutating func apply(_ first: EngineEvent, _ second: EngineEvent? = nil) -> Bool {
        apply(first, second, eventId: first.eventId)
    }

    private mutating func apply(_ first: EngineEvent, _ second: EngineEvent?, eventId: UnsafeBufferPointer<UInt8>?) -> Bool {
        let (idx, inserted) = contacts.findOrInsert(first.contactId)
        if inserted { appendRow() }
        let row = rows.row(idx)
        var idHash: UInt64 = 0
        if let eventId {
            idHash = EngineCore.hashEventId(eventId)
            if !inserted, EngineCore.isDuplicate(idx, row, idHash, layout.dedupOffset, dedupHorizon, dedupOverflow) {
                _stats.duplicates += 1
                return false
            }
        }
        curEventId = eventId
        markDirty(row, idx)
        applyEvent(idx, row, first)
        if let second { applyEvent(idx, row, second) }
        // The borrowed bytes are valid only during this call.
        curEventId = nil
        _stats.recordsApplied += 1
        if eventId != nil { remember(idx, row, idHash) }
        schedule(idx, row)
        let w = _streamTime == .min ? Millis.min : _streamTime - lateness - 1
        advanceWatermark(to: w)
        return true
    }

    /// Appends an empty row for the contact just added to `contacts`.
    private mutating func appendRow() {
        rows.append(layout.emptyState)
        dedupOverflow.addContact()
        timers.addContact()
    }

    private mutating func applyEvent(_ idx: Int, _ row: Row, _ e: EngineEvent) {
        _stats.eventsApplied += 1
        let maxTs = row[StateLayout.maxTs]
        let clock = max(maxTs, row[StateLayout.lastTransition])
        curType = e.type
        curEventCause = nil
        if maxTs == SegmentEngine.none || e.ts >= clock {
            // Rule 3: catch up on every boundary after the clock and strictly before ts.
            var cur = max(row[StateLayout.cursor], clock)
            var boundaryAtTs = false
            while true {
                let b = program.pointee.nextBoundary(row, after: cur)
                if b >= e.ts { boundaryAtTs = b == e.ts; break }
                evaluate(idx, row, at: b, by: .time, groups: program.pointee.groups(reading: program.pointee.inputs(changingAt: b, row)))
                cur = b
            }
            if engagement != nil { countEngagement(row, e.type) }
            let changed = insert(row, e)
            // Every group was evaluated at the instants up to here, and nothing but `changed`
            // and a boundary exactly at ts can make a group differ at ts: evaluate the groups
            // that read what the event changed. A new contact, or a boundary at ts, needs all.
            let groups = maxTs == SegmentEngine.none || boundaryAtTs ? program.pointee.allGroups : program.pointee.groups(reading: changed)
            evaluate(idx, row, at: e.ts, by: .event, groups: groups)
            row[StateLayout.cursor] = e.ts
        } else {
            // Rule 4: a late event is applied at its ts and evaluated at the clock, where every
            // group was already evaluated: only the groups that read what it changed can move.
            _stats.lateEvents += 1
            if engagement != nil { countEngagement(row, e.type) }
            let changed = insert(row, e)
            evaluate(idx, row, at: clock, by: .event, groups: program.pointee.groups(reading: changed))
            row[StateLayout.cursor] = clock
        }
        if e.ts > _streamTime { _streamTime = e.ts }
    }

    /// Counts the event under the segments the contact is in now (see `EngagementCounts`).
    @inline(never)
    private mutating func countEngagement(_ row: Row, _ type: UInt8) {
        engagement!.add(members: UInt64(bitPattern: row[StateLayout.members]) & layout.membersMask, type: type)
    }

    /// Rule 5: moves the watermark (never back) and fires every boundary at or before it.
    /// The daemon also calls this with `now - lateness - 1ms` while a partition is idle, and
    /// replay with `--until`.
    /// Timers at or before the watermark fire even when it did not move: a contact that just
    /// received an event behind the watermark may have boundaries already due.
    mutating func advanceWatermark(to newWatermark: Millis) {
        if newWatermark > _watermark { _watermark = newWatermark }
        let w = _watermark
        while let top = timers.peek(), top.time <= w {
            timers.popMin()
            let idx = Int(top.contact)
            let row = rows.row(idx)
            row[StateLayout.scheduled] = SegmentEngine.unscheduled
            var cur = row[StateLayout.cursor]
            var next: Millis
            while true {
                next = program.pointee.nextBoundary(row, after: cur)
                if next > w { break }
                evaluate(idx, row, at: next, by: .time, groups: program.pointee.groups(reading: program.pointee.inputs(changingAt: next, row)))
                cur = next
            }
            row[StateLayout.cursor] = cur
            // `evaluate` changes no list and not first seen, so `next` is the boundary after
            // the cursor that `schedule(idx, row)` would compute again.
            schedule(idx, row, next: next)
        }
    }

    private mutating func schedule(_ idx: Int, _ row: Row) {
        schedule(idx, row, next: program.pointee.nextBoundary(row, after: row[StateLayout.cursor]))
    }

    /// Schedules the contact's timer at `nb`, its next boundary after its cursor.
    private mutating func schedule(_ idx: Int, _ row: Row, next nb: Millis) {
        if row[StateLayout.scheduled] == nb { return }
        row[StateLayout.scheduled] = nb
        if nb == SegmentEngine.unscheduled {
            timers.remove(contact: Int32(idx))
        } else {
            timers.set(contact: Int32(idx), time: nb)
        }
    }

    // MARK: state updates

    /// Applies the event to the row; returns the `InputBits` of what it may have changed.
    private mutating func insert(_ row: Row, _ e: EngineEvent) -> UInt64 {
        var changed: UInt64 = 0
        let ts = e.ts
        if row[StateLayout.maxTs] == SegmentEngine.none || ts > row[StateLayout.maxTs] {
            row[StateLayout.maxTs] = ts
        }
        let fs = row[StateLayout.firstSeen]
        if fs == SegmentEngine.none || ts < fs {
            row[StateLayout.firstSeen] = ts
            changed |= plan.inputs.firstSeen
        }
        let mask = e.filterMask
        for l in plan.lists where mask & l.bit != 0 {
            EngineCore.insertTime(row + Int(l.off), Int(l.cap), ts)
            changed |= l.input
        }
        if plan.hasDaysOrSums { changed |= EngineCore.insertDaysAndSums(plan, row, e) }
        for s in plan.scored {
            var points: Int64 = 0
            var k = Int(s.termStart)
            while k < Int(s.termEnd) {
                let term = plan.terms[k]
                if mask & term.bit != 0 { points += term.points }
                k += 1
            }
            if points > 0 {
                EngineCore.insertScored(row + Int(s.off), Int(s.cap), ts, points, s.scoreCap)
                changed |= s.input
            }
        }
        for t in plan.trackers {
            var k = Int(t.bitStart)
            while k < Int(t.bitEnd), mask & plan.trackerBits[k] == 0 { k += 1 }
            if k == Int(t.bitEnd) { continue }
            let tag = k - Int(t.bitStart)
            let off = row + Int(t.off)
            if let cur = PackedPair.read(off, wide), ts < cur.ts { continue }
            writePair(off, ts, Int64(tag))
            changed |= t.input
        }
        if e.attributes.isEmpty { return changed }
        for (a, v) in e.attributes {
            let off = row + plan.attributeOffsets[a]
            let isDate = plan.attributeIsDate[a]
            if let cur = pair(off, date: isDate), ts < cur.ts { continue }
            switch v {
            case .int(let i): writePair(off, ts, i, date: isDate)
            case .string(let s): writePair(off, ts, strings.id(bytes: Array(s)))
            }
            changed |= plan.inputs.attribute(a)
        }
        return changed
    }

    /// Stores a latest-of or attribute pair, packed when it fits (see `PackedPair`).
    private mutating func writePair(_ off: Row, _ ts: Int64, _ value: Int64) {
        let key = Int(bitPattern: off)
        if let p = PackedPair.pack(ts, value) {
            if off[0] == PackedPair.escaped { wide.map.removeValue(forKey: key) }
            off[0] = p
        } else {
            off[0] = PackedPair.escaped
            wide.map[key] = (ts, value)
        }
    }

    private func pair(_ off: Row) -> (ts: Int64, value: Int64)? { PackedPair.read(off, wide) }

    /// A date attribute's pair is two plain slots, (time, instant); any other pair one slot.
    @inline(__always)
    private func pair(_ off: Row, date: Bool) -> (ts: Int64, value: Int64)? {
        if date { return off[0] == SegmentEngine.none ? nil : (off[0], off[1]) }
        return PackedPair.read(off, wide)
    }

    private mutating func writePair(_ off: Row, _ ts: Int64, _ value: Int64, date: Bool) {
        if date {
            off[0] = ts
            off[1] = value
        } else {
            writePair(off, ts, value)
        }
    }

    /// Inserts (ts, value) into a newest-first sum list of at most `cap` entries of two slots
    /// (the oldest falls off); an entry goes after those newer than it, before equal times.
    private static func insertValue(_ off: Row, _ cap: Int, _ ts: Int64, _ value: Double) {
        var i = 0
        while i < cap, off[2 * i] != SegmentEngine.none, off[2 * i] > ts { i += 1 }
        if i == cap { return }
        var j = cap - 1
        while j > i {
            off[2 * j] = off[2 * j - 2]
            off[2 * j + 1] = off[2 * j - 1]
            j -= 1
        }
        off[2 * i] = ts
        off[2 * i + 1] = Int64(bitPattern: value.bitPattern)
    }

    /// The distinct days and summed values an event adds; returns the `InputBits` it changed.
    /// Out of line: only models with `days_active` or `sum` reach it.
    @inline(never)
    private static func insertDaysAndSums(_ plan: InsertPlan, _ row: Row, _ e: EngineEvent) -> UInt64 {
        var changed: UInt64 = 0
        var day: Int64? = nil
        for d in plan.days where e.filterMask & d.bit != 0 {
            let local = day ?? plan.calendar!.day(e.ts)
            day = local
            if insertDay(row + Int(d.off), Int(d.cap), local) { changed |= d.input }
        }
        for (index, value) in e.sums {
            let s = plan.sums[index]
            insertValue(row + Int(s.off), Int(s.cap), e.ts, value)
            changed |= s.input
        }
        return changed
    }

    /// Inserts a day into a newest-first list of at most `cap` distinct days (the oldest falls
    /// off); false when the day was there already or is older than every kept day of a full list.
    private static func insertDay(_ off: Row, _ cap: Int, _ day: Int64) -> Bool {
        var i = 0
        while i < cap, off[i] != SegmentEngine.none, off[i] > day { i += 1 }
        if i == cap || off[i] == day { return false }
        var j = cap - 1
        while j > i {
            off[j] = off[j - 1]
            j -= 1
        }
        off[i] = day
        return true
    }

    /// Inserts into a newest-first list of at most `cap` times (the oldest falls off).
    @inline(__always)
    private static func insertTime(_ off: Row, _ cap: Int, _ ts: Int64) {
        var i = 0
        while i < cap, off[i] != SegmentEngine.none, off[i] > ts { i += 1 }
        if i == cap { return }
        var j = cap - 1
        while j > i { off[j] = off[j - 1]; j -= 1 }
        off[i] = ts
    }

    /// Inserts a scored event (ts and points packed) and drops the events that can no longer
    /// matter: once the newest events reach the cap, older ones (which leave the window
    /// first) never change the capped score.
    private static func insertScored(_ off: Row, _ cap: Int, _ ts: Int64, _ points: Int64, _ scoreCap: Int64) {
        let packed = ScoredEvent.pack(ts: ts, points: min(points, scoreCap))
        var i = 0
        while i < cap, off[i] != SegmentEngine.none, ScoredEvent.ts(off[i]) > ts { i += 1 }
        if i == cap { return }
        var j = cap - 1
        while j > i { off[j] = off[j - 1]; j -= 1 }
        off[i] = packed
        var sum: Int64 = 0
        var k = 0
        while k < cap, off[k] != SegmentEngine.none {
            if sum >= scoreCap { off[k] = SegmentEngine.none } else { sum += ScoredEvent.points(off[k]) }
            k += 1
        }
    }

    private mutating func intern(_ s: String) -> Int64 { strings.id(s) }

    // MARK: evaluation

    /// What an evaluation is for: the event being applied, time passing, or a model change.
    private enum EvaluationReason {
        case event
        case time
        case model(previousVersion: String)
    }

    /// Evaluates the groups in `groups` (bit g: group g; default all) at `t` and emits the
    /// changes, with the cause `reason` gives. Segments are computed first, over the row as it
    /// is, then the changes are emitted in group order. A group left out keeps its segment.
    private mutating func evaluate(_ idx: Int, _ row: Row, at t: Millis, by reason: EvaluationReason, groups: UInt64 = ~0) {
        let groupCount = model.groups.count
        let membersMask = layout.membersMask
        var members = UInt64(bitPattern: row[StateLayout.members]) & membersMask
        if groups == 0 { return }
        var ev = Evaluator(program, row, t, wide)
        var segs: UInt64 = 0
        for g in 0..<groupCount {
            let shift = UInt64(g * 8)
            if groups & (1 << UInt64(g)) == 0 {
                segs |= members & (0xFF << shift)
            } else {
                segs |= UInt64(ev.segment(g) + 1) << shift
            }
        }
        if segs == members { return }
        var cause = PendingTransition.Cause(kind: .time, eventType: 0, start: -1, end: -1)
        switch reason {
        case .event:
            if curEventCause == nil {
                if let id = curEventId {
                    let start = Int32(causeBytes.count)
                    causeBytes.append(contentsOf: id)
                    curEventCause = (start, Int32(causeBytes.count))
                } else {
                    curEventCause = (-1, -1)
                }
            }
            cause = .init(kind: .event, eventType: curType, start: curEventCause!.start, end: curEventCause!.end)
        case .time:
            break
        case let .model(previousVersion):
            let start = Int32(causeBytes.count)
            causeBytes.append(contentsOf: previousVersion.utf8)
            cause = .init(kind: .model, eventType: 0, start: start, end: Int32(causeBytes.count))
        }
        for g in 0..<groupCount {
            let shift = UInt64(g * 8)
            let seg = Int((segs >> shift) & 0xFF) - 1
            let cur = Int((members >> shift) & 0xFF) - 1
            guard seg != cur else { continue }
            emit(idx, row, group: g, from: cur < 0 ? nil : cur, to: seg < 0 ? nil : seg, at: t, cause: cause)
            members = (members & ~(0xFF << shift)) | (UInt64(seg + 1) << shift)
        }
        // Re-read the slot: `emit` may have set flag bits that share it.
        row[StateLayout.members] = Int64(bitPattern: (UInt64(bitPattern: row[StateLayout.members]) & ~membersMask) | members)
    }

    private mutating func emit(_ idx: Int, _ row: Row, group g: Int, from: Int?, to: Int?, at t: Millis, cause: PendingTransition.Cause) {
        markDirty(row, idx)
        var n = 0
        let flags = layout.flags
        let bit: Int64 = 1 << (Int64(g) + layout.sameInstantShift)
        if row[StateLayout.lastTransition] == t {
            if row[flags] & bit != 0 {
                let key = UInt64(idx) << 8 | UInt64(g)
                n = (sameInstant[key] ?? 0) + 1
                sameInstant[key] = n
            } else {
                row[flags] |= bit
            }
        } else {
            let old = (row[flags] & layout.sameInstantBits) >> layout.sameInstantShift
            if old & (old - 1) != 0 || !sameInstant.isEmpty {
                for gg in 0..<model.groups.count where old & (1 << Int64(gg)) != 0 {
                    sameInstant.removeValue(forKey: UInt64(idx) << 8 | UInt64(gg))
                }
            }
            row[flags] = (row[flags] & ~layout.sameInstantBits) | bit
            row[StateLayout.lastTransition] = t
        }
        _stats.transitions += 1
        _stats.transitionsByGroup[g] += 1
        _pending.append(PendingTransition(at: t, contact: Int32(idx), n: Int32(n), causeStart: cause.start, causeEnd: cause.end,
                                          group: UInt8(g), from: Int16(from ?? -1), to: Int16(to ?? -1),
                                          kind: cause.kind, eventType: cause.eventType))
    }

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
        let l = layout.lists[list]
        let off = row + l.offset
        var n = 0
        while n < l.capacity {
            let v = off[n]
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
                let l = layout.scoreLists[sl]
                var k = 0
                while k < l.capacity {
                    let e = row[l.offset + k]
                    if e == SegmentEngine.none || ScoredEvent.ts(e) <= t - p.window { break }
                    v += Int(ScoredEvent.points(e))
                    k += 1
                }
            }
            v = min(v, p.cap)
            parts.append(v)
            total += v
        }
        return (total, parts)
    }

    /// The first instant after `c` at which time alone can change this contact's membership
    /// (an event leaving a window, first seen reaching an age), or `.max`.
    func nextBoundary(_ row: Row, after c: Millis) -> Millis {
        program.pointee.nextBoundary(row, after: c)
    }

    // MARK: duplicates

    static func hashEventId(_ s: [UInt8]) -> UInt64 { s.withUnsafeBufferPointer { hashEventId($0) } }

    static func hashEventId(_ s: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for c in s { h = (h ^ UInt64(c)) &* 0x0000_0100_0000_01B3 }
        h ^= h >> 31
        return h == 0 ? 1 : h
    }

    /// An id is remembered with the contact's newest event time when it was applied, and is
    /// caught while that stamp is within `dedupHorizon` of the contact's newest event time:
    /// at least the contact's last 7 days of events by default (the contract asks for 24 hours;
    /// upstream redeliveries can come days late), late ones included. Most contacts fit
    /// in the two slots of their row; busier ones spill into a small per-contact overflow.
    /// (Static, with what it reads passed in: a method reading `self` from the mutating path
    /// would make the compiler copy the whole engine state for the call.)
    private static func isDuplicate(_ idx: Int, _ row: Row, _ h: UInt64, _ dedupOffset: Int, _ horizon: Millis, _ overflow: borrowing DuplicateOverflow) -> Bool {
        let liveAfter = row[StateLayout.maxTs] - horizon
        for k in 0..<StateLayout.dedupSlots {
            let off = row + dedupOffset + 2 * k
            if UInt64(bitPattern: off[0]) == h && off[1] > liveAfter { return true }
        }
        return overflow.contains(contact: idx, hash: h, liveAfter: liveAfter)
    }

    private mutating func remember(_ idx: Int, _ row: Row, _ h: UInt64) { remember(idx, row, h, stamp: row[StateLayout.maxTs]) }

    /// Remembers event id hash `h` for the contact, stamped `stamp` (the contact's newest time
    /// when the id was first applied); entries no longer live at its newest time make room.
    private mutating func remember(_ idx: Int, _ row: Row, _ h: UInt64, stamp: Millis) {
        let liveAfter = row[StateLayout.maxTs] - dedupHorizon
        for k in 0..<StateLayout.dedupSlots {
            let off = row + layout.dedupOffset + 2 * k
            if off[0] == 0 || off[1] <= liveAfter {
                off[0] = Int64(bitPattern: h)
                off[1] = stamp
                return
            }
        }
        dedupOverflow.remember(contact: idx, hash: h, stamp: stamp, liveAfter: liveAfter)
    }

    // MARK: changelog

    @inline(__always)
    private mutating func markDirty(_ row: Row, _ idx: Int) {
        if row[layout.flags] & layout.dirtyBit == 0 {
            row[layout.flags] |= layout.dirtyBit
            dirty.append(Int32(idx))
        }
    }

    /// The contacts whose state changed since the last call (applied events or transitions),
    /// each once: the daemon writes their snapshots to the changelog in the same transaction
    /// as the transitions.
    mutating func takeDirtyContacts() -> [Int] {
        defer { dirty.removeAll(keepingCapacity: true) }
        return dirty.map { i in
            rows.row(Int(i))[layout.flags] &= ~layout.dirtyBit
            return Int(i)
        }
    }

    mutating func contactId(at index: Int) -> [UInt8] { contacts.id(index) }

    /// The partition-level part of the state: stream time and watermark.
    var checkpoint: (streamTime: Millis, watermark: Millis) { (_streamTime, _watermark) }

    mutating func restoreCheckpoint(streamTime: Millis, watermark: Millis) {
        _streamTime = max(_streamTime, streamTime)
        _watermark = max(_watermark, watermark)
    }

    /// The snapshot format written: 3 (compact: variable-length words, times relative to the
    /// newest event time, see `SnapshotCodec`) since the changelog's restore became bound by its
    /// bytes; 2 (8 bytes per word) packed scored events as `ScoredEvent`; 1 (no marker) packed
    /// them with 16 bits. All three are read.
    static let snapshotFormat: Int64 = 3

    /// The slot offsets of the latest-of trackers, then of the attributes, with whether the
    /// value is an interned string.
    private static func pairSlots(_ model: Model, _ layout: StateLayout) -> [(offset: Int, isString: Bool, isDate: Bool)] {
        layout.trackers.map { ($0.offset, false, false) }
            + model.attributes.enumerated().map { (layout.attributeOffsets[$0.offset], $0.element.kind == .string, $0.element.kind == .date) }
    }

    /// Groups `g` of the contact in `row` that have a same-instant count (see `emit`): only a
    /// group whose same-instant bit is set can have one.
    private func sameInstantCounts(_ idx: Int, _ row: Row) -> [(group: Int, n: Int)] {
        let bits = (row[layout.flags] & layout.sameInstantBits) >> layout.sameInstantShift
        if bits == 0 || sameInstant.isEmpty { return [] }
        var counts: [(group: Int, n: Int)] = []
        for g in 0..<model.groups.count where bits & (1 << Int64(g)) != 0 {
            if let n = sameInstant[UInt64(idx) << 8 | UInt64(g)] { counts.append((g, n)) }
        }
        return counts
    }

    /// A contact's whole state as bytes (for the changelog): model version, stride, the row's
    /// slots, then every latest-of and attribute pair written out in full (time, then the tag,
    /// the integer, or the string's bytes), since a packed slot may refer to this process's
    /// interned ids or overflow map. So a snapshot is meaningful to any process. It starts
    /// with the negated format number (`snapshotFormat`). Format 3 (the default) also carries
    /// `tag`, bytes of the caller's that restore ignores (`SegmentEngine.snapshotTag(of:)`
    /// reads them back); format 2 is written only to check that it is still read.
    mutating func snapshot(contact idx: Int, tag: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0),
                           format: Int64 = EngineCore.snapshotFormat) -> [UInt8] {
        precondition(format == 2 || format == 3, "snapshots are written in format 2 or 3")
        let compact = format == 3
        let row = rows.row(idx)
        let maxTs = row[StateLayout.maxTs]
        // In a fixed order (the overflow's own order depends on which blocks other contacts
        // freed), so equal states give equal bytes.
        var overflow = dedupOverflow.entries(contact: idx, liveAfter: maxTs - dedupHorizon)
        if overflow.count > 1 { overflow.sort { ($0.hash, $0.stamp) < ($1.hash, $1.stamp) } }
        let counts = sameInstantCounts(idx, row)
        // A bound on the size first, so the snapshot is written once into its own memory:
        // marker, tag, version, stride, newest time, the slots, the pairs (time, value, or a
        // string), the overflow entries and the same-instant counts, with their counts.
        let words = 8 + layout.stride + 2 * pairSlots.count + 2 * overflow.count + 2 * counts.count
        var extra = tag.count + versionBytes.count
        for (offset, isString, isDate) in pairSlots where isString {
            if let p = pair(row + offset, date: isDate) { extra += strings.bytes(p.value).count }
        }
        let bound = SnapshotWriter.bound(words: words) + extra
        return [UInt8](unsafeUninitializedCapacity: bound) { buffer, written in
            var w = SnapshotWriter(buffer.baseAddress!, compact: compact)
            w.fixed(-format)
            if compact { w.bytes(tag) }
            versionBytes.withUnsafeBytes { w.bytes($0) }
            w.count(layout.stride)
            if compact {
                w.word(maxTs)
                let scoredBase = maxTs &<< ScoredEvent.pointsBits
                for k in 0..<layout.stride {
                    var v = row[k]
                    if k == layout.flags { v &= ~layout.dirtyBit }
                    switch snapshotSlotKinds[k] {
                    case .plain: w.word(v)
                    case .time: w.word(v, base: maxTs)
                    case .scored: w.word(v, base: scoredBase)
                    case .skipped: break
                    }
                }
            } else {
                for k in 0..<layout.stride {
                    var v = row[k]
                    if k == StateLayout.scheduled { v = SegmentEngine.unscheduled }
                    if k == layout.flags { v &= ~layout.dirtyBit }
                    w.fixed(v)
                }
            }
            for (offset, isString, isDate) in pairSlots {
                guard let p = pair(row + offset, date: isDate) else { w.word(SegmentEngine.none); continue }
                w.word(p.ts, base: maxTs)
                if isString { strings.bytes(p.value).withUnsafeBytes { w.bytes($0) } } else { w.word(p.value, base: isDate ? maxTs : 0) }
            }
            w.count(overflow.count)
            for e in overflow { w.fixed(Int64(bitPattern: e.hash)); w.word(e.stamp, base: maxTs) }
            w.count(counts.count)
            for (g, n) in counts { w.count(g); w.count(n) }
            precondition(w.position <= bound, "snapshot size bounded wrongly")
            written = w.position
        }
    }

    typealias SnapshotError = SegmentEngine.SnapshotError

    mutating func restore(contactId: [UInt8], snapshot: [UInt8]) throws(SnapshotError) {
        let result = contactId.withUnsafeBufferPointer { id in
            snapshot.withUnsafeBytes { bytes in Result { () throws(SnapshotError) in try restore(contactId: id, snapshot: bytes) } }
        }
        try result.get()
    }

    /// Restores one contact from `snapshot` (see `snapshot(contact:)`), in any format. The whole
    /// snapshot is read and checked before anything changes: a truncated or corrupt one is
    /// refused and leaves the engine as it was. Nothing is allocated for a contact without
    /// string attributes, event-id overflow or same-instant counts.
    mutating func restore(contactId: UnsafeBufferPointer<UInt8>, snapshot: UnsafeRawBufferPointer) throws(SnapshotError) {
        let truncated = SnapshotError(description: "truncated snapshot")
        var r = SnapshotReader(snapshot, compact: false)
        guard let first = r.fixed() else { throw truncated }
        let format: Int64
        if first < 0 {
            guard first == -2 || first == -3 else {
                throw SnapshotError(description: "snapshot format marker \(first) is not one this version reads (format 1, 2 or 3)")
            }
            format = -first
        } else {
            format = 1
            r.pos = 0
        }
        if format == 3 {
            r = SnapshotReader(snapshot, compact: true)
            r.pos = 8
            guard r.bytes() != nil else { throw truncated }  // the caller's tag
        }
        guard let version = r.bytes(), let stride = r.count() else { throw truncated }
        guard SnapshotCodec.equal(version, versionBytes), stride == Int64(layout.stride) else {
            throw SnapshotError(description: "snapshot of model '\(String(decoding: version, as: UTF8.self))' (\(stride) slots) does not fit model '\(model.version)' (\(layout.stride) slots)")
        }
        let pairCount = pairSlots.count
        // Decoded into the engine's scratch slots (a closure here would keep the reader and the
        // core in memory rather than in registers, for every word).
        let scratch = UnsafeMutableBufferPointer(start: restoreScratch, count: layout.stride + 2 * pairCount)
        let slots = UnsafeMutableBufferPointer(rebasing: scratch[0..<layout.stride])
        // Per pair: its time (none: no pair) and value.
        let pairs = UnsafeMutableBufferPointer(rebasing: scratch[layout.stride...])
        if format == 3 {
            guard let maxTs = r.word() else { throw truncated }
            let scoredBase = maxTs &<< ScoredEvent.pointsBits
            for k in 0..<layout.stride {
                let v: Int64?
                switch snapshotSlotKinds[k] {
                case .plain: v = r.word()
                case .time: v = r.word(base: maxTs)
                case .scored: v = r.word(base: scoredBase)
                case .skipped: v = SegmentEngine.none
                }
                guard let v else { throw truncated }
                slots[k] = v
            }
            slots[StateLayout.maxTs] = maxTs
            slots[StateLayout.scheduled] = SegmentEngine.unscheduled
        } else {
            for k in 0..<layout.stride {
                guard let v = r.fixed() else { throw truncated }
                slots[k] = v
            }
        }
        try checkRestoredSlots(slots, format: format)
        let maxTs = slots[StateLayout.maxTs]
        var strings: [(slot: Int, bytes: UnsafeRawBufferPointer)] = []
        for (slot, (_, isString, isDate)) in pairSlots.enumerated() {
            guard let ts = r.word(base: maxTs) else { throw truncated }
            pairs[2 * slot] = ts
            if ts == SegmentEngine.none { continue }
            try EngineCore.checkEventTime(ts)
            if isString {
                guard let b = r.bytes() else { throw truncated }
                strings.append((slot, b))
            } else {
                guard let v = r.word(base: isDate ? maxTs : 0) else { throw truncated }
                // A latest-of tag names one of its tracker's filters.
                if slot < layout.trackers.count, v < 0 || v >= Int64(layout.trackers[slot].bits.count) {
                    throw SnapshotError(description: "snapshot holds latest-of tag \(v), which the model does not have")
                }
                // A date attribute holds an instant of the years 0000 to 9999.
                if isDate { try EngineCore.checkEventTime(v) }
                pairs[2 * slot + 1] = v
            }
        }
        guard let nOverflow = r.count(), nOverflow >= 0, nOverflow <= Int64(snapshot.count / 9) else { throw truncated }
        var list: [(hash: UInt64, stamp: Millis)] = []
        for _ in 0..<nOverflow {
            guard let h = r.fixed(), let st = r.word(base: maxTs) else { throw truncated }
            try EngineCore.checkEventTime(st)
            // Hash 0 marks an empty entry: `hashEventId` never gives it.
            guard h != 0 else { throw SnapshotError(description: "snapshot holds an event-id fingerprint of 0") }
            list.append((UInt64(bitPattern: h), st))
        }
        guard let nCounts = r.count(), nCounts >= 0, nCounts <= Int64(model.groups.count) else { throw truncated }
        var counts: [(group: Int, n: Int)] = []
        for _ in 0..<nCounts {
            guard let g = r.count(), let n = r.count(), g >= 0, g < Int64(model.groups.count), n >= 0 else { throw truncated }
            counts.append((Int(g), Int(n)))
        }
        // Checked: now the engine changes.
        for (slot, b) in strings { pairs[2 * slot + 1] = self.strings.id(bytes: Array(b)) }
        let (idx, inserted) = contacts.findOrInsert(contactId)
        if inserted { appendRow() }
        let row = rows.row(idx)
        for (offset, _, isDate) in pairSlots where !isDate && row[offset] == PackedPair.escaped {
            wide.map.removeValue(forKey: Int(bitPattern: row + offset))
        }
        row.update(from: slots.baseAddress!, count: layout.stride)
        for (slot, (offset, _, isDate)) in pairSlots.enumerated() {
            row[offset] = SegmentEngine.none
            if isDate { row[offset + 1] = SegmentEngine.none }
            let ts = pairs[2 * slot]
            if ts != SegmentEngine.none { writePair(row + offset, ts, pairs[2 * slot + 1], date: isDate) }
        }
        if !list.isEmpty || !inserted { dedupOverflow.replace(contact: idx, with: list) }
        if !inserted && !sameInstant.isEmpty {
            for g in 0..<model.groups.count { sameInstant.removeValue(forKey: UInt64(idx) << 8 | UInt64(g)) }
        }
        for c in counts { sameInstant[UInt64(idx) << 8 | UInt64(c.group)] = c.n }
        // The row now says "no timer": drop the contact's old one, then set the restored one.
        timers.remove(contact: Int32(idx))
        row[StateLayout.scheduled] = SegmentEngine.unscheduled
        schedule(idx, row)
    }

    // The checks below are static or `mutating`: a non-mutating method of the core called from
    // `restore` gets a copy of the whole core (a retain of every array) for each contact, and a
    // layout or model passed as an argument is copied too.

    /// Every instant a snapshot holds lies in the years 0000 to 9999 (or is none).
    private static func checkEventTime(_ v: Int64) throws(SnapshotError) {
        guard v == SegmentEngine.none || EventTime.isInRange(v) else {
            throw SnapshotError(description: "snapshot holds a time outside the years 0000 to 9999")
        }
    }

    /// Checks a snapshot's row slots against the model; format 1's scored events are repacked
    /// in place.
    private mutating func checkRestoredSlots(_ slots: UnsafeMutableBufferPointer<Int64>, format: Int64) throws(SnapshotError) {
        // Every instant a row holds is an event time or a boundary that fired, and boundaries
        // fire only up to an event time or `--until`: all lie in the years 0000 to 9999.
        try EngineCore.checkEventTime(slots[StateLayout.lastTransition])
        try EngineCore.checkEventTime(slots[StateLayout.maxTs])
        try EngineCore.checkEventTime(slots[StateLayout.firstSeen])
        try EngineCore.checkEventTime(slots[StateLayout.cursor])
        // A contact exists because it applied an event: it has a newest and a first time, in
        // that order, and was evaluated at least once.
        guard slots[StateLayout.maxTs] != SegmentEngine.none, slots[StateLayout.firstSeen] != SegmentEngine.none,
              slots[StateLayout.cursor] != SegmentEngine.none, slots[StateLayout.firstSeen] <= slots[StateLayout.maxTs]
        else {
            throw SnapshotError(description: "snapshot of a contact without applied events (no newest or first time, or first after newest)")
        }
        let members = UInt64(bitPattern: slots[StateLayout.members]) & layout.membersMask
        for g in 0..<8 {
            let segment = Int((members >> UInt64(g * 8)) & 0xFF)
            let segments = g < model.groups.count ? model.groups[g].segments.count : 0
            guard segment <= segments else {
                throw SnapshotError(description: "snapshot puts group \(g) in segment \(segment), which the model does not have")
            }
        }
        for l in layout.lists {
            for k in 0..<l.capacity { try EngineCore.checkEventTime(slots[l.offset + k]) }
        }
        for l in layout.dayLists {
            for k in 0..<l.capacity {
                let day = slots[l.offset + k]
                guard day == SegmentEngine.none || (day >= Millis.earliestEventTime / DayCalendar.dayMs - 2 && day <= Millis.latestEventTime / DayCalendar.dayMs + 2) else {
                    throw SnapshotError(description: "snapshot holds a day outside the years 0000 to 9999")
                }
            }
        }
        for l in layout.sumLists {
            for k in 0..<l.capacity {
                let ts = slots[l.offset + 2 * k], value = slots[l.offset + 2 * k + 1]
                try EngineCore.checkEventTime(ts)
                // An empty entry is (none, none); a value is a finite number.
                guard ts == SegmentEngine.none ? value == SegmentEngine.none : Double(bitPattern: UInt64(bitPattern: value)).isFinite else {
                    throw SnapshotError(description: "snapshot holds a summed value that is not a finite number")
                }
            }
        }
        for l in layout.scoreLists {
            for k in 0..<l.capacity where slots[l.offset + k] != SegmentEngine.none {
                let e = slots[l.offset + k]
                // Format 1 packed `ts << 16 | points`.
                let ts = format == 1 ? e >> 16 : ScoredEvent.ts(e)
                let points = format == 1 ? e & 0xFFFF : ScoredEvent.points(e)
                try EngineCore.checkEventTime(ts)
                slots[l.offset + k] = ScoredEvent.pack(ts: ts, points: min(points, l.cap))
            }
        }
    }

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
            let latest = row[layout.lists[list].offset]
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
}

/// A transition as the engine keeps it until drained: plain values, no references.
struct PendingTransition {
    enum Kind: UInt8 { case event, time, model }
    /// What caused it: the kind, the event's type, and where the event id or previous model
    /// version lies in the engine's cause bytes (start -1: none).
    struct Cause { var kind: Kind; var eventType: UInt8; var start: Int32; var end: Int32 }

    var at: Millis
    var contact: Int32
    var n: Int32
    var causeStart: Int32
    var causeEnd: Int32
    var group: UInt8
    /// Segment index, or -1 for none.
    var from: Int16
    var to: Int16
    var kind: Kind
    var eventType: UInt8
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

// MARK: model change

extension EngineCore {
    /// Moves every contact of `old` (another model) into this engine and re-evaluates it
    /// under this engine's model (contract §5: a model change never loses state).
    ///
    /// State is matched by *meaning*, not position: an event list moves when the new model
    /// counts a filter with the same definition (whatever its name), a score's event list when
    /// its window, cap and terms are the same, a latest-of when it tracks the same filters, an
    /// attribute when it reads the same property of the same event type the same way; current
    /// segments move by group and segment name, duplicate memory and times as they are. What
    /// has no counterpart starts empty: a newly added rule sees the events applied from the
    /// change on (and, for a list whose capacity grew, only the times the old list held).
    ///
    /// Each contact is then evaluated at its clock; changes are emitted there with cause
    /// `model` (naming the previous model's version), and the boundaries between the clock and the watermark
    /// fire again under the new rules, at their true instants.
    mutating func adopt(from old: EngineCore) {
        let plan = AdoptionPlan(new: self, old: old)
        for oi in 0..<old.contacts.count { moveContact(oi, from: old, plan) }
        _streamTime = max(_streamTime, old.streamTime)
        _stats.eventsApplied += old.stats.eventsApplied
        _stats.recordsApplied += old.stats.recordsApplied
        _stats.duplicates += old.stats.duplicates
        _stats.lateEvents += old.stats.lateEvents
        // Re-evaluate every contact at its clock, then let due boundaries fire again.
        for i in 0..<contacts.count { reevaluateAtClock(i, previousVersion: old.model.version) }
        _watermark = .min
        advanceWatermark(to: old.watermark)
    }

    /// Which part of an old model's state each part of this model's takes over, by meaning.
    struct AdoptionPlan {
        var lists: [(new: Int, old: Int?)]
        var scoreLists: [(new: Int, old: Int)]
        var trackers: [(new: Int, old: Int, sig: [String], oldSig: [String])]
        var attributes: [(new: Int, old: Int)]
        var groups: [Int?]
        var dayLists: [(new: Int, old: Int)]
        var sums: [(new: Int, old: Int)]

        init(new: EngineCore, old: EngineCore) {
            let m = new.model, om = old.model
            lists = m.lists.indices.map { i in
                let sig = FilterSignature.of(m, m.lists[i].filter)
                return (i, om.lists.indices.first { FilterSignature.of(om, om.lists[$0].filter) == sig })
            }
            func scoreSig(_ model: Model, _ s: StateLayout.ScoreList, _ part: ScoreSpec.Part) -> String {
                "\(s.window)|\(s.cap)|" + part.eventTerms.map { "\(FilterSignature.of(model, $0.filter))=\($0.points)" }.sorted().joined(separator: ",")
            }
            func scoreParts(_ model: Model, _ layout: StateLayout) -> [String] {
                var out = Array(repeating: "", count: layout.scoreLists.count)
                for (s, row) in layout.scoreListIndex.enumerated() {
                    for (p, li) in row.enumerated() { if let li { out[li] = scoreSig(model, layout.scoreLists[li], model.scores[s].parts[p]) } }
                }
                return out
            }
            let oldScoreSigs = scoreParts(om, old.layout)
            scoreLists = scoreParts(m, new.layout).enumerated().compactMap { si, sig in oldScoreSigs.firstIndex(of: sig).map { (si, $0) } }
            let trackerSig: (Model, Int) -> [String] = { model, t in model.latest[t].filters.map { FilterSignature.of(model, $0) } }
            trackers = m.latest.indices.compactMap { t in
                let sig = trackerSig(m, t)
                return om.latest.indices.first(where: { Set(trackerSig(om, $0)) == Set(sig) }).map { (t, $0, sig, trackerSig(om, $0)) }
            }
            let attrSig: (Model, Int) -> String = { model, a in
                let x = model.attributes[a]
                return "\(x.name)|\(x.fromType)|\(model.propKeys[x.propKey])|\(x.kind)|\(x.caseInsensitive)"
            }
            attributes = m.attributes.indices.compactMap { a in om.attributes.indices.first(where: { attrSig(om, $0) == attrSig(m, a) }).map { (a, $0) } }
            groups = m.groups.map { g in om.groups.firstIndex { $0.name == g.name } }
            // Day numbers mean days of one time zone: day lists move only when it is the same.
            dayLists = m.calendar.identifier != om.calendar.identifier ? [] : m.dayLists.indices.compactMap { i in
                let sig = FilterSignature.of(m, m.dayLists[i].filter)
                return om.dayLists.indices.first { FilterSignature.of(om, om.dayLists[$0].filter) == sig }.map { (i, $0) }
            }
            sums = m.sums.indices.compactMap { i in
                let sig = FilterSignature.of(m, m.sums[i].filter) + "|" + m.propKeys[m.sums[i].propKey]
                return om.sums.indices.first { FilterSignature.of(om, om.sums[$0].filter) + "|" + om.propKeys[om.sums[$0].propKey] == sig }.map { (i, $0) }
            }
        }
    }

    /// Moves old contact `oi`'s state into this engine by meaning (see `adopt(from:)`);
    /// returns its index here. It is not evaluated.
    @discardableResult
    private mutating func moveContact(_ oi: Int, from old: EngineCore, _ plan: AdoptionPlan) -> Int {
        let id = old.contacts.id(oi)
        let (ni, inserted) = contacts.findOrInsert(id)
        if inserted { appendRow() }
        let o = old.rows.row(oi), n = rows.row(ni)
        for k in [StateLayout.maxTs, StateLayout.firstSeen, StateLayout.cursor] { n[k] = o[k] }
        moveMemberships(ni, from: old, oi, plan)
        for (li, oli) in plan.lists {
            guard let oli else { continue }
            let nl = layout.lists[li], ol = old.layout.lists[oli]
            for k in 0..<min(nl.capacity, ol.capacity) { n[nl.offset + k] = o[ol.offset + k] }
        }
        for (di, odi) in plan.dayLists {
            let nl = layout.dayLists[di], ol = old.layout.dayLists[odi]
            for k in 0..<min(nl.capacity, ol.capacity) { n[nl.offset + k] = o[ol.offset + k] }
        }
        for (si, osi) in plan.sums {
            let nl = layout.sumLists[si], ol = old.layout.sumLists[osi]
            for k in 0..<(2 * min(nl.capacity, ol.capacity)) { n[nl.offset + k] = o[ol.offset + k] }
        }
        for (si, osi) in plan.scoreLists {
            let nl = layout.scoreLists[si], ol = old.layout.scoreLists[osi]
            for k in 0..<min(nl.capacity, ol.capacity) { n[nl.offset + k] = o[ol.offset + k] }
        }
        copyPairs(ni, from: old, oi, plan, onlyMissing: false)
        for k in 0..<(2 * StateLayout.dedupSlots) { n[layout.dedupOffset + k] = o[old.layout.dedupOffset + k] }
        dedupOverflow.replace(contact: ni, with: old.dedupOverflow.entries(contact: oi, liveAfter: .min))
        return ni
    }

    /// Copies old contact `oi`'s latest-of trackers and attributes to contact `ni` by meaning;
    /// `onlyMissing`: only those `ni` has no value for.
    private mutating func copyPairs(_ ni: Int, from old: EngineCore, _ oi: Int, _ plan: AdoptionPlan, onlyMissing: Bool) {
        let o = old.rows.row(oi), n = rows.row(ni)
        for (t, ot, sig, oldSig) in plan.trackers {
            if onlyMissing && pair(n + layout.trackers[t].offset) != nil { continue }
            guard let p = old.pair(o + old.layout.trackers[ot].offset) else { continue }
            if let tag = sig.firstIndex(of: oldSig[Int(p.value)]) { writePair(n + layout.trackers[t].offset, p.ts, Int64(tag)) }
        }
        for (a, oa) in plan.attributes {
            if onlyMissing && pair(n + layout.attributeOffsets[a], date: layout.attributeIsDate[a]) != nil { continue }
            guard let p = old.pair(o + old.layout.attributeOffsets[oa], date: old.layout.attributeIsDate[oa]) else { continue }
            let value = model.attributes[a].kind == .string ? intern(old.strings.string(p.value)) : p.value
            writePair(n + layout.attributeOffsets[a], p.ts, value, date: layout.attributeIsDate[a])
        }
    }

    /// Adds to contact `ni`, rebuilt from a history whose oldest event for it is its first-seen
    /// time (the cut-off), what old contact `oi` knew from before the cut-off, for what both
    /// models count alike (`plan`): its first-seen time, the event times, days, summed values
    /// and scored events older than the cut-off, and the latest-of trackers and attributes the
    /// history gave no value; and the event ids old remembers. History decides everything from
    /// the cut-off on.
    private mutating func fillFromOld(_ ni: Int, from old: EngineCore, _ oi: Int, _ plan: AdoptionPlan) {
        let o = old.rows.row(oi), n = rows.row(ni)
        let none = SegmentEngine.none
        // The event ids old remembers and history did not bring: a redelivery after the switch
        // of an event older than the history is still a duplicate.
        let oldLiveAfter = o[StateLayout.maxTs] - old.dedupHorizon, liveAfter = n[StateLayout.maxTs] - dedupHorizon
        var remembered: [(hash: UInt64, stamp: Millis)] = (0..<StateLayout.dedupSlots).compactMap { k in
            let off = o + old.layout.dedupOffset + 2 * k
            return off[0] != 0 && off[1] > oldLiveAfter ? (UInt64(bitPattern: off[0]), off[1]) : nil
        }
        remembered += old.dedupOverflow.entries(contact: oi, liveAfter: oldLiveAfter)
        for (h, stamp) in remembered where stamp > liveAfter
            && !EngineCore.isDuplicate(ni, n, h, layout.dedupOffset, dedupHorizon, dedupOverflow) {
            remember(ni, n, h, stamp: stamp)
        }
        let cutoff = n[StateLayout.firstSeen]
        guard cutoff != none, o[StateLayout.firstSeen] != none, o[StateLayout.firstSeen] < cutoff else { return }
        n[StateLayout.firstSeen] = o[StateLayout.firstSeen]
        for (li, oli) in plan.lists {
            guard let oli else { continue }
            let nl = layout.lists[li], ol = old.layout.lists[oli]
            for k in 0..<ol.capacity where o[ol.offset + k] != none && o[ol.offset + k] < cutoff {
                EngineCore.insertTime(n + nl.offset, nl.capacity, o[ol.offset + k])
            }
        }
        if let calendar = self.plan.calendar {
            let cutoffDay = calendar.day(cutoff)
            for (di, odi) in plan.dayLists {
                let nl = layout.dayLists[di], ol = old.layout.dayLists[odi]
                for k in 0..<ol.capacity where o[ol.offset + k] != none && o[ol.offset + k] < cutoffDay {
                    _ = EngineCore.insertDay(n + nl.offset, nl.capacity, o[ol.offset + k])
                }
            }
        }
        for (si, osi) in plan.sums {
            let nl = layout.sumLists[si], ol = old.layout.sumLists[osi]
            for k in 0..<ol.capacity where o[ol.offset + 2 * k] != none && o[ol.offset + 2 * k] < cutoff {
                EngineCore.insertValue(n + nl.offset, nl.capacity, o[ol.offset + 2 * k], Double(bitPattern: UInt64(bitPattern: o[ol.offset + 2 * k + 1])))
            }
        }
        for (si, osi) in plan.scoreLists {
            let nl = layout.scoreLists[si], ol = old.layout.scoreLists[osi]
            for k in 0..<ol.capacity where o[ol.offset + k] != none && ScoredEvent.ts(o[ol.offset + k]) < cutoff {
                EngineCore.insertScored(n + nl.offset, nl.capacity, ScoredEvent.ts(o[ol.offset + k]), ScoredEvent.points(o[ol.offset + k]), nl.cap)
            }
        }
        copyPairs(ni, from: old, oi, plan, onlyMissing: true)
    }

    /// Gives contact `ni` the segments old contact `oi` is in (by group and segment name; none
    /// in a group the old model lacks), its last transition's instant and same-instant counts:
    /// what the output topic last said of it. Its lists and times stay.
    private mutating func moveMemberships(_ ni: Int, from old: EngineCore, _ oi: Int, _ plan: AdoptionPlan) {
        let m = model, om = old.model
        let o = old.rows.row(oi), n = rows.row(ni)
        n[StateLayout.lastTransition] = o[StateLayout.lastTransition]
        let om8 = UInt64(bitPattern: o[StateLayout.members]) & old.layout.membersMask
        let oFlags = (o[old.layout.flags] & old.layout.sameInstantBits) >> old.layout.sameInstantShift
        var members: UInt64 = 0
        var same: Int64 = 0
        for g in 0..<m.groups.count { sameInstant.removeValue(forKey: UInt64(ni) << 8 | UInt64(g)) }
        for (g, og) in plan.groups.enumerated() {
            guard let og else { continue }
            let oseg = Int((om8 >> UInt64(og * 8)) & 0xFF) - 1
            if oseg >= 0, let s = m.groups[g].segments.firstIndex(where: { $0.name == om.groups[og].segments[oseg].name }) {
                members |= UInt64(s + 1) << UInt64(g * 8)
            }
            if oFlags & (1 << Int64(og)) != 0 {
                same |= 1 << Int64(g)
                if let c = old.sameInstant[UInt64(oi) << 8 | UInt64(og)] { sameInstant[UInt64(ni) << 8 | UInt64(g)] = c }
            }
        }
        n[StateLayout.members] = Int64(bitPattern: (UInt64(bitPattern: n[StateLayout.members]) & ~layout.membersMask) | members)
        n[layout.flags] = (n[layout.flags] & ~layout.sameInstantBits) | (same << layout.sameInstantShift)
    }

    /// Evaluates contact `i` at its clock with cause `model` and plans its next boundary from there.
    private mutating func reevaluateAtClock(_ i: Int, previousVersion: String) {
        let row = rows.row(i)
        guard row[StateLayout.maxTs] != SegmentEngine.none else { return }
        let clock = max(row[StateLayout.maxTs], row[StateLayout.lastTransition])
        evaluate(i, row, at: clock, by: .model(previousVersion: previousVersion))
        row[StateLayout.cursor] = clock
        markDirty(row, i)
        row[StateLayout.scheduled] = SegmentEngine.unscheduled
        schedule(i, row)
    }

    /// The switch of a rebuild: this engine was built from history under its model and
    /// `old` holds the state the output topic reflects (the running instance's). Every contact
    /// is marked dirty. Returns the counts of what it did.
    ///
    /// - A contact both hold keeps this engine's state, filled in with what old knew from
    ///   before the oldest event of its history (`fillFromOld`); what the output topic last said of it
    ///   (old's segments, by group and segment name) is compared with this engine's segments
    ///   at the switch, the later of the watermark and the contact's clock, and each group that
    ///   differs is emitted once (cause `model`) at that instant. Every boundary up to the
    ///   watermark has fired in this engine, so these are the segments its history gives.
    /// - A contact this engine has and old has not (old never emitted anything of it) is
    ///   compared with no segment in every group, likewise.
    /// - A contact only old holds (its history was not in what was read: expired from the
    ///   topic) is adopted by meaning and re-evaluated at its clock, as `adopt(from:)` does.
    ///
    /// The watermark is first moved to old's when old's is later (the instance's idle
    /// advance); transitions that makes are history's: they must be taken before this call,
    /// which requires none pending.
    mutating func takeOver(from old: EngineCore) -> TakeOverCounts {
        precondition(_pending.isEmpty, "take the rebuilt history's transitions before the switch")
        precondition(_watermark >= old.watermark, "advance the rebuilt engine to the old watermark first")
        let plan = AdoptionPlan(new: self, old: old)
        var counts = TakeOverCounts()
        let version = old.model.version
        let rebuiltCount = contacts.count
        for i in 0..<rebuiltCount {
            let row = rows.row(i)
            if let oi = old.contacts.find(contacts.id(i)) {
                fillFromOld(i, from: old, oi, plan)
                moveMemberships(i, from: old, oi, plan)
                counts.rebuilt += 1
            } else {
                row[StateLayout.lastTransition] = SegmentEngine.none
                row[layout.flags] &= ~layout.sameInstantBits
                for g in 0..<model.groups.count { sameInstant.removeValue(forKey: UInt64(i) << 8 | UInt64(g)) }
                row[StateLayout.members] = Int64(bitPattern: UInt64(bitPattern: row[StateLayout.members]) & ~layout.membersMask)
                counts.onlyRebuilt += 1
            }
            markDirty(row, i)
            guard row[StateLayout.maxTs] != SegmentEngine.none else { continue }
            // The segments at the switch, compared with those just set: each group that
            // differs is emitted, once. Every boundary up to the watermark has fired, so at
            // the watermark (or a later clock) these are the segments the rebuilt state holds.
            let at = max(_watermark, row[StateLayout.maxTs], row[StateLayout.lastTransition])
            let before = _stats.transitions
            evaluate(i, row, at: at, by: .model(previousVersion: version))
            if _stats.transitions != before { counts.changedContacts += 1 }
            // The next boundary after the switch (what was filled in may have added some).
            row[StateLayout.cursor] = at
            row[StateLayout.scheduled] = SegmentEngine.unscheduled
            schedule(i, row)
        }
        for oi in 0..<old.contacts.count where contacts.find(old.contacts.id(oi)) == nil {
            let ni = moveContact(oi, from: old, plan)
            reevaluateAtClock(ni, previousVersion: version)
            counts.onlyOld += 1
        }
        _streamTime = max(_streamTime, old.streamTime)
        // Boundaries of the adopted contacts up to the watermark fire again under the new rules.
        advanceWatermark(to: _watermark)
        return counts
    }
}

/// What a rebuild's switch (`SegmentEngine.takeOver(from:)`) did, in contacts.
public struct TakeOverCounts: Sendable, Equatable {
    /// Held by both: the rebuilt state kept, differences emitted.
    public var rebuilt = 0
    /// Only in the rebuilt engine (the old state had none): compared with no segment.
    public var onlyRebuilt = 0
    /// Only in the old state (no history read): adopted by meaning.
    public var onlyOld = 0
    /// Contacts with at least one difference emitted at the switch.
    public var changedContacts = 0

    public init(rebuilt: Int = 0, onlyRebuilt: Int = 0, onlyOld: Int = 0, changedContacts: Int = 0) {
        self.rebuilt = rebuilt
        self.onlyRebuilt = onlyRebuilt
        self.onlyOld = onlyOld
        self.changedContacts = changedContacts
    }
}

/// A filter's definition as text, references expanded: two models' filters that select the
/// same events have the same signature whatever they are called.
enum FilterSignature {
    static func of(_ m: Model, _ f: Int) -> String { of(m, m.filters[f]) }

    static func of(_ m: Model, _ e: FilterExpr) -> String {
        switch e {
        case .types(let t):
            let names = m.eventTypes
            return "type(" + t.sorted().map { names[Int($0)] }.joined(separator: ",") + ")"
        case .prop(let key, let test): return "prop(\(m.propKeys[key]) \(test))"
        case .all(let xs): return "all(" + xs.map { of(m, $0) }.joined(separator: ";") + ")"
        case .any(let xs): return "any(" + xs.map { of(m, $0) }.joined(separator: ";") + ")"
        case .not(let x): return "not(" + of(m, x) + ")"
        case .ref(let i): return of(m, m.filters[i])
        }
    }
}

/// Strings as dense ids, compared byte for byte (attribute values and model literals).
struct InternTable {
    private var ids: [[UInt8]: Int64] = [:]
    private var values: [[UInt8]] = []

    mutating func id(_ s: String) -> Int64 { id(bytes: Array(s.utf8)) }

    mutating func id(bytes: [UInt8]) -> Int64 {
        if let i = ids[bytes] { return i }
        let i = Int64(values.count)
        values.append(bytes)
        ids[bytes] = i
        return i
    }

    func existingId(_ s: String) -> Int64? { ids[Array(s.utf8)] }

    func string(_ id: Int64) -> String { String(decoding: values[Int(id)], as: UTF8.self) }

    func bytes(_ id: Int64) -> [UInt8] { values[Int(id)] }
}

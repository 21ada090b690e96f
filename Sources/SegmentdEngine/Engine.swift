/// Counters the engine keeps about what it did.
public struct EngineStats: Sendable, Equatable {
    public var eventsApplied = 0
    public var recordsApplied = 0
    public var duplicates = 0
    public var lateEvents = 0
    public var transitions = 0
    public var transitionsByGroup: [Int] = []
}

/// The bytes held by each of the engine's structures (capacities, not only what is used).
public struct EngineFootprint: Sendable, Equatable {
    public var contactTable: Int
    public var rows: Int
    public var timers: Int
    public var duplicateOverflow: Int
    public var widePairs: Int
    public var total: Int { contactTable + rows + timers + duplicateOverflow + widePairs }
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
    let duplicateHorizon: Millis
    let layout: StateLayout

    var contacts = ContactTable()
    /// Every contact's row of `layout.stride` slots, in chunks that never move.
    var rows: RowStore
    var timers = TimerWheel()
    var dedupOverflow = DuplicateOverflow()
    let wide = WideSlots()
    /// Contacts changed since `takeDirtyContacts()` (their changelog record is due).
    var dirty: [Int32] = []
    var sameInstant: [UInt64: Int] = [:]
    /// Attribute strings as small integers (rows hold ids, not strings).
    var strings = InternTable()
    /// Conditions, scores, groups and boundaries compiled for the hot path (string literals
    /// of attribute conditions are interned once, here).
    let program: UnsafeMutablePointer<CompiledProgram>
    let plan: InsertPlan
    /// The latest-of and attribute slots, as snapshots write them (`pairSlots(_:_:)`).
    let pairSlots: [(offset: Int, isString: Bool, isDate: Bool)]
    /// The model version's bytes, as snapshots carry them.
    let versionBytes: [UInt8]
    /// How a compact snapshot writes each row slot.
    let snapshotSlotKinds: [SnapshotCodec.SlotKind]
    /// The ids a snapshot writes, sorted (kept between snapshots: no allocation per contact).
    var snapshotIds: [(fingerprint: UInt32, stamp: Millis)] = []
    /// Where `restore` decodes a snapshot's slots and pairs before it checks them.
    let restoreScratch: UnsafeMutablePointer<Int64>
    /// The event being applied, for the `cause` of the transitions it makes; its id is copied
    /// into `causeBytes` only when a transition needs it.
    var curType: UInt8 = 0
    /// The event id's bytes, borrowed from the event for the duration of `apply` only.
    var curEventId: UnsafeBufferPointer<UInt8>? = nil
    /// Where the current event's id sits in `causeBytes` (start -1: no id), once a transition
    /// of this event needed it.
    var curEventCause: (start: Int32, end: Int32)? = nil

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
    var _pending: [PendingTransition] = []
    /// Event ids and model versions the pending transitions' causes name.
    var causeBytes: [UInt8] = []
    /// Events counted under their contact's segments, when on (`countEngagement`).
    var engagement: EngagementCounts? = nil
    /// Whether transitions wait to be taken.
    // The three below are `mutating` though they change nothing: `SegmentEngine` then reaches
    // them through its modify access to the core, where a read access copies the whole core
    // (576 bytes and a retain of every array) for the call. The daemon calls them at every commit.
    var hasPendingTransitions: Bool { mutating get { !_pending.isEmpty } }

    
    init(model: Model, lateness: Millis = 0, duplicateHorizon: Millis = SegmentEngine.defaultDuplicateHorizon) {
        // A remembered id keeps 32 bits of its stamp (`RememberedId`), exact within 2^31 ms.
        precondition(duplicateHorizon > 0 && duplicateHorizon <= 1 << 31, "the duplicate horizon is at most 2^31 ms")
        self.model = model
        self.lateness = lateness
        self.duplicateHorizon = duplicateHorizon
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
        self.restoreScratch = .allocate(capacity: layout.logicalStride + 2 * pairSlots.count)
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
        timers.deallocate()
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
                    // The encoding reads each contact's id, which a contact whose timer fired
                    // has not had in cache (at 650k contacts a third of the encoding's time
                    // was that miss): asked for ahead, where it starts, then its bytes.
                    for k in 0..<min(pending.count, 8) { ids.prefetchStart(Int(pending[k].contact)) }
                    for (k, t) in pending.enumerated() {
                        if k + 8 < pending.count { ids.prefetchStart(Int(pending[k + 8].contact)) }
                        if k + 4 < pending.count { ids.prefetchBytes(Int(pending[k + 4].contact)) }
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
    var stateBytes: Int { footprint.total }

    /// The bytes each structure holds, for memory accounting.
    var footprint: EngineFootprint {
        EngineFootprint(contactTable: contacts.footprintBytes, rows: rows.footprintBytes, timers: timers.footprintBytes,
                        duplicateOverflow: dedupOverflow.footprintBytes, widePairs: wide.map.count * 48)
    }

    // MARK: applying records

    /// Applies one input record: one event, or two for a Segment identify with a stage.
    /// Returns false when the record was a duplicate (then nothing changed, not even time).
    /// After the events, the watermark moves and every due boundary of every contact fires.
    @discardableResult
    mutating func apply(_ first: EngineEvent, _ second: EngineEvent? = nil) -> Bool {
        apply(first, second, eventId: first.eventId)
    }

    /// `contactHash`: `ContactTable.hash` of the contact id, when the caller computed it to
    /// prefetch the contact (`prefetchContact(hash:)` and the stages after it); then its state
    /// was asked for already.
    mutating func apply(_ first: EngineEvent, _ second: EngineEvent?, eventId: UnsafeBufferPointer<UInt8>?, contactHash: UInt64? = nil) -> Bool {
        let (idx, inserted) = contacts.findOrInsert(first.contactId, hash: contactHash ?? ContactTable.hash(first.contactId))
        if inserted { appendRow() }
        let row = rows.row(idx)
        if contactHash == nil {
            // The contact's row, duplicate chain and timer are in three places: asked for at
            // once, their cache misses overlap.
            prefetchState(idx)
        }
        var fingerprint: UInt32 = 0
        if let eventId {
            fingerprint = RememberedId.fingerprint(of: eventId)
            if !inserted, EngineCore.isDuplicate(row, fingerprint, layout.dedupOffset, duplicateHorizon, dedupOverflow) {
                _stats.duplicates += 1
                return false
            }
        }
        curEventId = eventId
        markDirty(row, idx)
        let previousNewest = row[StateLayout.maxTs]
        // The contact's timer is its next boundary after its cursor: the first event starts
        // its catch-up from there; the second (its lists changed since) looks it up again.
        applyEvent(idx, row, first, scheduled: row[StateLayout.scheduled])
        if let second { applyEvent(idx, row, second, scheduled: nil) }
        // The borrowed bytes are valid only during this call.
        curEventId = nil
        _stats.recordsApplied += 1
        if !inserted && (previousNewest ^ row[StateLayout.maxTs]) >> 31 != 0 { forgetDeadIds(row, previousNewest: previousNewest) }
        if eventId != nil { remember(row, RememberedId(fingerprint: fingerprint, stamp: row[StateLayout.maxTs])) }
        schedule(idx, row)
        let w = _streamTime == .min ? Millis.min : _streamTime - lateness - 1
        advanceWatermark(to: w)
        return true
    }

    // MARK: prefetching the contacts of records decoded ahead (`Pipeline.process(batch:)`)
    //
    // A lookup of a random contact is a chain of cache misses: its table slot, its id's
    // offset, its id, then its row, duplicate chain and timer. Records decoded ahead of their
    // application ask for each link of all their contacts' chains in turn, one stage for all
    // of them before the next, so that the misses overlap; the application then finds
    // everything in the cache. A hint changes nothing: a contact added by an earlier record of
    // the same group, or a slot that changed since, only makes the hint miss. (`mutating`
    // though they change nothing: a call through the engine's pointer then does not copy the
    // core.)

    /// Stage 1: asks for the table slot of the contact whose id has hash `hash`.
    @inline(__always)
    mutating func prefetchContact(hash: UInt64) { contacts.prefetchSlot(hash: hash) }

    /// Stage 2: asks for the row and timer of the contact the slot names, and for its id's
    /// offset; returns that contact's index (nil: no slot had the hash bits).
    @inline(__always)
    mutating func prefetchContactState(hash: UInt64) -> Int? {
        guard let index = contacts.likelyIndex(hash: hash) else { return nil }
        prefetchState(index)
        return index
    }

    /// Asks for every cache line of contact `index`'s row and its timer's position.
    @inline(__always)
    func prefetchState(_ index: Int) {
        rows.prefetch(rows.row(index))
        timers.prefetch(contact: index)
    }

    /// Stage 3: asks for the bytes of contact `index`'s id, which the lookup compares, and for
    /// the first block of its duplicate chain, if its row (asked for in stage 2) names one.
    @inline(__always)
    mutating func prefetchContactId(_ index: Int) {
        contacts.prefetchId(index)
        dedupOverflow.prefetch(chain: RememberedId(slot: rows.row(index)[layout.chainPlace]).chainHead)
    }

    /// Appends an empty row for the contact just added to `contacts`.
    mutating func appendRow() {
        rows.append(layout.emptyState)
        timers.addContact()
    }

    /// Applies one event to the contact's row (rules 3 and 4). `scheduled`, when known, is the
    /// contact's timer, its next boundary after its cursor: the common event, with no boundary
    /// due before it, then looks at no list to catch up.
    mutating func applyEvent(_ idx: Int, _ row: Row, _ e: EngineEvent, scheduled: Millis?) {
        _stats.eventsApplied += 1
        let maxTs = row[StateLayout.maxTs]
        let clock = max(maxTs, row[StateLayout.lastTransition])
        curType = e.type
        curEventCause = nil
        if maxTs == SegmentEngine.none || e.ts >= clock {
            // Rule 3: catch up on every boundary after the clock and strictly before ts.
            let cursor = row[StateLayout.cursor]
            let cur = max(cursor, clock)
            let next: Millis
            if let scheduled, cur == cursor, scheduled >= e.ts {
                next = scheduled
            } else {
                // Strictly before ts: through ts - 1 ms (event times lie in the years 0000 to 9999).
                next = evaluateBoundaries(idx, row, after: cur, through: e.ts - 1).next
            }
            let boundaryAtTs = next == e.ts
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
    mutating func countEngagement(_ row: Row, _ type: UInt8) {
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
        let rows = self.rows
        // The wheel asks for a contact's timer as its row keeps it (a due contact's row is read next anyway).
        while let top = timers.first(atOrBefore: w, current: { contact in
            let time = rows.row(Int(contact))[StateLayout.scheduled]
            return time == SegmentEngine.unscheduled ? nil : time
        }) {
            let idx = Int(top.contact)
            let row = rows.row(idx)
            // One of these is due next, most likely: their rows' misses overlap this contact's work.
            let (following, after) = timers.followingDue()
            if following >= 0 { rows.prefetch(rows.row(Int(following))) }
            if after >= 0 { rows.prefetch(rows.row(Int(after))) }
            let (last, next) = evaluateBoundaries(idx, row, after: row[StateLayout.cursor], through: w)
            row[StateLayout.cursor] = last
            // The timer moves to the boundary after the last one evaluated (see
            // `evaluateBoundaries`), or goes when there is none.
            schedule(idx, row, next: next)
        }
    }

    /// Evaluates the contact at each of its boundaries after `start` up to and including
    /// `limit`, in order, each time for the groups that read what changes there. Returns the
    /// last instant evaluated (`start` when none) and the first boundary after `limit`
    /// (`unscheduled`: none). An evaluation changes no list and not first seen, so the boundary
    /// after one just evaluated is the one the same scan found after it: another scan is made
    /// only when that one is due too.
    @inline(__always)
    mutating func evaluateBoundaries(_ idx: Int, _ row: Row, after start: Millis, through limit: Millis) -> (last: Millis, next: Millis) {
        var last = start
        var boundary = CompiledProgram.nextBoundaryAndInputs(program, row, after: start)
        while boundary.instant <= limit {
            evaluate(idx, row, at: boundary.instant, by: .time, groups: program.pointee.groups(reading: boundary.inputs))
            last = boundary.instant
            if boundary.following > limit { return (last, boundary.following) }
            boundary = CompiledProgram.nextBoundaryAndInputs(program, row, after: last)
        }
        return (last, boundary.instant)
    }

    /// Sets the contact's timer at its next boundary after its cursor.
    mutating func schedule(_ idx: Int, _ row: Row) {
        schedule(idx, row, next: CompiledProgram.nextBoundary(program, row, after: row[StateLayout.cursor]))
    }

    /// Sets the contact's timer at `nb` (none: `unscheduled`).
    /// The row's `scheduled` slot is the one record of the timer's instant: the wheel is told
    /// what it was.
    mutating func schedule(_ idx: Int, _ row: Row, next nb: Millis) {
        let old = row[StateLayout.scheduled]
        if old == nb { return }
        row[StateLayout.scheduled] = nb
        if nb == SegmentEngine.unscheduled {
            timers.remove(contact: Int32(idx), from: old)
        } else {
            timers.set(contact: Int32(idx), from: old == SegmentEngine.unscheduled ? nil : old, to: nb)
        }
    }

    // MARK: state updates

    /// Applies the event to the row; returns the `InputBits` of what it may have changed.
    mutating func insert(_ row: Row, _ e: EngineEvent) -> UInt64 {
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
        let clock = max(row[StateLayout.maxTs], row[StateLayout.lastTransition])
        // A local copy: the row's stores cannot change it, so its fields stay in registers.
        let times = plan.times
        for l in plan.lists where mask & l.bit != 0 {
            times.insertTime(row, Int(l.off), Int(l.cap), ts, clock: clock)
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
                times.insertScored(row, Int(s.off), Int(s.pointsOff), Int(s.cap), ts, points, s.scoreCap, clock: clock)
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
    mutating func writePair(_ off: Row, _ ts: Int64, _ value: Int64) {
        let key = Int(bitPattern: off)
        if let p = PackedPair.pack(ts, value) {
            if off[0] == PackedPair.escaped { wide.map.removeValue(forKey: key) }
            off[0] = p
        } else {
            off[0] = PackedPair.escaped
            wide.map[key] = (ts, value)
        }
    }

    func pair(_ off: Row) -> (ts: Int64, value: Int64)? { PackedPair.read(off, wide) }

    /// A date attribute's pair is two plain slots, (time, instant); any other pair one slot.
    @inline(__always)
    func pair(_ off: Row, date: Bool) -> (ts: Int64, value: Int64)? {
        if date { return off[0] == SegmentEngine.none ? nil : (off[0], off[1]) }
        return PackedPair.read(off, wide)
    }

    mutating func writePair(_ off: Row, _ ts: Int64, _ value: Int64, date: Bool) {
        if date {
            off[0] = ts
            off[1] = value
        } else {
            writePair(off, ts, value)
        }
    }

    /// Inserts (ts, value) into a newest-first sum list of at most `cap` entries of two slots
    /// (the oldest falls off); an entry goes after those newer than it, before equal times.
    static func insertValue(_ off: Row, _ cap: Int, _ ts: Int64, _ value: Double) {
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
    static func insertDaysAndSums(_ plan: InsertPlan, _ row: Row, _ e: EngineEvent) -> UInt64 {
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
    static func insertDay(_ off: Row, _ cap: Int, _ day: Int64) -> Bool {
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

    mutating func intern(_ s: String) -> Int64 { strings.id(s) }

    // MARK: evaluation

    /// What an evaluation is for: the event being applied, time passing, or a model change.
    enum EvaluationReason {
        case event
        case time
        case model(previousVersion: String)
    }

    /// Evaluates the groups in `groups` (bit g: group g; default all) at `t` and emits the
    /// changes, with the cause `reason` gives. Segments are computed first, over the row as it
    /// is, then the changes are emitted in group order. A group left out keeps its segment.
    mutating func evaluate(_ idx: Int, _ row: Row, at t: Millis, by reason: EvaluationReason, groups: UInt64 = ~0) {
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
                segs |= UInt64(ev.member(g)) << shift
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

    mutating func emit(_ idx: Int, _ row: Row, group g: Int, from: Int?, to: Int?, at t: Millis, cause: PendingTransition.Cause) {
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

    /// The first instant after `c` at which time alone can change this contact's membership
    /// (an event leaving a window, first seen reaching an age), or `.max`.
    func nextBoundary(_ row: Row, after c: Millis) -> Millis {
        CompiledProgram.nextBoundary(program, row, after: c)
    }

    // MARK: duplicates

    /// The ids of contact `idx` live at its newest time.
    @inline(__always)
    static func liveIds(_ row: Row, _ horizon: Millis) -> IdHorizon { IdHorizon(newest: row[StateLayout.maxTs], horizon: UInt64(horizon)) }

    /// An id is remembered with the contact's newest event time when it was applied, and is
    /// caught while that stamp is within `duplicateHorizon` of the contact's newest event time:
    /// at least the contact's last 7 days of events by default (the contract asks for 24 hours;
    /// upstream redeliveries can come days late), late ones included. Most contacts fit
    /// in the places of their row; busier ones keep one id in the row and the others in a
    /// chain of overflow blocks, which the row's last place names (`RememberedId.chain`).
    /// (Static, with what it reads passed in: a method reading `self` from the mutating path
    /// would make the compiler copy the whole engine state for the call.)
    static func isDuplicate(_ row: Row, _ fingerprint: UInt32, _ dedupOffset: Int, _ horizon: Millis, _ overflow: borrowing DuplicateOverflow) -> Bool {
        let live = liveIds(row, horizon)
        for k in 0..<StateLayout.dedupSlots where live.holds(RememberedId(slot: row[dedupOffset + k]), fingerprint: fingerprint) { return true }
        let chain = RememberedId(slot: row[dedupOffset + StateLayout.dedupSlots - 1]).chainHead
        return chain >= 0 && overflow.contains(chain: chain, fingerprint: fingerprint, live: live)
    }

    /// Remembers `id` for the contact (stamped no later than its newest time and live at it);
    /// ids no longer live make room. A contact whose row's places all hold live ids moves the
    /// last one into a new chain with `id`, and its last place names the chain from then on.
    mutating func remember(_ row: Row, _ id: RememberedId) {
        let live = EngineCore.liveIds(row, duplicateHorizon)
        let last = layout.chainPlace
        let chain = RememberedId(slot: row[last]).chainHead
        let places = chain >= 0 ? StateLayout.dedupSlots - 1 : StateLayout.dedupSlots
        for k in 0..<places where !live.isLive(RememberedId(slot: row[layout.dedupOffset + k])) {
            row[layout.dedupOffset + k] = id.slot
            // A busy spell's blocks go back to the pool once their ids have left the horizon.
            if chain >= 0 { row[last] = RememberedId.chain(dedupOverflow.release(chain: chain, live: live)).slot }
            return
        }
        if chain >= 0 {
            row[last] = RememberedId.chain(dedupOverflow.remember(chain: chain, id, live: live)).slot
        } else {
            spill(row, CollectionOfOne(id), live: live)
        }
    }

    /// The row's places are all full of ids and `more` follow: its last id and `more` go into
    /// a new chain, which the last place names from then on.
    mutating func spill<Ids: Sequence<RememberedId>>(_ row: Row, _ more: Ids, live: IdHorizon = .everyId) {
        var chain = dedupOverflow.remember(chain: -1, RememberedId(slot: row[layout.chainPlace]), live: live)
        for id in more { chain = dedupOverflow.remember(chain: chain, id, live: live) }
        row[layout.chainPlace] = RememberedId.chain(chain).slot
    }

    /// Drops every id of the contact that is no longer live now that its newest time moved on
    /// from `previousNewest` across a multiple of 2^31 ms: what keeps every remembered stamp
    /// less than 2^32 ms behind the newest time (see `RememberedId`). Ages are taken at
    /// `previousNewest`, where they are still exact.
    mutating func forgetDeadIds(_ row: Row, previousNewest: Millis) {
        let live = IdHorizon(newest: previousNewest, horizon: UInt64(duplicateHorizon)).seenFrom(later: row[StateLayout.maxTs])
        let last = layout.chainPlace
        let chain = RememberedId(slot: row[last]).chainHead
        for k in 0..<StateLayout.dedupSlots where !live.isLive(RememberedId(slot: row[layout.dedupOffset + k])) {
            row[layout.dedupOffset + k] = RememberedId.empty.slot
        }
        if chain >= 0 { row[last] = RememberedId.chain(dedupOverflow.release(chain: chain, live: live)).slot }
    }

    /// Calls `body` with each live id of the contact, the row's then its chain's.
    @inline(__always)
    func forEachLiveId(_ row: Row, _ body: (RememberedId) -> Void) {
        let live = EngineCore.liveIds(row, duplicateHorizon)
        for k in 0..<StateLayout.dedupSlots where live.isLive(RememberedId(slot: row[layout.dedupOffset + k])) {
            body(RememberedId(slot: row[layout.dedupOffset + k]))
        }
        dedupOverflow.forEach(chain: RememberedId(slot: row[layout.chainPlace]).chainHead, live: live, body)
    }

    /// Every id the contact's row and chain hold, live or not (a model change copies them).
    func allIds(_ row: Row) -> [RememberedId] {
        var out: [RememberedId] = []
        for k in 0..<StateLayout.dedupSlots where RememberedId(slot: row[layout.dedupOffset + k]).fingerprint != 0 {
            out.append(RememberedId(slot: row[layout.dedupOffset + k]))
        }
        return out + dedupOverflow.entries(chain: RememberedId(slot: row[layout.chainPlace]).chainHead, live: nil)
    }

    /// Puts `ids` in the contact's row places and, beyond them, in a new chain (the row's old
    /// chain, if any, goes back to the pool first).
    mutating func placeIds(_ row: Row, _ ids: [RememberedId]) {
        let old = RememberedId(slot: row[layout.chainPlace]).chainHead
        if old >= 0 { _ = dedupOverflow.release(chain: old, live: .noId) }
        for k in 0..<StateLayout.dedupSlots { row[layout.dedupOffset + k] = k < ids.count ? ids[k].slot : RememberedId.empty.slot }
        if ids.count > StateLayout.dedupSlots { spill(row, ids[StateLayout.dedupSlots...]) }
    }

    // MARK: changelog

    @inline(__always)
    mutating func markDirty(_ row: Row, _ idx: Int) {
        if row[layout.flags] & layout.dirtyBit == 0 {
            row[layout.flags] |= layout.dirtyBit
            dirty.append(Int32(idx))
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

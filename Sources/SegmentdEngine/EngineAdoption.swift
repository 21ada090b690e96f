/// A model change: moving a running engine's contacts into an engine of another model.

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
        let clock = max(n[StateLayout.maxTs], n[StateLayout.lastTransition])
        let times = layout.times
        times.clear(n)
        for (li, oli) in plan.lists {
            guard let oli else { continue }
            let nl = layout.lists[li]
            for k in 0..<min(nl.capacity, old.layout.lists[oli].capacity) {
                let ts = old.layout.listTime(o, oli, k)
                if ts == SegmentEngine.none || !times.setTime(n, at: nl.entries + k * times.width, ts, clock: clock) { break }
            }
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
            let nl = layout.scoreLists[si]
            for k in 0..<min(nl.capacity, old.layout.scoreLists[osi].capacity) {
                guard let e = old.layout.scoredEvent(o, osi, k), times.setTime(n, at: nl.entries + k * times.width, e.ts, clock: clock) else { break }
                EventTimes.storePoints(UnsafeMutableRawPointer(n), nl.points + k * times.pointsWidth, min(e.points, nl.cap), times.pointsWidth)
            }
        }
        copyPairs(ni, from: old, oi, plan, onlyMissing: false)
        placeIds(n, old.allIds(o))
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
        // Stamped no later than the new newest time (history may end before old's newest event):
        // then such an id counts from the new newest time.
        let newest = n[StateLayout.maxTs]
        var remembered: [RememberedId] = []
        old.forEachLiveId(o) { remembered.append($0) }
        for id in remembered {
            let stamp = min(id.stamp(newest: o[StateLayout.maxTs]), newest)
            guard newest - stamp < duplicateHorizon, !EngineCore.isDuplicate(n, id.fingerprint, layout.dedupOffset, duplicateHorizon, dedupOverflow) else { continue }
            remember(n, RememberedId(fingerprint: id.fingerprint, stamp: stamp))
        }
        let cutoff = n[StateLayout.firstSeen]
        guard cutoff != none, o[StateLayout.firstSeen] != none, o[StateLayout.firstSeen] < cutoff else { return }
        n[StateLayout.firstSeen] = o[StateLayout.firstSeen]
        let clock = max(n[StateLayout.maxTs], n[StateLayout.lastTransition])
        for (li, oli) in plan.lists {
            guard let oli else { continue }
            let nl = layout.lists[li]
            for k in 0..<old.layout.lists[oli].capacity {
                let ts = old.layout.listTime(o, oli, k)
                if ts != none && ts < cutoff { layout.times.insertTime(n, nl.entries, nl.capacity, ts, clock: clock) }
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
            let nl = layout.scoreLists[si]
            for k in 0..<old.layout.scoreLists[osi].capacity {
                guard let e = old.layout.scoredEvent(o, osi, k) else { break }
                if e.ts < cutoff { layout.times.insertScored(n, nl.entries, nl.points, nl.capacity, e.ts, e.points, nl.cap, clock: clock) }
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

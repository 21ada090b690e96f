/// The changelog's side of the engine: which contacts changed, and each contact's state as a
/// snapshot that any process can restore.
extension EngineCore {
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

    /// The contact id at `index`, borrowed for the call. `mutating` though it changes nothing:
    /// through `SegmentEngine`'s pointer, a non-mutating call gets a copy of the whole core.
    mutating func withContactId<R>(at index: Int, _ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        try contacts.withIds { ids in try body(ids.id(index)) }
    }

    /// The partition-level part of the state: stream time and watermark.
    var checkpoint: (streamTime: Millis, watermark: Millis) { (_streamTime, _watermark) }

    mutating func restoreCheckpoint(streamTime: Millis, watermark: Millis) {
        _streamTime = max(_streamTime, streamTime)
        _watermark = max(_watermark, watermark)
    }

    /// The snapshot format written: 4 (as 3, with event ids as 32-bit fingerprints, see
    /// `RememberedId`) since ids are remembered so; 3 (compact: variable-length words, times
    /// relative to the newest event time, see `SnapshotCodec`) since the changelog's restore
    /// became bound by its bytes; 2 (8 bytes per word) packed scored events as `ScoredEvent`;
    /// 1 (no marker) packed them with 16 bits. Formats 1 to 3 held 64-bit id hashes, folded
    /// to fingerprints when read. All four are read.
    static let snapshotFormat: Int64 = 4

    /// The slot offsets of the latest-of trackers, then of the attributes, with whether the
    /// value is an interned string.
    static func pairSlots(_ model: Model, _ layout: StateLayout) -> [(offset: Int, isString: Bool, isDate: Bool)] {
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
    /// interned ids or overflow map, then the remembered event ids. So a snapshot is meaningful
    /// to any process. It starts with the negated format number (`snapshotFormat`). Format 4
    /// (the default) also carries `tag`, bytes of the caller's that restore ignores
    /// (`SegmentEngine.snapshotTag(of:)` reads them back); format 2 is written only to check
    /// that it is still read.
    mutating func snapshot(contact idx: Int, tag: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0),
                           format: Int64 = EngineCore.snapshotFormat) -> [UInt8] {
        var out: [UInt8] = []
        snapshot(contact: idx, tag: tag, format: format, appendingTo: &out)
        return out
    }

    /// `snapshot(contact:tag:format:)` appended to `out`: a caller writing many (the daemon at
    /// each commit) reuses one buffer instead of allocating an array per contact.
    mutating func snapshot(contact idx: Int, tag: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0),
                           format: Int64 = EngineCore.snapshotFormat, appendingTo out: inout [UInt8]) {
        precondition(format == 2 || format == 4, "snapshots are written in format 2 or 4")
        let compact = format == 4
        let row = rows.row(idx)
        let maxTs = row[StateLayout.maxTs]
        // In a fixed order (where an id sits, row or overflow, depends on which places were
        // free when it came), so equal states give equal bytes. Few: sorted by insertion.
        var ids = snapshotIds
        snapshotIds = []
        defer { ids.removeAll(keepingCapacity: true); snapshotIds = ids }
        forEachLiveId(row) { id in
            let entry = (fingerprint: id.fingerprint, stamp: id.stamp(newest: maxTs))
            var at = ids.count
            ids.append(entry)
            while at > 0 && (ids[at - 1].fingerprint, ids[at - 1].stamp) > (entry.fingerprint, entry.stamp) {
                ids[at] = ids[at - 1]
                at -= 1
            }
            ids[at] = entry
        }
        // Format 2 holds two ids in the row, as (hash, stamp) pairs, and the others after the pairs.
        let idsInRow = compact ? 0 : min(ids.count, StateLayout.legacyDedupSlots / 2)
        let counts = sameInstantCounts(idx, row)
        // A bound on the size first, so the snapshot is written once into its own memory:
        // marker, tag, version, stride, newest time, the slots, the pairs (time, value, or a
        // string), the ids and the same-instant counts, with their counts.
        let words = 8 + layout.logicalStride + 2 * pairSlots.count + 2 * ids.count + 2 * counts.count
        var extra = tag.count + versionBytes.count
        for (offset, isString, isDate) in pairSlots where isString {
            if let p = pair(row + offset, date: isDate) { extra += strings.bytes(p.value).count }
        }
        let bound = SnapshotWriter.bound(words: words) + extra
        let start = out.count
        out.append(contentsOf: repeatElement(0, count: bound))
        // The logical row, in the restore scratch (free between restores).
        let logical = restoreScratch
        layout.expand(row, into: logical)
        let written = out.withUnsafeMutableBufferPointer { buffer -> Int in
            var w = SnapshotWriter(buffer.baseAddress! + start, compact: compact)
            w.fixed(-format)
            if compact { w.bytes(tag) }
            versionBytes.withUnsafeBytes { w.bytes($0) }
            w.count(compact ? layout.logicalStride : layout.logicalDedupOffset + StateLayout.legacyDedupSlots)
            if compact {
                w.word(maxTs)
                let scoredBase = maxTs &<< ScoredEvent.pointsBits
                for k in 0..<layout.logicalDedupOffset {
                    var v = logical[k]
                    if k == layout.flags { v &= ~layout.dirtyBit }
                    switch snapshotSlotKinds[k] {
                    case .plain: w.word(v)
                    case .time: w.word(v, base: maxTs)
                    case .scored: w.word(v, base: scoredBase)
                    case .skipped: break
                    }
                }
            } else {
                for k in 0..<layout.logicalDedupOffset {
                    var v = logical[k]
                    if k == StateLayout.scheduled { v = SegmentEngine.unscheduled }
                    if k == layout.flags { v &= ~layout.dirtyBit }
                    w.fixed(v)
                }
                for k in 0..<(StateLayout.legacyDedupSlots / 2) {
                    w.fixed(k < idsInRow ? Int64(ids[k].fingerprint) : 0)
                    w.fixed(k < idsInRow ? ids[k].stamp : 0)
                }
            }
            for (offset, isString, isDate) in pairSlots {
                guard let p = pair(row + offset, date: isDate) else { w.word(SegmentEngine.none); continue }
                w.word(p.ts, base: maxTs)
                if isString { strings.bytes(p.value).withUnsafeBytes { w.bytes($0) } } else { w.word(p.value, base: isDate ? maxTs : 0) }
            }
            w.count(ids.count - idsInRow)
            for id in ids[idsInRow...] {
                if compact { w.fixed32(id.fingerprint) } else { w.fixed(Int64(id.fingerprint)) }
                w.word(id.stamp, base: maxTs)
            }
            w.count(counts.count)
            for (g, n) in counts { w.count(g); w.count(n) }
            precondition(w.position <= bound, "snapshot size bounded wrongly")
            return w.position
        }
        out.removeLast(bound - written)
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
            guard first >= -4 && first <= -2 else {
                throw SnapshotError(description: "snapshot format marker \(first) is not one this version reads (format 1, 2, 3 or 4)")
            }
            format = -first
        } else {
            format = 1
            r.pos = 0
        }
        let compact = format >= 3
        if compact {
            r = SnapshotReader(snapshot, compact: true)
            r.pos = 8
            guard r.bytes() != nil else { throw truncated }  // the caller's tag
        }
        // Formats 1 to 3 end the row with two (64-bit hash, stamp) pairs, format 4 with the
        // slots of the ids it lists after the pairs (not written).
        let legacy = format <= 3
        let expectedStride = legacy ? layout.logicalDedupOffset + StateLayout.legacyDedupSlots : layout.logicalStride
        guard let version = r.bytes(), let stride = r.count() else { throw truncated }
        guard SnapshotCodec.equal(version, versionBytes), stride == Int64(expectedStride) else {
            throw SnapshotError(description: "snapshot of model '\(String(decoding: version, as: UTF8.self))' (\(stride) slots) does not fit model '\(model.version)' (\(expectedStride) slots)")
        }
        let pairCount = pairSlots.count
        // Decoded into the engine's scratch slots (a closure here would keep the reader and the
        // core in memory rather than in registers, for every word).
        let scratch = UnsafeMutableBufferPointer(start: restoreScratch, count: layout.logicalStride + 2 * pairCount)
        let slots = UnsafeMutableBufferPointer(rebasing: scratch[0..<layout.logicalStride])
        // Per pair: its time (none: no pair) and value.
        let pairs = UnsafeMutableBufferPointer(rebasing: scratch[layout.logicalStride...])
        var legacyIds: (first: (hash: Int64, stamp: Millis), second: (hash: Int64, stamp: Millis)) = ((0, 0), (0, 0))
        if compact {
            guard let maxTs = r.word() else { throw truncated }
            let scoredBase = maxTs &<< ScoredEvent.pointsBits
            for k in 0..<layout.logicalDedupOffset {
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
            if legacy {
                guard let hash0 = r.word(), let stamp0 = r.word(base: maxTs), let hash1 = r.word(), let stamp1 = r.word(base: maxTs) else { throw truncated }
                legacyIds = ((hash0, stamp0), (hash1, stamp1))
            }
            slots[StateLayout.maxTs] = maxTs
            slots[StateLayout.scheduled] = SegmentEngine.unscheduled
        } else {
            for k in 0..<layout.logicalDedupOffset {
                guard let v = r.fixed() else { throw truncated }
                slots[k] = v
            }
            guard let hash0 = r.fixed(), let stamp0 = r.fixed(), let hash1 = r.fixed(), let stamp1 = r.fixed() else { throw truncated }
            legacyIds = ((hash0, stamp0), (hash1, stamp1))
        }
        for k in layout.logicalDedupOffset..<layout.logicalStride { slots[k] = RememberedId.empty.slot }
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
        // The ids: into the row's slots first, the others into `moreIds` (allocated only for a
        // contact with more than its row holds).
        let idSlots = slots.baseAddress! + layout.logicalDedupOffset
        var idsInRow = 0
        var moreIds: [RememberedId] = []
        if legacy {
            for (hash, stamp) in [legacyIds.first, legacyIds.second] where hash != 0 {
                try EngineCore.placeRestoredId(RememberedId.fingerprint(folding: UInt64(bitPattern: hash)), stamp, maxTs, duplicateHorizon, idSlots, &idsInRow, &moreIds)
            }
        }
        guard let idCount = r.count(), idCount >= 0, idCount <= Int64(snapshot.count / 5) else { throw truncated }
        for _ in 0..<idCount {
            let fingerprint: UInt32
            if legacy {
                guard let hash = r.fixed() else { throw truncated }
                // Hash 0 marks an empty place: the id hash never gives it.
                guard hash != 0 else { throw SnapshotError(description: "snapshot holds an event-id fingerprint of 0") }
                fingerprint = RememberedId.fingerprint(folding: UInt64(bitPattern: hash))
            } else {
                guard let value = r.fixed32() else { throw truncated }
                guard value != 0 else { throw SnapshotError(description: "snapshot holds an event-id fingerprint of 0") }
                fingerprint = value
            }
            guard let stamp = r.word(base: maxTs) else { throw truncated }
            try EngineCore.placeRestoredId(fingerprint, stamp, maxTs, duplicateHorizon, idSlots, &idsInRow, &moreIds)
        }
        guard let nCounts = r.count(), nCounts >= 0, nCounts <= Int64(model.groups.count) else { throw truncated }
        var counts: [(group: Int, n: Int)] = []
        for _ in 0..<nCounts {
            guard let g = r.count(), let n = r.count(), g >= 0, g < Int64(model.groups.count), n >= 0 else { throw truncated }
            // A transition carries its same-instant number in 32 bits (`PendingTransition.n`).
            guard n < Int64(Int32.max) else { throw SnapshotError(description: "snapshot holds a same-instant count of \(n), more than a transition can carry") }
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
        // The row's timer goes first: the wheel is told where it was before the row is replaced.
        let oldTimer = row[StateLayout.scheduled]
        if oldTimer != SegmentEngine.unscheduled { timers.remove(contact: Int32(idx), from: oldTimer) }
        // So does its duplicate chain: the row names it.
        let oldChain = RememberedId(slot: row[layout.chainPlace]).chainHead
        layout.store(logical: slots.baseAddress!, into: row)
        for (slot, (offset, _, isDate)) in pairSlots.enumerated() {
            row[offset] = SegmentEngine.none
            if isDate { row[offset + 1] = SegmentEngine.none }
            let ts = pairs[2 * slot]
            if ts != SegmentEngine.none { writePair(row + offset, ts, pairs[2 * slot + 1], date: isDate) }
        }
        if oldChain >= 0 { _ = dedupOverflow.release(chain: oldChain, live: .noId) }
        if !moreIds.isEmpty { spill(row, moreIds) }
        if !inserted && !sameInstant.isEmpty {
            for g in 0..<model.groups.count { sameInstant.removeValue(forKey: UInt64(idx) << 8 | UInt64(g)) }
        }
        for c in counts { sameInstant[UInt64(idx) << 8 | UInt64(c.group)] = c.n }
        // The restored row has no timer (its old one is gone): set it.
        row[StateLayout.scheduled] = SegmentEngine.unscheduled
        schedule(idx, row)
    }

    // The checks below are static or `mutating`: a non-mutating method of the core called from
    // `restore` gets a copy of the whole core (a retain of every array) for each contact, and a
    // layout or model passed as an argument is copied too.

    /// Places a remembered id read from a snapshot: in the row's next free id slot (from
    /// `idSlots`), or else in `moreIds`. An id stamped after the newest time (a model change
    /// rebuilt from an older history could stamp one so before ids became fingerprints) counts
    /// from the newest time; one no longer live is not kept.
    private static func placeRestoredId(_ fingerprint: UInt32, _ stamp: Millis, _ newest: Millis, _ horizon: Millis,
                                        _ idSlots: UnsafeMutablePointer<Int64>,
                                        _ idsInRow: inout Int, _ moreIds: inout [RememberedId]) throws(SnapshotError) {
        try EngineCore.checkEventTime(stamp)
        guard stamp != SegmentEngine.none else { throw SnapshotError(description: "snapshot holds an event id without its stamp") }
        let stamp = min(stamp, newest)
        guard newest - stamp < horizon else { return }
        let id = RememberedId(fingerprint: fingerprint, stamp: stamp)
        if idsInRow < StateLayout.dedupSlots {
            idSlots[idsInRow] = id.slot
            idsInRow += 1
        } else {
            moreIds.append(id)
        }
    }

    /// A list's `capacity` slots from `offset` hold its entries newest first (times, or
    /// `ScoredEvent`s when `scored`), then empty places.
    private static func checkNewestFirst(_ slots: UnsafeMutableBufferPointer<Int64>, _ offset: Int, _ capacity: Int, scored: Bool) throws(SnapshotError) {
        var k = 1
        while k < capacity {
            let newer = slots[offset + k - 1], entry = slots[offset + k]
            if entry != SegmentEngine.none {
                if newer == SegmentEngine.none {
                    throw SnapshotError(description: "snapshot holds a list with an entry after an empty place")
                }
                if scored ? ScoredEvent.ts(entry) > ScoredEvent.ts(newer) : entry > newer {
                    throw SnapshotError(description: "snapshot holds a list whose entries are not newest first")
                }
            }
            k += 1
        }
    }

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
        // A list entry is the time of an applied event: never after the newest one.
        let newest = slots[StateLayout.maxTs]
        let afterNewest = SnapshotError(description: "snapshot holds a list entry after the contact's newest event")
        for l in layout.lists {
            for k in 0..<l.capacity {
                try EngineCore.checkEventTime(slots[l.logicalOffset + k])
                if slots[l.logicalOffset + k] > newest { throw afterNewest }
            }
        }
        // A list is kept newest first from its first slot: an entry after an empty slot, or newer
        // than the one before it, was never written by an engine (the evaluator reads a list's
        // N-th slot as its N-th newest entry).
        for l in layout.lists { try EngineCore.checkNewestFirst(slots, l.logicalOffset, l.capacity, scored: false) }
        for l in layout.dayLists {
            for k in 0..<l.capacity {
                let day = slots[l.logicalOffset + k]
                guard day == SegmentEngine.none || (day >= Millis.earliestEventTime / DayCalendar.dayMs - 2 && day <= Millis.latestEventTime / DayCalendar.dayMs + 2) else {
                    throw SnapshotError(description: "snapshot holds a day outside the years 0000 to 9999")
                }
            }
        }
        for l in layout.sumLists {
            for k in 0..<l.capacity {
                let ts = slots[l.logicalOffset + 2 * k], value = slots[l.logicalOffset + 2 * k + 1]
                try EngineCore.checkEventTime(ts)
                // An empty entry is (none, none); a value is a finite number.
                guard ts == SegmentEngine.none ? value == SegmentEngine.none : Double(bitPattern: UInt64(bitPattern: value)).isFinite else {
                    throw SnapshotError(description: "snapshot holds a summed value that is not a finite number")
                }
            }
        }
        for l in layout.scoreLists {
            for k in 0..<l.capacity where slots[l.logicalOffset + k] != SegmentEngine.none {
                let e = slots[l.logicalOffset + k]
                // Format 1 packed `ts << 16 | points`.
                let ts = format == 1 ? e >> 16 : ScoredEvent.ts(e)
                let points = format == 1 ? e & 0xFFFF : ScoredEvent.points(e)
                try EngineCore.checkEventTime(ts)
                if ts > newest { throw afterNewest }
                slots[l.logicalOffset + k] = ScoredEvent.pack(ts: ts, points: min(points, l.cap))
            }
            try EngineCore.checkNewestFirst(slots, l.logicalOffset, l.capacity, scored: true)
        }
    }
}

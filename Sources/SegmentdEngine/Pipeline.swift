/// What became of one input record.
public enum RecordOutcome: Sendable, Equatable {
    case applied
    case duplicate
    case ignored(IgnoreReason)
    case bad(DecodeError)
}

/// Counts of records by outcome, for the replay summary and the daemon's metrics.
public struct RecordCounters: Sendable, Equatable {
    public var records = 0
    public var applied = 0
    public var duplicates = 0
    public var byShape: [String: Int] = [:]
    public var ignored: [String: Int] = [:]
    public var bad: [String: Int] = [:]

    public init() {}

    public var badTotal: Int { bad.values.reduce(0, +) }
    public var ignoredTotal: Int { ignored.values.reduce(0, +) }
}

/// Decode → engine, record by record: the one path every input takes, in replay and in the
/// daemon alike. Transitions accumulate in the engine until taken. One thread at a time.
public final class Pipeline {
    public var engine: SegmentEngine { state.pointee.engine }
    public var decoder: EventDecoder { state.pointee.decoder }
    public var encoder: TransitionEncoder { state.pointee.encoder }
    /// Everything the per-record path reads and writes, behind a pointer allocated once: every
    /// access to a class's stored property is checked for exclusivity at run time (about 190
    /// instructions in the runtime's access set, several per record), a pointee's is not.
    private let state: UnsafeMutablePointer<State>

    private struct State {
        var engine: SegmentEngine
        var decoder: EventDecoder
        var encoder: TransitionEncoder
        var counts = RecordCounters()
        /// Events applied, by type index (`Model.eventTypes`): `typeCount` counters in plain
        /// memory (an array counted per record is checked for uniqueness every time).
        var eventsByType: UnsafeMutablePointer<Int>
        var typeCount: Int
        /// Records by shape, counted in plain integers (put into `byShape` when read).
        var nativeRecords = 0
        var segmentRecords = 0
        var futureGuard: FutureGuard? = nil
        var adapters = WebhookAdapters([])
        /// Whether any adapter is on (`adapters.enabled` is a set: asked for every record).
        var adaptersOn = false
        /// `process(batch:)`'s decoders, made at its first call (the daemon's record-by-record
        /// pipelines never need them).
        var lookahead: Lookahead? = nil
    }

    /// Records decoded ahead of their application, `Lookahead.depth` at a time: each has its
    /// own decoder (an event borrows its decoder's memory until it is applied), its events (or
    /// its outcome, when it has none) and its contact's hash, in memory allocated once. The
    /// events are kept as plain values: a decode result kept whole is copied through a
    /// value witness (it may hold an error's text) every time it is read.
    struct Lookahead {
        /// Enough records that the prefetch stages of the group overlap their misses (a miss
        /// is worth a few hundred instructions; a record's decoding is about 1,500), few enough
        /// that what they ask for stays in the cache until it is used.
        static let depth = 8
        let decoders: UnsafeMutablePointer<EventDecoder>
        /// Per record: its events and shape, or (`hasEvents` false) its outcome, initialized
        /// only until it is told.
        let hasEvents: UnsafeMutablePointer<Bool>
        let firsts: UnsafeMutablePointer<EngineEvent>
        /// A record's second event (a Segment identify with a stage), written only when it has one.
        let hasSecond: UnsafeMutablePointer<Bool>
        let seconds: UnsafeMutablePointer<EngineEvent>
        let shapes: UnsafeMutablePointer<InputShape>
        let outcomes: UnsafeMutablePointer<RecordOutcome>
        let hashes: UnsafeMutablePointer<UInt64>
        /// The contact each record's table slot named when prefetched (-1: none).
        let likelyContacts: UnsafeMutablePointer<Int>

        init(model: Model, maxRecordBytes: Int) {
            decoders = .allocate(capacity: Lookahead.depth)
            for k in 0..<Lookahead.depth {
                (decoders + k).initialize(to: EventDecoder(model: model, maxRecordBytes: maxRecordBytes))
            }
            hasEvents = .allocate(capacity: Lookahead.depth)
            firsts = .allocate(capacity: Lookahead.depth)
            hasSecond = .allocate(capacity: Lookahead.depth)
            seconds = .allocate(capacity: Lookahead.depth)
            shapes = .allocate(capacity: Lookahead.depth)
            outcomes = .allocate(capacity: Lookahead.depth)
            hashes = .allocate(capacity: Lookahead.depth)
            likelyContacts = .allocate(capacity: Lookahead.depth)
        }

        func deallocate() {
            decoders.deinitialize(count: Lookahead.depth)
            decoders.deallocate()
            hasEvents.deallocate()
            firsts.deallocate()
            hasSecond.deallocate()
            seconds.deallocate()
            shapes.deallocate()
            outcomes.deallocate()
            hashes.deallocate()
            likelyContacts.deallocate()
        }
    }

    /// Counts of records by outcome.
    public var counters: RecordCounters {
        let s = state.pointee
        var c = s.counts
        if s.nativeRecords > 0 { c.byShape[InputShape.native.rawValue, default: 0] += s.nativeRecords }
        if s.segmentRecords > 0 { c.byShape[InputShape.segment.rawValue, default: 0] += s.segmentRecords }
        return c
    }
    /// Events applied, by canonical type index (an identify with a stage counts two).
    public var eventsByType: [Int] { Array(UnsafeBufferPointer(start: state.pointee.eventsByType, count: state.pointee.typeCount)) }

    /// `duplicateHorizon`: see `SegmentEngine.duplicateHorizons`.
    public init(model: Model, lateness: Millis = 0, duplicateHorizon: Millis = SegmentEngine.defaultDuplicateHorizon, maxRecordBytes: Int = 1 << 20) {
        state = .allocate(capacity: 1)
        let typeCount = model.eventTypes.count
        let eventsByType = UnsafeMutablePointer<Int>.allocate(capacity: max(typeCount, 1))
        eventsByType.initialize(repeating: 0, count: max(typeCount, 1))
        state.initialize(to: State(engine: SegmentEngine(model: model, lateness: lateness, duplicateHorizon: duplicateHorizon),
                                   decoder: EventDecoder(model: model, maxRecordBytes: maxRecordBytes),
                                   encoder: TransitionEncoder(model: model),
                                   eventsByType: eventsByType, typeCount: typeCount))
    }

    deinit {
        state.pointee.lookahead?.deallocate()
        state.pointee.eventsByType.deallocate()
        state.deinitialize(count: 1)
        state.deallocate()
    }

    /// When set, an event later than `now + allowance` is bad (`invalid_time`) and moves
    /// nothing: the daemon sets it from the wall clock for every batch (`max_future`), replay
    /// from `--now`.
    public var futureGuard: FutureGuard? {
        get { state.pointee.futureGuard }
        set { state.pointee.futureGuard = newValue }
    }

    /// Email providers' webhook shapes to accept besides the contract's two (off by default).
    public var adapters: WebhookAdapters {
        get { state.pointee.adapters }
        set {
            state.pointee.adapters = newValue
            state.pointee.adaptersOn = !newValue.enabled.isEmpty
        }
    }

    public func process(_ bytes: UnsafeBufferPointer<UInt8>) -> RecordOutcome {
        if state.pointee.adaptersOn, let outcome = processAdapted(bytes) { return outcome }
        state.pointee.counts.records += 1
        return decodeAndApply(bytes)
    }

    /// A record in a webhook adapter's shape (nil when adapters are off or it is not one):
    /// one input record, several events, each decoded and applied like a native record; the
    /// record's outcome is the first bad event's, else applied, else the rest.
    private func processAdapted(_ bytes: UnsafeBufferPointer<UInt8>) -> RecordOutcome? {
        guard state.pointee.adaptersOn, case let .records(records, _) = state.pointee.adapters.translate(bytes) else {
            return nil
        }
        state.pointee.counts.records += 1
        guard !records.isEmpty else {
            state.pointee.counts.ignored[IgnoreReason.unusedProviderEvent.rawValue, default: 0] += 1
            return .ignored(.unusedProviderEvent)
        }
        var outcome: RecordOutcome? = nil
        for r in records {
            let o = r.withUnsafeBufferPointer { decodeAndApply($0) }
            switch (outcome, o) {
            case (.bad, _): break
            case (_, .bad), (nil, _), (_, .applied): outcome = o
            default: break
            }
        }
        return outcome!
    }

    /// Like `process`, for a caller that places records by contact (the daemon's
    /// repartitioning): a decoded record is first shown to `belongsHere` with its contact id
    /// and, when that says no, it is neither applied nor counted and the result is nil (the
    /// caller forwards it to its contact's partition, where it is processed). Records of the
    /// webhook adapters, ignored and bad records always stay: there is no contact to place
    /// them by. The record is decoded once either way.
    public func process(_ bytes: UnsafeBufferPointer<UInt8>,
                        belongsHere: (_ contactId: UnsafeBufferPointer<UInt8>) -> Bool) -> RecordOutcome? {
        if state.pointee.adaptersOn, let outcome = processAdapted(bytes) { return outcome }
        let outcome = decodeAndApply(bytes, belongsHere: belongsHere)
        if outcome != nil { state.pointee.counts.records += 1 }
        return outcome
    }

    @inline(__always)
    private func decodeAndApply(_ bytes: UnsafeBufferPointer<UInt8>) -> RecordOutcome {
        decodeAndApply(bytes) { _ in true }!
    }

    /// Processes `records` in order, exactly as `process` would one after the other, and
    /// tells `outcome` what became of each (by its index in `records`) as soon as it is known.
    ///
    /// The difference is speed over many contacts: records are decoded a few at a time
    /// (`Lookahead.depth`) before any of them is applied, and the memory each one's contact
    /// lookup and state will read is asked for in stages (`SegmentEngine.prefetchContact`),
    /// so that the cache misses of looking up random contacts overlap instead of following
    /// one another. Decoding depends on nothing the engine holds, so decoding ahead changes no
    /// outcome. `outcome` must not call back into this pipeline.
    public func process(batch records: UnsafeBufferPointer<UnsafeBufferPointer<UInt8>>, outcome: (Int, RecordOutcome) -> Void) {
        processBatch(records, belongsHere: { _ in true }, outcome: { index, result in outcome(index, result!) })
    }

    /// Like `process(batch:outcome:)`, for a caller that places records by contact (the
    /// daemon's repartitioning), record by record as `process(_:belongsHere:)` does: each
    /// decoded record is shown to `belongsHere` with its contact id just before it would be
    /// applied, and when that says no, it is neither applied nor counted and its outcome is nil
    /// (the caller forwards it). `outcome` is told each record's outcome right after it, before
    /// the next record is applied, so it may take the engine's transitions (`drainTransitions`,
    /// the encoder) and produce them in the records' order; it may throw, which ends the batch
    /// there (the records after it are neither applied nor told, though they may have been
    /// decoded and counted) and is rethrown.
    public func process(batch records: UnsafeBufferPointer<UnsafeBufferPointer<UInt8>>,
                        belongsHere: (_ contactId: UnsafeBufferPointer<UInt8>) -> Bool,
                        outcome: (Int, RecordOutcome?) throws -> Void) rethrows {
        try processBatch(records, belongsHere: belongsHere, outcome: outcome)
    }

    /// Both `process(batch:)`, inlined into each so that replay's constant `belongsHere` costs nothing.
    @inline(__always)
    private func processBatch(_ records: UnsafeBufferPointer<UnsafeBufferPointer<UInt8>>,
                              belongsHere: (_ contactId: UnsafeBufferPointer<UInt8>) -> Bool,
                              outcome: (Int, RecordOutcome?) throws -> Void) rethrows {
        let s = state
        // Webhook shapes translate a record into several: they go record by record.
        if s.pointee.adaptersOn {
            for (i, record) in records.enumerated() { try outcome(i, process(record, belongsHere: belongsHere)) }
            return
        }
        if s.pointee.lookahead == nil {
            s.pointee.lookahead = Lookahead(model: s.pointee.decoder.model, maxRecordBytes: s.pointee.decoder.maxRecordBytes)
        }
        let ahead = s.pointee.lookahead!
        let engine = s.pointee.engine
        var start = 0
        while start < records.count {
            let group = min(Lookahead.depth, records.count - start)
            // Stage 1, while decoding: each contact's table slot. A record without events is
            // counted here, one with events once it is applied (counters are read only once
            // the batch is done).
            for k in 0..<group {
                switch ahead.decoders[k].decode(records[start + k]) {
                case let .events(first, second, shape):
                    ahead.hasEvents[k] = true
                    ahead.firsts[k] = first
                    ahead.hasSecond[k] = second != nil
                    if let second { ahead.seconds[k] = second }
                    ahead.shapes[k] = shape
                    let hash = SegmentEngine.contactHash(of: first.contactId)
                    ahead.hashes[k] = hash
                    engine.prefetchContact(hash: hash)
                case .ignored(let reason):
                    ahead.hasEvents[k] = false
                    s.pointee.counts.records += 1
                    s.pointee.counts.ignored[reason.rawValue, default: 0] += 1
                    (ahead.outcomes + k).initialize(to: .ignored(reason))
                case .bad(let error):
                    ahead.hasEvents[k] = false
                    s.pointee.counts.records += 1
                    s.pointee.counts.bad[error.reason.rawValue, default: 0] += 1
                    (ahead.outcomes + k).initialize(to: .bad(error))
                }
            }
            // Stage 2: the state of the contact each slot names. Stage 3: its id's bytes.
            for k in 0..<group {
                ahead.likelyContacts[k] = ahead.hasEvents[k] ? engine.prefetchContactState(hash: ahead.hashes[k]) ?? -1 : -1
            }
            for k in 0..<group where ahead.likelyContacts[k] >= 0 { engine.prefetchContactId(ahead.likelyContacts[k]) }
            for k in 0..<group {
                do {
                    if ahead.hasEvents[k] {
                        let result = applyDecoded(ahead.firsts[k], ahead.hasSecond[k] ? ahead.seconds[k] : nil, ahead.shapes[k],
                                                  contactHash: ahead.hashes[k], belongsHere: belongsHere)
                        if result != nil { s.pointee.counts.records += 1 }
                        try outcome(start + k, result)
                    } else {
                        try outcome(start + k, (ahead.outcomes + k).move())
                    }
                } catch {
                    // The outcomes of the group's records not told yet are released.
                    for rest in (k + 1)..<group where !ahead.hasEvents[rest] { (ahead.outcomes + rest).deinitialize(count: 1) }
                    throw error
                }
            }
            start += group
        }
    }

    /// Decodes one record and applies it, unless `belongsHere` says its contact is not this
    /// pipeline's (nil). Its events borrow the decoder's memory. Inlined, and switching on the
    /// decoder's result in place: the decoded record is a large value, copied on every pass.
    @inline(__always)
    private func decodeAndApply(_ bytes: UnsafeBufferPointer<UInt8>,
                                belongsHere: (_ contactId: UnsafeBufferPointer<UInt8>) -> Bool) -> RecordOutcome? {
        let s = state
        switch s.pointee.decoder.decode(bytes) {
        case let .events(first, second, shape):
            return applyDecoded(first, second, shape, contactHash: nil, belongsHere: belongsHere)
        case .ignored(let r):
            s.pointee.counts.ignored[r.rawValue, default: 0] += 1
            return .ignored(r)
        case .bad(let e):
            s.pointee.counts.bad[e.reason.rawValue, default: 0] += 1
            return .bad(e)
        }
    }

    /// The part of `decodeAndApply` after decoding: the guard, the counters and the engine.
    /// `contactHash`: the contact id's hash, when it was computed to prefetch the contact.
    @inline(__always)
    private func applyDecoded(_ first: EngineEvent, _ second: EngineEvent?, _ shape: InputShape, contactHash: UInt64?,
                              belongsHere: (_ contactId: UnsafeBufferPointer<UInt8>) -> Bool) -> RecordOutcome? {
        let s = state
        guard belongsHere(first.contactId) else { return nil }
        // Both events of a record carry the record's one time.
        if let guardrail = s.pointee.futureGuard, first.ts > guardrail.limit {
            let e = guardrail.error(for: first.ts)
            s.pointee.counts.bad[e.reason.rawValue, default: 0] += 1
            return .bad(e)
        }
        if shape == .native { s.pointee.nativeRecords += 1 } else { s.pointee.segmentRecords += 1 }
        if s.pointee.engine.apply(first, second, contactHash: contactHash) {
            s.pointee.counts.applied += 1
            // Types are the decoder's, from this model: within the counters (checked as an
            // array index would be).
            precondition(Int(first.type) < s.pointee.typeCount && Int(second?.type ?? 0) < s.pointee.typeCount)
            s.pointee.eventsByType[Int(first.type)] += 1
            if let second { s.pointee.eventsByType[Int(second.type)] += 1 }
            return .applied
        }
        s.pointee.counts.duplicates += 1
        return .duplicate
    }

    /// Switches to another model without losing state: a new engine adopts every contact
    /// (see `SegmentEngine.adopt(from:)`) and the re-evaluation's transitions wait in it.
    public func migrate(to model: Model) {
        let old = state.pointee.engine
        let next = SegmentEngine(model: model, lateness: old.lateness, duplicateHorizon: old.duplicateHorizon)
        // Engagement is counted under the new model's segments from here (a new count).
        next.countsEngagement = old.countsEngagement
        next.adopt(from: old)
        let leftover = old.takeTransitions()
        state.pointee.engine = next
        state.pointee.decoder = EventDecoder(model: model, maxRecordBytes: state.pointee.decoder.maxRecordBytes)
        state.pointee.lookahead?.deallocate()
        state.pointee.lookahead = nil
        state.pointee.encoder = TransitionEncoder(model: model)
        let typeCount = model.eventTypes.count
        if state.pointee.typeCount < typeCount {
            let grown = UnsafeMutablePointer<Int>.allocate(capacity: typeCount)
            grown.initialize(repeating: 0, count: typeCount)
            grown.update(from: state.pointee.eventsByType, count: state.pointee.typeCount)
            state.pointee.eventsByType.deallocate()
            state.pointee.eventsByType = grown
            state.pointee.typeCount = typeCount
        }
        precondition(leftover.isEmpty, "transitions must be taken before a model change")
    }

    public func process(_ bytes: [UInt8]) -> RecordOutcome {
        bytes.withUnsafeBufferPointer { process($0) }
    }
}

/// The future-time guard: one client with a wrong clock must not move a partition's time.
public struct FutureGuard: Sendable, Equatable {
    public var now: Millis
    public var allowance: Millis
    public init(now: Millis, allowance: Millis) {
        self.now = now
        self.allowance = allowance
    }
    /// The latest acceptable event time.
    public var limit: Millis { now + allowance }

    func error(for ts: Millis) -> DecodeError {
        DecodeError(reason: .invalidTime,
                    detail: "'ts' \(EventTime.format(ts)) is \(DurationText.approximate(ts - now)) ahead of the clock (\(EventTime.format(now))); at most \(DurationSpec(millis: allowance)) is allowed (max_future)")
    }
}

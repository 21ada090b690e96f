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

    public init(model: Model, lateness: Millis = 0, maxRecordBytes: Int = 1 << 20) {
        state = .allocate(capacity: 1)
        let typeCount = model.eventTypes.count
        let eventsByType = UnsafeMutablePointer<Int>.allocate(capacity: max(typeCount, 1))
        eventsByType.initialize(repeating: 0, count: max(typeCount, 1))
        state.initialize(to: State(engine: SegmentEngine(model: model, lateness: lateness),
                                   decoder: EventDecoder(model: model, maxRecordBytes: maxRecordBytes),
                                   encoder: TransitionEncoder(model: model),
                                   eventsByType: eventsByType, typeCount: typeCount))
    }

    deinit {
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

    /// Decodes one record and applies it, unless `belongsHere` says its contact is not this
    /// pipeline's (nil). Its events borrow the decoder's memory. Inlined, and switching on the
    /// decoder's result in place: the decoded record is a large value, copied on every pass.
    @inline(__always)
    private func decodeAndApply(_ bytes: UnsafeBufferPointer<UInt8>,
                                belongsHere: (_ contactId: UnsafeBufferPointer<UInt8>) -> Bool) -> RecordOutcome? {
        let s = state
        switch s.pointee.decoder.decode(bytes) {
        case let .events(first, second, shape):
            guard belongsHere(first.contactId) else { return nil }
            // Both events of a record carry the record's one time.
            if let guardrail = s.pointee.futureGuard, first.ts > guardrail.limit {
                let e = guardrail.error(for: first.ts)
                s.pointee.counts.bad[e.reason.rawValue, default: 0] += 1
                return .bad(e)
            }
            if shape == .native { s.pointee.nativeRecords += 1 } else { s.pointee.segmentRecords += 1 }
            if s.pointee.engine.apply(first, second) {
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
        case .ignored(let r):
            s.pointee.counts.ignored[r.rawValue, default: 0] += 1
            return .ignored(r)
        case .bad(let e):
            s.pointee.counts.bad[e.reason.rawValue, default: 0] += 1
            return .bad(e)
        }
    }

    /// Switches to another model without losing state: a new engine adopts every contact
    /// (see `SegmentEngine.adopt(from:)`) and the re-evaluation's transitions wait in it.
    public func migrate(to model: Model) {
        let old = state.pointee.engine
        let next = SegmentEngine(model: model, lateness: old.lateness, dedupHorizon: old.dedupHorizon)
        // Engagement is counted under the new model's segments from here (a new count).
        next.countsEngagement = old.countsEngagement
        next.adopt(from: old)
        let leftover = old.takeTransitions()
        state.pointee.engine = next
        state.pointee.decoder = EventDecoder(model: model, maxRecordBytes: state.pointee.decoder.maxRecordBytes)
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

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
/// daemon alike. Transitions accumulate in the engine until taken.
public final class Pipeline {
    public var engine: SegmentEngine { _engine }
    public var decoder: EventDecoder { _decoder }
    public var encoder: TransitionEncoder { _encoder }
    // Private storage behind public getters: the optimizer then drops the dynamic exclusivity
    // checks a class's public stored properties cost on every per-record access.
    private var _engine: SegmentEngine
    private var _decoder: EventDecoder
    private var _encoder: TransitionEncoder
    /// Counts of records by outcome. Records by shape are counted in plain integers on the
    /// per-record path and put into `byShape` only when the counters are read.
    public var counters: RecordCounters {
        var c = counts
        if nativeRecords > 0 { c.byShape[InputShape.native.rawValue, default: 0] += nativeRecords }
        if segmentRecords > 0 { c.byShape[InputShape.segment.rawValue, default: 0] += segmentRecords }
        return c
    }
    private var counts = RecordCounters()
    /// Events applied, by canonical type index (an identify with a stage counts two).
    public var eventsByType: [Int] { _eventsByType }
    private var _eventsByType = [Int](repeating: 0, count: CanonicalTypes.all.count)
    private var nativeRecords = 0
    private var segmentRecords = 0

    public init(model: Model, lateness: Millis = 0, maxRecordBytes: Int = 1 << 20) {
        _engine = SegmentEngine(model: model, lateness: lateness)
        _decoder = EventDecoder(model: model, maxRecordBytes: maxRecordBytes)
        _encoder = TransitionEncoder(model: model)
    }

    /// When set, an event later than `now + allowance` is bad (`invalid_time`) and moves
    /// nothing: the daemon sets it from the wall clock for every batch (`max_future`), replay
    /// from `--now`.
    public var futureGuard: FutureGuard? {
        get { _futureGuard }
        set { _futureGuard = newValue }
    }
    private var _futureGuard: FutureGuard? = nil

    /// Email providers' webhook shapes to accept besides the contract's two (off by default).
    public var adapters: WebhookAdapters {
        get { _adapters }
        set { _adapters = newValue }
    }
    private var _adapters = WebhookAdapters([])

    public func process(_ bytes: UnsafeBufferPointer<UInt8>) -> RecordOutcome {
        if !_adapters.enabled.isEmpty, case let .records(records, _) = _adapters.translate(bytes) {
            // One input record, several events: each is decoded and applied like a native
            // record; the record's outcome is the first bad event's, else applied, else the rest.
            counts.records += 1
            guard !records.isEmpty else {
                counts.ignored[IgnoreReason.unusedProviderEvent.rawValue, default: 0] += 1
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
        counts.records += 1
        return decodeAndApply(bytes)
    }

    private func decodeAndApply(_ bytes: UnsafeBufferPointer<UInt8>) -> RecordOutcome {
        switch _decoder.decode(bytes) {
        case let .events(first, second, shape):
            // Both events of a record carry the record's one time.
            if let guardrail = _futureGuard, first.ts > guardrail.limit {
                let e = guardrail.error(for: first.ts)
                counts.bad[e.reason.rawValue, default: 0] += 1
                return .bad(e)
            }
            if shape == .native { nativeRecords += 1 } else { segmentRecords += 1 }
            if _engine.apply(first, second) {
                counts.applied += 1
                _eventsByType[Int(first.type)] += 1
                if let second { _eventsByType[Int(second.type)] += 1 }
                return .applied
            }
            counts.duplicates += 1
            return .duplicate
        case .ignored(let r):
            counts.ignored[r.rawValue, default: 0] += 1
            return .ignored(r)
        case .bad(let e):
            counts.bad[e.reason.rawValue, default: 0] += 1
            return .bad(e)
        }
    }

    /// Switches to another model without losing state: a new engine adopts every contact
    /// (see `SegmentEngine.adopt(from:)`) and the re-evaluation's transitions wait in it.
    public func migrate(to model: Model) {
        let next = SegmentEngine(model: model, lateness: engine.lateness, dedupHorizon: engine.dedupHorizon)
        next.adopt(from: engine)
        let leftover = engine.takeTransitions()
        _engine = next
        _decoder = EventDecoder(model: model, maxRecordBytes: _decoder.maxRecordBytes)
        _encoder = TransitionEncoder(model: model)
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

/// The segmentation engine for one stream (one input partition): per-contact state, the
/// watermark and the timers, exactly as contract section 4 defines them.
///
/// It is pure: events in, transitions out, no I/O, no clock of its own. Not thread-safe: one
/// owner drives it (the replay loop, or the daemon's partition worker).
///
/// State is kept small and flat. Every contact owns `layout.stride` 64-bit slots in one array
/// (no allocation per contact): for each filter counted by a condition, only its most recent
/// event times (as many as the largest "at least N" over it); for each windowed score, only the
/// most recent events whose points still reach the cap; one slot pair per "latest of" and per
/// attribute. That is enough to compute membership exactly at any instant at or after the
/// contact's clock, and to know the next instant at which time alone can change it.
public final class SegmentEngine {
    /// All state, in memory allocated once and mutated in place: reached through a pointer, a
    /// call costs no run-time exclusivity check of a class's stored property (the engine has
    /// one owner, which drives it from one thread at a time).
    private let core: UnsafeMutablePointer<EngineCore>

    /// How long after a contact's newest event an event id it applied is still caught as a
    /// duplicate, by default.
    public static let defaultDuplicateHorizon: Millis = 7 * 86_400_000
    /// The horizons an engine takes: at least the contract's 24 hours, at most 2^31 ms (about
    /// 24.8 days: a remembered id keeps 32 bits of its stamp, `RememberedId`).
    public static let duplicateHorizons: ClosedRange<Millis> = 86_400_000...(1 << 31)

    public init(model: Model, lateness: Millis = 0, duplicateHorizon: Millis = SegmentEngine.defaultDuplicateHorizon) {
        core = .allocate(capacity: 1)
        core.initialize(to: EngineCore(model: model, lateness: lateness, duplicateHorizon: duplicateHorizon))
    }

    deinit {
        core.pointee.deallocate()
        core.deinitialize(count: 1)
        core.deallocate()
    }

    static let none: Int64 = .min
    static let unscheduled: Int64 = .max
    static var snapshotFormat: Int64 { EngineCore.snapshotFormat }

    public struct SnapshotError: Error, CustomStringConvertible {
        public var description: String
    }

    public var model: Model { core.pointee.model }

    /// Whether events are counted under their contact's segments (`engagement`); off until
    /// turned on, and counted from then.
    public var countsEngagement: Bool {
        get { core.pointee.engagement != nil }
        set {
            if newValue == (core.pointee.engagement != nil) { return }
            core.pointee.engagement = newValue ? EngagementCounts(model: core.pointee.model) : nil
        }
    }

    /// The events counted under their contact's segments since counting was turned on (nil
    /// when off).
    public var engagement: EngagementCounts? { core.pointee.engagement }
    public var lateness: Millis { core.pointee.lateness }
    public var duplicateHorizon: Millis { core.pointee.duplicateHorizon }
    public var layout: StateLayout { core.pointee.layout }
    var contacts: ContactTable { core.pointee.contacts }

    /// Largest `ts` of the events applied so far (`.min` before the first).
    public var streamTime: Millis { core.pointee._streamTime }
    /// No event at or before the watermark is expected any more.
    public var watermark: Millis { core.pointee._watermark }
    public var stats: EngineStats { core.pointee._stats }
    public var contactCount: Int { core.pointee.contactCount }
    /// Approximate bytes of state held (contact table, rows, timers, duplicate memory).
    public var stateBytes: Int { core.pointee.stateBytes }
    public var footprint: EngineFootprint { core.pointee.footprint }
    /// How full the contacts' lists are (`ListOccupancy`): a walk over every row.
    public func listOccupancy() -> ListOccupancy { core.pointee.listOccupancy() }
    /// Whether transitions wait to be taken.
    public var hasPendingTransitions: Bool { core.pointee.hasPendingTransitions }

    /// Applies one input record: one event, or two for a Segment identify with a stage.
    /// Returns false when the record was a duplicate (then nothing changed, not even time).
    /// After the events, the watermark moves and every due boundary of every contact fires.
    @discardableResult
    public func apply(_ first: EngineEvent, _ second: EngineEvent? = nil) -> Bool { core.pointee.apply(first, second) }

    /// `apply`, with `contactHash` (`contactHash(of: first.contactId)`) when the caller
    /// computed it to prefetch the contact (`prefetchContact(hash:)`), else nil.
    func apply(_ first: EngineEvent, _ second: EngineEvent?, contactHash: UInt64?) -> Bool {
        core.pointee.apply(first, second, eventId: first.eventId, contactHash: contactHash)
    }

    /// The hash the contact table files `contactId` under, for the prefetch stages below.
    @inline(__always)
    static func contactHash(of contactId: UnsafeBufferPointer<UInt8>) -> UInt64 { ContactTable.hash(contactId) }
    /// See `EngineCore.prefetchContact(hash:)` and the two stages after it.
    @inline(__always)
    func prefetchContact(hash: UInt64) { core.pointee.prefetchContact(hash: hash) }
    @inline(__always)
    func prefetchContactState(hash: UInt64) -> Int? { core.pointee.prefetchContactState(hash: hash) }
    @inline(__always)
    func prefetchContactId(_ index: Int) { core.pointee.prefetchContactId(index) }

    /// Rule 5: moves the watermark (never back) and fires every boundary at or before it.
    /// The daemon also calls this with `now - lateness - 1ms` while a partition is idle, and
    /// replay with `--until`.
    public func advanceWatermark(to newWatermark: Millis) { core.pointee.advanceWatermark(to: newWatermark) }

    /// Hands each transition produced so far to `body`, in emission order, then forgets them.
    /// The views borrow the engine's memory: valid only during the call, and `body` must not
    /// call back into the engine. Nothing is allocated or reference-counted per transition.
    /// `body` cannot throw: every transition is handed out and then forgotten, so a caller
    /// that can fail keeps its first error and acts on it after the drain.
    public func drainTransitions(_ body: (TransitionView) -> Void) { core.pointee.drainTransitions(body) }

    /// Takes the transitions produced so far, as owned values.
    public func takeTransitions() -> [Transition] { core.pointee.takeTransitions() }

    /// The contacts whose state changed since the last call (applied events or transitions),
    /// each once: the daemon writes their snapshots to the changelog in the same transaction
    /// as the transitions.
    public func takeDirtyContacts() -> [Int] { core.pointee.takeDirtyContacts() }

    public func contactId(at index: Int) -> [UInt8] { core.pointee.contactId(at: index) }

    /// Calls `body` with the contact id at `index` as borrowed bytes (valid only during the
    /// call; `body` must not call back into the engine): no copy.
    public func withContactId<R>(at index: Int, _ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        try core.pointee.withContactId(at: index, body)
    }

    /// The partition-level part of the state: stream time and watermark.
    public var checkpoint: (streamTime: Millis, watermark: Millis) { core.pointee.checkpoint }

    public func restoreCheckpoint(streamTime: Millis, watermark: Millis) {
        core.pointee.restoreCheckpoint(streamTime: streamTime, watermark: watermark)
    }

    /// A contact's whole state as bytes, for the changelog (see `EngineCore.snapshot`), in the
    /// compact format 4; `tag` (the caller's bytes, e.g. the changelog's position) is carried
    /// along and ignored by `restore` (read it back with `snapshotTag(of:)`).
    public func snapshot(contact idx: Int, tag: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)) -> [UInt8] {
        core.pointee.snapshot(contact: idx, tag: tag)
    }

    /// `snapshot(contact:tag:)` appended to `out` (one buffer reused for many contacts).
    public func snapshot(contact idx: Int, tag: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0), appendingTo out: inout [UInt8]) {
        core.pointee.snapshot(contact: idx, tag: tag, appendingTo: &out)
    }

    /// A snapshot in an older format (2), to check that it is still read.
    func snapshot(contact idx: Int, format: Int64) -> [UInt8] { core.pointee.snapshot(contact: idx, format: format) }

    /// The tag a format 3 or 4 snapshot carries (see `snapshot(contact:tag:)`), without decoding the
    /// rest; nil for a snapshot of another format or one too short to hold its tag.
    public static func snapshotTag(of snapshot: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        SnapshotCodec.tag(of: snapshot)
    }

    /// Restores one contact from a snapshot of any format; a truncated or corrupt one is
    /// refused and leaves the engine as it was.
    public func restore(contactId: [UInt8], snapshot: [UInt8]) throws(SnapshotError) {
        try core.pointee.restore(contactId: contactId, snapshot: snapshot)
    }

    /// `restore` from borrowed bytes (the changelog's restore, with no copy per contact).
    public func restore(contactId: UnsafeBufferPointer<UInt8>, snapshot: UnsafeRawBufferPointer) throws(SnapshotError) {
        try core.pointee.restore(contactId: contactId, snapshot: snapshot)
    }

    /// Makes room for `n` contacts at once (a restore that knows how many come).
    public func reserveContacts(_ n: Int) { core.pointee.reserveContacts(n) }

    /// How many contacts are in each segment: `[group][segment]`.
    public func segmentSizes() -> [[Int]] { core.pointee.segmentSizes() }

    /// Current memberships of a contact (segment index per group, nil for none).
    public func memberships(of contactId: [UInt8]) -> [Int?]? { core.pointee.memberships(of: contactId) }

    /// The contact's clock (contract §4 rule 2) and the next instant time alone could change it.
    public func clock(of contactId: [UInt8]) -> (clock: Millis, next: Millis?)? { core.pointee.clock(of: contactId) }

    func boundaryScans(_ contactId: [UInt8], after c: Millis) -> (first: Millis, following: Millis, scannedAfterFirst: Millis)? {
        core.pointee.boundaryScans(contactId, after: c)
    }

    func segmentsByBothEvaluators(_ contactId: [UInt8], at t: Millis? = nil) -> (at: Millis, stored: [Int], compiled: [Int], interpreted: [Int])? {
        core.pointee.segmentsByBothEvaluators(contactId, at: t)
    }

    /// Why a contact is where it is at `t`: for each group, the segment and the conditions
    /// with their figures.
    public func explain(_ contactId: [UInt8], at t: Millis? = nil) -> Explanation? { core.pointee.explain(contactId, at: t) }

    /// Moves every contact of `old` (another model) into this engine and re-evaluates it
    /// under this engine's model (see `EngineCore.adopt`).
    public func adopt(from old: SegmentEngine) { core.pointee.adopt(from: old.core.pointee) }

    /// The switch of a rebuild: this engine was built from history (under its model, its
    /// history's transitions taken and dropped, its watermark at least old's); `old` holds
    /// what the output topic reflects. Emits, with cause `model`, each difference between
    /// old's segments and this engine's, once (see `EngineCore.takeOver`).
    public func takeOver(from old: SegmentEngine) -> TakeOverCounts { core.pointee.takeOver(from: old.core.pointee) }
}

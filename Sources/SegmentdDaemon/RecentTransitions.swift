import SegmentdEngine
import Synchronization

/// What the live console shows of the transitions this instance committed: counts per minute
/// per group over the last hour, and the latest few transitions. Bounded whatever the traffic:
/// `minutes` buckets, `capacity` transitions.
///
/// Transitions are staged as they are produced into the open transaction and become visible
/// only when it commits (`commit`); an aborted transaction's are dropped (`discard`), so the
/// console never shows a transition the output topic does not hold. Staging keeps only the
/// newest `capacity` transitions of a transaction (in slots reused from one transaction to the
/// next) and a count per group: no allocation per transition once the slots exist.
public final class RecentTransitions: Sendable {
    /// One committed transition as the console shows it.
    public struct Entry: Sendable, Equatable {
        public var group: String
        public var from: String?
        public var to: String?
        /// The transition's instant (event time).
        public var at: Millis
        /// Wall-clock instant of the commit that made it visible.
        public var committedAt: Millis
        /// `event` (with the event type), `time` or `model`.
        public var cause: String
        /// Only when contact ids are kept (`http_contact_ids: on`).
        public var contactId: String?
    }

    /// Committed transitions of the minute starting at `start` (wall clock, ms), per group name.
    public struct Minute: Sendable, Equatable {
        public var start: Millis
        public var counts: [String: Int]
    }

    public struct Snapshot: Sendable {
        /// The last `minutes` minutes up to the one holding `now`, oldest first, empty ones included.
        public var minutes: [Minute]
        /// Newest first.
        public var latest: [Entry]
        public var keepsContactIds: Bool
        /// Transitions committed since the process started (this instance).
        public var committedTotal: Int
    }

    struct Staged {
        var group = 0
        var from = -1
        var to = -1
        var at: Millis = 0
        /// 0 event, 1 time, 2 model.
        var causeKind: UInt8 = 0
        var eventType: UInt8 = 0
        var contact: [UInt8] = []

        mutating func fill(_ t: TransitionView, causeKind: UInt8, eventType: UInt8, contact keep: Bool) {
            group = t.group
            from = t.from ?? -1
            to = t.to ?? -1
            at = t.at
            self.causeKind = causeKind
            self.eventType = eventType
            contact.removeAll(keepingCapacity: true)
            if keep { contact.append(contentsOf: t.contactId) }
        }
    }

    /// The transitions of one open transaction, staged by the thread that produces them (each
    /// processing thread has its own, as it has its own transaction) until it commits them
    /// (`RecentTransitions.commit(_:nowMs:)`) or discards them (an abort). Used by one thread.
    public final class Stage: @unchecked Sendable {
        let capacity: Int
        let keepsContactIds: Bool
        // Used by one thread at a time, several times per transition: not checked for
        // overlapping access at run time (the checks cost about a third of `add`).
        @exclusivity(unchecked) var staged: [Staged] = []
        /// Transitions staged since the last commit or discard (the newest `capacity` are kept).
        @exclusivity(unchecked) var stagedCount = 0
        @exclusivity(unchecked) var stagedPerGroup: [Int] = []
        /// The encoder of the staged transitions (its model names them).
        @exclusivity(unchecked) var encoder: TransitionEncoder?
        /// Staged transitions already named (a model changed within the transaction), awaiting the commit.
        var pending: [Entry] = []
        var pendingCounts: [String: Int] = [:]
        var pendingTotal = 0

        init(capacity: Int, keepsContactIds: Bool) {
            self.capacity = capacity
            self.keepsContactIds = keepsContactIds
        }

        /// A transition produced into the open transaction by `encoder` (whose model names it).
        public func add(_ t: TransitionView, encoder: TransitionEncoder) {
            let kind: UInt8, type: UInt8
            switch t.cause {
            case let .event(_, eventType): kind = 0; type = eventType
            case .time: kind = 1; type = 0
            case .model: kind = 2; type = 0
            }
            // A model reload within the transaction: what was staged is named under the old model.
            if self.encoder !== encoder {
                if let old = self.encoder { materialize(model: old.model) }
                self.encoder = encoder
            }
            if stagedPerGroup.count <= t.group { stagedPerGroup += Array(repeating: 0, count: t.group + 1 - stagedPerGroup.count) }
            stagedPerGroup[t.group] += 1
            let slot = stagedCount % capacity
            if slot == staged.count { staged.append(Staged()) }
            // One access to the slot (each access to a class's stored array is checked at run
            // time: one per field cost as much as the rest of this method).
            staged[slot].fill(t, causeKind: kind, eventType: type, contact: keepsContactIds)
            stagedCount += 1
        }

        /// The open transaction aborted: what it staged never reached the output topic.
        public func discard() {
            stagedCount = 0
            for i in stagedPerGroup.indices { stagedPerGroup[i] = 0 }
            pending.removeAll()
            pendingCounts.removeAll()
            pendingTotal = 0
        }

        /// Names the staged transitions under `model` and moves them to `pending` (the newest
        /// `capacity` kept), their counts to `pendingCounts`.
        func materialize(model: Model) {
            guard stagedCount > 0 else { return }
            for (g, n) in stagedPerGroup.enumerated() where n > 0 { pendingCounts[RecentTransitions.groupName(model, g), default: 0] += n }
            let kept = min(stagedCount, capacity)
            let first = stagedCount > capacity ? stagedCount % capacity : 0
            let typeNames = model.eventTypes
            for k in 0..<kept {
                let x = staged[(first + k) % capacity]
                let segments = model.groups.indices.contains(x.group) ? model.groups[x.group].segments : []
                func name(_ i: Int) -> String? { i < 0 ? nil : segments.indices.contains(i) ? segments[i].name : "#\(i)" }
                let cause = switch x.causeKind {
                case 0: "event " + (typeNames.indices.contains(Int(x.eventType)) ? typeNames[Int(x.eventType)] : "?")
                case 1: "time"
                default: "model"
                }
                pending.append(Entry(group: RecentTransitions.groupName(model, x.group), from: name(x.from), to: name(x.to), at: x.at, committedAt: 0,
                                     cause: cause, contactId: x.contact.isEmpty ? nil : String(decoding: x.contact, as: UTF8.self)))
            }
            if pending.count > capacity { pending.removeFirst(pending.count - capacity) }
            pendingTotal += stagedCount
            stagedCount = 0
            for i in stagedPerGroup.indices { stagedPerGroup[i] = 0 }
        }
    }

    /// What every thread's commits made visible.
    struct State {
        var latest: [Entry] = []
        /// Index in `latest` of the oldest entry once the ring is full.
        var latestHead = 0
        var minutes: [Minute] = []
        var committedTotal = 0
    }

    public let capacity: Int
    public let minuteCount: Int
    public let keepsContactIds: Bool
    private let state = Mutex(State())

    public init(capacity: Int = 50, minutes: Int = 60, keepContactIds: Bool = false) {
        precondition(capacity > 0 && minutes > 0)
        self.capacity = capacity
        self.minuteCount = minutes
        self.keepsContactIds = keepContactIds
    }

    /// A stage for one processing thread's transactions.
    public func makeStage() -> Stage { Stage(capacity: capacity, keepsContactIds: keepsContactIds) }

    /// `stage`'s open transaction committed at wall-clock `nowMs`: its transitions become visible.
    public func commit(_ stage: Stage, nowMs: Millis) {
        if let e = stage.encoder { stage.materialize(model: e.model) }
        guard stage.pendingTotal > 0 else { return }
        state.withLock { s in
            let minuteStart = nowMs - ((nowMs % 60_000) + 60_000) % 60_000
            if let i = s.minutes.lastIndex(where: { $0.start == minuteStart }) {
                for (g, n) in stage.pendingCounts { s.minutes[i].counts[g, default: 0] += n }
            } else {
                s.minutes.append(Minute(start: minuteStart, counts: stage.pendingCounts))
                s.minutes.sort { $0.start < $1.start }
                if s.minutes.count > minuteCount { s.minutes.removeFirst(s.minutes.count - minuteCount) }
            }
            for var entry in stage.pending {
                entry.committedAt = nowMs
                if s.latest.count < capacity {
                    s.latest.append(entry)
                } else {
                    s.latest[s.latestHead] = entry
                    s.latestHead = (s.latestHead + 1) % capacity
                }
            }
            s.committedTotal += stage.pendingTotal
        }
        stage.pending.removeAll()
        stage.pendingCounts.removeAll()
        stage.pendingTotal = 0
    }

    static func groupName(_ model: Model, _ g: Int) -> String {
        model.groups.indices.contains(g) ? model.groups[g].name : "#\(g)"
    }

    /// The last hour (`minutes` minutes up to the one holding `nowMs`) and the latest transitions.
    public func snapshot(nowMs: Millis) -> Snapshot {
        state.withLock { s in
            let current = nowMs - ((nowMs % 60_000) + 60_000) % 60_000
            var byStart: [Millis: [String: Int]] = [:]
            for m in s.minutes { byStart[m.start] = m.counts }
            let minutes = (0..<minuteCount).reversed().map { back in
                let start = current - Millis(back) * 60_000
                return Minute(start: start, counts: byStart[start] ?? [:])
            }
            let ordered = Array(s.latest[s.latestHead...] + s.latest[..<s.latestHead])
            return Snapshot(minutes: minutes, latest: ordered.reversed(), keepsContactIds: keepsContactIds, committedTotal: s.committedTotal)
        }
    }
}

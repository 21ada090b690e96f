import Foundation
import SegmentdEngine
import Testing
@testable import SegmentdDaemon

/// The console's ring of committed transitions: only what committed shows, bounded, by minute.
@Suite("recent transitions")
struct RecentTransitionsTests {
    /// Transitions of a few contacts subscribing (and one unsubscribing) under `model`, staged
    /// into `recent` straight from the engine's views; returns their owned copies in order.
    @discardableResult
    static func stage(_ stage: RecentTransitions.Stage, model: Model = .defaultModel(), contacts: [String], unsubscribe: Bool = false) -> [Transition] {
        let p = Pipeline(model: model)
        var n = 0
        for c in contacts {
            n += 1
            _ = p.process(Array("{\"event_id\":\"s\(n)\",\"contact_id\":\"\(c)\",\"type\":\"subscribed\",\"ts\":\"2026-03-02T09:00:00.000Z\"}".utf8))
            if unsubscribe {
                _ = p.process(Array("{\"event_id\":\"u\(n)\",\"contact_id\":\"\(c)\",\"type\":\"unsubscribed\",\"ts\":\"2026-03-02T10:00:00.000Z\"}".utf8))
            }
        }
        var out: [Transition] = []
        p.engine.drainTransitions { t in
            out.append(t.transition)
            stage.add(t, encoder: p.encoder)
        }
        return out
    }

    static let minute: Millis = 60_000
    static let t0: Millis = 1_780_000_040_000  // 20 s into a minute

    @Test("nothing shows before the commit; after it, newest first, with counts per group in the commit's minute")
    func commitShows() throws {
        let recent = RecentTransitions(capacity: 50, keepContactIds: true)
        let stage = recent.makeStage()
        let staged = Self.stage(stage, contacts: ["a", "b"])
        #expect(staged.count >= 2)
        #expect(recent.snapshot(nowMs: Self.t0).latest.isEmpty)
        #expect(recent.snapshot(nowMs: Self.t0).committedTotal == 0)
        recent.commit(stage, nowMs: Self.t0)
        let snap = recent.snapshot(nowMs: Self.t0 + 1000)
        #expect(snap.committedTotal == staged.count)
        #expect(snap.latest.count == staged.count)
        let model = Model.defaultModel()
        for (entry, t) in zip(snap.latest, staged.reversed()) {
            #expect(entry.group == model.groups[t.group].name)
            #expect(entry.from == t.from.map { model.groups[t.group].segments[$0].name })
            #expect(entry.to == t.to.map { model.groups[t.group].segments[$0].name })
            #expect(entry.at == t.at)
            #expect(entry.contactId == String(decoding: t.contactId, as: UTF8.self))
            #expect(entry.cause == "event subscribed")
            #expect(entry.committedAt == Self.t0)
        }
        // 60 minutes, the last one holding t0; every count in it.
        #expect(snap.minutes.count == 60)
        #expect(snap.minutes.last!.start == Self.t0 - 20_000)
        var perGroup: [String: Int] = [:]
        for t in staged { perGroup[model.groups[t.group].name, default: 0] += 1 }
        #expect(snap.minutes.last!.counts == perGroup)
        #expect(snap.minutes.dropLast().allSatisfy { $0.counts.isEmpty })
    }

    @Test("an aborted transaction's transitions never show; contact ids only when kept")
    func discardAndIds() throws {
        let recent = RecentTransitions(capacity: 10, keepContactIds: false)
        let stage = recent.makeStage()
        Self.stage(stage, contacts: ["a"])
        stage.discard()
        recent.commit(stage, nowMs: Self.t0)
        #expect(recent.snapshot(nowMs: Self.t0).latest.isEmpty)
        #expect(recent.snapshot(nowMs: Self.t0).minutes.allSatisfy { $0.counts.isEmpty })
        let kept = Self.stage(stage, contacts: ["b"])
        recent.commit(stage, nowMs: Self.t0)
        let snap = recent.snapshot(nowMs: Self.t0)
        #expect(snap.latest.count == kept.count)
        #expect(snap.latest.allSatisfy { $0.contactId == nil })
        #expect(!snap.keepsContactIds)
    }

    @Test("bounded: the newest `capacity` transitions over several commits, every one counted")
    func bounded() throws {
        let recent = RecentTransitions(capacity: 4, keepContactIds: true)
        let stage = recent.makeStage()
        var all: [Transition] = []
        for batch in 0..<3 {
            all += Self.stage(stage, contacts: (0..<5).map { "c\(batch)-\($0)" }, unsubscribe: true)
            recent.commit(stage, nowMs: Self.t0 + Millis(batch) * 1000)
        }
        let snap = recent.snapshot(nowMs: Self.t0 + 5000)
        #expect(all.count > 12)
        #expect(snap.committedTotal == all.count)
        #expect(snap.latest.map(\.contactId) == all.suffix(4).reversed().map { String(decoding: $0.contactId, as: UTF8.self) })
        #expect(snap.latest.map(\.at) == all.suffix(4).reversed().map(\.at))
        #expect(snap.minutes.last!.counts.values.reduce(0, +) == all.count)
    }

    @Test("per minute: the last hour only, empty minutes included, by the commit's minute")
    func minutes() throws {
        let recent = RecentTransitions(capacity: 5, minutes: 60)
        let stage = recent.makeStage()
        var perMinute: [Millis: Int] = [:]
        for m in 0..<75 where m % 5 == 0 {
            let n = Self.stage(stage, contacts: ["m\(m)"]).count
            let at = Self.t0 + Millis(m) * Self.minute
            recent.commit(stage, nowMs: at)
            perMinute[at - 20_000] = n
        }
        let now = Self.t0 + 74 * Self.minute
        let snap = recent.snapshot(nowMs: now)
        #expect(snap.minutes.count == 60)
        #expect(snap.minutes.first!.start == now - 20_000 - 59 * Self.minute)
        for m in snap.minutes {
            #expect(m.counts.values.reduce(0, +) == (perMinute[m.start] ?? 0), "minute \(m.start)")
        }
        // The minutes before the hour are gone.
        #expect(!snap.minutes.contains { $0.start < now - 20_000 - 59 * Self.minute })
        #expect(snap.minutes.contains { !$0.counts.isEmpty })
    }

    @Test("a model change within a transaction: each transition named by the model it was produced under")
    func modelChange() throws {
        let old = Model.defaultModel()
        let renamed = try Model.load(yaml: old.source.replacingOccurrences(of: "new_subscriber", with: "fresh_subscriber")
            .replacingOccurrences(of: "version: default-1", with: "version: renamed-1"), file: "renamed.yaml")
        let recent = RecentTransitions(capacity: 50, keepContactIds: true)
        let stage = recent.makeStage()
        Self.stage(stage, model: old, contacts: ["x"])
        Self.stage(stage, model: renamed, contacts: ["y"])
        recent.commit(stage, nowMs: Self.t0)
        let latest = recent.snapshot(nowMs: Self.t0).latest
        #expect(latest.contains { $0.contactId == "x" && $0.to == "new_subscriber" })
        #expect(latest.contains { $0.contactId == "y" && $0.to == "fresh_subscriber" })
        #expect(!latest.contains { $0.contactId == "y" && $0.to == "new_subscriber" })
    }

    @Test("each processing thread stages its own transaction: one thread's commit shows only its own")
    func stagesPerThread() throws {
        let recent = RecentTransitions(capacity: 50, keepContactIds: true)
        let first = recent.makeStage(), second = recent.makeStage()
        Self.stage(first, contacts: ["a"])
        Self.stage(second, contacts: ["b"])
        recent.commit(first, nowMs: Self.t0)
        #expect(recent.snapshot(nowMs: Self.t0).latest.compactMap(\.contactId).allSatisfy { $0 == "a" })
        second.discard()
        recent.commit(second, nowMs: Self.t0 + 1)
        let snap = recent.snapshot(nowMs: Self.t0 + 1)
        #expect(!snap.latest.isEmpty && snap.latest.allSatisfy { $0.contactId == "a" })
    }
}

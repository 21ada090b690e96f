import Foundation
import Testing
@testable import SegmentdEngine

/// A row's list times (`EventTimes`) against plain arrays: the newest `capacity` times of each
/// list, and the scored list with its cap rule. The row keeps exactly the arrays' entries at or
/// after its base, and its base never passes an entry a window can still count.
@Suite("List times: 40-bit entries from a moving base, against arrays")
struct EventTimesTests {
    static let day: Int64 = 86_400_000
    static let year: Int64 = 365 * day

    /// The arrays' rules: a newest-first list of at most `capacity` times (ties: the new one
    /// first), and a scored list that also drops what follows the newest events reaching the cap.
    static func insert(_ list: inout [Int64], _ ts: Int64, capacity: Int) {
        let at = list.firstIndex { $0 <= ts } ?? list.count
        if at == capacity { return }
        list.insert(ts, at: at)
        if list.count > capacity { list.removeLast() }
    }

    static func insertScored(_ list: inout [(ts: Int64, points: Int64)], _ ts: Int64, _ points: Int64, capacity: Int, cap: Int64) {
        let at = list.firstIndex { $0.ts <= ts } ?? list.count
        if at == capacity { return }
        list.insert((ts, min(points, cap)), at: at)
        if list.count > capacity { list.removeLast() }
        var sum: Int64 = 0
        var kept = 0
        while kept < list.count, sum < cap { sum += list[kept].points; kept += 1 }
        list.removeLast(list.count - kept)
    }

    func run(seed: UInt64, longestWindow: Int64, steps: Int) {
        let capacities = [1, 3, 2]
        let scoredCapacity = 5, cap: Int64 = 40
        let times = EventTimes(slot: 1, listCapacities: capacities, scoredCapacities: [scoredCapacity], scoreCaps: [cap], longestWindow: longestWindow)
        // A header slot before the area and one after it, as in an engine's row.
        let stride = 2 + times.bytes / 8
        let row = Row.allocate(capacity: stride)
        defer { row.deallocate() }
        row.initialize(repeating: 0x5555_5555_5555_5555, count: stride)
        times.clear(row)
        let listStart = capacities.indices.map { l in times.entryByte(capacities[..<l].reduce(0, +)) }
        let scoredStart = times.entryByte(capacities.reduce(0, +))
        let pointsStart = times.entryByte(times.entryCount)
        var lists: [[Int64]] = capacities.map { _ in [] }
        var scored: [(ts: Int64, points: Int64)] = []
        var gen = SplitMix(state: seed)
        var clock = EventTime.parseRFC3339("1990-01-01T00:00:00Z")!
        for step in 0..<steps {
            // Mostly near the clock, sometimes late, sometimes years ahead or behind.
            var ts: Int64
            switch gen.below(20) {
            case 0: ts = clock + Int64(gen.below(30)) * EventTimesTests.year + Int64(gen.below(1000))
            case 1: ts = clock - Int64(gen.below(40)) * EventTimesTests.year
            case 2, 3: ts = clock - Int64(gen.below(Int(longestWindow / 1000) + 1)) * 1000
            default: ts = clock + Int64(gen.below(Int(3 * EventTimesTests.day)))
            }
            ts = min(max(ts, Millis.earliestEventTime), Millis.latestEventTime)
            clock = max(clock, ts)
            let list = gen.below(capacities.count + 1)
            if list < capacities.count {
                times.insertTime(row, listStart[list], capacities[list], ts, clock: clock)
                EventTimesTests.insert(&lists[list], ts, capacity: capacities[list])
            } else {
                let points = Int64(1 + gen.below(30))
                times.insertScored(row, scoredStart, pointsStart, scoredCapacity, ts, points, cap, clock: clock)
                EventTimesTests.insertScored(&scored, ts, points, capacity: scoredCapacity, cap: cap)
            }
            let base = EventTimes.base(UnsafeRawPointer(row), times.baseByte)
            // Nothing a window can count is ever left out.
            #expect(base <= clock - longestWindow + 1, "step \(step): base \(base) passes clock \(clock) - window")
            for (l, expected) in lists.enumerated() {
                let held = (0..<capacities[l]).map { times.time(row, at: listStart[l] + $0 * times.width) }
                let want = expected.filter { $0 >= base }
                #expect(held == want + Array(repeating: SegmentEngine.none, count: capacities[l] - want.count), "step \(step), list \(l)")
            }
            let heldScored = (0..<scoredCapacity).compactMap { k -> [Int64]? in
                let t = times.time(row, at: scoredStart + k * times.width)
                if t == SegmentEngine.none { return nil }
                return [t, EventTimes.points(UnsafeRawPointer(row), pointsStart + k * times.pointsWidth, times.pointsMask)]
            }
            #expect(heldScored == scored.filter { $0.ts >= base }.map { [$0.ts, $0.points] }, "step \(step), scored")
            // The slots around the area are untouched.
            #expect(row[0] == 0x5555_5555_5555_5555 && row[stride - 1] == 0x5555_5555_5555_5555)
        }
    }

    @Test("40-bit entries: contacts active for decades, late events decades old", arguments: [1, 2, 3] as [UInt64])
    func narrow(seed: UInt64) {
        run(seed: seed, longestWindow: 60 * EventTimesTests.day, steps: 3000)
    }

    @Test("8-byte entries for a window longer than 2^38 ms: nothing is ever left out")
    func wide() {
        let window = 10 * EventTimesTests.year
        #expect(window > EventTimes.narrowWindowLimit)
        run(seed: 7, longestWindow: window, steps: 3000)
    }

    /// The default model, and the same with a fifth group that reads a list over ten years: the
    /// second keeps every list's times in 8 bytes from a fixed base, the first in 40 bits from a
    /// base that moves. Over a stream with decades-long jumps and decades-late events, the four
    /// groups they share make the same transitions, and every contact's snapshot restores to
    /// itself in both.
    @Test("40-bit and 8-byte list times give the same transitions, across decades")
    func narrowAgainstWide() throws {
        let decade = DefaultModel.yaml.replacingOccurrences(of: "version: default-1", with: "version: decade-1")
            .replacingOccurrences(of: "\n# Segment Spec track events",
                                  with: "  - name: clicked_this_decade\n    flag: {at_least: 1, of: {type: email_click}, within: 3650d}\n\n# Segment Spec track events")
        let wideModel = try Model.load(yaml: decade, file: "decade.yaml")
        let narrow = Pipeline(model: .defaultModel()), wide = Pipeline(model: wideModel)
        #expect(narrow.engine.layout.times.width == 5 && wide.engine.layout.times.width == 8)
        var rng = EvaluatorAgreementTests.Generator(state: 11)
        var clock = EventTime.parseRFC3339("1990-01-01T00:00:00.000Z")!
        let contacts = (0..<8).map { "c\($0)" }
        var moved = 0
        for n in 0..<4000 {
            switch Int.random(in: 0..<1000, using: &rng) {
            case 0..<600: clock += Millis.random(in: 0...600_000, using: &rng)
            case 600..<900: clock += Millis.random(in: 0...(36 * 3_600_000), using: &rng)
            case 900..<995: clock += Millis.random(in: 0...(40 * 86_400_000), using: &rng)
            default: clock += Millis.random(in: (15 * EventTimesTests.year)...(25 * EventTimesTests.year), using: &rng)
            }
            let late = Int.random(in: 0..<100, using: &rng)
            let ts = late < 6 ? clock - Millis.random(in: 0...(5 * 86_400_000), using: &rng)
                : late < 8 ? max(Millis.earliestEventTime, clock - Millis.random(in: (10 * EventTimesTests.year)...(30 * EventTimesTests.year), using: &rng))
                : clock
            let line = EvaluatorAgreementTests.record(&rng, contact: contacts.randomElement(using: &rng)!, ts: ts, id: n)
            _ = narrow.process(Array(line.utf8))
            _ = wide.process(Array(line.utf8))
            let expected = narrow.engine.takeTransitions()
            #expect(wide.engine.takeTransitions().filter { $0.group < 4 } == expected, "record \(n): \(line)")
            moved += expected.count
        }
        #expect(moved > 500)
        for pipeline in [narrow, wide] {
            let restored = Pipeline(model: pipeline.engine.model)
            for idx in 0..<pipeline.engine.contactCount {
                let snapshot = pipeline.engine.snapshot(contact: idx)
                try restored.engine.restore(contactId: pipeline.engine.contactId(at: idx), snapshot: snapshot)
                #expect(restored.engine.snapshot(contact: idx) == snapshot)
            }
        }
    }

    /// A contact whose clock moved on 30 years with no list entry since: the engine still holds
    /// its old entry (its base moves only when an entry needs it), and a restore of its snapshot
    /// holds it too, so the snapshot restores to itself byte for byte.
    @Test("a snapshot restores to itself when the clock has moved decades past the list times")
    func snapshotAfterDecades() throws {
        let p = Pipeline(model: .defaultModel())
        for line in [
            #"{"contact_id":"c","type":"subscribed","ts":"2000-01-01T00:00:00Z","event_id":"s"}"#,
            #"{"contact_id":"c","type":"page_view","ts":"2000-01-02T00:00:00Z","props":{"path":"/pricing"}}"#,
            #"{"contact_id":"c","type":"traits","ts":"2030-01-01T00:00:00Z","props":{"industry":"saas"}}"#,
        ] { _ = p.process(Array(line.utf8)) }
        let reasons = p.engine.explain(Array("c".utf8))!.groups.flatMap(\.reasons).joined(separator: "\n")
        #expect(reasons.contains("'subscribed' in the last 30d (latest 2000-01-01T00:00:00.000Z)"), "\(reasons)")
        let snapshot = p.engine.snapshot(contact: 0)
        let restored = Pipeline(model: .defaultModel())
        try restored.engine.restore(contactId: Array("c".utf8), snapshot: snapshot)
        #expect(restored.engine.snapshot(contact: 0) == snapshot)
        #expect(restored.engine.explain(Array("c".utf8))!.groups.flatMap(\.reasons).joined(separator: "\n") == reasons)
    }

    /// After a restore, a late event older than every time the contact holds still counts: the
    /// restored base is behind the clock by the longest window and more, never at the oldest
    /// entry. (A base put at the oldest entry dropped such an event as "too old": the daemon's
    /// restart tests caught it.)
    @Test("a restored contact takes a late event older than every time it holds")
    func lateEventAfterRestore() throws {
        let lines = [
            #"{"contact_id":"c","type":"email_open","ts":"2026-03-10T09:00:00Z","event_id":"a"}"#,
            #"{"contact_id":"c","type":"email_click","ts":"2026-03-10T10:00:00Z","event_id":"b"}"#,
            #"{"contact_id":"c","type":"email_reply","ts":"2026-03-08T09:00:00Z","event_id":"c"}"#,
        ].map { Array($0.utf8) }
        let whole = Pipeline(model: .defaultModel())
        var expected: [Transition] = []
        for line in lines { _ = whole.process(line); expected += whole.engine.takeTransitions() }
        // The late event makes the third engagement in 30 days: engaged_non_converter.
        #expect(expected.contains { if case .event(let id, _) = $0.cause { return id == "c" } else { return false } })
        let before = Pipeline(model: .defaultModel())
        var split: [Transition] = []
        for line in lines[..<2] { _ = before.process(line); split += before.engine.takeTransitions() }
        let after = Pipeline(model: .defaultModel())
        try after.engine.restore(contactId: Array("c".utf8), snapshot: before.engine.snapshot(contact: 0))
        after.engine.restoreCheckpoint(streamTime: before.engine.checkpoint.streamTime, watermark: before.engine.checkpoint.watermark)
        _ = after.process(lines[2])
        split += after.engine.takeTransitions()
        #expect(split == expected)
    }
}

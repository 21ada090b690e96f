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
}

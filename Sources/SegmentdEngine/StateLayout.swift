/// Where each piece of a contact's state lives in its row of 64-bit slots.
///
/// Derived once from the model: the engine stores every contact as `stride` consecutive
/// slots, so per-contact state needs no allocation and a contact's row is one cache-friendly
/// run of memory.
public struct StateLayout: Sendable {
    // Fixed header slots.
    static let lastTransition = 0  // `at` of the latest transition (none: Int64.min)
    static let maxTs = 1           // largest ts of applied events
    static let firstSeen = 2       // smallest ts of applied events
    static let cursor = 3          // latest instant evaluated: boundaries up to it are accounted for
    static let scheduled = 4       // the instant this contact's live timer is set for
    static let members = 5         // current segment per group, 8 bits each (0: none)
    static let sameInstant = 6     // groups that changed at `lastTransition` (bit per group)
    static let headerSlots = 7

    public struct List: Sendable {
        var offset: Int
        var capacity: Int
        var bit: UInt64
        var windows: [Millis]
    }

    public struct ScoreList: Sendable {
        var offset: Int
        var capacity: Int
        var window: Millis
        var cap: Int64
        var terms: [(UInt64, Int64)]
    }

    public struct Tracker: Sendable {
        var offset: Int
        var bits: [UInt64]
    }

    public let stride: Int
    let lists: [List]
    let scoreLists: [ScoreList]
    /// For score s, part p: the index into `scoreLists`, if the part has per-event terms.
    let scoreListIndex: [[Int?]]
    let trackers: [Tracker]
    let attributeOffsets: [Int]
    let ages: [Millis]
    let emptyState: [Int64]

    init(model: Model) {
        var off = StateLayout.headerSlots
        var lists: [List] = []
        for l in model.lists {
            lists.append(List(offset: off, capacity: l.capacity, bit: 1 << UInt64(l.filter), windows: l.windows))
            off += l.capacity
        }
        var scoreLists: [ScoreList] = []
        var scoreIndex: [[Int?]] = []
        for s in model.scores {
            var row: [Int?] = []
            for p in s.parts {
                if p.eventTerms.isEmpty { row.append(nil); continue }
                row.append(scoreLists.count)
                scoreLists.append(ScoreList(offset: off, capacity: p.eventCapacity, window: p.window, cap: Int64(p.cap),
                                            terms: p.eventTerms.map { (1 << UInt64($0.filter), Int64($0.points)) }))
                off += p.eventCapacity
            }
            scoreIndex.append(row)
        }
        var trackers: [Tracker] = []
        for t in model.latest {
            trackers.append(Tracker(offset: off, bits: t.filters.map { 1 << UInt64($0) }))
            off += 2
        }
        var attrs: [Int] = []
        for _ in model.attributes {
            attrs.append(off)
            off += 2
        }
        var ages: [Millis] = []
        func collect(_ c: Condition) {
            switch c {
            case .firstSeenAtLeast(let a): if !ages.contains(a) { ages.append(a) }
            case .all(let cs), .any(let cs): cs.forEach(collect)
            case .not(let x): collect(x)
            default: break
            }
        }
        for g in model.groups {
            if let u = g.unless { collect(u) }
            g.segments.forEach { collect($0.when) }
        }
        for s in model.scores { for p in s.parts { p.staticTerms.forEach { collect($0.when) } } }
        self.stride = off
        self.lists = lists
        self.scoreLists = scoreLists
        self.scoreListIndex = scoreIndex
        self.trackers = trackers
        self.attributeOffsets = attrs
        self.ages = ages
        var empty = [Int64](repeating: SegmentEngine.none, count: off)
        empty[StateLayout.scheduled] = SegmentEngine.unscheduled
        empty[StateLayout.members] = 0
        empty[StateLayout.sameInstant] = 0
        self.emptyState = empty
    }
}

/// A binary min-heap of (instant, contact) timers. Entries are never removed in place: a
/// contact's row records the one instant its live timer is set for, and an entry that does
/// not match it is stale and skipped when popped (or dropped by `compact`).
struct TimerHeap {
    struct Entry { var time: Int64; var contact: Int32 }
    private var a: [Entry] = []

    var count: Int { a.count }
    var footprintBytes: Int { a.capacity * MemoryLayout<Entry>.stride }

    @inline(__always) private static func less(_ x: Entry, _ y: Entry) -> Bool {
        x.time < y.time || (x.time == y.time && x.contact < y.contact)
    }

    func peek() -> Entry? { a.first }

    mutating func push(time: Int64, contact: Int32) {
        a.append(Entry(time: time, contact: contact))
        var i = a.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            if !TimerHeap.less(a[i], a[p]) { break }
            a.swapAt(i, p)
            i = p
        }
    }

    mutating func pop() {
        let last = a.removeLast()
        guard !a.isEmpty else { return }
        a[0] = last
        siftDown(0)
    }

    private mutating func siftDown(_ start: Int) {
        var i = start
        let n = a.count
        while true {
            let l = 2 * i + 1
            if l >= n { break }
            var m = l
            if l + 1 < n && TimerHeap.less(a[l + 1], a[l]) { m = l + 1 }
            if !TimerHeap.less(a[m], a[i]) { break }
            a.swapAt(i, m)
            i = m
        }
    }

    /// Drops stale entries and rebuilds the heap.
    mutating func compact(isLive: (Int32, Int64) -> Bool) {
        a = a.filter { isLive($0.contact, $0.time) }
        var i = a.count / 2
        while i > 0 { i -= 1; siftDown(i) }
    }
}

/// Event ids already applied, per contact, for duplicate detection (contract §1).
///
/// An id is remembered with the contact's newest event time at the moment it was applied and
/// is caught while that stamp is within the horizon (24h by default) of the contact's newest
/// event time: so at least the contact's last 24 hours of events are covered, late events
/// included. Entries past the horizon are pruned in bulk when the index doubles.
struct DedupIndex {
    struct Entry { var stamp: Int64; var contact: Int32 }
    private var map: [UInt64: Entry] = [:]
    private var liveAfterPrune = 0

    var footprintBytes: Int { map.capacity * (8 + MemoryLayout<Entry>.stride + 1) }
    var needsPrune: Bool { map.count > 2 * liveAfterPrune + 65_536 }

    static func hash(_ s: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for c in s.utf8 { h = (h ^ UInt64(c)) &* 0x0000_0100_0000_01B3 }
        return h
    }

    @inline(__always) private static func key(_ contact: Int, _ hash: UInt64) -> UInt64 {
        var x = hash ^ (UInt64(contact) &* 0x9e37_79b9_7f4a_7c15)
        x ^= x >> 31
        return x
    }

    func contains(contact: Int, hash: UInt64, liveAfter: Int64) -> Bool {
        guard let e = map[DedupIndex.key(contact, hash)], e.contact == Int32(contact) else { return false }
        return e.stamp > liveAfter
    }

    mutating func insert(contact: Int, hash: UInt64, stamp: Int64) {
        map[DedupIndex.key(contact, hash)] = Entry(stamp: stamp, contact: Int32(contact))
    }

    /// Removes entries whose stamp is at or before `horizonStart(contact)`.
    mutating func prune(horizonStart: (Int) -> Int64) {
        map = map.filter { $0.value.stamp > horizonStart(Int($0.value.contact)) }
        liveAfterPrune = map.count
    }
}

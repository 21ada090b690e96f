import CPrefetch

/// Where each piece of a contact's state lives in its row of 64-bit slots.
///
/// Derived once from the model: the engine stores every contact as `stride` consecutive
/// slots, so per-contact state needs no allocation and a contact's row is one cache-friendly
/// run of memory. The event lists' and scored lists' times share one area of those slots, in
/// 5-byte entries (`EventTimes`); snapshots see them in the *logical* row, a 64-bit slot each.
public struct StateLayout: Sendable {
    // Fixed header slots.
    static let lastTransition = 0  // `at` of the latest transition (none: Int64.min)
    static let maxTs = 1           // largest ts of applied events
    static let firstSeen = 2       // smallest ts of applied events
    static let cursor = 3          // latest instant evaluated: boundaries up to it are accounted for
    static let scheduled = 4       // the instant of this contact's timer in the heap (unscheduled: none): its next boundary
    static let members = 5         // current segment per group, 8 bits each (0: none)
    /// The slot of the same-instant bits (groups that changed at `lastTransition`, one bit per
    /// group from `sameInstantShift`) and of the dirty bit. With at most 7 groups they share
    /// the `members` slot (bits 56-62 and 63: members use 8 bits per group); with 8 groups
    /// `members` needs all 64 bits and they get slot 6.
    let flags: Int
    let sameInstantShift: Int64
    let dirtyBit: Int64
    /// The bits of the `members` slot that hold members.
    let membersMask: UInt64
    /// All same-instant bits, in place.
    let sameInstantBits: Int64
    /// Remembered event ids in the row (`RememberedId`, one slot each), the row's last slots;
    /// more live ids spill to the contact's overflow blocks.
    static let dedupSlots = 2
    /// Snapshot formats 1 to 3 held two ids in the row as (64-bit hash, stamp) pairs: four
    /// slots in the same place.
    static let legacyDedupSlots = 4

    /// An "at least N" event list: `capacity` entries from byte `entries` of the row
    /// (`EventTimes`).
    public struct List: Sendable {
        var entries: Int
        var capacity: Int
        var bit: UInt64
        /// Its first slot in the logical row (snapshots).
        var logicalOffset: Int
    }

    /// A sum list: `capacity` entries of two slots, (time, value as `Double` bits), newest
    /// first; an empty entry is (none, none).
    public struct SumList: Sendable {
        var offset: Int
        var capacity: Int
        var bit: UInt64
        var logicalOffset: Int
    }

    /// A day list: `capacity` distinct local day numbers, newest first (none: empty).
    public struct DayList: Sendable {
        var offset: Int
        var capacity: Int
        var bit: UInt64
        var logicalOffset: Int
    }

    /// A score part's scored events: `capacity` times from byte `entries` and their points
    /// from byte `points` (`EventTimes`).
    public struct ScoreList: Sendable {
        var entries: Int
        var points: Int
        var capacity: Int
        var window: Millis
        var cap: Int64
        var terms: [(UInt64, Int64)]
        var logicalOffset: Int
    }

    public struct Tracker: Sendable {
        var offset: Int
        var bits: [UInt64]
    }

    /// A list as snapshots read and write it: its first logical slot, its entries' bytes in the
    /// row (and its points', for a scored list), its capacity. Plain values, so that a loop over
    /// them counts no references.
    struct ListPlace: Sendable {
        var logical: Int
        var entries: Int
        var points: Int
        var capacity: Int
        var scored: Bool
    }

    /// `count` slots of the logical row from `logical` that are row slots from `slot`.
    struct FixedRun: Sendable {
        var logical: Int
        var slot: Int
        var count: Int
    }

    public let stride: Int
    let lists: [List]
    let sumLists: [SumList]
    let dayLists: [DayList]
    let scoreLists: [ScoreList]
    /// For score s, part p: the index into `scoreLists`, if the part has per-event terms.
    let scoreListIndex: [[Int?]]
    let trackers: [Tracker]
    let attributeOffsets: [Int]
    /// Per attribute: a date, kept in two plain slots (time, instant) at its offset, since an
    /// instant never fits a packed pair.
    let attributeIsDate: [Bool]
    let ages: [Millis]
    let dedupOffset: Int
    /// The row's last id place: an id, or the first block of the contact's duplicate chain
    /// (`RememberedId.chain`).
    var chainPlace: Int { dedupOffset + StateLayout.dedupSlots - 1 }
    let emptyState: [Int64]
    /// The event lists' and scored lists' times.
    let times: EventTimes
    /// The logical row, which snapshots hold: the row of earlier versions, every list at a
    /// fixed place of `capacity` 64-bit slots (times, scored events as `ScoredEvent`), empty
    /// places none. Its length, where its remembered ids start, and where its other slots are.
    let logicalStride: Int
    let logicalDedupOffset: Int
    let fixedRuns: [FixedRun]
    /// The event lists, then the scored lists.
    let listPlaces: [ListPlace]

    init(model: Model) {
        let groupCount = model.groups.count
        if groupCount <= 7 {
            flags = StateLayout.members
            sameInstantShift = 56
            dirtyBit = Int64.min  // bit 63
            membersMask = (1 << 56) - 1
        } else {
            flags = StateLayout.members + 1
            sameInstantShift = 0
            dirtyBit = 1 << 62
            membersMask = ~0
        }
        sameInstantBits = ((1 << Int64(groupCount)) - 1) << sameInstantShift
        let scoredParts = model.scores.flatMap { $0.parts.filter { !$0.eventTerms.isEmpty } }
        let longest = (model.lists.flatMap(\.windows) + scoredParts.map(\.window)).max() ?? 0
        let times = EventTimes(slot: flags + 1, listCapacities: model.lists.map(\.capacity),
                               scoredCapacities: scoredParts.map(\.eventCapacity), scoreCaps: scoredParts.map { Int64($0.cap) },
                               longestWindow: longest)
        // The row: the header, the times, sums, days, trackers, attributes, ids. The logical
        // row: the header, lists, sums, days, scored lists, trackers, attributes, ids.
        var fixedRuns = [FixedRun(logical: 0, slot: 0, count: flags + 1)]
        var logical = flags + 1
        var entry = 0
        var lists: [List] = []
        for l in model.lists {
            lists.append(List(entries: times.entryByte(entry), capacity: l.capacity, bit: 1 << UInt64(l.filter), logicalOffset: logical))
            logical += l.capacity
            entry += l.capacity
        }
        var off = flags + 1 + times.bytes / 8
        func fixed(_ count: Int) {
            if let last = fixedRuns.last, last.logical + last.count == logical, last.slot + last.count == off {
                fixedRuns[fixedRuns.count - 1].count += count
            } else {
                fixedRuns.append(FixedRun(logical: logical, slot: off, count: count))
            }
            off += count
            logical += count
        }
        var sumLists: [SumList] = []
        for s in model.sums {
            sumLists.append(SumList(offset: off, capacity: s.capacity, bit: 1 << UInt64(s.filter), logicalOffset: logical))
            fixed(2 * s.capacity)
        }
        var dayLists: [DayList] = []
        for d in model.dayLists {
            dayLists.append(DayList(offset: off, capacity: d.capacity, bit: 1 << UInt64(d.filter), logicalOffset: logical))
            fixed(d.capacity)
        }
        var scoreLists: [ScoreList] = []
        var scoreIndex: [[Int?]] = []
        var pointsByte = times.entryByte(times.entryCount)
        for s in model.scores {
            var row: [Int?] = []
            for p in s.parts {
                if p.eventTerms.isEmpty { row.append(nil); continue }
                row.append(scoreLists.count)
                scoreLists.append(ScoreList(entries: times.entryByte(entry), points: pointsByte, capacity: p.eventCapacity, window: p.window, cap: Int64(p.cap),
                                            terms: p.eventTerms.map { (1 << UInt64($0.filter), Int64($0.points)) }, logicalOffset: logical))
                logical += p.eventCapacity
                entry += p.eventCapacity
                pointsByte += p.eventCapacity * times.pointsWidth
            }
            scoreIndex.append(row)
        }
        var trackers: [Tracker] = []
        for t in model.latest {
            trackers.append(Tracker(offset: off, bits: t.filters.map { 1 << UInt64($0) }))
            fixed(1)
        }
        var attrs: [Int] = []
        for a in model.attributes {
            attrs.append(off)
            fixed(a.kind == .date ? 2 : 1)
        }
        self.attributeIsDate = model.attributes.map { $0.kind == .date }
        let dedupOffset = off
        self.logicalDedupOffset = logical
        fixed(StateLayout.dedupSlots)
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
        self.sumLists = sumLists
        self.dayLists = dayLists
        self.scoreLists = scoreLists
        self.scoreListIndex = scoreIndex
        self.trackers = trackers
        self.attributeOffsets = attrs
        self.ages = ages
        self.dedupOffset = dedupOffset
        self.times = times
        self.logicalStride = logical
        self.fixedRuns = fixedRuns
        self.listPlaces = lists.map { ListPlace(logical: $0.logicalOffset, entries: $0.entries, points: -1, capacity: $0.capacity, scored: false) }
            + scoreLists.map { ListPlace(logical: $0.logicalOffset, entries: $0.entries, points: $0.points, capacity: $0.capacity, scored: true) }
        var empty = [Int64](repeating: SegmentEngine.none, count: off)
        empty[StateLayout.scheduled] = SegmentEngine.unscheduled
        empty[StateLayout.members] = 0
        empty[flags] = 0
        for k in 0..<StateLayout.dedupSlots { empty[dedupOffset + k] = RememberedId.empty.slot }
        empty.withUnsafeMutableBufferPointer { times.clear($0.baseAddress!) }
        self.emptyState = empty
    }

    /// The logical offset of row slot `slot`.
    func logicalOffset(ofSlot slot: Int) -> Int {
        let run = fixedRuns.first { $0.slot <= slot && slot < $0.slot + $0.count }!
        return run.logical + slot - run.slot
    }

    /// Entry `k` (newest first) of event list `list` of `row`: its time, or none.
    func listTime(_ row: UnsafePointer<Int64>, _ list: Int, _ k: Int) -> Millis {
        times.time(row, at: lists[list].entries + k * times.width)
    }

    /// Entry `k` (newest first) of scored list `list` of `row`, or nil.
    func scoredEvent(_ row: UnsafePointer<Int64>, _ list: Int, _ k: Int) -> (ts: Millis, points: Int64)? {
        let l = scoreLists[list]
        let ts = times.time(row, at: l.entries + k * times.width)
        if ts == SegmentEngine.none { return nil }
        return (ts, EventTimes.points(UnsafeRawPointer(row), l.points + k * times.pointsWidth, times.pointsMask))
    }

    /// The logical row of the contact in `row`, into `logical` (`logicalStride` slots).
    func expand(_ row: UnsafePointer<Int64>, into logical: UnsafeMutablePointer<Int64>) {
        for run in fixedRuns { (logical + run.logical).update(from: row + run.slot, count: run.count) }
        let raw = UnsafeRawPointer(row)
        let base = EventTimes.base(raw, times.baseByte) &- 1
        let width = times.width, mask = times.mask
        for place in listPlaces {
            // The entries, then the empty places from the first one on.
            var k = 0
            while k < place.capacity {
                let s = EventTimes.stored(raw, place.entries &+ k &* width, mask)
                if s == 0 { break }
                let ts = base &+ Int64(bitPattern: s)
                logical[place.logical &+ k] = place.scored
                    ? ScoredEvent.pack(ts: ts, points: EventTimes.points(raw, place.points &+ k &* times.pointsWidth, times.pointsMask))
                    : ts
                k &+= 1
            }
            (logical + place.logical + k).update(repeating: SegmentEngine.none, count: place.capacity - k)
        }
    }

    /// Writes a checked logical row (each list newest first, then its empty places; times at
    /// most the newest event's; scored points at most the cap) into `row`, so that it expands
    /// back to the same logical row. (Only times more than 2^40 ms behind the newest entry, which
    /// no engine keeps and no window counts, are left out: `EventTimes.setBase`.)
    func store(logical: UnsafeMutablePointer<Int64>, into row: Row) {
        for run in fixedRuns { (row + run.slot).update(from: logical + run.logical, count: run.count) }
        times.clear(row)
        // Each list is newest first: its first entry is its newest, its last its oldest.
        var oldest = Millis.max, newest = Millis.min
        for place in listPlaces where logical[place.logical] != SegmentEngine.none {
            var last = place.capacity - 1
            while logical[place.logical + last] == SegmentEngine.none { last -= 1 }
            let first = logical[place.logical], final = logical[place.logical + last]
            newest = max(newest, place.scored ? ScoredEvent.ts(first) : first)
            oldest = min(oldest, place.scored ? ScoredEvent.ts(final) : final)
        }
        let base = times.setBase(row, oldest: oldest, newest: newest, clock: max(row[StateLayout.maxTs], row[StateLayout.lastTransition]))
        let raw = UnsafeMutableRawPointer(row)
        for place in listPlaces {
            for k in 0..<place.capacity {
                let e = logical[place.logical + k]
                if e == SegmentEngine.none { break }
                let ts = place.scored ? ScoredEvent.ts(e) : e
                if ts < base { break }
                EventTimes.store(raw, place.entries + k * times.width, UInt64(bitPattern: ts &- base &+ 1), times.width)
                if place.scored { EventTimes.storePoints(raw, place.points + k * times.pointsWidth, ScoredEvent.points(e), times.pointsWidth) }
            }
        }
    }
}

/// A "latest" pair (time, small value) in one slot: a latest-of tracker's (ts, tag), an
/// attribute's (ts, value) where the value is an integer attribute's value or a string
/// attribute's interned id.
///
/// Packed as `ts << 20 | value` when 0 <= ts < 2^43 (1970 to year 2248) and
/// 0 <= value < 2^20; the slot is then >= 0. Any other pair (an earlier or later time, a
/// negative or large integer, more than a million distinct strings) is stored exactly in
/// `WideSlots` and the slot holds `escaped`. An empty slot holds `SegmentEngine.none`. So
/// every input is kept exactly; only the rare pairs cost a map entry.
enum PackedPair {
    static let valueBits: Int64 = 20
    static let valueMask: Int64 = (1 << 20) - 1
    static let tsLimit: Int64 = 1 << 43
    static let escaped: Int64 = -1

    @inline(__always)
    static func pack(_ ts: Int64, _ value: Int64) -> Int64? {
        guard ts >= 0, ts < tsLimit, value >= 0, value <= valueMask else { return nil }
        return ts << valueBits | value
    }

    /// The pair in `slot`, or nil when empty. `wide` is consulted only for an escaped slot.
    @inline(__always)
    static func read(_ slot: UnsafePointer<Int64>, _ wide: WideSlots) -> (ts: Int64, value: Int64)? {
        let s = slot[0]
        if s >= 0 { return (s >> valueBits, s & valueMask) }
        if s == SegmentEngine.none { return nil }
        return wide.map[Int(bitPattern: slot)]
    }
}

/// A scored event in one slot of the logical row (snapshots; the row itself keeps its time and
/// points apart, in `EventTimes`): `ts << 15 | points`.
///
/// Every event time lies in the years 0000 to 9999, i.e. within ±2^48 ms, so the time takes
/// 49 bits (signed: an arithmetic shift gives it back, negative times included) and leaves
/// 15 bits for the points. The model bounds a score part's cap to `maxPoints`, and an event's
/// points are stored capped at the part's cap (one event can never count more than the cap
/// anyway), so the points always fit. No packed value equals `SegmentEngine.none`: that
/// would need `ts = -2^48`, before the year 0000.
enum ScoredEvent {
    static let pointsBits: Int64 = 15
    static let maxPoints: Int64 = (1 << pointsBits) - 1

    @inline(__always)
    static func pack(ts: Millis, points: Int64) -> Int64 {
        precondition(EventTime.isInRange(ts) && points >= 0 && points <= maxPoints)
        return ts << pointsBits | points
    }

    @inline(__always) static func ts(_ slot: Int64) -> Millis { slot >> pointsBits }
    @inline(__always) static func points(_ slot: Int64) -> Int64 { slot & maxPoints }
}

/// The exact pairs that do not fit a packed slot, keyed by the slot's address (rows never move).
final class WideSlots {
    var map: [Int: (ts: Int64, value: Int64)] = [:]
}

/// A pointer to one contact's row of `stride` slots.
typealias Row = UnsafeMutablePointer<Int64>

/// Contact rows in fixed-size chunks of `rowsPerChunk` rows that are allocated once and never
/// move or grow.
///
/// One growing array would copy every row when it grows, keep up to its growth step unused,
/// and leave freed old buffers behind in the heap (they are most of the engine's memory, so the
/// resident set was about twice the rows). Chunks cost at most one partly used chunk, and since
/// a row never moves, a `Row` pointer stays valid while other contacts are added. The store is
/// plain pointers and integers: a copy of it (the engine's timer wheel reads rows through one)
/// costs no reference counting, and stays valid until a row is added.
struct RowStore {
    static let rowsPerChunk = 2048
    let stride: Int
    private var chunks: UnsafeMutablePointer<Row>
    private var chunkCount = 0
    private var chunkCapacity = 16
    private(set) var count = 0

    init(stride: Int) {
        self.stride = stride
        chunks = .allocate(capacity: chunkCapacity)
    }

    @inline(__always)
    func row(_ idx: Int) -> Row {
        precondition(idx >= 0 && idx < count, "row index out of range")
        return chunks[idx / RowStore.rowsPerChunk] + (idx % RowStore.rowsPerChunk) * stride
    }

    /// Appends a row initialized from `empty` (`stride` slots) and returns its index.
    @discardableResult
    mutating func append(_ empty: [Int64]) -> Int {
        if count == chunkCount * RowStore.rowsPerChunk {
            if chunkCount == chunkCapacity {
                let grown = UnsafeMutablePointer<Row>.allocate(capacity: 2 * chunkCapacity)
                grown.moveInitialize(from: chunks, count: chunkCount)
                chunks.deallocate()
                chunks = grown
                chunkCapacity *= 2
            }
            (chunks + chunkCount).initialize(to: Row.allocate(capacity: RowStore.rowsPerChunk * stride))
            chunkCount += 1
        }
        count += 1
        let r = row(count - 1)
        empty.withUnsafeBufferPointer { r.initialize(from: $0.baseAddress!, count: stride) }
        return count - 1
    }

    var footprintBytes: Int { chunkCount * RowStore.rowsPerChunk * stride * 8 + chunkCapacity * 8 }

    /// Asks for every cache line of `row` at once, so that their misses overlap instead of
    /// coming one by one as the row's parts are read.
    @inline(__always)
    func prefetch(_ row: Row) {
        let start = UnsafeRawPointer(row)
        var line = 0
        while line < stride * 8 {
            segmentd_prefetch_for_write(start + line)
            line += 64
        }
        segmentd_prefetch_for_write(start + (stride * 8 - 1))
    }

    func deallocate() {
        for k in 0..<chunkCount { chunks[k].deallocate() }
        chunks.deallocate()
    }
}

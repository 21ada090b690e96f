import CPrefetch

/// Every contact's one live timer, fired in the order of (instant, contact index): the order in
/// which `EngineCore.advanceWatermark` evaluates contacts whose boundaries are due.
///
/// A timing wheel, as Kafka's purgatory and Netty keep timeouts: instants are grouped into
/// buckets of `bucketWidth` ms, and a contact's timer sits in the unordered list of its
/// bucket, so setting, moving or removing it touches a few entries, not a path through a
/// heap of every contact (with a million contacts that path was about twenty cache misses per
/// event, half the engine's time). Order is only needed among the timers that are due: a
/// bucket is sorted into the `due` run, ordered exactly, when the watermark reaches it.
///
/// The wheel does not keep the contacts' instants: their owner does (the engine, in each
/// contact's row, which it reads anyway) and says what a timer was when it moves it, so the
/// wheel holds 4 bytes per contact (its position) and 8 per timer. A bucket is a run of keys
/// (instant within the bucket, contact), and `positions` says where in it each contact is:
/// removal moves the bucket's last key into the hole (one other position written), and a
/// reached bucket is sorted from its keys alone, without reading any contact's memory (a linked
/// list through per-contact nodes made that one cache miss after another: at 650k contacts
/// most of the wheel's time). The buckets' counts and addresses are one dense table (256 KB,
/// which stays in cache): a bucket's own header would be one more miss per move. The runs are
/// the wheel's own memory: `deallocate()` frees them.
///
/// Three places, by instant, with `horizon` the start of the wheel's first bucket:
/// - near: instants before `horizon` (the buckets already reached, and timers set in the
///   past), in the sorted run `due` (a reached bucket) and the min-heap `late` (timers set
///   before the horizon afterwards). Their entries are not kept up to date: a timer that
///   moves or goes leaves its entry behind, and an entry whose contact's timer (as its owner
///   says) is no longer at that instant is stale and skipped when it comes first. Moving a
///   due timer then writes nothing of another contact's;
/// - the wheel: `[horizon, horizon + span)`, `bucketCount` buckets;
/// - `far`, an indexed min-heap: instants at or after `horizon + span` (about 199 days ahead).
/// Every instant in near is before every instant in the wheel, and those before every
/// instant in `far`, so the earliest timer is the first valid near entry when there is one.
/// A timer's place follows from its instant and `horizon` alone: the horizon only moves
/// forward, and whenever it does the far timers it now spans move into the wheel (`pullFar`).
struct TimerWheel {
    struct Entry { var time: Int64; var contact: Int32 }

    /// Where a timer at an instant is.
    private enum Place { case near, wheel, far }

    /// 2^20 ms (about 17.5 minutes) per bucket and 2^14 buckets: the wheel spans 2^34 ms,
    /// about 199 days, beyond the default model's longest window (60 days).
    private static let bucketShift: Int64 = 20
    private static let bucketCount = 1 << 14
    private static let span: Int64 = Int64(bucketCount) << bucketShift

    /// A bucket's timers, unordered: `count` keys at `keys`, room for `capacity`. A key is
    /// `(instant - bucket start) << 32 | contact`, so that plain integer order is the order by
    /// (instant, contact).
    private struct Bucket { var keys: UnsafeMutablePointer<UInt64>?; var count: Int32; var capacity: Int32 }

    /// Each contact's position in its bucket or in `far` (meaningless near or without a timer).
    private var positions: [Int32] = []
    private let buckets: UnsafeMutablePointer<Bucket>
    /// One bit per bucket that holds a timer.
    private var occupied = [UInt64](repeating: 0, count: TimerWheel.bucketCount / 64)
    private var wheelCount = 0
    /// The reached bucket's keys from `dueNext` on, sorted (its start is `dueStart`).
    private var due: [UInt64] = []
    private var dueStart: Int64 = 0
    private var dueNext = 0
    /// Timers set before the horizon since (a plain min-heap by (instant, contact)).
    private var late: [Entry] = []
    private var far: [Entry] = []
    /// The start of the wheel's first bucket (a multiple of the bucket width); set by the
    /// first timer.
    private var horizon: Int64 = .min

    /// How many contacts have a timer.
    private(set) var count = 0

    init() {
        buckets = .allocate(capacity: TimerWheel.bucketCount)
        buckets.initialize(repeating: Bucket(keys: nil, count: 0, capacity: 0), count: TimerWheel.bucketCount)
    }

    /// Frees the buckets' memory; the wheel is not used after.
    func deallocate() {
        for b in 0..<TimerWheel.bucketCount { buckets[b].keys?.deallocate() }
        buckets.deallocate()
    }

    var footprintBytes: Int {
        var bucketBytes = TimerWheel.bucketCount * MemoryLayout<Bucket>.stride
        for b in 0..<TimerWheel.bucketCount { bucketBytes += Int(buckets[b].capacity) * 8 }
        return positions.capacity * 4 + bucketBytes + occupied.capacity * 8 + due.capacity * 8
            + (late.capacity + far.capacity) * MemoryLayout<Entry>.stride
    }

    /// Makes room for the contact just added (its index is the current count).
    mutating func addContact() {
        // Grow by an eighth, not by doubling: one position per contact.
        if positions.count == positions.capacity { positions.reserveCapacity(positions.count + positions.count / 8 + 256) }
        positions.append(-1)
    }

    /// Asks for the contact's position, read when its timer moves after one of its records.
    @inline(__always)
    func prefetch(contact: Int) {
        positions.withUnsafeBufferPointer { segmentd_prefetch_for_write($0.baseAddress! + contact) }
    }

    /// The contacts whose timers come next in the `due` run after the earliest's (-1 where
    /// there is none; an entry may be stale): their state can be asked for while the
    /// earliest is handled.
    @inline(__always)
    func followingDue() -> (Int32, Int32) {
        (dueNext + 1 < due.count ? TimerWheel.contact(due[dueNext + 1]) : -1,
         dueNext + 2 < due.count ? TimerWheel.contact(due[dueNext + 2]) : -1)
    }

    /// Where a timer at `time` is now.
    @inline(__always)
    private func place(of time: Int64) -> Place {
        time < horizon ? .near : time - horizon < TimerWheel.span ? .wheel : .far
    }

    /// Moves the contact's timer from `old` (nil: it had none) to `time`; `old` is what the
    /// owner last set, or this wheel would lose track of the timer.
    mutating func set(contact: Int32, from old: Int64?, to time: Int64) {
        let c = Int(contact)
        guard let old else {
            count += 1
            place(c, time)
            return
        }
        switch place(of: old) {
        case .near:
            if time == old { return }
        case .far where place(of: time) == .far:
            TimerWheel.resift(&far, &positions, at: Int(positions[c]), from: old, to: time)
            return
        case .wheel where place(of: time) == .wheel && TimerWheel.bucket(of: time) == TimerWheel.bucket(of: old):
            let b = TimerWheel.bucket(of: time)
            buckets[b].keys![Int(positions[c])] = TimerWheel.key(time, contact)
            return
        default:
            detach(c, old)
        }
        place(c, time)
    }

    /// Removes the contact's timer, which is at `old`.
    mutating func remove(contact: Int32, from old: Int64) {
        detach(Int(contact), old)
        count -= 1
    }

    /// The earliest timer (by instant, then contact index) if it is at or before `limit`. The
    /// wheel's buckets up to `limit` are moved into `near` to find it; later ones stay.
    /// `current` gives a contact's timer as its owner keeps it (nil: none): near entries that
    /// no longer match it are stale.
    mutating func first(atOrBefore limit: Int64, current: (Int32) -> Int64?) -> Entry? {
        while true {
            if let earliest = firstNear(current) { return earliest.time <= limit ? earliest : nil }
            if wheelCount == 0 {
                guard let earliest = far.first, earliest.time <= limit else { return nil }
                horizon = TimerWheel.bucketStart(earliest.time)
                pullFar()
                continue
            }
            let start = TimerWheel.bucket(of: horizon)
            let found = nextOccupied(from: start)
            let bucketStart = horizon + (Int64((found - start) & (TimerWheel.bucketCount - 1)) << TimerWheel.bucketShift)
            if bucketStart > limit { return nil }
            horizon = bucketStart + (1 << TimerWheel.bucketShift)
            occupied[found >> 6] &= ~(1 << UInt64(found & 63))
            // `firstNear` found no valid entry: the run is spent.
            due.removeAll(keepingCapacity: true)
            dueNext = 0
            dueStart = bucketStart
            let reached = buckets[found]
            wheelCount -= Int(reached.count)
            due.append(contentsOf: UnsafeBufferPointer(start: reached.keys, count: Int(reached.count)))
            // The bucket's memory goes with it: the wheel comes back to it in 199 days.
            reached.keys?.deallocate()
            buckets[found] = Bucket(keys: nil, count: 0, capacity: 0)
            due.sort()
            pullFar()
        }
    }

    @inline(__always) private static func key(_ time: Int64, _ contact: Int32) -> UInt64 {
        UInt64(time - bucketStart(time)) << 32 | UInt64(UInt32(contact))
    }
    @inline(__always) private static func contact(_ key: UInt64) -> Int32 { Int32(truncatingIfNeeded: key & 0xFFFF_FFFF) }

    /// The earliest valid near entry (stale ones at the front of `due` and `late` are dropped).
    /// An entry is valid while its contact's timer is at its instant: a timer that left and
    /// came back to the same instant may have two, and the one fired first moves the timer on,
    /// which makes the other stale.
    private mutating func firstNear(_ current: (Int32) -> Int64?) -> Entry? {
        var fromDue: Entry? = nil
        while dueNext < due.count {
            let key = due[dueNext]
            let entry = Entry(time: dueStart + Int64(key >> 32), contact: TimerWheel.contact(key))
            if current(entry.contact) == entry.time { fromDue = entry; break }
            dueNext += 1
        }
        while let top = late.first, current(top.contact) != top.time { TimerWheel.popLate(&late) }
        guard let fromLate = late.first else { return fromDue }
        guard let fromDue else { return fromLate }
        return TimerWheel.less(fromLate, fromDue) ? fromLate : fromDue
    }

    // MARK: places

    @inline(__always) private static func bucket(of time: Int64) -> Int { Int((time >> bucketShift) & Int64(bucketCount - 1)) }
    @inline(__always) private static func bucketStart(_ time: Int64) -> Int64 { (time >> bucketShift) << bucketShift }

    /// Puts contact `c`, which has no place now, where `time` belongs.
    private mutating func place(_ c: Int, _ time: Int64) {
        if horizon == .min { horizon = TimerWheel.bucketStart(time) }
        switch place(of: time) {
        case .near:
            TimerWheel.pushLate(&late, Entry(time: time, contact: Int32(c)))
        case .wheel:
            let b = TimerWheel.bucket(of: time)
            positions[c] = buckets[b].count
            if buckets[b].count == buckets[b].capacity { grow(b) }
            buckets[b].keys![Int(buckets[b].count)] = TimerWheel.key(time, Int32(c))
            buckets[b].count += 1
            occupied[b >> 6] |= 1 << UInt64(b & 63)
            wheelCount += 1
        case .far:
            TimerWheel.push(&far, &positions, Entry(time: time, contact: Int32(c)))
        }
    }

    /// Takes contact `c`'s timer, at `time`, out of its place.
    private mutating func detach(_ c: Int, _ time: Int64) {
        switch place(of: time) {
        case .near: break  // its entry goes stale
        case .far: TimerWheel.removeAt(&far, &positions, Int(positions[c]))
        case .wheel:
            let b = TimerWheel.bucket(of: time)
            let position = positions[c]
            buckets[b].count -= 1
            let lastPosition = buckets[b].count
            if position < lastPosition {
                let last = buckets[b].keys![Int(lastPosition)]
                buckets[b].keys![Int(position)] = last
                positions[Int(TimerWheel.contact(last))] = position
            } else if lastPosition == 0 {
                occupied[b >> 6] &= ~(1 << UInt64(b & 63))
            }
            wheelCount -= 1
        }
    }

    /// Grows bucket `b`'s room by half: the keys are most of the wheel's memory, and a bucket
    /// grows a few times only (a few hundred timers at most at 1M contacts).
    private func grow(_ b: Int) {
        let old = buckets[b]
        let capacity = max(8, Int(old.capacity) + Int(old.capacity) / 2)
        let keys = UnsafeMutablePointer<UInt64>.allocate(capacity: capacity)
        if let from = old.keys {
            keys.initialize(from: from, count: Int(old.count))
            from.deallocate()
        }
        buckets[b].keys = keys
        buckets[b].capacity = Int32(capacity)
    }

    /// Moves the far timers that the wheel now spans into it.
    private mutating func pullFar() {
        while let earliest = far.first, earliest.time - horizon < TimerWheel.span {
            let c = Int(earliest.contact)
            TimerWheel.removeAt(&far, &positions, 0)
            place(c, earliest.time)
        }
    }

    /// The first occupied bucket at or after `start`, circularly (one exists).
    private func nextOccupied(from start: Int) -> Int {
        let words = occupied.count
        var word = start >> 6
        var bits = occupied[word] & (~0 << UInt64(start & 63))
        var steps = 0
        while bits == 0 {
            steps += 1
            precondition(steps <= words, "the wheel counts timers but has no occupied bucket")
            // After a full turn, the start's own word is read whole.
            word = (word + 1) % words
            bits = occupied[word]
        }
        return word << 6 | bits.trailingZeroBitCount
    }

    @inline(__always) private static func less(_ x: Entry, _ y: Entry) -> Bool {
        x.time < y.time || (x.time == y.time && x.contact < y.contact)
    }

    // MARK: the heaps: `late` plain (its entries go stale instead of being removed), `far`
    // indexed (each entry's position kept in its contact's node)

    private static func pushLate(_ heap: inout [Entry], _ entry: Entry) {
        heap.append(entry)
        siftUp(&heap, heap.count - 1) { _, _ in }
    }

    private static func popLate(_ heap: inout [Entry]) {
        let last = heap.removeLast()
        if heap.isEmpty { return }
        heap[0] = last
        siftDown(&heap, 0) { _, _ in }
    }

    private static func push(_ heap: inout [Entry], _ positions: inout [Int32], _ entry: Entry) {
        heap.append(entry)
        siftUp(&heap, heap.count - 1) { keepPosition(&positions, $0, $1) }
    }

    private static func removeAt(_ heap: inout [Entry], _ positions: inout [Int32], _ at: Int) {
        let last = heap.removeLast()
        if at == heap.count { return }
        heap[at] = last
        positions[Int(last.contact)] = Int32(at)
        siftUp(&heap, at) { keepPosition(&positions, $0, $1) }
        siftDown(&heap, Int(positions[Int(last.contact)])) { keepPosition(&positions, $0, $1) }
    }

    private static func resift(_ heap: inout [Entry], _ positions: inout [Int32], at: Int, from old: Int64, to time: Int64) {
        heap[at].time = time
        if time < old {
            siftUp(&heap, at) { keepPosition(&positions, $0, $1) }
        } else {
            siftDown(&heap, at) { keepPosition(&positions, $0, $1) }
        }
    }

    /// Records where the contact's entry is in `far`.
    @inline(__always)
    private static func keepPosition(_ positions: inout [Int32], _ entry: Entry, _ position: Int) {
        positions[Int(entry.contact)] = Int32(position)
    }

    /// Moves the entry at `start` up to its place; `placed` is told each entry's new position.
    @inline(__always)
    private static func siftUp(_ heap: inout [Entry], _ start: Int, placed: (Entry, Int) -> Void) {
        let moving = heap[start]
        var hole = start
        while hole > 0 {
            let parent = (hole - 1) / 2
            if !less(moving, heap[parent]) { break }
            heap[hole] = heap[parent]
            placed(heap[hole], hole)
            hole = parent
        }
        heap[hole] = moving
        placed(moving, hole)
    }

    /// Moves the entry at `start` down to its place; `placed` is told each entry's new position.
    @inline(__always)
    private static func siftDown(_ heap: inout [Entry], _ start: Int, placed: (Entry, Int) -> Void) {
        let n = heap.count
        let moving = heap[start]
        var hole = start
        while true {
            var child = 2 * hole + 1
            if child >= n { break }
            if child + 1 < n && less(heap[child + 1], heap[child]) { child += 1 }
            if !less(heap[child], moving) { break }
            heap[hole] = heap[child]
            placed(heap[hole], hole)
            hole = child
        }
        heap[hole] = moving
        placed(moving, hole)
    }
}

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
/// Three places, by instant, with `horizon` the start of the wheel's first bucket:
/// - near: instants before `horizon` (the buckets already reached, and timers set in the
///   past), in the sorted run `due` (a reached bucket) and the min-heap `late` (timers set
///   before the horizon afterwards). Their entries are not kept up to date: a timer that
///   moves or goes leaves its entry behind, and an entry whose contact's node no longer says
///   "near, at this instant" is stale and skipped when it comes first. Moving a due timer
///   then writes no other contact's node (keeping heap positions in the nodes cost a cache
///   miss for every step of every sift, with a million contacts the largest part of the
///   timers' time);
/// - the wheel: `[horizon, horizon + span)`, `bucketCount` buckets;
/// - `far`, an indexed min-heap: instants at or after `horizon + span` (about 199 days ahead).
/// Every instant in near is before every instant in the wheel, and those before every
/// instant in `far`, so the earliest timer is the first valid near entry when there is one.
struct TimerWheel {
    struct Entry { var time: Int64; var contact: Int32 }

    /// A contact's timer: its instant and where it is. In a bucket, `next` and `prev` link the
    /// bucket's contacts (-1: none; `prev` -1 marks the first); in `far`, `next` is the timer's
    /// position there; near, `prev` is `inNear` (its entries are found by instant, lazily);
    /// without a timer `prev` is `noTimer`.
    private struct Node { var time: Int64; var next: Int32; var prev: Int32 }
    private static let noTimer: Int32 = -2
    private static let inNear: Int32 = -3
    private static let inFar: Int32 = -4

    /// 2^20 ms (about 17.5 minutes) per bucket and 2^14 buckets: the wheel spans 2^34 ms,
    /// about 199 days, beyond the default model's longest window (60 days).
    private static let bucketShift: Int64 = 20
    private static let bucketCount = 1 << 14
    private static let span: Int64 = Int64(bucketCount) << bucketShift

    private var nodes: [Node] = []
    /// Each bucket's first contact, or -1.
    private var heads = [Int32](repeating: -1, count: TimerWheel.bucketCount)
    /// One bit per bucket that holds a timer.
    private var occupied = [UInt64](repeating: 0, count: TimerWheel.bucketCount / 64)
    private var wheelCount = 0
    /// The reached buckets' timers, sorted by (instant, contact), from `dueNext` on.
    private var due: [Entry] = []
    private var dueNext = 0
    /// Timers set before the horizon since (a plain min-heap by (instant, contact)).
    private var late: [Entry] = []
    private var far: [Entry] = []
    /// The start of the wheel's first bucket (a multiple of the bucket width); set by the
    /// first timer.
    private var horizon: Int64 = .min

    /// How many contacts have a timer.
    private(set) var count = 0

    var footprintBytes: Int {
        nodes.capacity * MemoryLayout<Node>.stride + heads.capacity * 4 + occupied.capacity * 8
            + (due.capacity + late.capacity + far.capacity) * MemoryLayout<Entry>.stride
    }

    /// Makes room for the contact just added (its index is the current count).
    mutating func addContact() {
        // Grow by an eighth, not by doubling: one node per contact.
        if nodes.count == nodes.capacity { nodes.reserveCapacity(nodes.count + nodes.count / 8 + 256) }
        nodes.append(Node(time: 0, next: -1, prev: TimerWheel.noTimer))
    }

    /// Asks for the contact's node, read when its timer is set after each of its records.
    @inline(__always)
    func prefetch(contact: Int) {
        nodes.withUnsafeBufferPointer { segmentd_prefetch_for_write($0.baseAddress! + contact) }
    }

    /// The contacts whose timers come next in the `due` run after the earliest's (-1 where
    /// there is none; an entry may be stale): their state can be asked for while the
    /// earliest is handled.
    @inline(__always)
    func followingDue() -> (Int32, Int32) {
        (dueNext + 1 < due.count ? due[dueNext + 1].contact : -1, dueNext + 2 < due.count ? due[dueNext + 2].contact : -1)
    }

    /// The contact's timer, if it has one.
    func time(of contact: Int32) -> Int64? {
        let node = nodes[Int(contact)]
        return node.prev == TimerWheel.noTimer ? nil : node.time
    }

    /// Sets the contact's timer to `time`, adding it or moving it.
    mutating func set(contact: Int32, time: Int64) {
        let c = Int(contact)
        let node = nodes[c]
        switch node.prev {
        case TimerWheel.noTimer:
            count += 1
        case TimerWheel.inNear where time == node.time:
            return
        case TimerWheel.inFar where time - horizon >= TimerWheel.span:
            nodes[c].time = time
            TimerWheel.resift(&far, &nodes, at: Int(node.next), from: node.time, to: time)
            return
        case let prev where prev >= -1 && time >= horizon && time - horizon < TimerWheel.span
                && TimerWheel.bucket(of: time) == TimerWheel.bucket(of: node.time):
            nodes[c].time = time
            return
        default:
            detach(c)
        }
        place(c, time)
    }

    /// Removes the contact's timer, if it has one.
    mutating func remove(contact: Int32) {
        let c = Int(contact)
        if nodes[c].prev == TimerWheel.noTimer { return }
        detach(c)
        nodes[c].prev = TimerWheel.noTimer
        count -= 1
    }

    /// The earliest timer (by instant, then contact index) if it is at or before `limit`. The
    /// wheel's buckets up to `limit` are moved into `near` to find it; later ones stay.
    mutating func first(atOrBefore limit: Int64) -> Entry? {
        while true {
            if let earliest = firstNear() { return earliest.time <= limit ? earliest : nil }
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
            var c = heads[found]
            heads[found] = -1
            occupied[found >> 6] &= ~(1 << UInt64(found & 63))
            // `firstNear` found no valid entry: the run is spent.
            due.removeAll(keepingCapacity: true)
            dueNext = 0
            while c >= 0 {
                let next = nodes[Int(c)].next
                wheelCount -= 1
                nodes[Int(c)].prev = TimerWheel.inNear
                due.append(Entry(time: nodes[Int(c)].time, contact: c))
                c = next
            }
            due.sort(by: TimerWheel.less)
            pullFar()
        }
    }

    /// The earliest valid near entry (stale ones at the front of `due` and `late` are dropped).
    private mutating func firstNear() -> Entry? {
        while dueNext < due.count && !isCurrent(due[dueNext]) { dueNext += 1 }
        while let top = late.first, !isCurrent(top) { TimerWheel.popLate(&late) }
        let fromDue = dueNext < due.count ? due[dueNext] : nil
        guard let fromLate = late.first else { return fromDue }
        guard let fromDue else { return fromLate }
        return TimerWheel.less(fromLate, fromDue) ? fromLate : fromDue
    }

    /// Whether a near entry is still its contact's timer.
    @inline(__always)
    private func isCurrent(_ entry: Entry) -> Bool {
        let node = nodes[Int(entry.contact)]
        return node.prev == TimerWheel.inNear && node.time == entry.time
    }

    // MARK: places

    @inline(__always) private static func bucket(of time: Int64) -> Int { Int((time >> bucketShift) & Int64(bucketCount - 1)) }
    @inline(__always) private static func bucketStart(_ time: Int64) -> Int64 { (time >> bucketShift) << bucketShift }

    /// Puts contact `c`, which has no place now, where `time` belongs.
    private mutating func place(_ c: Int, _ time: Int64) {
        if horizon == .min { horizon = TimerWheel.bucketStart(time) }
        nodes[c].time = time
        if time < horizon {
            nodes[c].prev = TimerWheel.inNear
            TimerWheel.pushLate(&late, Entry(time: time, contact: Int32(c)))
        } else if time - horizon < TimerWheel.span {
            let b = TimerWheel.bucket(of: time)
            let head = heads[b]
            nodes[c].next = head
            nodes[c].prev = -1
            if head >= 0 { nodes[Int(head)].prev = Int32(c) }
            heads[b] = Int32(c)
            occupied[b >> 6] |= 1 << UInt64(b & 63)
            wheelCount += 1
        } else {
            TimerWheel.push(&far, &nodes, Entry(time: time, contact: Int32(c)), heap: TimerWheel.inFar)
        }
    }

    /// Takes contact `c`'s timer out of its place (the node keeps saying it has one).
    private mutating func detach(_ c: Int) {
        let node = nodes[c]
        switch node.prev {
        case TimerWheel.inNear: break  // its entry goes stale
        case TimerWheel.inFar: TimerWheel.removeAt(&far, &nodes, Int(node.next))
        default:
            if node.next >= 0 { nodes[Int(node.next)].prev = node.prev }
            if node.prev >= 0 {
                nodes[Int(node.prev)].next = node.next
            } else {
                let b = TimerWheel.bucket(of: node.time)
                heads[b] = node.next
                if node.next < 0 { occupied[b >> 6] &= ~(1 << UInt64(b & 63)) }
            }
            wheelCount -= 1
        }
    }

    /// Moves the far timers that the wheel now spans into it.
    private mutating func pullFar() {
        while let earliest = far.first, earliest.time - horizon < TimerWheel.span {
            let c = Int(earliest.contact)
            TimerWheel.removeAt(&far, &nodes, 0)
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

    private static func push(_ heap: inout [Entry], _ nodes: inout [Node], _ entry: Entry, heap which: Int32) {
        nodes[Int(entry.contact)].prev = which
        heap.append(entry)
        siftUp(&heap, heap.count - 1) { keepPosition(&nodes, $0, $1) }
    }

    private static func removeAt(_ heap: inout [Entry], _ nodes: inout [Node], _ at: Int) {
        let last = heap.removeLast()
        if at == heap.count { return }
        heap[at] = last
        nodes[Int(last.contact)].next = Int32(at)
        siftUp(&heap, at) { keepPosition(&nodes, $0, $1) }
        siftDown(&heap, Int(nodes[Int(last.contact)].next)) { keepPosition(&nodes, $0, $1) }
    }

    private static func resift(_ heap: inout [Entry], _ nodes: inout [Node], at: Int, from old: Int64, to time: Int64) {
        heap[at].time = time
        if time < old {
            siftUp(&heap, at) { keepPosition(&nodes, $0, $1) }
        } else {
            siftDown(&heap, at) { keepPosition(&nodes, $0, $1) }
        }
    }

    /// Records in the contact's node where its entry is in `far`.
    @inline(__always)
    private static func keepPosition(_ nodes: inout [Node], _ entry: Entry, _ position: Int) {
        nodes[Int(entry.contact)].next = Int32(position)
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

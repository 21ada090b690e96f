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
/// A bucket is a run of contact indices, and each contact's node says where in it the
/// contact is: removal moves the bucket's last contact into the hole (one other node written),
/// and a reached bucket is read in one pass whose node reads do not depend on each other, so
/// their cache misses overlap (a linked list through the nodes made it one miss after another:
/// at 650k contacts most of the wheel's time). The buckets' counts and addresses are one dense
/// table (256 KB, which stays in cache): a bucket's own header would be one more miss per move.
/// The runs are the wheel's own memory: `deallocate()` frees them.
///
/// Three places, by instant, with `horizon` the start of the wheel's first bucket:
/// - near: instants before `horizon` (the buckets already reached, and timers set in the
///   past), in the sorted run `due` (a reached bucket) and the min-heap `late` (timers set
///   before the horizon afterwards). Their entries are not kept up to date: a timer that
///   moves or goes leaves its entry behind, and an entry whose contact's node no longer says
///   "near, at this instant" is stale and skipped when it comes first. Moving a due timer
///   then writes no other contact's node;
/// - the wheel: `[horizon, horizon + span)`, `bucketCount` buckets;
/// - `far`, an indexed min-heap: instants at or after `horizon + span` (about 199 days ahead).
/// Every instant in near is before every instant in the wheel, and those before every
/// instant in `far`, so the earliest timer is the first valid near entry when there is one.
struct TimerWheel {
    struct Entry { var time: Int64; var contact: Int32 }

    /// Where a contact's timer is.
    private enum Place: Int32 { case none, near, wheel, far }

    /// A contact's timer: its instant, its place, and its position there (in its bucket, or in
    /// `far`; near entries are found by instant, lazily).
    private struct Node { var time: Int64; var position: Int32; var place: Place }

    /// 2^20 ms (about 17.5 minutes) per bucket and 2^14 buckets: the wheel spans 2^34 ms,
    /// about 199 days, beyond the default model's longest window (60 days).
    private static let bucketShift: Int64 = 20
    private static let bucketCount = 1 << 14
    private static let span: Int64 = Int64(bucketCount) << bucketShift

    /// A bucket's contacts, unordered: `count` of them at `contacts`, room for `capacity`.
    private struct Bucket { var contacts: UnsafeMutablePointer<Int32>?; var count: Int32; var capacity: Int32 }

    private var nodes: [Node] = []
    private let buckets: UnsafeMutablePointer<Bucket>
    /// One bit per bucket that holds a timer.
    private var occupied = [UInt64](repeating: 0, count: TimerWheel.bucketCount / 64)
    private var wheelCount = 0
    /// The reached bucket's timers from `dueNext` on, sorted: each is `(time - dueStart) << 32 |
    /// contact`, so that plain integer order is the order by (instant, contact).
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
        buckets.initialize(repeating: Bucket(contacts: nil, count: 0, capacity: 0), count: TimerWheel.bucketCount)
    }

    /// Frees the buckets' memory; the wheel is not used after.
    func deallocate() {
        for b in 0..<TimerWheel.bucketCount { buckets[b].contacts?.deallocate() }
        buckets.deallocate()
    }

    var footprintBytes: Int {
        var bucketBytes = TimerWheel.bucketCount * MemoryLayout<Bucket>.stride
        for b in 0..<TimerWheel.bucketCount { bucketBytes += Int(buckets[b].capacity) * 4 }
        return nodes.capacity * MemoryLayout<Node>.stride + bucketBytes + occupied.capacity * 8 + due.capacity * 8
            + (late.capacity + far.capacity) * MemoryLayout<Entry>.stride
    }

    /// Makes room for the contact just added (its index is the current count).
    mutating func addContact() {
        // Grow by an eighth, not by doubling: one node per contact.
        if nodes.count == nodes.capacity { nodes.reserveCapacity(nodes.count + nodes.count / 8 + 256) }
        nodes.append(Node(time: 0, position: -1, place: .none))
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
        (dueNext + 1 < due.count ? TimerWheel.contact(due[dueNext + 1]) : -1,
         dueNext + 2 < due.count ? TimerWheel.contact(due[dueNext + 2]) : -1)
    }

    /// The contact's timer, if it has one.
    func time(of contact: Int32) -> Int64? {
        let node = nodes[Int(contact)]
        return node.place == .none ? nil : node.time
    }

    /// Sets the contact's timer to `time`, adding it or moving it.
    mutating func set(contact: Int32, time: Int64) {
        let c = Int(contact)
        let node = nodes[c]
        switch node.place {
        case .none:
            count += 1
        case .near where time == node.time:
            return
        case .far where time - horizon >= TimerWheel.span:
            nodes[c].time = time
            TimerWheel.resift(&far, &nodes, at: Int(node.position), from: node.time, to: time)
            return
        case .wheel where time >= horizon && time - horizon < TimerWheel.span
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
        if nodes[c].place == .none { return }
        detach(c)
        nodes[c].place = .none
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
            occupied[found >> 6] &= ~(1 << UInt64(found & 63))
            // `firstNear` found no valid entry: the run is spent.
            due.removeAll(keepingCapacity: true)
            dueNext = 0
            dueStart = bucketStart
            let reached = buckets[found]
            wheelCount -= Int(reached.count)
            nodes.withUnsafeMutableBufferPointer { nodes in
                for k in 0..<Int(reached.count) {
                    let c = Int(reached.contacts![k])
                    nodes[c].place = .near
                    due.append(UInt64(nodes[c].time - bucketStart) << 32 | UInt64(UInt32(c)))
                }
            }
            // The bucket's memory goes with it: the wheel comes back to it in 199 days.
            reached.contacts?.deallocate()
            buckets[found] = Bucket(contacts: nil, count: 0, capacity: 0)
            due.sort()
            pullFar()
        }
    }

    @inline(__always) private static func contact(_ key: UInt64) -> Int32 { Int32(truncatingIfNeeded: key & 0xFFFF_FFFF) }

    /// The earliest valid near entry (stale ones at the front of `due` and `late` are dropped).
    private mutating func firstNear() -> Entry? {
        var fromDue: Entry? = nil
        while dueNext < due.count {
            let key = due[dueNext]
            let entry = Entry(time: dueStart + Int64(key >> 32), contact: TimerWheel.contact(key))
            if isCurrent(entry) { fromDue = entry; break }
            dueNext += 1
        }
        while let top = late.first, !isCurrent(top) { TimerWheel.popLate(&late) }
        guard let fromLate = late.first else { return fromDue }
        guard let fromDue else { return fromLate }
        return TimerWheel.less(fromLate, fromDue) ? fromLate : fromDue
    }

    /// Whether a near entry is still its contact's timer.
    @inline(__always)
    private func isCurrent(_ entry: Entry) -> Bool {
        let node = nodes[Int(entry.contact)]
        return node.place == .near && node.time == entry.time
    }

    // MARK: places

    @inline(__always) private static func bucket(of time: Int64) -> Int { Int((time >> bucketShift) & Int64(bucketCount - 1)) }
    @inline(__always) private static func bucketStart(_ time: Int64) -> Int64 { (time >> bucketShift) << bucketShift }

    /// Puts contact `c`, which has no place now, where `time` belongs.
    private mutating func place(_ c: Int, _ time: Int64) {
        if horizon == .min { horizon = TimerWheel.bucketStart(time) }
        nodes[c].time = time
        if time < horizon {
            nodes[c].place = .near
            TimerWheel.pushLate(&late, Entry(time: time, contact: Int32(c)))
        } else if time - horizon < TimerWheel.span {
            let b = TimerWheel.bucket(of: time)
            nodes[c].place = .wheel
            nodes[c].position = buckets[b].count
            if buckets[b].count == buckets[b].capacity { grow(b) }
            buckets[b].contacts![Int(buckets[b].count)] = Int32(c)
            buckets[b].count += 1
            occupied[b >> 6] |= 1 << UInt64(b & 63)
            wheelCount += 1
        } else {
            nodes[c].place = .far
            TimerWheel.push(&far, &nodes, Entry(time: time, contact: Int32(c)))
        }
    }

    /// Takes contact `c`'s timer out of its place (the node keeps saying it has one).
    private mutating func detach(_ c: Int) {
        let node = nodes[c]
        switch node.place {
        case .none, .near: break  // a near entry goes stale
        case .far: TimerWheel.removeAt(&far, &nodes, Int(node.position))
        case .wheel:
            let b = TimerWheel.bucket(of: node.time)
            buckets[b].count -= 1
            let lastPosition = buckets[b].count
            if node.position < lastPosition {
                let last = buckets[b].contacts![Int(lastPosition)]
                buckets[b].contacts![Int(node.position)] = last
                nodes[Int(last)].position = node.position
            } else if lastPosition == 0 {
                occupied[b >> 6] &= ~(1 << UInt64(b & 63))
            }
            wheelCount -= 1
        }
    }

    /// Doubles bucket `b`'s room.
    private func grow(_ b: Int) {
        let old = buckets[b]
        let capacity = max(8, Int(old.capacity) * 2)
        let contacts = UnsafeMutablePointer<Int32>.allocate(capacity: capacity)
        if let from = old.contacts {
            contacts.initialize(from: from, count: Int(old.count))
            from.deallocate()
        }
        buckets[b].contacts = contacts
        buckets[b].capacity = Int32(capacity)
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

    private static func push(_ heap: inout [Entry], _ nodes: inout [Node], _ entry: Entry) {
        heap.append(entry)
        siftUp(&heap, heap.count - 1) { keepPosition(&nodes, $0, $1) }
    }

    private static func removeAt(_ heap: inout [Entry], _ nodes: inout [Node], _ at: Int) {
        let last = heap.removeLast()
        if at == heap.count { return }
        heap[at] = last
        nodes[Int(last.contact)].position = Int32(at)
        siftUp(&heap, at) { keepPosition(&nodes, $0, $1) }
        siftDown(&heap, Int(nodes[Int(last.contact)].position)) { keepPosition(&nodes, $0, $1) }
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
        nodes[Int(entry.contact)].position = Int32(position)
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

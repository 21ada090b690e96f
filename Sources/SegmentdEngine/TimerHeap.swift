/// Every contact's one live timer: an indexed binary min-heap of (instant, contact), ordered by
/// instant, then contact index (the firing order), with each contact's position kept so that
/// its timer is moved or removed in place. The heap holds exactly the scheduled contacts: no
/// stale entries to pop and skip, no compaction.
struct TimerHeap {
    struct Entry { var time: Int64; var contact: Int32 }
    private var entries: [Entry] = []
    /// Each contact's index in `entries`, or -1 when it has no timer.
    private var positions: [Int32] = []

    var count: Int { entries.count }
    var footprintBytes: Int { entries.capacity * MemoryLayout<Entry>.stride + positions.capacity * 4 }

    /// Makes room for the contact just added (its index is the current count).
    mutating func addContact() { positions.append(-1) }

    func peek() -> Entry? { entries.first }

    @inline(__always) private static func less(_ x: Entry, _ y: Entry) -> Bool {
        x.time < y.time || (x.time == y.time && x.contact < y.contact)
    }

    /// Sets the contact's timer to `time`, adding it or moving it.
    mutating func set(contact: Int32, time: Int64) {
        let at = Int(positions[Int(contact)])
        if at < 0 {
            // Grow by an eighth, not by doubling: the heap holds up to one entry per contact.
            if entries.count == entries.capacity { entries.reserveCapacity(entries.count + entries.count / 8 + 256) }
            entries.append(Entry(time: time, contact: contact))
            siftUp(entries.count - 1)
            return
        }
        let old = entries[at].time
        entries[at].time = time
        if time < old { siftUp(at) } else { siftDown(at) }
    }

    /// Removes the contact's timer, if it has one.
    mutating func remove(contact: Int32) {
        let at = Int(positions[Int(contact)])
        if at < 0 { return }
        positions[Int(contact)] = -1
        let last = entries.removeLast()
        if at == entries.count { return }
        entries[at] = last
        positions[Int(last.contact)] = Int32(at)
        siftUp(at)
        siftDown(Int(positions[Int(last.contact)]))
    }

    /// Moves the entry at `start` up to its place, the displaced parents moving down into the hole.
    private mutating func siftUp(_ start: Int) {
        positions.withUnsafeMutableBufferPointer { pos in
            entries.withUnsafeMutableBufferPointer { heap in
                let moving = heap[start]
                var hole = start
                while hole > 0 {
                    let parent = (hole - 1) / 2
                    if !TimerHeap.less(moving, heap[parent]) { break }
                    heap[hole] = heap[parent]
                    pos[Int(heap[hole].contact)] = Int32(hole)
                    hole = parent
                }
                heap[hole] = moving
                pos[Int(moving.contact)] = Int32(hole)
            }
        }
    }

    /// Moves the entry at `start` down to its place, the smaller children moving up into the hole.
    private mutating func siftDown(_ start: Int) {
        positions.withUnsafeMutableBufferPointer { pos in
            entries.withUnsafeMutableBufferPointer { heap in
                let n = heap.count
                let moving = heap[start]
                var hole = start
                while true {
                    var child = 2 * hole + 1
                    if child >= n { break }
                    if child + 1 < n && TimerHeap.less(heap[child + 1], heap[child]) { child += 1 }
                    if !TimerHeap.less(heap[child], moving) { break }
                    heap[hole] = heap[child]
                    pos[Int(heap[hole].contact)] = Int32(hole)
                    hole = child
                }
                heap[hole] = moving
                pos[Int(moving.contact)] = Int32(hole)
            }
        }
    }
}

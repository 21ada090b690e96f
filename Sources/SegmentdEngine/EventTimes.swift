/// Where a contact's row keeps the times of its "at least N" event lists and its scored-event
/// lists: as 40-bit entries counted from a per-contact base, in one area of the row.
///
/// A list's live times lie within its window behind the contact's clock, yet an exact
/// millisecond time needs 64 bits on its own. Counted from a base at most `margin` plus the
/// longest window behind the clock, 40 bits (5 bytes) hold every time a window can still
/// count, and every older one for `margin` (2^39 ms, 17 years) more: only an event that old
/// is left out, and no window of the model can count it (its time plus the window is before
/// the clock, and no evaluation is ever before the clock: contract rule 2). The 18 list
/// slots of the default model take 104 bytes instead of 144.
///
/// The area, from its first byte:
/// - the base: an `Int32` in units of 2^17 ms (`baseUnitBits`), so it covers every event
///   time of the years 0000 to 9999 (within ±2^48 ms); `Int32.min` (the empty row's) is before
///   them all;
/// - every list's entries, then every scored list's, `width` bytes each, newest first: an
///   entry holds `time - base + 1`, and 0 is an empty place (so an empty place compares below
///   every entry, and a list's entries come before its empty places);
/// - every scored list's points, `pointsWidth` bytes each (1 when every cap fits a byte).
///
/// A model whose longest list window exceeds `narrowWindowLimit` (8.7 years) keeps 8-byte
/// entries from a base before every event time, which never moves: the same code, wider.
///
/// When a new entry lies beyond what 40 bits reach from the base (a contact active for longer
/// than `margin`), the base moves up to `margin` plus the longest window behind the clock and
/// the entries older than it are dropped: they are at the end of their lists (lists are newest
/// first), and no window counts them again.
struct EventTimes: Sendable {
    static let baseUnitBits: Int64 = 17
    static let narrowWindowLimit: Millis = 1 << 38
    /// The base of an empty row, before every event time.
    static let emptyBase = Int32.min

    /// Byte offset in the row of the base.
    let baseByte: Int
    /// Byte offset of the first entry, and how many entries the area holds (every list's
    /// capacity, then every scored list's).
    let firstEntry: Int
    let entryCount: Int
    /// Bytes per entry (5, or 8 for very long windows) and the bits an entry's load keeps.
    let width: Int
    let mask: UInt64
    /// Bytes per scored entry's points (1 or 2) and the bits a points load keeps.
    let pointsWidth: Int
    let pointsMask: UInt64
    /// The longest window that reads any of the lists, and how much further back the base goes.
    let longestWindow: Millis
    let margin: Millis
    /// Whether the base moves (40-bit entries); 8-byte entries count from the empty row's base.
    let baseMoves: Bool
    /// Bytes of the area (the base, the entries, the points), a multiple of 8.
    let bytes: Int

    /// An area starting at row slot `slot`, for lists of `listCapacities` and scored lists of
    /// `scoredCapacities` whose caps are `scoreCaps`.
    init(slot: Int, listCapacities: [Int], scoredCapacities: [Int], scoreCaps: [Int64], longestWindow: Millis) {
        let narrow = longestWindow <= EventTimes.narrowWindowLimit
        baseByte = slot * 8
        firstEntry = baseByte + 4
        entryCount = listCapacities.reduce(0, +) + scoredCapacities.reduce(0, +)
        width = narrow ? 5 : 8
        mask = narrow ? (1 << 40) - 1 : .max
        pointsWidth = scoreCaps.allSatisfy { $0 <= 255 } ? 1 : 2
        pointsMask = pointsWidth == 1 ? 0xFF : 0xFFFF
        self.longestWindow = longestWindow
        margin = narrow ? 1 << 39 : 0
        baseMoves = narrow
        let used = 4 + entryCount * width + scoredCapacities.reduce(0, +) * pointsWidth
        bytes = (used + 7) / 8 * 8
    }

    /// Byte offset of entry `index` of the area (lists first, then scored lists).
    func entryByte(_ index: Int) -> Int { firstEntry + index * width }

    /// The base of the contact in `row`.
    @inline(__always)
    static func base(_ row: UnsafeRawPointer, _ baseByte: Int) -> Millis {
        Int64(row.load(fromByteOffset: baseByte, as: Int32.self)) << baseUnitBits
    }

    /// The stored value at byte `at`: 0 (empty), or the time minus the base plus 1.
    @inline(__always)
    static func stored(_ row: UnsafeRawPointer, _ at: Int, _ mask: UInt64) -> UInt64 {
        row.loadUnaligned(fromByteOffset: at, as: UInt64.self) & mask
    }

    /// Writes `value` into the `width` bytes at `at` (the bytes after them stay).
    @inline(__always)
    static func store(_ row: UnsafeMutableRawPointer, _ at: Int, _ value: UInt64, _ width: Int) {
        if width == 5 {
            row.storeBytes(of: UInt32(truncatingIfNeeded: value), toByteOffset: at, as: UInt32.self)
            row.storeBytes(of: UInt8(truncatingIfNeeded: value &>> 32), toByteOffset: at &+ 4, as: UInt8.self)
        } else {
            row.storeBytes(of: value, toByteOffset: at, as: UInt64.self)
        }
    }

    @inline(__always)
    static func points(_ row: UnsafeRawPointer, _ at: Int, _ pointsMask: UInt64) -> Int64 {
        Int64(UInt64(row.loadUnaligned(fromByteOffset: at, as: UInt16.self)) & pointsMask)
    }

    @inline(__always)
    static func storePoints(_ row: UnsafeMutableRawPointer, _ at: Int, _ value: Int64, _ pointsWidth: Int) {
        if pointsWidth == 1 {
            row.storeBytes(of: UInt8(truncatingIfNeeded: value), toByteOffset: at, as: UInt8.self)
        } else {
            row.storeBytes(of: UInt16(truncatingIfNeeded: value), toByteOffset: at, as: UInt16.self)
        }
    }

    /// The time of the entry at byte `at`, or none for an empty place.
    @inline(__always)
    func time(_ row: UnsafePointer<Int64>, at: Int) -> Millis {
        let raw = UnsafeRawPointer(row)
        let s = EventTimes.stored(raw, at, mask)
        return s == 0 ? SegmentEngine.none : EventTimes.base(raw, baseByte) &- 1 &+ Int64(bitPattern: s)
    }

    /// What an entry at `ts` stores in the contact's `row` (whose clock is `clock`), moving the
    /// base first when `ts` lies beyond its reach; 0 when `ts` is older than the base (no
    /// window counts it: it is not stored).
    @inline(__always)
    func storedValue(_ row: Row, _ ts: Millis, clock: Millis) -> UInt64 {
        let raw = UnsafeMutableRawPointer(row)
        let base = EventTimes.base(raw, baseByte)
        if ts < base { return 0 }
        let s = UInt64(bitPattern: ts &- base &+ 1)
        if s <= mask { return s }
        let moved = rebase(row, clock: max(clock, ts))
        return ts < moved ? 0 : UInt64(bitPattern: ts &- moved &+ 1)
    }

    /// The base for a contact whose clock is `clock`: `margin` plus the longest window behind it
    /// (the empty row's base for 8-byte entries, which never move), in base units.
    func restingBaseUnit(clock: Millis) -> Int32 {
        if !baseMoves { return EventTimes.emptyBase }
        let lowest = Int64(Int32.min) << EventTimes.baseUnitBits
        return Int32(max(lowest, clock - longestWindow - margin) >> EventTimes.baseUnitBits)
    }

    /// Sets the base of `row`, whose area is empty and whose clock is `clock`, for entries from
    /// `oldest` to `newest` (none: `oldest` after `newest`); returns it. The base is never
    /// after the resting base for the clock, so that a time before it is one no window counts
    /// (a late event older than every entry must still go in), and never after `oldest`, so the
    /// entries come back as they were, unless `newest` needs it later (the entries before it are
    /// then more than 2^40 ms behind the newest, beyond every window).
    func setBase(_ row: Row, oldest: Millis, newest: Millis, clock: Millis) -> Millis {
        var unit = restingBaseUnit(clock: clock)
        if baseMoves && oldest <= newest {
            var wanted = min(Int64(unit), oldest >> EventTimes.baseUnitBits)
            if newest - (wanted << EventTimes.baseUnitBits) + 1 > Int64(mask) {
                wanted = (newest + 1 - Int64(mask) + (1 << EventTimes.baseUnitBits) - 1) >> EventTimes.baseUnitBits
            }
            unit = Int32(wanted)
        }
        UnsafeMutableRawPointer(row).storeBytes(of: unit, toByteOffset: baseByte, as: Int32.self)
        return Int64(unit) << EventTimes.baseUnitBits
    }

    /// Moves the base of `row` up to `margin` plus the longest window behind `clock` and drops
    /// the entries older than it; returns the new base.
    @inline(never)
    func rebase(_ row: Row, clock: Millis) -> Millis {
        let raw = UnsafeMutableRawPointer(row)
        let old = EventTimes.base(raw, baseByte)
        let unit = restingBaseUnit(clock: clock)
        let moved = Int64(unit) << EventTimes.baseUnitBits
        if moved <= old { return old }
        // A row at the empty row's base (a new contact's first entry: most rebases) holds no
        // entry to move: 40 bits from that base end before the year 0000, before every event time.
        if old != Int64(EventTimes.emptyBase) << EventTimes.baseUnitBits {
            let delta = UInt64(moved - old)
            for k in 0..<entryCount {
                let at = entryByte(k)
                let s = EventTimes.stored(raw, at, mask)
                if s == 0 { continue }
                EventTimes.store(raw, at, s <= delta ? 0 : s - delta, width)
            }
        }
        raw.storeBytes(of: unit, toByteOffset: baseByte, as: Int32.self)
        return moved
    }

    /// Empties the area of `row`: no entries, the empty row's base.
    func clear(_ row: Row) {
        (row + baseByte / 8).update(repeating: 0, count: bytes / 8)
        UnsafeMutableRawPointer(row).storeBytes(of: EventTimes.emptyBase, toByteOffset: baseByte, as: Int32.self)
    }

    /// Writes `ts` as the entry at byte `at`, as it is (a copy of a list, newest first, in
    /// order); false when `ts` is older than the base (and the older entries are too).
    func setTime(_ row: Row, at: Int, _ ts: Millis, clock: Millis) -> Bool {
        let s = storedValue(row, ts, clock: clock)
        if s == 0 { return false }
        EventTimes.store(UnsafeMutableRawPointer(row), at, s, width)
        return true
    }

    /// Inserts `ts` into the newest-first list of `capacity` entries from byte `at` (the oldest
    /// falls off; an entry no window can count is not stored).
    @inline(__always)
    func insertTime(_ row: Row, _ at: Int, _ capacity: Int, _ ts: Millis, clock: Millis) {
        let s = storedValue(row, ts, clock: clock)
        if s == 0 { return }
        // One copy per width, each with its width a constant.
        if width == 5 {
            _ = EventTimes.insert(UnsafeMutableRawPointer(row), at, capacity, s, width: 5, mask: mask)
        } else {
            _ = EventTimes.insert(UnsafeMutableRawPointer(row), at, capacity, s, width: 8, mask: mask)
        }
    }

    /// Inserts a scored event (time at byte `at`, points at byte `pointsAt`) into the list of
    /// `capacity`, and drops the events that can no longer matter: once the newest events reach
    /// the cap, older ones (which leave the window first) never change the capped score.
    @inline(__always)
    func insertScored(_ row: Row, _ at: Int, _ pointsAt: Int, _ capacity: Int, _ ts: Millis, _ points: Int64, _ scoreCap: Int64, clock: Millis) {
        let s = storedValue(row, ts, clock: clock)
        if s == 0 { return }
        if width == 5 && pointsWidth == 1 {
            EventTimes.insertScored(UnsafeMutableRawPointer(row), at, pointsAt, capacity, s, min(points, scoreCap), scoreCap, width: 5, mask: mask, pointsWidth: 1, pointsMask: 0xFF)
        } else {
            EventTimes.insertScored(UnsafeMutableRawPointer(row), at, pointsAt, capacity, s, min(points, scoreCap), scoreCap,
                                    width: width, mask: mask, pointsWidth: pointsWidth, pointsMask: pointsMask)
        }
    }

    /// Puts stored value `s` (not 0) at its place in the newest-first list of `capacity`
    /// entries from byte `at`, the entries from there moving one place down (the last falls
    /// off, and `moved(from, to)` moves what goes with an entry); returns the place, or nil
    /// when the list is full of newer entries.
    @inline(__always)
    private static func insert(_ raw: UnsafeMutableRawPointer, _ at: Int, _ capacity: Int, _ s: UInt64, width: Int, mask: UInt64,
                               moved: (_ from: Int, _ to: Int) -> Void = { _, _ in }) -> Int? {
        var i = 0
        while i < capacity, stored(raw, at &+ i &* width, mask) > s { i &+= 1 }
        if i == capacity { return nil }
        var j = capacity &- 1
        while j > i {
            store(raw, at &+ j &* width, stored(raw, at &+ (j &- 1) &* width, mask), width)
            moved(j &- 1, j)
            j &-= 1
        }
        store(raw, at &+ i &* width, s, width)
        return i
    }

    /// `insertScored` for stored value `s` (not 0) and `points` (at most the cap).
    @inline(__always)
    private static func insertScored(_ raw: UnsafeMutableRawPointer, _ at: Int, _ pointsAt: Int, _ capacity: Int, _ s: UInt64, _ points: Int64, _ scoreCap: Int64,
                                     width: Int, mask: UInt64, pointsWidth: Int, pointsMask: UInt64) {
        let place = insert(raw, at, capacity, s, width: width, mask: mask) { from, to in
            storePoints(raw, pointsAt &+ to &* pointsWidth, EventTimes.points(raw, pointsAt &+ from &* pointsWidth, pointsMask), pointsWidth)
        }
        guard let i = place else { return }
        storePoints(raw, pointsAt &+ i &* pointsWidth, points, pointsWidth)
        // The newest entries up to the one that reaches the cap stay; the rest go.
        var sum: Int64 = 0
        var k = 0
        while k < capacity, sum < scoreCap {
            if stored(raw, at &+ k &* width, mask) == 0 { return }
            sum &+= EventTimes.points(raw, pointsAt &+ k &* pointsWidth, pointsMask)
            k &+= 1
        }
        while k < capacity, stored(raw, at &+ k &* width, mask) != 0 {
            store(raw, at &+ k &* width, 0, width)
            k &+= 1
        }
    }
}

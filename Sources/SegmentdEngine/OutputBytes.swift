/// A growable run of bytes that encoders write in place: `tail(reserving:)` gives room for at
/// least `n` more bytes at the end, `advance(by:)` keeps what was written there.
///
/// An `[UInt8]` only grows by appending, so a document written elsewhere first (its size is
/// known only once written) was copied into it byte for byte: about 290 instructions a
/// transition. Owned by one writer; its owner frees it (`deallocate`).
public struct OutputBytes {
    public private(set) var start: UnsafeMutablePointer<UInt8>
    public private(set) var count = 0
    public private(set) var capacity: Int
    /// The instant of the last transition `TransitionEncoder.encodeLine` wrote here, and where
    /// its 24 characters are (-1: none): the next one at the same instant copies them.
    /// Forgotten with the bytes.
    var lastInstant: (at: Millis, offset: Int) = (0, -1)

    public init(capacity: Int) {
        self.capacity = max(capacity, 64)
        start = .allocate(capacity: self.capacity)
    }

    /// Room for at least `n` bytes after the ones kept (grown by doubling when needed).
    @inline(__always)
    public mutating func tail(reserving n: Int) -> UnsafeMutablePointer<UInt8> {
        if capacity - count < n { grow(to: count + n) }
        return start + count
    }

    /// Keeps the `n` bytes written at `tail(reserving:)`.
    @inline(__always)
    public mutating func advance(by n: Int) {
        precondition(n >= 0 && count + n <= capacity, "more bytes kept than reserved")
        count += n
    }

    @inline(never)
    private mutating func grow(to needed: Int) {
        var size = capacity
        while size < needed { size *= 2 }
        let bigger = UnsafeMutablePointer<UInt8>.allocate(capacity: size)
        bigger.update(from: start, count: count)
        start.deallocate()
        start = bigger
        capacity = size
    }

    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: start, count: count) }

    public mutating func removeAll() {
        count = 0
        lastInstant = (0, -1)
    }

    public func deallocate() { start.deallocate() }
}

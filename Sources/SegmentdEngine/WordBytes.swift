/// Byte work done a word at a time on the hot paths (decoding records, encoding transitions):
/// short copies without a call to memcpy, decimal digits eight at a time.

/// Copies of a few bytes (ids, the encoder's constant pieces) as loads and stores of words.
enum ShortCopy {
    /// Copies `count` bytes from `source` to `destination` (not overlapping). Up to 64 bytes as
    /// words, the last of which may overlap the one before: no byte outside either range is read
    /// or written. Longer copies call memcpy.
    @inline(__always)
    static func copy(_ source: UnsafePointer<UInt8>, to destination: UnsafeMutablePointer<UInt8>, count: Int) {
        let from = UnsafeRawPointer(source), to = UnsafeMutableRawPointer(destination)
        if count >= 8 {
            guard count <= 64 else {
                destination.update(from: source, count: count)
                return
            }
            var offset = 0
            while offset &+ 8 < count {
                to.storeBytes(of: from.loadUnaligned(fromByteOffset: offset, as: UInt64.self), toByteOffset: offset, as: UInt64.self)
                offset &+= 8
            }
            to.storeBytes(of: from.loadUnaligned(fromByteOffset: count &- 8, as: UInt64.self), toByteOffset: count &- 8, as: UInt64.self)
        } else if count >= 4 {
            let head = from.loadUnaligned(as: UInt32.self), tail = from.loadUnaligned(fromByteOffset: count &- 4, as: UInt32.self)
            to.storeBytes(of: head, as: UInt32.self)
            to.storeBytes(of: tail, toByteOffset: count &- 4, as: UInt32.self)
        } else {
            var i = 0
            while i < count {
                destination[i] = source[i]
                i &+= 1
            }
        }
    }
}

/// Decimal digits eight at a time: a few multiplications split a number below 10⁸ into one
/// digit per byte, or join eight digit bytes into their value (no loop over the digits).
enum DecimalDigits {
    /// The ASCII digits of `v` (below 10¹⁶, no leading zeros) in two words, the first digit in
    /// the lowest byte: the first `leadCount` (1 to 8) in `lead`, then `restCount` (0 or 8) in `rest`.
    @inline(__always)
    static func ascii(_ v: UInt64) -> (lead: UInt64, leadCount: Int, rest: UInt64, restCount: Int) {
        let high = v / 100_000_000, low = v % 100_000_000
        let first = high == 0 ? low : high
        let digits = spread(first)
        // Leading zero digits are the low zero bytes (a zero `v` still has one digit).
        let count = first == 0 ? 1 : 8 &- digits.trailingZeroBitCount &>> 3
        let lead = (digits | 0x3030_3030_3030_3030) >> UInt64((8 &- count) &* 8)
        if high == 0 { return (lead, count, 0, 0) }
        return (lead, count, spread(low) | 0x3030_3030_3030_3030, 8)
    }

    /// How many of the bytes of `word` (little-endian, the first in the lowest byte) are ASCII
    /// digits before the first that is not (8 when all are).
    @inline(__always)
    static func leadingDigits(_ word: UInt64) -> Int {
        let offset = word ^ 0x3030_3030_3030_3030
        // A digit's byte is now 0 to 9: the high nibble of it or of it plus 6 is set for any
        // other byte (a carry only runs upward, past the first such byte).
        let others = (offset | (offset &+ 0x0606_0606_0606_0606)) & 0xF0F0_F0F0_F0F0_F0F0
        return others == 0 ? 8 : others.trailingZeroBitCount &>> 3
    }

    /// The value of the eight ASCII digits of `word` (the first, most significant, in the lowest byte).
    @inline(__always)
    static func value(ofEight word: UInt64) -> UInt64 {
        var v = word & 0x0F0F_0F0F_0F0F_0F0F
        v = (v &* 10 &+ (v >> 8)) & 0x00FF_00FF_00FF_00FF
        v = (v &* 100 &+ (v >> 16)) & 0x0000_FFFF_0000_FFFF
        return (v &* 10_000 &+ (v >> 32)) & 0xFFFF_FFFF
    }

    /// The eight digits of `v` (below 10⁸, leading zeros included) as values 0 to 9, one per
    /// byte, the most significant in the lowest byte.
    @inline(__always)
    static func spread(_ v: UInt64) -> UInt64 {
        // Two lanes of four digits, then four lanes of two, then eight of one.
        var lanes = (v / 10_000) | ((v % 10_000) << 32)
        var quotients = ((lanes &* 10_486) >> 20) & 0x0000_007F_0000_007F
        lanes = quotients | ((lanes &- quotients &* 100) << 16)
        quotients = ((lanes &* 103) >> 10) & 0x000F_000F_000F_000F
        return quotients | ((lanes &- quotients &* 10) << 8)
    }
}

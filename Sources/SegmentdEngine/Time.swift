/// Event time in the engine: milliseconds since the Unix epoch, UTC.
///
/// The contract keeps every instant to the millisecond (finer fractions are truncated), so a
/// plain `Int64` is exact, cheap to compare and cheap to store in per-contact state.
public typealias Millis = Int64

extension Millis {
    /// 0000-01-01T00:00:00.000Z, the earliest instant an input may carry.
    public static let earliestEventTime: Millis = -62_167_219_200_000
    /// 9999-12-31T23:59:59.999Z, the latest instant an input may carry.
    public static let latestEventTime: Millis = 253_402_300_799_999
    /// The longest duration anything may be configured with: the whole range of event times.
    /// With times and durations bounded so, every sum and difference the engine computes
    /// (`ts + window`, `t - window`, `stream time - lateness`) stays far inside `Int64`.
    public static let longestDuration: Millis = latestEventTime - earliestEventTime
}

/// Parsing and formatting of the two time encodings the contract accepts, and of durations.
public enum EventTime {
    /// Parses a strict RFC 3339 date-time (`2026-11-22T10:15:00.250Z`, `…+05:30`) into epoch
    /// milliseconds. Fractions of any length are truncated (not rounded) to the millisecond.
    ///
    /// Rejected, as the contract's small print requires: a space instead of `T`, a missing
    /// offset, an offset without a colon, impossible dates, hour 24, minute or second 60
    /// (leap seconds), date-only values.
    public static func parseRFC3339(_ s: UnsafeBufferPointer<UInt8>) -> Millis? {
        let n = s.count
        guard n >= 20 else { return nil }
        @inline(__always) func digit(_ i: Int) -> Int? {
            let c = s[i]
            return (c >= 48 && c <= 57) ? Int(c - 48) : nil
        }
        @inline(__always) func two(_ i: Int) -> Int? {
            guard let a = digit(i), let b = digit(i + 1) else { return nil }
            return a * 10 + b
        }
        guard let y1 = two(0), let y2 = two(2), s[4] == 45, let mo = two(5), s[7] == 45,
              let d = two(8), s[10] == 84 || s[10] == 116, let h = two(11), s[13] == 58,
              let mi = two(14), s[16] == 58, let se = two(17)
        else { return nil }
        let y = y1 * 100 + y2
        guard mo >= 1, mo <= 12, d >= 1, d <= daysInMonth(y, mo), h <= 23, mi <= 59, se <= 59
        else { return nil }
        var i = 19
        var ms = 0
        if s[i] == 46 {  // '.'
            i += 1
            var digits = 0
            while i < n, let v = digit(i) {
                if digits < 3 { ms = ms * 10 + v }
                digits += 1
                i += 1
            }
            guard digits > 0 else { return nil }
            var k = digits
            while k < 3 { ms *= 10; k += 1 }
        }
        guard i < n else { return nil }
        var offsetMinutes = 0
        let c = s[i]
        if c == 90 || c == 122 {  // Z z
            i += 1
        } else if c == 43 || c == 45 {  // + -
            guard i + 6 == n, let oh = two(i + 1), s[i + 3] == 58, let om = two(i + 4),
                  oh <= 23, om <= 59
            else { return nil }
            offsetMinutes = (oh * 60 + om) * (c == 43 ? 1 : -1)
            i += 6
        } else {
            return nil
        }
        guard i == n else { return nil }
        let days = daysFromCivil(y, mo, d)
        let secs = Int64(days) * 86_400 + Int64(h * 3600 + mi * 60 + se) - Int64(offsetMinutes * 60)
        return secs * 1000 + Int64(ms)
    }

    /// A date attribute's value: an RFC 3339 date-time (as `parseRFC3339`), or a full date
    /// `YYYY-MM-DD`, which names midnight UTC of that day. Nil for anything else, or for an
    /// instant outside the years 0000 to 9999.
    public static func parseDate(_ s: UnsafeBufferPointer<UInt8>) -> Millis? {
        if s.count != 10 {
            guard let t = parseRFC3339(s), isInRange(t) else { return nil }
            return t
        }
        func number(_ range: Range<Int>) -> Int? {
            var v = 0
            for i in range {
                guard s[i] >= 48, s[i] <= 57 else { return nil }
                v = v * 10 + Int(s[i] - 48)
            }
            return v
        }
        guard let y = number(0..<4), s[4] == 45, let mo = number(5..<7), s[7] == 45, let d = number(8..<10),
              mo >= 1, mo <= 12, d >= 1, d <= daysInMonth(y, mo)
        else { return nil }
        return Int64(daysFromCivil(y, mo, d)) * 86_400_000
    }

    /// Whether `t` lies in the years 0000 to 9999 (UTC), the range every input time must have.
    @inline(__always)
    public static func isInRange(_ t: Millis) -> Bool {
        t >= Millis.earliestEventTime && t <= Millis.latestEventTime
    }

    public static func parseRFC3339(_ s: String) -> Millis? {
        var s = s
        return s.withUTF8 { parseRFC3339($0) }
    }

    /// Formats epoch milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ`, the one form the daemon writes.
    public static func format(_ t: Millis) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(24)
        append(t, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends the formatted instant to a byte buffer (the transition encoder's hot path).
    public static func append(_ t: Millis, to out: inout [UInt8]) {
        withFormatted(t) { out.append(contentsOf: $0) }
    }

    /// The length of every formatted instant: `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    public static let formattedLength = 24

    /// Formats `t` into a buffer on the stack and hands it to `body` (the 24 bytes are written
    /// with no per-byte append, and can be appended more than once).
    @inline(__always)
    public static func withFormatted<R>(_ t: Millis, _ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        try withUnsafeTemporaryAllocation(of: UInt8.self, capacity: formattedLength) { buffer in
            write(t, into: buffer.baseAddress!)
            return try body(UnsafeBufferPointer(buffer))
        }
    }

    /// Writes the 24 bytes of `t` at `p`, as three words: no per-byte store, and no division
    /// that is not by a constant.
    static func write(_ t: Millis, into p: UnsafeMutablePointer<UInt8>) {
        var days = t / 86_400_000
        var msOfDay = t - days * 86_400_000
        if msOfDay < 0 { msOfDay += 86_400_000; days -= 1 }
        let (y, m, d) = civilFromDays(Int(days))
        let year = UInt64(max(0, min(9999, y)))
        // Wrapping arithmetic from here: every value is small and non-negative.
        let ms = UInt64(msOfDay)
        let secs = ms / 1000, milli = ms &- secs &* 1000
        let hour = secs / 3600, secsOfHour = secs &- hour &* 3600
        let minute = secsOfHour / 60, second = secsOfHour &- minute &* 60
        let hundreds = milli / 100
        // Little-endian: a word's lowest byte is its first character.
        let yearToMonth = digitPair(year / 100) | digitPair(year % 100) << 16 | 0x2D << 32 | digitPair(UInt64(truncatingIfNeeded: m)) << 40 | 0x2D << 56  // "YYYY-MM-"
        let dayToMinute = digitPair(UInt64(truncatingIfNeeded: d)) | 0x54 << 16 | digitPair(hour) << 24 | 0x3A << 40 | digitPair(minute) << 48  // "DDTHH:MM"
        let secondToZone = 0x3A | digitPair(second) << 8 | 0x2E << 24 | (0x30 &+ hundreds) << 32
            | digitPair(milli &- hundreds &* 100) << 40 | 0x5A << 56  // ":SS.mmmZ"
        let raw = UnsafeMutableRawPointer(p)
        raw.storeBytes(of: yearToMonth.littleEndian, as: UInt64.self)
        raw.storeBytes(of: dayToMinute.littleEndian, toByteOffset: 8, as: UInt64.self)
        raw.storeBytes(of: secondToZone.littleEndian, toByteOffset: 16, as: UInt64.self)
    }

    /// The two ASCII digits of `v` (0 to 99), the tens in the low byte.
    @inline(__always)
    static func digitPair(_ v: UInt64) -> UInt64 {
        let tens = (v &* 103) >> 10  // v / 10 for v < 179
        return (0x30 &+ tens) | (0x30 &+ v &- tens &* 10) << 8
    }

    static func isLeap(_ y: Int) -> Bool { (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 }

    static func daysInMonth(_ y: Int, _ m: Int) -> Int {
        switch m {
        case 2: return isLeap(y) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    static func daysFromCivil(_ y0: Int, _ m: Int, _ d: Int) -> Int {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (m + 9) % 12
        let doy = (153 * mp + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// The proleptic Gregorian (year, month, day) of `days` since 1970-01-01, for any day a
    /// 64-bit millisecond count reaches.
    static func civilFromDays(_ days: Int) -> (Int, Int, Int) {
        // Neri and Schneider's Euclidean affine functions ("Euclidean affine functions and their
        // application to calendar algorithms", 2022): shifted by whole 400-year eras so that
        // every day of a 64-bit millisecond count is counted from a non-negative start, then
        // centuries, years in the century, and month and day by multiplications and shifts.
        let eras: UInt64 = 1 << 20  // 2^20 eras of 400 years: before any Int64 millisecond
        let start = UInt64(bitPattern: Int64(days)) &+ (719_468 &+ 146_097 &* eras)  // from 0000-03-01 of the first era
        let centuryDays = 4 &* start &+ 3
        let century = centuryDays / 146_097
        let dayOfCentury = (centuryDays % 146_097) / 4
        let yearDays = 4 &* dayOfCentury &+ 3
        let product = 2_939_745 &* yearDays
        let yearOfCentury = product >> 32
        let dayOfYear = (product & 0xFFFF_FFFF) / 2_939_745 / 4  // from March 1
        let monthDay = 2141 &* dayOfYear &+ 197_913
        let month = monthDay >> 16, day = (monthDay & 0xFFFF) / 2141 + 1
        let january = dayOfYear >= 306  // January and February count in the next year
        let year = Int(bitPattern: UInt(100 &* century &+ yearOfCentury)) &- 400 &* Int(eras) &+ (january ? 1 : 0)
        return (year, Int(january ? month &- 12 : month), Int(day))
    }
}

/// A length of time written the way the contract writes durations everywhere: `500ms`, `30s`,
/// `15m`, `1h`, `30d` (a whole number and one unit).
public struct DurationSpec: Sendable, Hashable, CustomStringConvertible {
    public let millis: Millis
    public let text: String

    public init(millis: Millis) {
        self.millis = millis
        let units: [(Millis, String)] = [(86_400_000, "d"), (3_600_000, "h"), (60_000, "m"), (1000, "s")]
        var t = "\(millis)ms"
        for (size, unit) in units where millis != 0 && millis % size == 0 {
            t = "\(millis / size)\(unit)"
            break
        }
        if millis == 0 { t = "0s" }
        self.text = t
    }

    /// Parses `500ms`, `30s`, `15m`, `1h`, `30d`; returns nil on anything else, and on a
    /// duration longer than `Millis.longestDuration` (about 10,000 years).
    public init?(parsing s: String) {
        let units: [(String, Millis)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)]
        for (suffix, size) in units where s.hasSuffix(suffix) {
            let num = s.dropLast(suffix.count)
            guard !num.isEmpty, num.allSatisfy({ $0.isASCII && $0.isNumber }), let v = Int64(num),
                  v <= Millis.longestDuration / size
            else { continue }
            self.millis = v * size
            self.text = s
            return
        }
        return nil
    }

    public var description: String { text }
}

/// Durations for people, rounded down to the largest whole unit (`DurationSpec` keeps them
/// exact): `3d`, `5h`, `12m`, `40s`, `250ms`.
public enum DurationText {
    /// A duration in its largest whole unit (days, hours, minutes, seconds), rounded down.
    public static func approximate(_ ms: Millis) -> String {
        let units: [(Millis, String)] = [(86_400_000, "d"), (3_600_000, "h"), (60_000, "m"), (1000, "s")]
        for (size, unit) in units where ms >= size { return "\(ms / size)\(unit)" }
        return "\(ms)ms"
    }
}

import Testing
@testable import SegmentdEngine

/// The instant formatter against plain references: Howard Hinnant's civil-from-days (what the
/// formatter used before) and a byte-at-a-time writer.
@Suite("Time formatting: dates from day numbers, instants as text")
struct TimeFormatTests {
    /// Howard Hinnant's algorithm, the reference.
    static func referenceCivil(_ z0: Int) -> (Int, Int, Int) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (m <= 2 ? y + 1 : y, m, d)
    }

    /// The text of `t`, a byte at a time.
    static func referenceText(_ t: Millis) -> String {
        var secs = t / 1000
        var ms = Int(t % 1000)
        if ms < 0 { ms += 1000; secs -= 1 }
        var days = secs / 86_400
        var rem = Int(secs % 86_400)
        if rem < 0 { rem += 86_400; days -= 1 }
        let (y, m, d) = referenceCivil(Int(days))
        func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let yy = max(0, min(9999, y))
        let year = String(repeating: "0", count: 4 - String(yy).count) + String(yy)
        let milli = String(repeating: "0", count: 3 - String(ms).count) + String(ms)
        return "\(year)-\(two(m))-\(two(d))T\(two(rem / 3600)):\(two(rem / 60 % 60)):\(two(rem % 60)).\(milli)Z"
    }

    @Test("every day from the year 0000 to 9999 and beyond, and days at the ends of 64-bit milliseconds")
    func days() {
        var mismatches = 0
        for day in -800_000...3_000_000 where EventTime.civilFromDays(day) != TimeFormatTests.referenceCivil(day) {
            mismatches += 1
        }
        #expect(mismatches == 0)
        var rng = SystemRandomNumberGenerator()
        let limit = Int(Int64.max / 86_400_000)
        for day in [-limit - 1, -limit, limit, -1_000_000_000, 1_000_000_000] + (0..<10_000).map({ _ in Int.random(in: -limit...limit, using: &rng) }) {
            #expect(EventTime.civilFromDays(day) == TimeFormatTests.referenceCivil(day), "day \(day)")
        }
    }

    @Test("instants as text, byte for byte, at every edge of the day and of the range")
    func text() {
        for v in UInt64(0)..<100 {
            let pair = EventTime.digitPair(v)
            #expect(pair == UInt64(48 + v / 10) | UInt64(48 + v % 10) << 8)
        }
        var instants: [Millis] = [0, -1, 1, 999, 1000, 86_399_999, 86_400_000, -86_400_000, -86_400_001,
                                  Millis.earliestEventTime, Millis.latestEventTime, Millis.earliestEventTime - 1, Millis.latestEventTime + 1,
                                  Int64.max, Int64.min, Int64.min + 1, 951_782_400_000, 4_107_542_399_999]
        var rng = SystemRandomNumberGenerator()
        instants += (0..<20_000).map { _ in Millis.random(in: Millis.earliestEventTime...Millis.latestEventTime, using: &rng) }
        instants += (0..<2_000).map { _ in Millis.random(in: Int64.min...Int64.max, using: &rng) }
        for t in instants {
            #expect(EventTime.format(t) == TimeFormatTests.referenceText(t), "instant \(t)")
        }
    }
}

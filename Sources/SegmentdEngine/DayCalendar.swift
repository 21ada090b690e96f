import Foundation

/// Days of the model's time zone (`timezone:` in the model, UTC by default), for "active on at
/// least N distinct days" conditions: the day an instant falls on, and the instant a day starts.
///
/// A day is numbered as days since 1970-01-01 of the local calendar. In UTC both directions
/// are a division; in another zone the offset comes from the IANA database (Foundation's
/// `TimeZone`), so a day is 23 or 25 hours long across a DST change, and a day whose local
/// midnight does not exist (a change at midnight) starts at the first instant that is on it.
public final class DayCalendar: Sendable {
    static let dayMs: Int64 = 86_400_000
    /// nil: UTC.
    let zone: TimeZone?
    public let identifier: String

    /// nil when `identifier` is not a time zone the IANA database knows.
    public init?(identifier: String) {
        self.identifier = identifier
        if identifier == "UTC" {
            zone = nil
        } else {
            guard let zone = TimeZone(identifier: identifier) else { return nil }
            self.zone = zone
        }
    }

    @inline(__always)
    static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }

    /// The zone's offset from UTC at `instant`, in milliseconds.
    private func offset(_ instant: Millis) -> Int64 {
        guard let zone else { return 0 }
        return Int64(zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(instant) / 1000))) * 1000
    }

    /// The local day `instant` falls on.
    public func day(_ instant: Millis) -> Int64 {
        DayCalendar.floorDiv(instant + offset(instant), DayCalendar.dayMs)
    }

    /// The first instant of local day `day`.
    public func start(ofDay day: Int64) -> Millis {
        let midnight = day * DayCalendar.dayMs
        guard zone != nil else { return midnight }
        // Midnight at the offset in force there, when that instant is the day's first.
        let candidate = midnight - offset(midnight - offset(midnight))
        if self.day(candidate) == day && self.day(candidate - 1) < day { return candidate }
        // Otherwise (midnight skipped or repeated by a change): the first instant on the day
        // or later, searched within the day around it (offsets are within ±26 hours).
        var low = midnight - 27 * 3_600_000, high = midnight + 27 * 3_600_000
        while low < high {
            let mid = low + (high - low) / 2
            if self.day(mid) >= day { high = mid } else { low = mid + 1 }
        }
        return low
    }
}

/// One engine's view of a `DayCalendar`, with what it asked before: the offset interval the
/// last instant fell in (a stream moves forward through time, so most instants fall in the
/// same interval between two changes of offset) and the start of recently asked days. The
/// zone database is asked only when an instant leaves the interval or a day is new. Not
/// thread-safe: each engine has its own (engines are single-threaded).
final class DayCache {
    let calendar: DayCalendar
    /// The offset in force on [from, until).
    private var from: Millis = 0, until: Millis = 0, offset: Int64 = 0
    private var startDays = [Int64](repeating: .min, count: 256)
    private var starts = [Millis](repeating: 0, count: 256)

    init(_ calendar: DayCalendar) { self.calendar = calendar }

    func day(_ instant: Millis) -> Int64 {
        guard let zone = calendar.zone else { return DayCalendar.floorDiv(instant, DayCalendar.dayMs) }
        if instant < from || instant >= until {
            let date = Date(timeIntervalSince1970: Double(instant) / 1000)
            offset = Int64(zone.secondsFromGMT(for: date)) * 1000
            from = instant
            until = zone.nextDaylightSavingTimeTransition(after: date).map { Millis(($0.timeIntervalSince1970 * 1000).rounded(.down)) } ?? .max
            // A transition is a whole second: the instant of it already has the new offset.
            if until <= instant { until = instant + 1 }
        }
        return DayCalendar.floorDiv(instant + offset, DayCalendar.dayMs)
    }

    func start(ofDay day: Int64) -> Millis {
        if calendar.zone == nil { return day * DayCalendar.dayMs }
        let slot = Int(UInt64(bitPattern: day) & 255)
        if startDays[slot] == day { return starts[slot] }
        let start = calendar.start(ofDay: day)
        startDays[slot] = day
        starts[slot] = start
        return start
    }
}

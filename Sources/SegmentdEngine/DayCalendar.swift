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

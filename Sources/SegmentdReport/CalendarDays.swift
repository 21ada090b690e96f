import SegmentdEngine

/// UTC calendar arithmetic on epoch milliseconds: days and ISO weeks (starting Monday).
public enum CalendarDays {
    public static let dayMillis: Millis = 86_400_000

    /// Days since 1970-01-01 (UTC) of the day holding `t`, floored for times before 1970.
    public static func day(of t: Millis) -> Int64 {
        t >= 0 ? t / dayMillis : -((-t + dayMillis - 1) / dayMillis)
    }

    /// The first instant of `day`.
    public static func start(ofDay day: Int64) -> Millis { day * dayMillis }

    /// The Monday on or before `day`. 1970-01-01 was a Thursday.
    public static func monday(onOrBefore day: Int64) -> Int64 {
        let weekday = ((day + 3) % 7 + 7) % 7  // Monday 0 … Sunday 6
        return day - weekday
    }

    /// `2026-03-02` for a day number.
    public static func label(ofDay day: Int64) -> String {
        String(EventTime.format(start(ofDay: day)).prefix(10))
    }
}

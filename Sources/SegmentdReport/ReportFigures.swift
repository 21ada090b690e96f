/// Every figure of a segment health report: what `--format json` writes (keys in snake_case,
/// docs/report.md) and what the HTML page draws.
public struct SegmentReport: Codable, Sendable, Equatable {
    public var schema = "segmentd.report/1"
    /// What the transitions were read from (a file, standard input, a topic), as given.
    public var source: String?
    /// The period covered; absent when the input holds no transition in it.
    public var period: Period?
    public var input: InputSummary
    /// Where the group and segment order comes from.
    public var segmentOrder: String
    public var minSize: Int
    /// Contacts with at least one transition at or before the end of the period.
    public var contacts: Int
    public var modelVersions: [ModelVersionUse]
    /// Transitions in the period by `cause.kind`.
    public var causes: [CauseCount]
    public var groups: [GroupFigures]
    public var overlaps: [Overlap]
    /// Every flagged segment, group by group, in model order.
    public var flags: [SegmentFlag]
    /// Engagement per segment, with `--events`.
    public var engagement: Engagement?
}

public struct Period: Codable, Sendable, Equatable {
    /// First and last instant covered (RFC 3339, UTC, milliseconds).
    public var since: String
    public var until: String
    /// UTC days from the day of `since` to the day of `until`, as `YYYY-MM-DD`.
    public var days: [String]
    /// Weeks (Monday to Sunday, UTC) overlapping the period.
    public var weeks: [Week]
}

public struct Week: Codable, Sendable, Equatable {
    /// The Monday, `YYYY-MM-DD`.
    public var start: String
    /// Days of this week inside the period (7 but for the first and the last week).
    public var daysInPeriod: Int
}

public struct BadLine: Codable, Sendable, Equatable {
    public var line: Int
    public var reason: String
}

public struct InputSummary: Codable, Sendable, Equatable {
    /// Non-empty lines read.
    public var lines = 0
    /// Lines that were transitions.
    public var transitions = 0
    /// Lines that were not (each reported with its line number on stderr).
    public var badLines = 0
    /// The first bad lines, with line numbers and reasons.
    public var badLineSamples: [BadLine] = []
    /// Transitions repeated with the same id right after themselves (a redelivery), skipped.
    public var duplicatesSkipped = 0
    /// Transitions before the period (they only set where contacts start).
    public var beforePeriod = 0
    /// Transitions after the period (ignored).
    public var afterPeriod = 0
    /// Contacts whose first transition in a group leaves a segment: the input starts after
    /// they entered it, so they count in it from the start and their stay has no known entry.
    public var startedInsideSegment = 0
    /// Transitions whose `from` is not the `to` of the contact's previous transition in that
    /// group (records missing from the input); sizes follow the latest `to`.
    public var chainBreaks = 0
    /// Transitions earlier than the contact's previous one in the same group.
    public var outOfOrder = 0
}

public struct ModelVersionUse: Codable, Sendable, Equatable {
    public var version: String
    public var transitions: Int
    public var firstAt: String
    public var lastAt: String
}

public struct CauseCount: Codable, Sendable, Equatable {
    public var kind: String
    public var transitions: Int
}

public struct GroupFigures: Codable, Sendable, Equatable {
    public var name: String
    public var isFlag: Bool
    /// Whether the group is in the model the order comes from.
    public var inModel: Bool
    public var transitionsInPeriod: Int
    /// Contacts seen in this group at the end of the period, in a segment or not.
    public var contacts: Int
    public var segments: [SegmentFigures]
    /// Contacts seen in this group that are in none of its segments.
    public var noSegment: NoSegmentFigures
    /// Transitions in the period from each segment to each other; `null` is "no segment".
    public var flows: [Flow]
}

public struct NoSegmentFigures: Codable, Sendable, Equatable {
    public var size: Int
    public var dailySize: [Int]
}

public struct SegmentFigures: Codable, Sendable, Equatable {
    public var name: String
    public var inModel: Bool
    /// Contacts in the segment at the end of the period.
    public var size: Int
    /// Contacts in it at the start of the period (before its first transition).
    public var sizeAtStart: Int
    /// Contacts in it at the end of each day of `period.days` (the last day: at `until`).
    public var dailySize: [Int]
    public var entries: Int
    public var exits: Int
    /// Per week of `period.weeks`.
    public var weeklyEntries: [Int]
    public var weeklyExits: [Int]
    public var belowMinSize: Bool
    public var nobodyEntered: Bool
    public var timeInSegment: StayFigures
}

/// Time spent in a segment: stays that began in the period, from entering to leaving; a stay
/// still open at the end of the period is right-censored there (Kaplan-Meier estimates).
public struct StayFigures: Codable, Sendable, Equatable {
    public var stays: Int
    /// Stays that ended in the period.
    public var ended: Int
    /// Stays still open at the end (censored).
    public var stillInside: Int
    public var median: DurationEstimate?
    public var p90: DurationEstimate?
}

public struct DurationEstimate: Codable, Sendable, Equatable {
    public var ms: Int64
    /// The estimate is not reached (too many stays still open): the true value is above `ms`,
    /// the longest stay observed.
    public var atLeast: Bool

    public init(ms: Int64, atLeast: Bool) {
        self.ms = ms
        self.atLeast = atLeast
    }
}

public struct Flow: Codable, Sendable, Equatable {
    public var from: String?
    public var to: String?
    public var count: Int

    public init(from: String?, to: String?, count: Int) {
        self.from = from
        self.to = to
        self.count = count
    }

    enum CodingKeys: String, CodingKey { case from, to, count }

    // `null` written out: "no segment" is a value here, not a missing field.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(from, forKey: .from)
        try c.encode(to, forKey: .to)
        try c.encode(count, forKey: .count)
    }
}

/// Contacts by their segment in two groups at the end of the period; `null` is "no segment".
public struct Overlap: Codable, Sendable, Equatable {
    public var rowGroup: String
    public var columnGroup: String
    public var rows: [String?]
    public var columns: [String?]
    /// `counts[r][c]`: contacts in `rows[r]` and `columns[c]`.
    public var counts: [[Int]]
}

public struct SegmentFlag: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable { case belowMinSize = "below_min_size", nobodyEntered = "nobody_entered" }
    public var group: String
    public var segment: String
    public var kind: Kind
    public var size: Int
}

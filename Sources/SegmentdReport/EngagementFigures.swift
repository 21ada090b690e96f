/// Engagement per segment (`--events`): events of a kind counted under the segment each
/// contact was in at the event's time, and per contact per week (the count over the
/// segment's contact-weeks: the sum of its daily sizes over 7).
public struct Engagement: Codable, Sendable, Equatable {
    /// What is counted: a measure is a set of canonical event types.
    public var measures: [EngagementMeasure]
    /// Event records read, and those that were not events (bad lines, ignored records).
    public var eventsRead: Int
    public var eventsNotUsable: Int
    /// Events counted in at least one measure, in the period, of contacts with transitions.
    public var eventsCounted: Int
    /// Events of a measure at a time the contact had no transition yet in any group.
    public var eventsOfContactsWithoutSegments: Int
    public var groups: [GroupEngagement]
}

public struct EngagementMeasure: Codable, Sendable, Equatable {
    public var name: String
    public var eventTypes: [String]

    public init(name: String, eventTypes: [String]) {
        self.name = name
        self.eventTypes = eventTypes
    }

    /// Opens, clicks and conversions (a demo or contact form, a booked meeting).
    public static let standard = [
        EngagementMeasure(name: "opens", eventTypes: ["email_open"]),
        EngagementMeasure(name: "clicks", eventTypes: ["email_click"]),
        EngagementMeasure(name: "conversions", eventTypes: ["form_submit", "meeting_booked"]),
    ]
}

public struct GroupEngagement: Codable, Sendable, Equatable {
    public var group: String
    public var segments: [SegmentEngagement]
}

public struct SegmentEngagement: Codable, Sendable, Equatable {
    /// The segment; `null` for contacts in no segment of the group.
    public var segment: String?
    /// Contact-weeks spent in the segment during the period.
    public var contactWeeks: Double
    /// Per measure, in the order of `measures`.
    public var counts: [Int]
    public var perContactPerWeek: [Double]

    enum CodingKeys: String, CodingKey { case segment, contactWeeks, counts, perContactPerWeek }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(segment, forKey: .segment)
        try c.encode(contactWeeks, forKey: .contactWeeks)
        try c.encode(counts, forKey: .counts)
        try c.encode(perContactPerWeek, forKey: .perContactPerWeek)
    }
}

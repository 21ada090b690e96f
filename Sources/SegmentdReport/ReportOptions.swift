import SegmentdEngine

/// What a report covers and how it judges segments.
public struct ReportOptions: Sendable {
    /// The first instant of the period; default: the earliest transition. Transitions before
    /// it only set where contacts start.
    public var since: Millis?
    /// The last instant of the period (inclusive); default: the latest transition. Transitions
    /// after it are ignored.
    public var until: Millis?
    /// Segments with fewer contacts at the end are flagged.
    public var minSize: Int
    /// Group order and segment names.
    public var catalog: SegmentCatalog
    /// The catalog is a guess (the built-in default model, no `--model`): it is used only if
    /// the transitions carry its model version; otherwise the order comes from the transitions.
    public var catalogIsAssumed: Bool
    /// The pairs of groups whose overlap at the end is shown; nil: the first group with each
    /// other group that has more than one segment.
    public var overlapPairs: [(rows: String, columns: String)]?
    /// How many bad lines the report lists (all are counted).
    public var badLineSamples: Int
    /// What the transitions are read from, said on the page.
    public var source: String?
    /// What engagement to count per segment when events are added; nil: none.
    public var engagement: [EngagementMeasure]?

    public init(
        since: Millis? = nil, until: Millis? = nil, minSize: Int = 100,
        catalog: SegmentCatalog = .fromTransitions, catalogIsAssumed: Bool = false,
        overlapPairs: [(rows: String, columns: String)]? = nil, badLineSamples: Int = 20,
        engagement: [EngagementMeasure]? = nil, source: String? = nil
    ) {
        self.since = since
        self.until = until
        self.minSize = minSize
        self.catalog = catalog
        self.catalogIsAssumed = catalogIsAssumed
        self.overlapPairs = overlapPairs
        self.badLineSamples = badLineSamples
        self.engagement = engagement
        self.source = source
    }
}

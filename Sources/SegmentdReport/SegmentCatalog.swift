import SegmentdEngine

/// The groups and their segments in the order the report shows them: a model's order when the
/// report has one, then anything the transitions name that the model does not.
public struct SegmentCatalog: Sendable, Equatable {
    public struct Group: Sendable, Equatable {
        public var name: String
        public var segments: [String]
        /// A flag group: one segment named like the group.
        public var isFlag: Bool

        public init(name: String, segments: [String], isFlag: Bool = false) {
            self.name = name
            self.segments = segments
            self.isFlag = isFlag
        }
    }

    public var groups: [Group]
    /// Where the order comes from, said on the page ("model default-1 (built in)", "the transitions").
    public var origin: String
    /// The model version the catalog was read from, if any.
    public var modelVersion: String?

    public init(groups: [Group], origin: String, modelVersion: String? = nil) {
        self.groups = groups
        self.origin = origin
        self.modelVersion = modelVersion
    }

    /// No model: groups and segments appear as the transitions name them.
    public static let fromTransitions = SegmentCatalog(groups: [], origin: "the transitions (no model given)")

    public init(model: Model, origin: String) {
        self.init(
            groups: model.groups.map { Group(name: $0.name, segments: $0.segments.map(\.name), isFlag: $0.isFlag) },
            origin: origin, modelVersion: model.version)
    }
}

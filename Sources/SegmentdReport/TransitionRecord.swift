import SegmentdEngine

/// One segment transition as the report reads it: the fields of `data` (docs/output.md) it
/// needs, with `at` as epoch milliseconds.
public struct TransitionRecord: Sendable, Equatable {
    public var id: String?
    public var contactId: String
    public var group: String
    /// The segment left; nil for "in no segment of the group".
    public var from: String?
    /// The segment entered; nil for "in no segment of the group".
    public var to: String?
    public var at: Millis
    /// `cause.kind`: `event`, `time` or `model` (or whatever a newer writer sends).
    public var causeKind: String?
    public var modelVersion: String?

    public init(
        id: String? = nil, contactId: String, group: String, from: String?, to: String?, at: Millis,
        causeKind: String? = nil, modelVersion: String? = nil
    ) {
        self.id = id
        self.contactId = contactId
        self.group = group
        self.from = from
        self.to = to
        self.at = at
        self.causeKind = causeKind
        self.modelVersion = modelVersion
    }
}

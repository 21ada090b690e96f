/// What a model change would do to the contacts of some engines: per group of the new model
/// (matched to the base model's by name), each segment's size under both and the contacts
/// that move between segments (`none`: in no segment), with a few samples per move and the
/// new model's reasons. `segmentd preview` builds it from a replayed stream; the daemon's
/// `POST /admin/preview` from each thread's engines and their adoption by the new model.
public struct ModelPreview: Sendable {
    public struct Move: Hashable, Comparable, Sendable {
        public var from: String
        public var to: String
        public init(from: String, to: String) {
            self.from = from
            self.to = to
        }
        public static func < (a: Move, b: Move) -> Bool { (a.from, a.to) < (b.from, b.to) }
    }

    public struct Sample: Sendable {
        public var contact: String
        public var reasons: [String]
    }

    public struct Group: Sendable {
        public var name: String
        /// Segment names in the new model, then the base model's that the new one lacks.
        public var segments: [String]
        public var baseSizes: [String: Int] = [:]
        public var newSizes: [String: Int] = [:]
        public var moves: [Move: Int] = [:]
        public var samples: [Move: [Sample]] = [:]
        /// Whether the base model has a group of this name.
        public var inBase: Bool

        public var moved: Int { moves.values.reduce(0, +) }
    }

    public var groups: [Group]
    public var contacts = 0
    public let sampleLimit: Int

    /// Compares every contact of either engine (the same contacts under two models).
    public static func compare(base before: SegmentEngine, new after: SegmentEngine, samples: Int) -> ModelPreview {
        let baseModel = before.model, newModel = after.model
        var preview = ModelPreview(groups: newModel.groups.map { g in
            let old = baseModel.groups.first { $0.name == g.name }
            let extra = old.map { $0.segments.map(\.name).filter { name in !g.segments.contains { $0.name == name } } } ?? []
            return Group(name: g.name, segments: g.segments.map(\.name) + extra, inBase: old != nil)
        }, sampleLimit: samples)
        var ids: [[UInt8]] = (0..<after.contactCount).map { after.contactId(at: $0) }
        var seen = Set(ids)
        for i in 0..<before.contactCount where !seen.contains(before.contactId(at: i)) {
            ids.append(before.contactId(at: i))
            seen.insert(before.contactId(at: i))
        }
        preview.contacts = ids.count
        for id in ids {
            let old = before.memberships(of: id), new = after.memberships(of: id)
            var explanation: Explanation?
            for (g, group) in newModel.groups.enumerated() {
                let to = new.flatMap { $0[g] }.map { group.segments[$0].name } ?? "none"
                var from = "none"
                if let og = baseModel.groups.firstIndex(where: { $0.name == group.name }), let seg = old.flatMap({ $0[og] }) {
                    from = baseModel.groups[og].segments[seg].name
                }
                preview.groups[g].baseSizes[from, default: 0] += 1
                preview.groups[g].newSizes[to, default: 0] += 1
                guard from != to else { continue }
                let move = Move(from: from, to: to)
                preview.groups[g].moves[move, default: 0] += 1
                if preview.groups[g].samples[move, default: []].count < samples {
                    if explanation == nil { explanation = after.explain(id) }
                    preview.groups[g].samples[move, default: []].append(Sample(contact: String(decoding: id, as: UTF8.self),
                                                                                reasons: explanation?.groups[g].reasons ?? []))
                }
            }
        }
        return preview
    }

    /// Adds another set of engines' preview (of the same two models).
    public mutating func merge(_ other: ModelPreview) {
        contacts += other.contacts
        for (g, o) in other.groups.enumerated() where g < groups.count {
            for (k, v) in o.baseSizes { groups[g].baseSizes[k, default: 0] += v }
            for (k, v) in o.newSizes { groups[g].newSizes[k, default: 0] += v }
            for (k, v) in o.moves { groups[g].moves[k, default: 0] += v }
            for (k, list) in o.samples {
                let room = sampleLimit - groups[g].samples[k, default: []].count
                if room > 0 { groups[g].samples[k, default: []] += list.prefix(room) }
            }
        }
    }
}

/// Events applied, counted under the segment each contact was in at the event's instant: per
/// group, per segment (or none), per event type. For live per-segment engagement (which
/// segments still engage, and with what), as `segmentd report --events` computes offline.
///
/// "At the event's instant" means after the boundaries before the event fired (rule 3) and
/// before the event itself is applied: the segment the event found the contact in. A late
/// event is counted under the segment at the contact's clock, where it is evaluated. A new
/// contact is counted under no segment.
///
/// Counters are plain integers in one block, `(group base + segment + 1) * types + type`
/// (segment −1: none), so counting costs a few instructions per group and event; off by
/// default (the daemon turns it on, replay does not need it).
public struct EngagementCounts: Sendable {
    /// Per group, the index of its first counter row (its "none" row).
    let groupBase: [Int]
    public let typeCount: Int
    public private(set) var counts: [Int]

    init(model: Model) {
        var base: [Int] = []
        var rows = 0
        for g in model.groups {
            base.append(rows)
            rows += g.segments.count + 1
        }
        groupBase = base
        typeCount = model.eventTypes.count
        counts = Array(repeating: 0, count: rows * typeCount)
    }

    /// The count of events of `type` applied while the contact was in `segment` of `group`
    /// (nil: in none of the group's segments).
    public func count(group: Int, segment: Int?, type: Int) -> Int {
        counts[index(group: group, segment: segment, type: type)]
    }

    /// Where the count of (group, segment or nil, type) is in `counts`.
    func index(group: Int, segment: Int?, type: Int) -> Int {
        (groupBase[group] + (segment ?? -1) + 1) * typeCount + type
    }

    /// What the count at `index` of `counts` counts: (group, segment or nil, type).
    public func labels(of index: Int) -> (group: Int, segment: Int?, type: Int) {
        let row = index / typeCount
        let g = groupBase.lastIndex { $0 <= row }!
        let r = row - groupBase[g]
        return (g, r == 0 ? nil : r - 1, index % typeCount)
    }

    /// Counts one event of `type` for a contact whose current segments are `members` (8 bits
    /// per group, 0: none).
    @inline(__always)
    mutating func add(members: UInt64, type: UInt8) {
        counts.withUnsafeMutableBufferPointer { c in
            for (g, base) in groupBase.enumerated() {
                let row = base + Int((members >> UInt64(g * 8)) & 0xFF)
                c[row * typeCount + Int(type)] += 1
            }
        }
    }
}

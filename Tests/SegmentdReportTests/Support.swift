import Foundation
import SegmentdEngine
@testable import SegmentdReport

/// One transition line as `replay` writes it.
func transitionLine(
    _ contact: String, _ group: String, _ from: String?, _ to: String?, _ at: String,
    id: String? = nil, kind: String = "event", version: String = "v1"
) -> String {
    func json(_ s: String?) -> String { s.map { "\"\($0)\"" } ?? "null" }
    let identity = id ?? "\(contact)-\(group)-\(at)"
    return #"{"specversion":"1.0","type":"segment.transition","source":"segmentd/\#(group)","id":"\#(identity)","time":"\#(at)","subject":"\#(contact)","datacontenttype":"application/json","data":{"contact_id":"\#(contact)","group":"\#(group)","from":\#(json(from)),"to":\#(json(to)),"at":"\#(at)","cause":{"kind":"\#(kind)"},"model_version":"\#(version)"}}"#
}

/// The hand-made catalog of the tests: lifecycle a, b, c and tier hot, cold.
let handCatalog = SegmentCatalog(
    groups: [.init(name: "lifecycle", segments: ["a", "b", "c"]), .init(name: "tier", segments: ["hot", "cold"])],
    origin: "the test model", modelVersion: "v1")

/// The hand-made transitions (docs/report.md works them through):
/// c1 enters a, moves to b, leaves b for no segment; c2 enters a and stays; c3 enters b and
/// moves to a. In tier, c1 goes cold then hot, c2 cold; c3 has no tier transition.
let handLines: [String] = [
    transitionLine("c1", "lifecycle", nil, "a", "2026-03-02T10:00:00.000Z"),
    transitionLine("c1", "tier", nil, "cold", "2026-03-02T10:00:00.000Z"),
    transitionLine("c2", "lifecycle", nil, "a", "2026-03-02T12:00:00.000Z"),
    transitionLine("c2", "tier", nil, "cold", "2026-03-02T12:00:00.000Z"),
    transitionLine("c3", "lifecycle", nil, "b", "2026-03-03T00:00:00.000Z"),
    transitionLine("c1", "lifecycle", "a", "b", "2026-03-04T10:00:00.000Z", kind: "time"),
    transitionLine("c3", "lifecycle", "b", "a", "2026-03-05T00:00:00.000Z"),
    transitionLine("c1", "tier", "cold", "hot", "2026-03-06T00:00:00.000Z"),
    transitionLine("c1", "lifecycle", "b", nil, "2026-03-10T10:00:00.000Z", kind: "time"),
]

func build(_ lines: [String], _ options: ReportOptions) -> SegmentReport {
    let builder = ReportBuilder(options: options)
    for (i, line) in lines.enumerated() where !line.isEmpty {
        builder.add(line: Data(line.utf8), lineNumber: i + 1)
    }
    return builder.finish()
}

func ms(_ rfc3339: String) -> Millis { EventTime.parseRFC3339(rfc3339)! }

let day: Int64 = 86_400_000
let hour: Int64 = 3_600_000

extension SegmentReport {
    func group(_ name: String) -> GroupFigures { groups.first { $0.name == name }! }
}

extension GroupFigures {
    func segment(_ name: String) -> SegmentFigures { segments.first { $0.name == name }! }
    func flow(_ from: String?, _ to: String?) -> Int { flows.first { $0.from == from && $0.to == to }?.count ?? 0 }
}

import Foundation
import Testing
@testable import SegmentdEngine

/// A transition reduced to the fields the contract pins down (the conformance checker's tuple).
struct T: Equatable, CustomStringConvertible {
    var contact: String
    var group: String
    var from: String?
    var to: String?
    var at: String
    var kind: String
    var eventId: String?
    var eventType: String?

    var description: String {
        "\(contact) \(group) \(from ?? "null")->\(to ?? "null") @\(at) \(kind)\(eventId.map { " " + $0 } ?? "")\(eventType.map { "/" + $0 } ?? "")"
    }
}

/// Runs records through a fresh pipeline, like `segmentd replay`.
func replay(_ lines: [String], model: Model = .defaultModel(), lateness: Millis = 0, until: String? = nil) -> [T] {
    let p = Pipeline(model: model, lateness: lateness)
    var out: [Transition] = []
    for l in lines {
        _ = p.process(Array(l.utf8))
        out += p.engine.takeTransitions()
    }
    if let until { p.engine.advanceWatermark(to: EventTime.parseRFC3339(until)!) }
    out += p.engine.takeTransitions()
    return out.map { tr in
        var kind = "time", eid: String? = nil, et: String? = nil
        switch tr.cause {
        case let .event(id, type): kind = "event"; eid = id; et = model.eventTypes[Int(type)]
        case .time: kind = "time"
        case .model: kind = "model"
        }
        return T(contact: String(decoding: tr.contactId, as: UTF8.self), group: model.groups[tr.group].name,
                 from: tr.from.map { model.groups[tr.group].segments[$0].name },
                 to: tr.to.map { model.groups[tr.group].segments[$0].name },
                 at: EventTime.format(tr.at), kind: kind, eventId: eid, eventType: et)
    }
}

/// A native event line.
func ev(_ contact: String, _ type: String, _ ts: String, id: String? = nil, props: String? = nil) -> String {
    var s = #"{"contact_id": "\#(contact)", "type": "\#(type)", "ts": "\#(ts)""#
    if let id { s += #", "event_id": "\#(id)""# }
    if let props { s += #", "props": \#(props)"# }
    return s + "}"
}

/// Transitions of one contact and group, as compact strings `from->to@at/kind`.
func path(_ ts: [T], _ contact: String, _ group: String) -> [String] {
    ts.filter { $0.contact == contact && $0.group == group }.map { "\($0.from ?? "null")->\($0.to ?? "null")@\($0.at)/\($0.kind)" }
}

/// The repository's root, found from this file's path.
let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// The public conformance suite: `$SEGMENTD_CONFORMANCE_DIR`, or `shared/conformance` beside
/// the repository (where CI puts it).
let conformanceDir: URL = {
    if let d = ProcessInfo.processInfo.environment["SEGMENTD_CONFORMANCE_DIR"] { return URL(fileURLWithPath: d) }
    return repoRoot.deletingLastPathComponent().appendingPathComponent("shared/conformance")
}()

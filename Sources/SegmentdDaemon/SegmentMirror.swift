import SegmentdEngine

/// Transitions as Segment Spec track calls (`Audience Exited` for the segment left,
/// `Audience Entered` for the one entered), for pipelines that already speak Segment: they can
/// route these to any destination a CDP supports. `messageId` derives from the transition id,
/// so redeliveries de-duplicate downstream too.
enum SegmentMirror {
    static func calls(_ t: Transition, _ encoder: TransitionEncoder) -> [[UInt8]] {
        let model = encoder.model
        let group = model.groups[t.group].name
        let id = encoder.id(of: t)
        let user = String(decoding: t.contactId, as: UTF8.self)
        let cause: String
        switch t.cause {
        case .event: cause = "event"
        case .time: cause = "time"
        case .model: cause = "model"
        }
        var out: [[UInt8]] = []
        func call(_ event: String, _ segment: String, _ suffix: String, other: String?) -> [UInt8] {
            var b: [UInt8] = []
            b.append(contentsOf: #"{"type":"track","event":"\#(event)","userId":"#.utf8)
            JSONWriter.string(user, to: &b)
            b.append(contentsOf: #","messageId":"\#(id)-\#(suffix)","timestamp":""#.utf8)
            EventTime.append(t.at, to: &b)
            b.append(contentsOf: #"","properties":{"audience_key":"#.utf8)
            JSONWriter.string("\(group).\(segment)", to: &b)
            b.append(contentsOf: #","group":"#.utf8)
            JSONWriter.string(group, to: &b)
            b.append(contentsOf: #","segment":"#.utf8)
            JSONWriter.string(segment, to: &b)
            b.append(contentsOf: (suffix == "exited" ? #","next_segment":"# : #","previous_segment":"#).utf8)
            if let other { JSONWriter.string(other, to: &b) } else { b.append(contentsOf: "null".utf8) }
            b.append(contentsOf: #","cause":"\#(cause)","model_version":"#.utf8)
            JSONWriter.string(model.version, to: &b)
            b.append(contentsOf: #"},"context":{"library":{"name":"segmentd"}}}"#.utf8)
            return b
        }
        let from = encoder.segmentName(group: t.group, t.from)
        let to = encoder.segmentName(group: t.group, t.to)
        if let from { out.append(call("Audience Exited", from, "exited", other: to)) }
        if let to { out.append(call("Audience Entered", to, "entered", other: from)) }
        return out
    }
}

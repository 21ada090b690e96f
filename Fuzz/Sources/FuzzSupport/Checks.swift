import Foundation
import SegmentdEngine

/// Re-parses bytes with Foundation's JSONSerialization (an independent parser): the object, or
/// nil when Foundation refuses them.
public func foundationObject(_ bytes: [UInt8]) -> [String: Any]? {
    guard let o = try? JSONSerialization.jsonObject(with: Data(bytes), options: []) else { return nil }
    return o as? [String: Any]
}

/// Checks every transition a pipeline emits, as it is encoded for Kafka:
/// - the CloudEvents document and the binary-mode `data` are valid JSON (Foundation re-parses
///   them) with exactly the values of the transition (names, contact id, times, cause);
/// - `from != to`; `at` is a valid instant in the years 0000-9999 and round-trips through
///   RFC 3339;
/// - per contact, `at` never decreases; per contact and group, each `from` is the previous `to`
///   (nil before the first), so the output stream tells a consistent story;
/// - at the end, the engine's memberships are the last `to` of each group.
public struct TransitionChecker {
    public private(set) var encoder: TransitionEncoder
    var lastAt: [[UInt8]: Millis] = [:]
    var current: [[UInt8]: [Int?]] = [:]
    public private(set) var count = 0
    var out: [UInt8] = []

    public init(encoder: TransitionEncoder) { self.encoder = encoder }

    /// A contact whose state was restored (from a snapshot): its story starts in `memberships`.
    public mutating func start(contact: [UInt8], memberships: [Int?]) {
        current[contact] = memberships
    }

    /// After `Pipeline.migrate(to:)`: the engine carries each contact's segments over by group
    /// and segment name (a group or segment the new model lacks is no segment), so the story
    /// goes on from there under the new model's indices.
    public mutating func migrate(to next: TransitionEncoder) {
        let old = encoder.model, new = next.model
        for (contact, groups) in current {
            var moved = [Int?](repeating: nil, count: new.groups.count)
            for (g, group) in new.groups.enumerated() {
                guard let og = old.groups.firstIndex(where: { $0.name == group.name }), let s = groups[og] else { continue }
                moved[g] = group.segments.firstIndex { $0.name == old.groups[og].segments[s].name }
            }
            current[contact] = moved
        }
        encoder = next
    }

    public mutating func check(_ transitions: [Transition]) {
        for t in transitions { check(t) }
    }

    /// The transitions of a model change: caused by it (`cause.kind = model`, with the version
    /// before) at the contact's clock, or by time (boundaries of the new model between the
    /// contact's clock and the watermark fire at their instants); never by an event.
    public mutating func checkModelChange(_ transitions: [Transition], previousVersion: String) {
        for t in transitions {
            switch t.cause {
            case .model(let v) where v == previousVersion: break
            case .time: break
            default: violated("transition of \(text(t.contactId)) after a model change from '\(previousVersion)' has cause \(t.cause)")
            }
            check(t)
        }
    }

    /// Transitions outside a model change never claim one as their cause.
    public mutating func checkNoModelCause(_ transitions: [Transition]) {
        for t in transitions {
            if case .model = t.cause { violated("transition of \(text(t.contactId)) caused by a model change, without one") }
            check(t)
        }
    }

    public mutating func check(_ t: Transition) {
        count += 1
        let model = encoder.model
        let who = text(t.contactId)
        guard t.group >= 0, t.group < model.groups.count else { violated("transition of \(who) in group \(t.group) of \(model.groups.count)") }
        let g = model.groups[t.group]
        if let f = t.from, f < 0 || f >= g.segments.count { violated("from \(f) out of range in group \(g.name)") }
        if let s = t.to, s < 0 || s >= g.segments.count { violated("to \(s) out of range in group \(g.name)") }
        guard t.from != t.to else { violated("transition of \(who) in \(g.name) from \(String(describing: t.from)) to the same segment at \(t.at)") }
        guard EventTime.isInRange(t.at) else { violated("transition of \(who) in \(g.name) at \(t.at), outside the years 0000-9999") }
        let atText = EventTime.format(t.at)
        guard EventTime.parseRFC3339(atText) == t.at else { violated("at \(t.at) formats as \(atText), which does not parse back") }

        // Order and consistency per contact.
        if let prev = lastAt[t.contactId], t.at < prev {
            violated("transition of \(who) in \(g.name) at \(EventTime.format(t.at)) after one at \(EventTime.format(prev))")
        }
        lastAt[t.contactId] = t.at
        var groups = current[t.contactId] ?? [Int?](repeating: nil, count: model.groups.count)
        guard groups[t.group] == t.from else {
            violated("transition of \(who) in \(g.name) from \(String(describing: t.from)) but the last transition left it in \(String(describing: groups[t.group]))")
        }
        groups[t.group] = t.to
        current[t.contactId] = groups

        // The structured-mode document.
        out.removeAll(keepingCapacity: true)
        encoder.encode(t, to: &out)
        guard let doc = foundationObject(out) else { violated("encoded transition is not a JSON object for Foundation: \(text(out))") }
        func field(_ o: [String: Any], _ k: String) -> String? { o[k] as? String }
        let contact = String(decoding: t.contactId, as: UTF8.self)
        let id = encoder.id(of: t)
        guard field(doc, "specversion") == "1.0", field(doc, "type") == "segment.transition",
              field(doc, "source") == "segmentd/" + g.name, field(doc, "id") == id,
              field(doc, "time") == atText, field(doc, "subject") == contact,
              field(doc, "datacontenttype") == "application/json",
              let data = doc["data"] as? [String: Any]
        else { violated("encoded transition has wrong attributes: \(text(out))") }
        checkData(data, t, contact: contact, atText: atText, raw: out)

        // Binary mode: the data object alone, and the headers.
        out.removeAll(keepingCapacity: true)
        encoder.encodeData(t, to: &out)
        guard let data2 = foundationObject(out) else { violated("encoded transition data is not a JSON object for Foundation: \(text(out))") }
        checkData(data2, t, contact: contact, atText: atText, raw: out)
        let headers = encoder.binaryHeaders(t)
        guard headers.first(where: { $0.0 == "ce_id" })?.1 == Array(id.utf8),
              headers.first(where: { $0.0 == "ce_time" })?.1 == Array(atText.utf8),
              headers.first(where: { $0.0 == "ce_subject" })?.1 == t.contactId
        else { violated("binary headers disagree with the transition of \(who)") }
    }

    private func checkData(_ data: [String: Any], _ t: Transition, contact: String, atText: String, raw: [UInt8]) {
        let g = encoder.model.groups[t.group]
        func name(_ s: Int?) -> Any { s.map { g.segments[$0].name as Any } ?? NSNull() }
        func same(_ a: Any?, _ b: Any) -> Bool {
            if b is NSNull { return a is NSNull }
            return (a as? String) == (b as? String)
        }
        guard data["contact_id"] as? String == contact, data["group"] as? String == g.name,
              same(data["from"], name(t.from)), same(data["to"], name(t.to)),
              data["at"] as? String == atText, data["model_version"] as? String == encoder.model.version,
              let cause = data["cause"] as? [String: Any]
        else { violated("encoded data disagrees with the transition: \(text(raw))") }
        switch t.cause {
        case .time:
            guard cause["kind"] as? String == "time", cause.count == 1 else { violated("cause of a time transition: \(text(raw))") }
        case let .model(previousVersion):
            guard cause["kind"] as? String == "model", cause["previous_model_version"] as? String == previousVersion, cause.count == 2 else {
                violated("cause of a model-change transition: \(text(raw))")
            }
        case let .event(eventId, type):
            guard Int(type) < encoder.model.eventTypes.count, cause["kind"] as? String == "event",
                  cause["event_type"] as? String == encoder.model.eventTypes[Int(type)],
                  cause["event_id"] as? String == eventId
            else { violated("cause of an event transition: \(text(raw))") }
        }
    }

    /// End-of-input checks against the engine: memberships equal the last `to` of each group.
    public func checkMemberships(_ engine: SegmentEngine) {
        for (contact, groups) in current {
            guard let m = engine.memberships(of: contact) else { violated("contact \(text(contact)) had transitions but is unknown to the engine") }
            guard m == groups else { violated("contact \(text(contact)): engine memberships \(m), transitions say \(groups)") }
        }
    }
}

/// Moves the watermark a long way past the stream time (clamped to 9999-12-31T23:59:59.999Z),
/// as `replay --until` does, so every boundary in reach fires.
public func advanceToEnd(_ engine: SegmentEngine, by: Millis = 400 * 86_400_000) {
    let st = engine.streamTime
    guard st != .min else { return }
    guard EventTime.isInRange(st) else { violated("stream time \(st) outside the years 0000-9999") }
    engine.advanceWatermark(to: min(st + by, Millis.latestEventTime))
}

/// Snapshots (the changelog's bytes) restore exactly: restoring a contact's snapshot over itself
/// gives the same snapshot, and into a fresh engine gives the same memberships, clock and next
/// boundary. Checks the first `limit` contacts.
public func checkSnapshots(_ engine: SegmentEngine, limit: Int = 32) {
    let n = min(engine.contactCount, limit)
    guard n > 0 else { return }
    let fresh = SegmentEngine(model: engine.model, lateness: engine.lateness, duplicateHorizon: engine.duplicateHorizon)
    for i in 0..<n {
        let id = engine.contactId(at: i)
        let snap = engine.snapshot(contact: i)
        let before = (engine.memberships(of: id), engine.clock(of: id))
        do {
            try fresh.restore(contactId: id, snapshot: snap)
        } catch {
            violated("snapshot of \(text(id)) does not restore into a fresh engine: \(error)")
        }
        let after = (fresh.memberships(of: id), fresh.clock(of: id))
        guard before.0 == after.0, before.1?.clock == after.1?.clock, before.1?.next == after.1?.next else {
            violated("snapshot of \(text(id)) restores to memberships \(String(describing: after.0)) clock \(String(describing: after.1)), was \(String(describing: before.0)) \(String(describing: before.1))")
        }
        do {
            try engine.restore(contactId: id, snapshot: snap)
        } catch {
            violated("snapshot of \(text(id)) does not restore over itself: \(error)")
        }
        guard engine.snapshot(contact: i) == snap else { violated("snapshot of \(text(id)) changes when restored over itself") }
    }
}

import Foundation
import Testing
@testable import SegmentdEngine

/// Hostile input (issue: hardening): extreme times, far-future clocks, costly models, corrupt
/// snapshots. Every reproducer found against the earlier engine is a test here.
@Suite("Hardening: hostile input")
struct HardeningTests {
    /// The outcome of each line, through a fresh pipeline.
    func outcomes(_ lines: [String], futureGuard: FutureGuard? = nil) -> (Pipeline, [RecordOutcome]) {
        let p = Pipeline(model: .defaultModel())
        p.futureGuard = futureGuard
        let out = lines.map { p.process(Array($0.utf8)) }
        return (p, out)
    }

    func reason(_ o: RecordOutcome) -> String? {
        if case let .bad(e) = o { return e.reason.rawValue }
        return nil
    }

    static let extremeRecords: [String] = [
        #"{"contact_id":"c","type":"email_open","ts":9223372036854775807}"#,
        #"{"contact_id":"c","type":"email_open","ts":-9223372036854775807}"#,
        #"{"contact_id":"c","type":"email_open","ts":-9223372036854775808}"#,
        #"{"contact_id":"c","type":"unsubscribed","ts":9223372036854775807}"#,
        #"{"contact_id":"c","type":"unsubscribed","ts":-9223372036854775807}"#,
        #"{"contact_id":"c","type":"unsubscribed","ts":-9223372036854775807,"event_id":"x1"}"#,
        #"{"contact_id":"c","type":"traits","ts":9223372036854775807,"props":{"industry":"saas"}}"#,
        #"{"contact_id":"c","type":"traits","ts":-9223372036854775807,"props":{"industry":"saas"}}"#,
        #"{"contact_id":"c","type":"crm_stage","ts":9223372036854775807,"props":{"stage":"customer"}}"#,
        #"{"contact_id":"c","type":"crm_stage","ts":-9223372036854775807,"props":{"stage":"customer"}}"#,
        #"{"contact_id":"c","type":"email_open","ts":1e300}"#,
        #"{"contact_id":"c","type":"email_open","ts":-1e300}"#,
        #"{"contact_id":"c","type":"email_open","ts":9.3e18}"#,
        #"{"type":"track","event":"Email Opened","userId":"c","timestamp":9223372036854775807}"#,
    ]

    @Test("times near the Int64 limits are bad (invalid_time), in both shapes, and change nothing", arguments: extremeRecords)
    func extremeTimes(_ record: String) {
        let pricing = ev("c", "page_view", "2026-03-02T09:00:00.000Z", id: "p1", props: #"{"path": "/pricing"}"#)
        let (p, out) = outcomes([record, pricing])
        #expect(reason(out[0]) == "invalid_time")
        #expect(out[1] == .applied)
        let transitions = p.engine.takeTransitions()
        let life = transitions.filter { $0.group == 0 }
        #expect(life.count == 1)
        #expect(life.first?.to == 3)  // active_evaluator
        #expect(life.first?.at == EventTime.parseRFC3339("2026-03-02T09:00:00.000Z"))
    }

    @Test("a later record with an event id after an extreme negative time works normally")
    func eventIdAfterNegativeTime() {
        let (p, out) = outcomes([
            #"{"contact_id":"c","type":"unsubscribed","ts":-9223372036854775807,"event_id":"u1"}"#,
            ev("c", "page_view", "2026-03-02T09:00:00.000Z", id: "p1", props: #"{"path": "/pricing"}"#),
            ev("c", "page_view", "2026-03-02T09:00:00.000Z", id: "p1", props: #"{"path": "/pricing"}"#),
        ])
        #expect(out == [out[0], .applied, .duplicate])
        #expect(p.engine.takeTransitions().contains { $0.group == 0 && $0.to == 3 })
    }

    @Test("the edges of the time range: years 0000 to 9999 in UTC, to the millisecond")
    func rangeEdges() {
        let cases: [(String, Bool)] = [
            ("-62167219200000", true), ("-62167219200001", false),
            ("253402300799999", true), ("253402300800000", false),
            ("253402300799999.9", true), ("253402300800000.5", false),
            (#""0000-01-01T00:00:00.000Z""#, true), (#""0000-01-01T00:30:00+01:00""#, false),
            (#""9999-12-31T23:59:59.999Z""#, true), (#""9999-12-31T23:59:59.999-00:01""#, false),
            (#""9999-12-31T23:00:00+01:00""#, true),
        ]
        for (ts, ok) in cases {
            let (_, out) = outcomes([#"{"contact_id":"c","type":"email_open","ts":\#(ts)}"#])
            #expect((out[0] == .applied) == ok, "ts \(ts)")
            if !ok { #expect(reason(out[0]) == "invalid_time", "ts \(ts)") }
        }
    }

    static let years = ["2026", "6000", "6430", "9999", "0001"]

    @Test("scores are exact in every year: identify then two /pricing views reach sales_ready", arguments: years)
    func salesReadyInAnyYear(_ year: String) {
        let t0 = "\(year)-06-01T10:00:00.000Z"
        let out = replay([
            #"{"type":"identify","userId":"c","timestamp":"\#(t0)","traits":{"industry":"software","company_size":200,"country":"US"}}"#,
            ev("c", "page_view", "\(year)-06-01T10:01:00.000Z", props: #"{"path": "/pricing"}"#),
            ev("c", "page_view", "\(year)-06-01T10:02:00.000Z", props: #"{"path": "/pricing/teams"}"#),
        ], until: "\(year)-08-01T00:00:00.000Z")
        #expect(path(out, "c", "lead_score") == [
            "null->nurture@\(t0)/event",
            "nurture->sales_ready@\(year)-06-01T10:02:00.000Z/event",
            "sales_ready->nurture@\(year)-07-01T10:01:00.000Z/time",
        ])
        #expect(path(out, "c", "hot_lead") == [
            "null->hot_lead@\(year)-06-01T10:02:00.000Z/event",
            "hot_lead->null@\(year)-06-08T10:01:00.000Z/time",
        ])
    }

    @Test("a far-future event is bad against the guard and moves neither stream time nor watermark")
    func futureGuard() {
        let now = EventTime.parseRFC3339("2026-03-02T12:00:00.000Z")!
        let guardrail = FutureGuard(now: now, allowance: 3_600_000)
        let (p, out) = outcomes([
            ev("a", "email_open", "2026-03-02T09:00:00.000Z"),
            ev("b", "email_open", "9999-12-31T23:59:59.000Z"),
            ev("b", "email_open", "2026-03-02T13:00:00.001Z"),
            ev("b", "email_open", "2026-03-02T13:00:00.000Z"),
            ev("n", "page_view", "2026-03-02T10:00:00.000Z", props: #"{"path": "/pricing"}"#),
        ], futureGuard: guardrail)
        #expect(reason(out[1]) == "invalid_time")
        #expect(reason(out[2]) == "invalid_time")
        #expect(out[3] == .applied)  // exactly the allowance ahead
        if case let .bad(e) = out[1] { #expect(e.detail.contains("ahead of the clock")) }
        #expect(p.engine.streamTime == EventTime.parseRFC3339("2026-03-02T13:00:00.000Z"))
        // The new contact's pricing visit makes it an active evaluator, not inactive.
        let life = p.engine.takeTransitions().filter { $0.group == 0 && String(decoding: $0.contactId, as: UTF8.self) == "n" }
        #expect(life.map(\.to) == [3])
    }

    // MARK: models

    func modelError(_ yaml: String) -> String? {
        do { _ = try Model.load(yaml: yaml, file: "m.yaml"); return nil } catch { return "\(error)" }
    }

    func scoreModel(cap: String, points: String = "5", staticPoints: String = "10") -> String {
        """
        version: t
        filters:
          opens: {type: email_open}
        attributes:
          country: {from: traits, prop: country, kind: string}
        scores:
          s:
            parts:
              - name: p
                cap: \(cap)
                window: 30d
                terms:
                  - {points: \(staticPoints), when: {attribute: country, in: [US]}}
                per_event:
                  - {points: \(points), filter: opens}
        groups:
          - name: g
            flag: {score: s, at_least: 10}
        """
    }

    @Test("costly or overflowing score parts are refused with line, column and the bound")
    func costlyScores() {
        #expect(modelError(scoreModel(cap: "50")) == nil)
        let capTooLarge = modelError(scoreModel(cap: "9223372036854775807"))
        #expect(capTooLarge?.hasPrefix("m.yaml:10:") == true, "\(capTooLarge ?? "accepted")")
        for cap in ["4611686018427387904", "1000000000", "10001", "0", "-5"] {
            let e = modelError(scoreModel(cap: cap))
            #expect(e?.contains("cap must be between 1 and 10000") == true, "cap \(cap): \(e ?? "accepted")")
        }
        let slots = modelError(scoreModel(cap: "10000", points: "1"))
        #expect(slots?.contains("at most 64 are supported") == true, "\(slots ?? "accepted")")
        let statics = modelError(scoreModel(cap: "50", staticPoints: "9223372036854775807"))
        #expect(statics != nil)
        #expect(modelError(scoreModel(cap: "50", staticPoints: "10001"))?.contains("points must be between -10000 and 10000") == true)
        #expect(modelError(scoreModel(cap: "50", points: "70000"))?.contains("per-event points must be between 1 and 10000") == true)
    }

    @Test("a model's per-contact memory is bounded before it is used")
    func eventSlotBound() {
        var yaml = "version: t\nfilters:\n"
        for i in 0..<5 { yaml += "  f\(i): {type: page_view, prop: path, equals: /p\(i)}\n" }
        yaml += "groups:\n"
        for i in 0..<5 { yaml += "  - name: g\(i)\n    flag: {at_least: 64, of: f\(i), within: 1d}\n" }
        let e = modelError(yaml)
        #expect(e?.contains("at most 256 are supported") == true, "\(e ?? "accepted")")
        #expect(e?.hasPrefix("m.yaml:18:") == true, "\(e ?? "accepted")")
    }

    @Test("YAML aliases cannot make a small model compile an enormous tree")
    func aliasBomb() {
        var yaml = "version: t\nfilters:\n  o: {type: email_open}\nconditions:\n  c0: &c0 {at_least: 1, of: o, within: 1d}\n"
        for i in 1...12 { yaml += "  c\(i): &c\(i) {all: [*c\(i - 1), *c\(i - 1), *c\(i - 1), *c\(i - 1)]}\n" }
        yaml += "groups:\n  - name: g\n    flag: c12\n"
        let e = modelError(yaml)
        #expect(e?.contains("the model is too large") == true, "\(e ?? "accepted")")
    }

    @Test("durations are bounded: a window longer than the range of event times is refused")
    func longDurations() {
        #expect(DurationSpec(parsing: "3650000d") != nil)
        #expect(DurationSpec(parsing: "3660000d") == nil)
        #expect(DurationSpec(parsing: "9223372036854775807ms") == nil)
        let e = modelError("version: t\nfilters:\n  o: {type: email_open}\ngroups:\n  - name: g\n    flag: {at_least: 1, of: o, within: 106751991167d}\n")
        #expect(e?.hasPrefix("m.yaml:6:") == true, "\(e ?? "accepted")")
    }

    // MARK: snapshots and model changes

    func engineWithHistory() -> Pipeline {
        let p = Pipeline(model: .defaultModel())
        for l in [
            ev("c", "subscribed", "2026-06-01T09:00:00.000Z"),
            #"{"type":"identify","userId":"c","timestamp":"2026-06-01T10:00:00.000Z","traits":{"industry":"software","company_size":200,"country":"US"}}"#,
            ev("c", "page_view", "2026-06-01T10:01:00.000Z", id: "p1", props: #"{"path": "/pricing"}"#),
            ev("c", "email_open", "2026-06-02T10:00:00.000Z", id: "o1"),
            ev("c", "resource_download", "2026-06-03T10:00:00.000Z", id: "r1"),
        ] { _ = p.process(Array(l.utf8)) }
        _ = p.engine.takeTransitions()
        return p
    }

    @Test("snapshots round-trip in the compact format 4, and formats 2 (8 bytes per word) and 1 (16-bit points) are still read")
    func snapshotFormats() throws {
        let source = engineWithHistory()
        let idx = source.engine.contacts.find(Array("c".utf8))!
        let snap = source.engine.snapshot(contact: idx)
        let format2 = source.engine.snapshot(contact: idx, format: 2)
        #expect(snap.count * 2 < format2.count, "compact \(snap.count) bytes, format 2 \(format2.count)")
        // Format 1: no marker, scored events as ts << 16 | points.
        var legacy = Array(format2.dropFirst(8))
        let layout = source.engine.layout
        let headerBytes = 8 + 8 + source.engine.model.version.utf8.count + 8
        for l in layout.scoreLists {
            for k in 0..<l.capacity {
                let at = headerBytes - 8 + 8 * (l.logicalOffset + k)
                let v = legacy[at..<(at + 8)].withUnsafeBytes { $0.loadUnaligned(as: Int64.self) }
                guard v != SegmentEngine.none else { continue }
                let old = ScoredEvent.ts(v) << 16 | ScoredEvent.points(v)
                withUnsafeBytes(of: old) { legacy.replaceSubrange(at..<(at + 8), with: $0) }
            }
        }
        let at = EventTime.parseRFC3339("2026-06-20T00:00:00.000Z")!
        let expected = source.engine.explain(Array("c".utf8), at: at)!.groups.map(\.reasons)
        for s in [snap, format2, legacy] {
            let target = Pipeline(model: .defaultModel())
            try target.engine.restore(contactId: Array("c".utf8), snapshot: s)
            #expect(target.engine.explain(Array("c".utf8), at: at)!.groups.map(\.reasons) == expected)
            #expect(target.engine.snapshot(contact: 0) == snap)
            #expect(target.engine.snapshot(contact: 0, format: 2) == format2)
        }
        // A list is kept from its first place: one with an entry after an empty place (format
        // 2 writes 8 bytes a slot) is refused, and the engine is left as it was.
        let list = layout.lists.first { $0.capacity >= 2 }!
        let held = EventTime.parseRFC3339("2026-06-02T00:00:00.000Z")!  // before the newest event
        var hole = format2
        let first = headerBytes + 8 * list.logicalOffset
        withUnsafeBytes(of: SegmentEngine.none.littleEndian) { hole.replaceSubrange(first..<(first + 8), with: $0) }
        withUnsafeBytes(of: held.littleEndian) { hole.replaceSubrange((first + 8)..<(first + 16), with: $0) }
        let target = Pipeline(model: .defaultModel())
        #expect(throws: SegmentEngine.SnapshotError.self) { try target.engine.restore(contactId: Array("c".utf8), snapshot: hole) }
        #expect(target.engine.contactCount == 0)
        // So is one whose second entry is newer than its first (lists are newest first).
        var unordered = format2
        withUnsafeBytes(of: (held - 1).littleEndian) { unordered.replaceSubrange(first..<(first + 8), with: $0) }
        withUnsafeBytes(of: held.littleEndian) { unordered.replaceSubrange((first + 8)..<(first + 16), with: $0) }
        #expect(throws: SegmentEngine.SnapshotError.self) { try target.engine.restore(contactId: Array("c".utf8), snapshot: unordered) }
        #expect(target.engine.contactCount == 0)
        withUnsafeBytes(of: held.littleEndian) { hole.replaceSubrange(first..<(first + 8), with: $0) }
        try target.engine.restore(contactId: Array("c".utf8), snapshot: hole)
        #expect(target.engine.contactCount == 1)
    }

    @Test("a snapshot carries its writer's tag, which restore ignores")
    func snapshotTags() throws {
        let source = engineWithHistory()
        let tag: [UInt8] = [7, 0, 255, 1]
        let tagged = tag.withUnsafeBytes { source.engine.snapshot(contact: 0, tag: $0) }
        #expect(tagged.withUnsafeBytes { SegmentEngine.snapshotTag(of: $0).map(Array.init) } == tag)
        #expect(source.engine.snapshot(contact: 0).withUnsafeBytes { SegmentEngine.snapshotTag(of: $0).map(Array.init) } == [])
        #expect(source.engine.snapshot(contact: 0, format: 2).withUnsafeBytes { SegmentEngine.snapshotTag(of: $0) } == nil)
        let target = Pipeline(model: .defaultModel())
        try target.engine.restore(contactId: Array("c".utf8), snapshot: tagged)
        #expect(target.engine.snapshot(contact: 0) == source.engine.snapshot(contact: 0))
    }

    @Test("a truncated or corrupt snapshot is refused and changes nothing")
    func corruptSnapshots() {
        let source = engineWithHistory()
        let snap = source.engine.snapshot(contact: 0, format: 2)
        let compact = source.engine.snapshot(contact: 0)
        let target = engineWithHistory()
        let before = target.engine.snapshot(contact: 0)
        var corrupt: [[UInt8]] = (0..<snap.count).map { Array(snap.prefix($0)) } + (0..<compact.count).map { Array(compact.prefix($0)) }
        var badTime = snap
        badTime.replaceSubrange((snap.count - 16)..<(snap.count - 8), with: [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F])
        corrupt.append(badTime)
        var hugeCount = snap
        hugeCount.replaceSubrange((snap.count - 8)..<snap.count, with: [0, 0, 0, 0, 0, 0, 0, 0x80])
        corrupt.append(hugeCount)
        // Compact: the last count (same-instant counts) past 64 bits, or larger than the groups.
        corrupt.append(Array(compact.dropLast()) + [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F])
        corrupt.append(Array(compact.dropLast()) + [0x7F])
        for s in corrupt {
            #expect(throws: SegmentEngine.SnapshotError.self) { try target.engine.restore(contactId: Array("c".utf8), snapshot: s) }
        }
        #expect(target.engine.snapshot(contact: 0) == before)
    }

    @Test("a snapshot naming what the model does not have, or holding an impossible instant, is refused")
    func impossibleSnapshots() {
        let source = engineWithHistory()
        let engine = source.engine
        // Format 2, whose words sit at fixed places (its checks are those of every format).
        let snap = engine.snapshot(contact: 0, format: 2)
        let slotsAt = 8 + 8 + engine.model.version.utf8.count + 8
        func with(slot: Int, _ value: Int64) -> [UInt8] {
            var s = snap
            withUnsafeBytes(of: value.littleEndian) { s.replaceSubrange((slotsAt + 8 * slot)..<(slotsAt + 8 * slot + 8), with: $0) }
            return s
        }
        var marker = snap
        withUnsafeBytes(of: Int64.min.littleEndian) { marker.replaceSubrange(0..<8, with: $0) }
        // The pairs follow the slots: the first is the suppression tracker's (ts, tag).
        // (Format 2 ends its row with the two id pairs of formats 1 to 3.)
        let pairsAt = slotsAt + 8 * (engine.layout.logicalDedupOffset + StateLayout.legacyDedupSlots)
        var tag = snap
        withUnsafeBytes(of: Int64(9).littleEndian) { tag.replaceSubrange((pairsAt + 8)..<(pairsAt + 16), with: $0) }
        let bad: [(String, [UInt8])] = [
            ("format marker Int64.min", marker),
            ("last transition far in the future", with(slot: StateLayout.lastTransition, 71_777_894_440_817_280)),
            ("cursor before the year 0000", with(slot: StateLayout.cursor, -72_000_000_000_000)),
            ("lifecycle segment 16 of 6", with(slot: StateLayout.members, 16)),
            ("a segment in a fifth group", with(slot: StateLayout.members, 1 << 32)),
            ("latest-of tag 9 of 4", tag),
            ("no applied event (newest time none)", with(slot: StateLayout.maxTs, Int64.min)),
            ("no first time", with(slot: StateLayout.firstSeen, Int64.min)),
            ("never evaluated (cursor none)", with(slot: StateLayout.cursor, Int64.min)),
            ("first seen after the newest event", with(slot: StateLayout.firstSeen, EventTime.parseRFC3339("2027-01-01T00:00:00Z")!)),
            ("a list time after the newest event", with(slot: engine.layout.lists[0].logicalOffset, EventTime.parseRFC3339("2027-01-01T00:00:00Z")!)),
        ]
        let target = engineWithHistory()
        let before = target.engine.snapshot(contact: 0)
        for (what, s) in bad {
            #expect(throws: SegmentEngine.SnapshotError.self, "\(what)") { try target.engine.restore(contactId: Array("c".utf8), snapshot: s) }
        }
        #expect(target.engine.snapshot(contact: 0) == before)
        #expect(throws: Never.self) { try target.engine.restore(contactId: Array("c".utf8), snapshot: snap) }
    }

    @Test("a model change re-evaluates every contact with cause model, naming the previous version")
    func modelCause() throws {
        let p = engineWithHistory()
        var yaml = DefaultModel.yaml.replacingOccurrences(of: "version: default-1", with: "version: stricter")
        yaml = yaml.replacingOccurrences(of: "{name: sales_ready, when: {score: lead_score, at_least: 80}}",
                                         with: "{name: sales_ready, when: {score: lead_score, at_least: 95}}")
        p.migrate(to: try Model.load(yaml: yaml, file: "stricter.yaml"))
        let moved = p.engine.takeTransitions()
        #expect(moved.count == 1)
        #expect(moved.first?.cause == .model(previousVersion: "default-1"))
        let json = String(decoding: p.encoder.encode(moved[0]), as: UTF8.self)
        #expect(json.contains(#""cause":{"kind":"model","previous_model_version":"default-1"}"#))
    }
}

import Foundation
import Testing
@testable import SegmentdEngine

/// A product-led model: two declared event types, numeric property filters, a Segment mapping
/// onto the declared types.
let declaredTypesModel = """
version: plg-test-1
types:
  feature_used:
    props: {minutes: number, feature: string, beta: boolean}
  purchase:
    props: {amount: number}
  ticket_opened: ~
filters:
  big_purchase: {type: purchase, prop: amount, at_least: 100}
  small_purchase: {type: purchase, prop: amount, at_most: 9.99}
  long_session: {type: feature_used, prop: minutes, at_least: 30}
  feature_use: {type: feature_used}
  tickets: {type: ticket_opened}
groups:
  - name: buyer
    segments:
      - {name: big, when: {at_least: 1, of: big_purchase, within: 30d}}
      - {name: small, when: {at_least: 1, of: small_purchase, within: 30d}}
  - name: usage
    segments:
      - {name: power, when: {at_least: 2, of: long_session, within: 7d}}
      - {name: casual, when: {at_least: 1, of: feature_use, within: 7d}}
  - name: support_heavy
    flag: {at_least: 2, of: tickets, within: 14d}
segment:
  track:
    Feature Used: {type: feature_used, props: {minutes: [duration_minutes, minutes]}}
    Order Completed: {type: purchase, props: {amount: [total, revenue]}}
"""

@Suite("Declared event types and numeric property filters")
struct DeclaredTypesTests {
    let model = try! Model.load(yaml: declaredTypesModel, file: "plg.yaml")

    func decode(_ line: String) -> DecodeResult {
        var decoder = EventDecoder(model: model)
        return decoder.decode(Array(line.utf8))
    }

    func reason(_ line: String) -> String {
        switch decode(line) {
        case .bad(let e): return e.reason.rawValue + ": " + e.detail
        case .ignored(let r): return "ignored:" + r.rawValue
        case .events: return "ok"
        }
    }

    /// The names of the filters an accepted record matches.
    func filters(_ line: String) -> [String] {
        guard case let .events(first, _, _) = decode(line) else { return ["not accepted: \(reason(line))"] }
        return model.filterNames.indices.filter { first.filterMask & (1 << UInt64($0)) != 0 }.map { model.filterNames[$0] ?? "#\($0)" }
    }

    @Test("declared types follow the canonical ones; the default model declares none")
    func typeIndices() {
        #expect(model.eventTypes == CanonicalTypes.all + ["feature_used", "purchase", "ticket_opened"])
        #expect(Model.defaultModel().eventTypes == CanonicalTypes.all)
        #expect(model.declaredTypes[0].props.map(\.name) == ["minutes", "feature", "beta"])
        #expect(model.declaredTypes[2].props.isEmpty)
    }

    @Test("a native record of a declared type is accepted, and its properties are checked")
    func nativeRecords() {
        let ts = #""ts": "2026-03-02T09:00:00Z""#
        #expect(reason(#"{"contact_id": "c", "type": "feature_used", \#(ts), "props": {"minutes": 12, "feature": "export", "beta": false}}"#) == "ok")
        #expect(reason(#"{"contact_id": "c", "type": "feature_used", \#(ts), "props": {"minutes": 12.5}}"#) == "ok")
        // Declared properties are optional; undeclared ones are ignored.
        #expect(reason(#"{"contact_id": "c", "type": "feature_used", \#(ts)}"#) == "ok")
        #expect(reason(#"{"contact_id": "c", "type": "feature_used", \#(ts), "props": {"minutes": null, "other": [1]}}"#) == "ok")
        #expect(reason(#"{"contact_id": "c", "type": "ticket_opened", \#(ts), "props": {"anything": "goes"}}"#) == "ok")
        #expect(reason(#"{"contact_id": "c", "type": "feature_used", \#(ts), "props": {"minutes": "12"}}"#)
            == "wrong_type: props.minutes of a 'feature_used' event must be a number, not a string")
        #expect(reason(#"{"contact_id": "c", "type": "feature_used", \#(ts), "props": {"beta": 1}}"#)
            == "wrong_type: props.beta of a 'feature_used' event must be a boolean, not a number")
        #expect(reason(#"{"contact_id": "c", "type": "feature_used", \#(ts), "props": {"feature": {"name": "x"}}}"#)
            == "wrong_type: props.feature of a 'feature_used' event must be a string, not an object or array")
        // Undeclared types stay unknown, and the canonical types are as before.
        #expect(reason(#"{"contact_id": "c", "type": "invoice_paid", \#(ts)}"#).hasPrefix("unknown_type"))
        #expect(reason(#"{"contact_id": "c", "type": "page_view", \#(ts)}"#) == "ok")
    }

    @Test("numeric filters: at_least and at_most, integers exactly, non-numbers never match")
    func numericFilters() {
        func purchase(_ amount: String) -> [String] {
            filters(#"{"contact_id": "c", "type": "purchase", "ts": "2026-03-02T09:00:00Z", "props": {"amount": \#(amount)}}"#)
        }
        #expect(purchase("100") == ["big_purchase"])
        #expect(purchase("99.999") == [])
        #expect(purchase("1e2") == ["big_purchase"])
        #expect(purchase("9223372036854775807") == ["big_purchase"])
        #expect(purchase("9.99") == ["small_purchase"])
        #expect(purchase("9") == ["small_purchase"])
        #expect(purchase("10") == [])
        #expect(purchase("-5") == ["small_purchase"])
        #expect(purchase("null") == [])
        // A declared number of another kind is a bad record, not a non-match.
        #expect(purchase("\"500\"") == ["not accepted: wrong_type: props.amount of a 'purchase' event must be a number, not a string"])
        // On a property no type declares, anything but a number simply does not match.
        let canonical = try! Model.load(yaml: """
            version: x
            filters: {long_read: {type: page_view, prop: seconds, at_least: 60}}
            groups: [{name: g, flag: {at_least: 1, of: long_read, within: 1d}}]
            """, file: "x.yaml")
        var pageDecoder = EventDecoder(model: canonical)
        for (seconds, want) in [("60", true), ("59.9", false), ("\"600\"", false), ("true", false), ("[600]", false)] {
            guard case let .events(e, _, _) = pageDecoder.decode(Array(#"{"contact_id": "c", "type": "page_view", "ts": "2026-03-02T09:00:00Z", "props": {"seconds": \#(seconds)}}"#.utf8)) else {
                Issue.record("not accepted"); continue
            }
            #expect((e.filterMask & 1 != 0) == want, "\(seconds)")
        }
        #expect(filters(#"{"contact_id": "c", "type": "feature_used", "ts": "2026-03-02T09:00:00Z", "props": {"minutes": 30}}"#) == ["long_session", "feature_use"])
        #expect(filters(#"{"contact_id": "c", "type": "feature_used", "ts": "2026-03-02T09:00:00Z", "props": {"minutes": 29.5}}"#) == ["feature_use"])
        // The bounds compare against integers exactly: 2^53 + 1 is above 2^53 as a bound.
        let exact = try! Model.load(yaml: """
            version: x
            types: {t: {props: {n: number}}}
            filters: {big: {type: t, prop: n, at_least: 9007199254740993}}
            groups: [{name: g, flag: {at_least: 1, of: big, within: 1d}}]
            """, file: "x.yaml")
        var decoder = EventDecoder(model: exact)
        for (n, want) in [("9007199254740992", true), ("9007199254740991", false)] {
            // The bound is the double nearest 2^53 + 1, which is 2^53.
            guard case let .events(e, _, _) = decoder.decode(Array(#"{"contact_id": "c", "type": "t", "ts": "2026-03-02T09:00:00Z", "props": {"n": \#(n)}}"#.utf8)) else {
                Issue.record("not accepted"); continue
            }
            #expect((e.filterMask & 1 != 0) == want, "\(n)")
        }
    }

    @Test("Segment track events map onto declared types, declared properties under their own names too")
    func segmentMapping() {
        let t = #""timestamp": "2026-03-02T09:00:00Z", "userId": "u""#
        #expect(filters(#"{"type": "track", "event": "Order Completed", \#(t), "properties": {"revenue": 250}}"#) == ["big_purchase"])
        #expect(filters(#"{"type": "track", "event": "Feature Used", \#(t), "properties": {"duration_minutes": 45, "feature": "export"}}"#) == ["long_session", "feature_use"])
        #expect(reason(#"{"type": "track", "event": "Feature Used", \#(t), "properties": {"feature": 7}}"#)
            == "wrong_type: props.feature of a 'feature_used' event must be a string, not a number")
        #expect(reason(#"{"type": "track", "event": "Invoice Paid", \#(t)}"#) == "ignored:unmapped_track_event")
    }

    @Test("transitions: declared types counted in windows, named in the cause")
    func transitions() {
        let out = replay([
            ev("a", "feature_used", "2026-03-01T10:00:00Z", id: "e1", props: #"{"minutes": 40}"#),
            ev("a", "feature_used", "2026-03-02T10:00:00Z", id: "e2", props: #"{"minutes": 35}"#),
            ev("a", "purchase", "2026-03-03T10:00:00Z", id: "e3", props: #"{"amount": 120}"#),
            ev("a", "ticket_opened", "2026-03-04T10:00:00Z", id: "e4"),
            ev("a", "ticket_opened", "2026-03-05T10:00:00Z", id: "e5"),
        ], model: model, until: "2026-04-10T00:00:00Z")
        #expect(path(out, "a", "usage") == [
            "null->casual@2026-03-01T10:00:00.000Z/event",
            "casual->power@2026-03-02T10:00:00.000Z/event",
            // 7 days after the first long session only one remains in the window; 7 days
            // after the last one, none.
            "power->casual@2026-03-08T10:00:00.000Z/time",
            "casual->null@2026-03-09T10:00:00.000Z/time",
        ])
        #expect(path(out, "a", "buyer") == ["null->big@2026-03-03T10:00:00.000Z/event", "big->null@2026-04-02T10:00:00.000Z/time"])
        #expect(path(out, "a", "support_heavy") == ["null->support_heavy@2026-03-05T10:00:00.000Z/event", "support_heavy->null@2026-03-18T10:00:00.000Z/time"])
        #expect(out.first { $0.group == "support_heavy" }?.eventType == "ticket_opened")
        #expect(out.first { $0.group == "buyer" }?.eventType == "purchase")
    }

    @Test("model errors for types and numeric filters name the line and the reason")
    func modelErrors() {
        func error(_ yaml: String) -> String {
            do { _ = try Model.load(yaml: yaml, file: "m.yaml"); return "accepted" } catch { return "\(error.line): \(error.message)" }
        }
        let groups = "groups: [{name: g, flag: {at_least: 1, of: f, within: 1d}}]"
        #expect(error("version: x\ntypes: {page_view: ~}\n" + groups) == "2: 'page_view' is a canonical event type: it cannot be declared again")
        #expect(error("version: x\ntypes: {track: ~}\n" + groups).hasPrefix("2: 'track' is a Segment call name"))
        #expect(error("version: x\ntypes: {t: {props: {n: integer}}}\n" + groups) == "2: property kind 'integer' is not one of number, string, boolean")
        #expect(error("version: x\ntypes: {t: {fields: {}}}\n" + groups).hasPrefix("2: "))
        #expect(error("version: x\nfilters: {f: {type: invoice_paid}}\n" + groups).hasPrefix("2: unknown event type 'invoice_paid'"))
        #expect(error("version: x\ntypes: {t: ~}\nfilters: {f: {type: t, prop: n, at_least: many}}\n" + groups) == "3: at_least must be a number")
        #expect(error("version: x\ntypes: {t: ~}\nfilters: {f: {type: t, prop: n, at_least: .nan}}\n" + groups) == "3: at_least must be a number")
        #expect(error("version: x\ntypes: {t: ~}\nfilters: {f: {type: t, prop: n, at_least: 1, at_most: 2}}\n" + groups).hasPrefix("3: 'prop' needs exactly one of"))
        let many = (0..<52).map { "t\($0): ~" }.joined(separator: ", ")
        #expect(error("version: x\ntypes: {\(many)}\n" + groups).contains("at most 51 event types can be declared"))
    }

    @Test("the product-led example model is valid and summarised with its declared types")
    func exampleModel() throws {
        let url = repoRoot.appendingPathComponent("config/examples/product-led.yaml")
        let example = try Model.load(yaml: String(contentsOf: url, encoding: .utf8), file: url.path)
        #expect(example.declaredTypes.map(\.name) == ["feature_used", "purchase", "ticket_opened", "trial_started"])
        #expect(ModelSummary.describe(example).contains("declared event type 'purchase' (amount: number, plan: string)"))
    }

    @Test("snapshots of a model with declared types restore exactly")
    func snapshots() throws {
        let p = Pipeline(model: model)
        for line in [
            ev("a", "feature_used", "2026-03-01T10:00:00Z", id: "e1", props: #"{"minutes": 40}"#),
            ev("a", "purchase", "2026-03-03T10:00:00Z", id: "e3", props: #"{"amount": 120}"#),
        ] { _ = p.process(Array(line.utf8)) }
        _ = p.engine.takeTransitions()
        #expect(p.engine.contactId(at: 0) == Array("a".utf8))
        let snapshot = p.engine.snapshot(contact: 0)
        let q = Pipeline(model: model)
        try q.engine.restore(contactId: Array("a".utf8), snapshot: snapshot)
        #expect(q.engine.memberships(of: Array("a".utf8)) == p.engine.memberships(of: Array("a".utf8)))
        #expect(q.engine.snapshot(contact: 0) == snapshot)
    }
}

import Testing
@testable import SegmentdEngine

/// Aggregates (count, min, max) and date attributes, with every boundary written by hand.
let languageModel = """
version: lang-1
types:
  purchase: {props: {amount: number}}
  feature_used: {props: {minutes: number}}
attributes:
  trial_ends_at: {from: traits, prop: trial_ends_at, kind: date}
groups:
  - name: trial
    segments:
      - {name: ended, when: {attribute: trial_ends_at, is: past}}
      - {name: ending_soon, when: {attribute: trial_ends_at, within_before: 7d}}
      - {name: on_trial, when: {attribute: trial_ends_at, is: future}}
  - name: just_ended
    flag: {attribute: trial_ends_at, within_after: 2d}
  - name: big_spender
    flag: {max: amount, of: {type: purchase}, within: 30d, at_least: 100}
  - name: only_small
    flag: {max: amount, of: {type: purchase}, within: 30d, at_most: 20}
  - name: min_big
    flag: {min: amount, of: {type: purchase}, within: 30d, at_least: 50}
  - name: light_user
    flag: {count: {type: feature_used}, within: 7d, at_most: 1}
  - name: minutes
    segments:
      - {name: hour_a_week, when: {sum: minutes, of: {type: feature_used}, within: 7d, at_least: 60, max_events: 8}}
      - {name: low, when: {sum: minutes, of: {type: feature_used}, within: 7d, at_most: 20, max_events: 8}}
  - name: last_two
    flag: {sum: minutes, of: {type: feature_used}, within: 30d, at_least: 40, max_events: 2}
"""

@Suite("Model language: aggregates and date attributes, every boundary")
struct ModelLanguageTests {
    let model = try! Model.load(yaml: languageModel, file: "lang.yaml")

    func traits(_ contact: String, _ ts: String, _ ends: String, id: String) -> String {
        ev(contact, "traits", ts, id: id, props: #"{"trial_ends_at": "\#(ends)"}"#)
    }

    @Test("a date attribute: entered within 7 days before it and left at it, at the exact millisecond, by time")
    func trialEnds() {
        let out = replay([traits("t", "2026-03-01T10:00:00Z", "2026-03-20", id: "a")], model: model, until: "2026-04-30T00:00:00Z")
        #expect(path(out, "t", "trial") == [
            "null->on_trial@2026-03-01T10:00:00.000Z/event",
            "on_trial->ending_soon@2026-03-13T00:00:00.000Z/time",
            "ending_soon->ended@2026-03-20T00:00:00.000Z/time",
        ])
        #expect(path(out, "t", "just_ended") == [
            "null->just_ended@2026-03-20T00:00:00.000Z/time",
            "just_ended->null@2026-03-22T00:00:00.000Z/time",
        ])
        // No event of feature_used at all: at most one in 7 days holds from the first event.
        #expect(path(out, "t", "light_user") == ["null->light_user@2026-03-01T10:00:00.000Z/event"])
    }

    @Test("a date-time value, and a date moved earlier after its window opened")
    func dateMoved() {
        let out = replay([
            traits("u", "2026-03-01T10:00:00Z", "2026-03-20T12:30:00.250+01:00", id: "a"),
            // After the 7-day window opened (2026-03-13T11:30:00.250Z), the date moves to a day
            // already past: the contact goes straight to `ended`, caused by the event.
            traits("u", "2026-03-15T08:00:00Z", "2026-03-14", id: "b"),
        ], model: model, until: "2026-04-30T00:00:00Z")
        #expect(path(out, "u", "trial") == [
            "null->on_trial@2026-03-01T10:00:00.000Z/event",
            "on_trial->ending_soon@2026-03-13T11:30:00.250Z/time",
            "ending_soon->ended@2026-03-15T08:00:00.000Z/event",
        ])
        // Within 2 days after the new date (until 2026-03-16T00:00): entered by the event.
        #expect(path(out, "u", "just_ended") == [
            "null->just_ended@2026-03-15T08:00:00.000Z/event",
            "just_ended->null@2026-03-16T00:00:00.000Z/time",
        ])
    }

    @Test("a late event with an older date does not replace the newer one; a bad date leaves the value")
    func lateAndBadDates() {
        let out = replay([
            traits("v", "2026-03-10T10:00:00Z", "2026-04-01", id: "a"),
            traits("v", "2026-03-09T10:00:00Z", "2026-03-11", id: "b"),
            traits("v", "2026-03-12T10:00:00Z", "next tuesday", id: "c"),
            traits("v", "2026-03-12T11:00:00Z", "2026-02-30", id: "d"),
        ], model: model, until: "2026-04-30T00:00:00Z")
        #expect(path(out, "v", "trial") == [
            "null->on_trial@2026-03-10T10:00:00.000Z/event",
            "on_trial->ending_soon@2026-03-25T00:00:00.000Z/time",
            "ending_soon->ended@2026-04-01T00:00:00.000Z/time",
        ])
    }

    @Test("max, min and count over windows: entering with an event, leaving as events leave")
    func aggregates() {
        let out = replay([
            ev("p", "purchase", "2026-03-01T10:00:00Z", id: "a", props: #"{"amount": 10}"#),
            ev("p", "purchase", "2026-03-05T10:00:00Z", id: "b", props: #"{"amount": 150.5}"#),
            // No amount: takes no part in min or max.
            ev("p", "purchase", "2026-03-06T10:00:00Z", id: "c"),
            ev("p", "feature_used", "2026-03-06T11:00:00Z", id: "d"),
            ev("p", "feature_used", "2026-03-07T11:00:00Z", id: "e"),
        ], model: model, until: "2026-04-30T00:00:00Z")
        #expect(path(out, "p", "big_spender") == [
            "null->big_spender@2026-03-05T10:00:00.000Z/event",
            "big_spender->null@2026-04-04T10:00:00.000Z/time",
        ])
        #expect(path(out, "p", "only_small") == [
            "null->only_small@2026-03-01T10:00:00.000Z/event",
            "only_small->null@2026-03-05T10:00:00.000Z/event",
        ])
        // The minimum is 10 until that purchase leaves the window; then 150.5 until it leaves.
        #expect(path(out, "p", "min_big") == [
            "null->min_big@2026-03-31T10:00:00.000Z/time",
            "min_big->null@2026-04-04T10:00:00.000Z/time",
        ])
        // At most one feature use in 7 days: left with the second, back when the first leaves.
        #expect(path(out, "p", "light_user") == [
            "null->light_user@2026-03-01T10:00:00.000Z/event",
            "light_user->null@2026-03-07T11:00:00.000Z/event",
            "null->light_user@2026-03-13T11:00:00.000Z/time",
        ])
    }

    @Test("sums over windows: an event entering, an event leaving, the user's bound on events")
    func sums() {
        let out = replay([
            ev("m", "feature_used", "2026-03-01T10:00:00Z", id: "a", props: #"{"minutes": 30}"#),
            ev("m", "feature_used", "2026-03-02T10:00:00Z", id: "b"),
            ev("m", "feature_used", "2026-03-03T10:00:00Z", id: "c", props: #"{"minutes": 20}"#),
            ev("m", "feature_used", "2026-03-04T10:00:00Z", id: "d", props: #"{"minutes": 15.0}"#),
        ], model: model, until: "2026-04-30T00:00:00Z")
        // 30 + 20 + 15 = 65 at 03-04; the 30 leaves the 7-day window at 03-08T10:00.
        // At most 20: 35 after the 30 leaves, 15 after the 20 leaves (03-10T10:00).
        #expect(path(out, "m", "minutes") == [
            "null->hour_a_week@2026-03-04T10:00:00.000Z/event",
            "hour_a_week->null@2026-03-08T10:00:00.000Z/time",
            "null->low@2026-03-10T10:00:00.000Z/time",
        ])
        // Only the 2 most recent count: 30 + 20 = 50 at 03-03, then 20 + 15 = 35 at 03-04.
        #expect(path(out, "m", "last_two") == [
            "null->last_two@2026-03-03T10:00:00.000Z/event",
            "last_two->null@2026-03-04T10:00:00.000Z/event",
        ])
    }

    /// Two distinct active days out of the last two, in Paris or in UTC.
    static func daysModel(_ zone: String?) -> Model {
        try! Model.load(yaml: """
            version: days-1
            \(zone.map { "timezone: \($0)" } ?? "")
            groups:
              - name: streak
                flag: {days_active: {type: page_view}, within: 2d, at_least: 2}
              - name: regular
                flag: {days_active: {type: page_view}, within: 7d, at_least: 3}
            """, file: "days.yaml")
    }

    @Test("days active in a time zone: days end at local midnight, across the change to summer time")
    func daysActiveParis() {
        let lines = [
            ev("d", "page_view", "2026-03-27T23:30:00Z"),  // 00:30 on 03-28 in Paris (UTC+1)
            ev("d", "page_view", "2026-03-28T22:30:00Z"),  // 23:30 on 03-28: the same day
            ev("d", "page_view", "2026-03-28T23:30:00Z"),  // 00:30 on 03-29: a second day
        ]
        let paris = replay(lines, model: ModelLanguageTests.daysModel("Europe/Paris"), until: "2026-04-30T00:00:00Z")
        // 03-28 leaves the last two days when 03-30 starts: midnight in Paris, now UTC+2.
        #expect(path(paris, "d", "streak") == [
            "null->streak@2026-03-28T23:30:00.000Z/event",
            "streak->null@2026-03-29T22:00:00.000Z/time",
        ])
        // In UTC the three events fall on 03-27 and 03-28 (twice).
        let utc = replay(lines, model: ModelLanguageTests.daysModel(nil), until: "2026-04-30T00:00:00Z")
        #expect(path(utc, "d", "streak") == [
            "null->streak@2026-03-28T22:30:00.000Z/event",
            "streak->null@2026-03-29T00:00:00.000Z/time",
        ])
    }

    @Test("days active: the N-th newest distinct day decides, late events fill in a day")
    func daysActiveLate() {
        let out = replay([
            ev("e", "page_view", "2026-05-01T10:00:00Z"),
            ev("e", "page_view", "2026-05-05T10:00:00Z"),
            // Late, on a day not seen yet: the third distinct day in the last 7 (05-01..05-07).
            ev("e", "page_view", "2026-05-03T09:00:00Z"),
        ], model: ModelLanguageTests.daysModel(nil), until: "2026-05-30T00:00:00Z")
        // Evaluated at the contact's clock (05-05T10:00), caused by the late event; it leaves
        // when 05-01 is no longer among the last 7 days, as 05-08 starts.
        #expect(path(out, "e", "regular") == [
            "null->regular@2026-05-05T10:00:00.000Z/event",
            "regular->null@2026-05-08T00:00:00.000Z/time",
        ])
    }

    @Test("a time zone nobody knows, and a window that is not whole days, are refused")
    func daysErrors() {
        func error(_ yaml: String) -> String {
            do { _ = try Model.load(yaml: yaml, file: "m.yaml"); return "accepted" } catch { return "\(error.line): \(error.message)" }
        }
        #expect(error("version: x\ntimezone: Mars/Olympus\ngroups: [{name: g, flag: always}]\n").hasPrefix("2: 'Mars/Olympus' is not a time zone of the IANA database"))
        #expect(error("version: x\ngroups: [{name: g, flag: {days_active: {type: page_view}, within: 36h, at_least: 1}}]\n").contains("within must be a whole number of days"))
        #expect(error("version: x\ngroups: [{name: g, flag: {days_active: {type: page_view}, within: 3d, at_least: 4}}]\n").contains("at_least must be between 1 and 3"))
        #expect(DayCalendar(identifier: "America/New_York")!.start(ofDay: 20_765) == EventTime.parseRFC3339("2026-11-08T05:00:00Z"))
    }

    @Test("state survives a snapshot and restore, and both evaluators agree")
    func snapshotAndAgreement() throws {
        let p = Pipeline(model: model)
        for line in [
            traits("s", "2026-03-01T10:00:00Z", "2026-03-20", id: "a"),
            ev("s", "purchase", "2026-03-02T10:00:00Z", id: "b", props: #"{"amount": 150}"#),
            ev("s", "feature_used", "2026-03-02T11:00:00Z", id: "c", props: #"{"minutes": 45.5}"#),
            ev("s", "feature_used", "2026-03-03T11:00:00Z", id: "d", props: #"{"minutes": 20}"#),
        ] { _ = p.process(Array(line.utf8)) }
        let snapshot = p.engine.snapshot(contact: 0)
        let q = Pipeline(model: model)
        try q.engine.restore(contactId: Array("s".utf8), snapshot: snapshot)
        #expect(q.engine.snapshot(contact: 0) == snapshot)
        // The first boundary: the 45.5 minutes leaving the 7-day window.
        #expect(q.engine.clock(of: Array("s".utf8))?.next == EventTime.parseRFC3339("2026-03-09T11:00:00Z"))
        for at in ["2026-03-03T11:00:00Z", "2026-03-09T11:00:00Z", "2026-03-12T23:59:59.999Z", "2026-03-13T00:00:00Z", "2026-03-20T00:00:00Z", "2026-04-01T10:00:00Z", "2026-04-01T10:00:00.001Z"] {
            let both = q.engine.segmentsByBothEvaluators(Array("s".utf8), at: EventTime.parseRFC3339(at)!)!
            #expect(both.compiled == both.interpreted, "\(at)")
        }
        let explanation = q.engine.explain(Array("s".utf8), at: EventTime.parseRFC3339("2026-03-14T00:00:00Z"))!
        #expect(explanation.groups[0].segment == "ending_soon")
        #expect(explanation.groups[0].reasons.contains { $0.contains("trial_ends_at is 2026-03-20T00:00:00.000Z, now within 7d before trial_ends_at: true") })
    }

    @Test("a model change keeps the new constructs' state by meaning: same transitions as never changing")
    func modelChange() throws {
        let lines = [
            traits("r", "2026-03-01T10:00:00Z", "2026-03-20", id: "a"),
            ev("r", "purchase", "2026-03-02T10:00:00Z", id: "b", props: #"{"amount": 150}"#),
            ev("r", "feature_used", "2026-03-02T11:00:00Z", id: "c", props: #"{"minutes": 45}"#),
            ev("r", "feature_used", "2026-03-03T11:00:00Z", id: "d", props: #"{"minutes": 20}"#),
        ]
        let later = [
            ev("r", "feature_used", "2026-03-04T11:00:00Z", id: "e", props: #"{"minutes": 30}"#),
            ev("r", "page_view", "2026-04-20T11:00:00Z", id: "f"),
        ]
        // The same rules under another version, written in another order: state moves by meaning.
        let renamed = try Model.load(yaml: languageModel.replacingOccurrences(of: "version: lang-1", with: "version: lang-2")
            .replacingOccurrences(of: "feature_used: {props: {minutes: number}}\n  purchase: {props: {amount: number}}", with: "x")
            .replacingOccurrences(of: "purchase: {props: {amount: number}}\n  feature_used: {props: {minutes: number}}",
                                  with: "feature_used: {props: {minutes: number}}\n  purchase: {props: {amount: number}}"), file: "lang2.yaml")
        #expect(renamed.eventTypes.suffix(2) == ["feature_used", "purchase"])
        let p = Pipeline(model: model)
        var changed: [Transition] = []
        for line in lines { _ = p.process(Array(line.utf8)) }
        _ = p.engine.takeTransitions()
        p.migrate(to: renamed)
        // Nothing moves at the change.
        #expect(p.engine.takeTransitions().isEmpty)
        for line in later { _ = p.process(Array(line.utf8)) }
        p.engine.advanceWatermark(to: EventTime.parseRFC3339("2026-05-30T00:00:00Z")!)
        changed = p.engine.takeTransitions()
        // What one model alone gives over the whole stream, after the change's instant.
        let straight = replay(lines + later, model: model, until: "2026-05-30T00:00:00Z")
            .filter { $0.at > "2026-03-03T11:00:00.000Z" }
        let fromChanged = changed.map { tr in
            "\(renamed.groups[tr.group].name) \(tr.from.map { renamed.groups[tr.group].segments[$0].name } ?? "null")->\(tr.to.map { renamed.groups[tr.group].segments[$0].name } ?? "null")@\(EventTime.format(tr.at))"
        }
        #expect(fromChanged == straight.map { "\($0.group) \($0.from ?? "null")->\($0.to ?? "null")@\($0.at)" })
        #expect(fromChanged.count >= 5)
    }

    @Test("model errors for aggregates and date conditions")
    func errors() {
        func error(_ body: String) -> String {
            let yaml = "version: x\nattributes: {d: {from: traits, prop: d, kind: date}, n: {from: traits, prop: n, kind: integer}}\ngroups: [{name: g, flag: \(body)}]\n"
            do { _ = try Model.load(yaml: yaml, file: "m.yaml"); return "accepted" } catch { return error.message }
        }
        #expect(error("{attribute: d, is: soon}") == "'soon' is not past or future")
        #expect(error("{attribute: d, equals: 3}").hasPrefix("date attribute 'd' needs exactly one of"))
        #expect(error("{attribute: d, within_before: 7d, within_after: 1d}").hasPrefix("date attribute 'd' needs exactly one of"))
        #expect(error("{attribute: n, within_before: 7d}") == "within_before needs a date attribute ('n' is not kind: date)")
        #expect(error("{max: amount, of: {type: traits}, within: 7d}") == "max needs exactly one of at_least, at_most")
        #expect(error("{max: amount, of: {type: traits}, within: 7d, at_least: lots}") == "at_least must be a number")
        #expect(error("{min: amount, within: 7d, at_least: 1}") == "min needs 'of' (a filter)")
        #expect(error("{count: {type: traits}, within: 7d, at_most: 64}") == "at_most must be between 0 and 63")
        #expect(error("{count: {type: traits}, within: 7d, at_least: 0}") == "at_least must be between 1 and 64")
        #expect(error("{sum: amount, of: {type: traits}, within: 7d, at_least: 1}").hasPrefix("sum needs max_events (1 to 64)"))
        #expect(error("{sum: amount, of: {type: traits}, within: 7d, at_least: 1, max_events: 65}") == "max_events must be between 1 and 64")
        #expect(error("{sum: amount, within: 7d, at_least: 1, max_events: 3}") == "sum needs 'of' (a filter)")
    }

    @Test("validate prints the state each aggregate compiles to")
    func summary() {
        let text = ModelSummary.describe(model)
        #expect(text.contains("'filter#0 with amount >= 100': the 1 most recent times, windows 30d"), "\(text)")
        #expect(text.contains("'filter#2 with amount > 20': the 1 most recent times, windows 30d"), "\(text)")
        #expect(text.contains("1 attribute(s): trial_ends_at"), "\(text)")
        #expect(text.contains("sum of 'minutes' over 'type(feature_used)': the 8 most recent (time, value) pairs, windows 7d"), "\(text)")
    }
}

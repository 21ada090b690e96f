import Testing
@testable import SegmentdEngine

/// Hand-written expectations for every time rule of contract §3-§4.
@Suite("Engine: time and segments")
struct EngineTests {
    let d0 = "2026-03-02T09:00:00.000Z"

    @Test("an event exactly 30 days after another: the first has left the window (t-D < ts <= t)")
    func exactlyWindowApart() {
        let out = replay([
            ev("c", "page_view", "2026-03-02T09:00:00.000Z", id: "p1", props: #"{"path": "/pricing"}"#),
            ev("c", "email_open", "2026-04-01T09:00:00.000Z", id: "o1"),
        ])
        // active_evaluator ends exactly at p1 + 30d, which is o1's ts: folded into o1's evaluation.
        #expect(path(out, "c", "lifecycle") == [
            "null->active_evaluator@2026-03-02T09:00:00.000Z/event",
            "active_evaluator->null@2026-04-01T09:00:00.000Z/event",
        ])
    }

    @Test("1 ms before the edge the event still counts")
    func oneMsBeforeEdge() {
        let out = replay([
            ev("c", "page_view", "2026-03-02T09:00:00.000Z", props: #"{"path": "/pricing"}"#),
            ev("c", "email_open", "2026-04-01T08:59:59.999Z"),
        ])
        #expect(path(out, "c", "lifecycle") == ["null->active_evaluator@2026-03-02T09:00:00.000Z/event"])
    }

    @Test("same-millisecond events apply in input order; ids stay unique with n")
    func sameMillisecond() {
        let p = Pipeline(model: .defaultModel())
        for l in [ev("c", "subscribed", d0, id: "s1"), ev("c", "unsubscribed", d0, id: "u1"),
                  ev("c", "subscribed", d0, id: "s2"), ev("c", "unsubscribed", d0, id: "u2")] {
            _ = p.process(Array(l.utf8))
        }
        let ts = p.engine.takeTransitions()
        let life = ts.filter { $0.group == 0 }
        #expect(life.map(\.n) == [0, 1, 2, 3])
        #expect(Set(ts.map { p.encoder.id(of: $0) }).count == ts.count)
        #expect(life.last?.to == 0)  // suppressed
    }

    @Test("catch-up emits each boundary before the event, in order, cause time")
    func catchUp() {
        let out = replay([
            ev("c", "subscribed", "2026-03-02T09:00:00.000Z", id: "s1"),
            ev("c", "page_view", "2026-03-10T09:00:00.000Z", id: "p1", props: #"{"path": "/pricing"}"#),
            ev("c", "email_open", "2026-06-01T09:00:00.000Z", id: "o1"),
        ])
        #expect(path(out, "c", "lifecycle") == [
            "null->new_subscriber@2026-03-02T09:00:00.000Z/event",
            "new_subscriber->active_evaluator@2026-04-01T09:00:00.000Z/time",
            "active_evaluator->null@2026-04-09T09:00:00.000Z/time",
            "null->inactive@2026-05-09T09:00:00.000Z/time",
            "inactive->null@2026-06-01T09:00:00.000Z/event",
        ])
    }

    @Test("silence after subscribing: new_subscriber ends at +30d, inactive at +60d, via --until")
    func silenceAfterSubscribe() {
        let out = replay([ev("c", "subscribed", d0, id: "s1")], until: "2026-06-01T00:00:00.000Z")
        #expect(path(out, "c", "lifecycle") == [
            "null->new_subscriber@2026-03-02T09:00:00.000Z/event",
            "new_subscriber->null@2026-04-01T09:00:00.000Z/time",
            "null->inactive@2026-05-01T09:00:00.000Z/time",
        ])
        #expect(path(out, "c", "engagement_tier") == ["null->cold@2026-03-02T09:00:00.000Z/event"])
    }

    @Test("--until is inclusive: a boundary exactly at T fires, one at T+1ms does not")
    func untilInclusive() {
        let on = replay([ev("c", "subscribed", d0)], until: "2026-04-01T09:00:00.000Z")
        #expect(path(on, "c", "lifecycle").last == "new_subscriber->null@2026-04-01T09:00:00.000Z/time")
        let before = replay([ev("c", "subscribed", d0)], until: "2026-04-01T08:59:59.999Z")
        #expect(path(before, "c", "lifecycle") == ["null->new_subscriber@2026-03-02T09:00:00.000Z/event"])
    }

    @Test("the watermark fires a silent contact's boundary; stream time minus 1 ms does not reach it")
    func watermark() {
        let out = replay([
            ev("silent", "subscribed", "2026-03-02T09:00:00.000Z"),
            ev("other", "email_open", "2026-04-01T09:00:00.000Z"),
        ])
        #expect(path(out, "silent", "lifecycle") == ["null->new_subscriber@2026-03-02T09:00:00.000Z/event"])
        let out2 = replay([
            ev("silent", "subscribed", "2026-03-02T09:00:00.000Z"),
            ev("other", "email_open", "2026-04-01T09:00:00.001Z"),
        ])
        #expect(path(out2, "silent", "lifecycle").last == "new_subscriber->null@2026-04-01T09:00:00.000Z/time")
    }

    @Test("allowed lateness holds the watermark back by lateness + 1 ms")
    func lateness() {
        let lines = [ev("silent", "subscribed", "2026-03-02T09:00:00.000Z"), ev("other", "email_open", "2026-04-01T09:30:00.000Z")]
        #expect(path(replay(lines, lateness: 3_600_000), "silent", "lifecycle").count == 1)
        #expect(path(replay(lines, lateness: 0), "silent", "lifecycle").count == 2)
    }

    @Test("a late event is applied at its ts and emitted at the contact's clock; its exit at the true instant")
    func lateEvent() {
        let p = Pipeline(model: .defaultModel())
        var out: [T] = []
        for l in [ev("c", "email_open", "2026-04-11T09:00:00.000Z", id: "o1"),
                  ev("c", "page_view", "2026-03-17T09:00:00.000Z", id: "p1", props: #"{"path": "/pricing"}"#)] {
            _ = p.process(Array(l.utf8))
        }
        #expect(p.engine.stats.lateEvents == 1)
        out = replay([ev("c", "email_open", "2026-04-11T09:00:00.000Z", id: "o1"),
                      ev("c", "page_view", "2026-03-17T09:00:00.000Z", id: "p1", props: #"{"path": "/pricing"}"#)],
                     until: "2026-05-01T00:00:00.000Z")
        #expect(path(out, "c", "lifecycle") == [
            "null->active_evaluator@2026-04-11T09:00:00.000Z/event",
            "active_evaluator->null@2026-04-16T09:00:00.000Z/time",
        ])
    }

    @Test("60-day inactivity counts from the last engagement and needs first seen 60 days back")
    func inactivity() {
        let out = replay([
            ev("c", "traits", "2026-01-01T00:00:00.000Z", props: #"{"country": "US"}"#),
            ev("c", "page_view", "2026-02-01T00:00:00.000Z", props: #"{"path": "/docs"}"#),
        ], until: "2026-05-01T00:00:00.000Z")
        #expect(path(out, "c", "lifecycle") == ["null->inactive@2026-04-02T00:00:00.000Z/time"])
    }

    @Test("re-subscribe after unsubscribe lifts suppression; a late older subscribe does not")
    func resubscribe() {
        let out = replay([
            ev("c", "subscribed", "2026-03-02T09:00:00.000Z"),
            ev("c", "unsubscribed", "2026-03-03T09:00:00.000Z"),
            ev("c", "subscribed", "2026-03-02T12:00:00.000Z"),
            ev("c", "subscribed", "2026-03-04T09:00:00.000Z"),
        ])
        #expect(path(out, "c", "lifecycle") == [
            "null->new_subscriber@2026-03-02T09:00:00.000Z/event",
            "new_subscriber->suppressed@2026-03-03T09:00:00.000Z/event",
            "suppressed->new_subscriber@2026-03-04T09:00:00.000Z/event",
        ])
    }

    @Test("hard, absent and null bounce kinds suppress; soft does not")
    func bounces() {
        for (props, suppressed) in [(#"{"kind": "hard"}"#, true), (nil, true), (#"{"kind": null}"#, true), (#"{"kind": "soft"}"#, false)] {
            let out = replay([ev("c", "subscribed", d0), ev("c", "bounced", "2026-03-02T10:00:00.000Z", props: props)])
            #expect(path(out, "c", "lifecycle").contains { $0.hasPrefix("new_subscriber->suppressed") } == suppressed, "\(props ?? "no props")")
        }
    }

    @Test("customer wins over new_subscriber; suppressed wins over customer")
    func priorities() {
        let out = replay([
            ev("c", "subscribed", "2026-03-02T09:00:00.000Z"),
            ev("c", "crm_stage", "2026-03-02T10:00:00.000Z", props: #"{"stage": "customer"}"#),
            ev("c", "unsubscribed", "2026-03-02T11:00:00.000Z"),
        ])
        #expect(path(out, "c", "lifecycle") == [
            "null->new_subscriber@2026-03-02T09:00:00.000Z/event",
            "new_subscriber->customer@2026-03-02T10:00:00.000Z/event",
            "customer->suppressed@2026-03-02T11:00:00.000Z/event",
        ])
    }

    @Test("lead score: fit and behavior each capped at 50; 50 is nurture, 80 is sales_ready")
    func scores() {
        // Fit 60 -> 50 (capped), plus one pricing visit 20 = 70: nurture.
        let fit = #"{"industry": "SaaS", "company_size": 200, "country": "us"}"#
        var out = replay([ev("c", "traits", d0, props: fit), ev("c", "page_view", "2026-03-02T10:00:00.000Z", props: #"{"path": "/pricing"}"#)])
        #expect(path(out, "c", "lead_score") == ["null->nurture@2026-03-02T09:00:00.000Z/event"])
        // Fit 50 + behavior 30 = 80: sales_ready, back to nurture when the visit leaves 30 days later.
        out = replay([ev("c", "traits", d0, props: fit),
                      ev("c", "page_view", "2026-03-02T10:00:00.000Z", props: #"{"path": "/pricing"}"#),
                      ev("c", "email_click", "2026-03-02T11:00:00.000Z", props: #"{"url": "https://x/blog"}"#)],
                     until: "2026-04-05T00:00:00.000Z")
        #expect(path(out, "c", "lead_score") == [
            "null->nurture@2026-03-02T09:00:00.000Z/event",
            "nurture->sales_ready@2026-03-02T11:00:00.000Z/event",
            "sales_ready->nurture@2026-04-01T10:00:00.000Z/time",
        ])
        // Seven downloads without fit: behavior caps at 50 -> nurture, never sales_ready.
        let downloads = (0..<7).map { ev("d", "resource_download", "2026-03-0\($0 + 2)T09:00:00.000Z") }
        out = replay(downloads)
        #expect(path(out, "d", "lead_score") == ["null->top_of_funnel@2026-03-02T09:00:00.000Z/event",
                                                  "top_of_funnel->nurture@2026-03-05T09:00:00.000Z/event"])
    }

    @Test("machine opens set first seen but are not engagement and score nothing")
    func machineOpens() {
        let out = replay([ev("c", "email_open", d0, props: #"{"machine_open": true}"#)], until: "2026-05-02T00:00:00.000Z")
        #expect(path(out, "c", "engagement_tier") == ["null->cold@2026-03-02T09:00:00.000Z/event"])
        #expect(path(out, "c", "lifecycle") == ["null->inactive@2026-05-01T09:00:00.000Z/time"])
        // "true" as a string is not a machine open.
        let out2 = replay([ev("c", "email_open", d0, props: #"{"machine_open": "true"}"#)])
        #expect(path(out2, "c", "engagement_tier") == ["null->warm@2026-03-02T09:00:00.000Z/event"])
    }

    @Test("hot_lead: two pricing visits in 7 days, even when suppressed; clears at the older + 7d")
    func hotLead() {
        let out = replay([
            ev("c", "unsubscribed", d0),
            ev("c", "page_view", "2026-03-02T10:00:00.000Z", props: #"{"path": "/pricing"}"#),
            ev("c", "page_view", "2026-03-03T10:00:00.000Z", props: #"{"path": "/pricing/team"}"#),
        ], until: "2026-03-20T00:00:00.000Z")
        #expect(path(out, "c", "hot_lead") == ["null->hot_lead@2026-03-03T10:00:00.000Z/event",
                                                "hot_lead->null@2026-03-09T10:00:00.000Z/time"])
    }

    @Test("duplicates: same event id for the same contact changes nothing, not even time")
    func duplicates() {
        let p = Pipeline(model: .defaultModel())
        #expect(p.process(Array(ev("c", "email_open", d0, id: "e1").utf8)) == .applied)
        #expect(p.process(Array(ev("c", "email_open", "2026-09-01T00:00:00.000Z", id: "e1").utf8)) == .duplicate)
        #expect(p.engine.streamTime == EventTime.parseRFC3339(d0)!)
        #expect(p.process(Array(ev("other", "email_open", d0, id: "e1").utf8)) == .applied)
        #expect(p.process(Array(ev("c", "email_open", d0).utf8)) == .applied)
        #expect(p.process(Array(ev("c", "email_open", d0).utf8)) == .applied)
        #expect(p.counters.duplicates == 1)
    }

    @Test("duplicates are caught 7 days back in the contact's time (the contract asks 24 hours), late events included")
    func duplicateHorizon() {
        let p = Pipeline(model: .defaultModel())
        _ = p.process(Array(ev("c", "email_open", "2026-03-02T09:00:00.000Z", id: "a").utf8))
        _ = p.process(Array(ev("c", "email_open", "2026-03-03T08:00:00.000Z", id: "b").utf8))
        #expect(p.process(Array(ev("c", "email_open", "2026-03-02T09:00:00.000Z", id: "a").utf8)) == .duplicate)
        _ = p.process(Array(ev("c", "email_open", "2026-02-01T09:00:00.000Z", id: "late").utf8))
        #expect(p.process(Array(ev("c", "email_open", "2026-02-01T09:00:00.000Z", id: "late").utf8)) == .duplicate)
        // Three days of contact time later, a redelivery of "a" is still caught (horizon 7 days)...
        _ = p.process(Array(ev("c", "email_open", "2026-03-05T09:00:00.000Z", id: "c3").utf8))
        #expect(p.process(Array(ev("c", "email_open", "2026-03-02T09:00:00.000Z", id: "a").utf8)) == .duplicate)
        // ...but not once the contact has moved on more than 7 days.
        _ = p.process(Array(ev("c", "email_open", "2026-03-12T09:00:00.000Z", id: "c4").utf8))
        #expect(p.process(Array(ev("c", "email_open", "2026-03-02T09:00:00.000Z", id: "a").utf8)) == .applied)
    }

    @Test("replay is deterministic: the same input gives byte-identical output")
    func deterministic() throws {
        let lines = (0..<500).map { i in ev("c\(i % 37)", ["email_open", "page_view", "subscribed", "email_click"][i % 4],
                                             EventTime.format(1_772_442_000_000 + Millis(i) * 3_600_000 * 7), id: "e\(i)",
                                             props: #"{"path": "/pricing", "url": "case-study"}"#) }
        func run() -> [UInt8] {
            let p = Pipeline(model: .defaultModel())
            var out: [UInt8] = []
            for l in lines { _ = p.process(Array(l.utf8)); for t in p.engine.takeTransitions() { p.encoder.encode(t, to: &out) } }
            return out
        }
        let a = run()
        #expect(!a.isEmpty)
        #expect(a == run())
    }

    /// Contact c's events are 60 days behind when d's moves the watermark: its timers fire up
    /// to its last boundary (the 60-day engagement window, where it goes inactive: its clock),
    /// and every entry it holds is then outside every window that reads its list. d's
    /// subscription is in its window.
    @Test("list occupancy: slots, entries, and entries no window can count again")
    func listOccupancy() {
        let p = Pipeline(model: .defaultModel())
        for l in [ev("c", "page_view", "2026-01-01T00:00:00.000Z", id: "a", props: #"{"path": "/pricing"}"#),
                  ev("c", "email_open", "2026-01-02T00:00:00.000Z", id: "b"),
                  ev("d", "subscribed", "2026-03-15T00:00:00.000Z", id: "c")] { _ = p.process(Array(l.utf8)) }
        let slotsPerContact = p.engine.layout.lists.reduce(0) { $0 + $1.capacity } + p.engine.layout.scoreLists.reduce(0) { $0 + $1.capacity }
        #expect(slotsPerContact == 18)
        // c: engagement, high intent, email engagement and pricing visits one entry each, two
        // scored events; d: one subscription.
        #expect(p.engine.listOccupancy() == ListOccupancy(slots: 36, held: 7, outsideEveryWindow: 6, newestOutsideEveryWindow: 5))
    }
}

@Suite("Engine: snapshots for the changelog")
struct SnapshotTests {
    @Test("a restored engine continues exactly where the original stopped")
    func restoreContinues() throws {
        let lines = (0..<400).map { i in ev("c\(i % 23)", ["email_open", "page_view", "subscribed", "email_click", "traits", "crm_stage", "unsubscribed"][i % 7],
                                             EventTime.format(1_772_442_000_000 + Millis(i) * 3_600_000 * 5 - Millis(i % 11 == 0 ? 86_400_000 * 3 : 0)),
                                             id: "e\(i)", props: #"{"path": "/pricing", "industry": "SaaS", "stage": "customer", "company_size": 100}"#) }
        // Uninterrupted run.
        let a = Pipeline(model: .defaultModel())
        var full: [Transition] = []
        for l in lines { _ = a.process(Array(l.utf8)); full += a.engine.takeTransitions() }
        // Run the first half, snapshot the dirty contacts, restore into a fresh engine, run the rest.
        let b = Pipeline(model: .defaultModel())
        var split: [Transition] = []
        for l in lines[..<200] { _ = b.process(Array(l.utf8)); split += b.engine.takeTransitions() }
        let dirty = b.engine.takeDirtyContacts()
        #expect(dirty.count == 23)
        #expect(b.engine.takeDirtyContacts().isEmpty)
        let c = Pipeline(model: .defaultModel())
        for i in dirty { try c.engine.restore(contactId: b.engine.contactId(at: i), snapshot: b.engine.snapshot(contact: i)) }
        c.engine.restoreCheckpoint(streamTime: b.engine.checkpoint.streamTime, watermark: b.engine.checkpoint.watermark)
        // A duplicate of an event applied before the snapshot is still caught after it.
        #expect(c.process(Array(lines[199].utf8)) == .duplicate)
        for l in lines[200...] { _ = c.process(Array(l.utf8)); split += c.engine.takeTransitions() }
        #expect(split == full)
    }

    @Test("latest-of and attribute pairs outside the packed range are kept exactly, and survive a snapshot")
    func widePairs() throws {
        // Packed slots hold 0 <= ts < 2^43 and values 0 ..< 2^20; these are all outside.
        let traits = { (size: Int) in #"{"industry": "software", "company_size": \#(size), "country": "US"}"# }
        let lines = [
            ev("late", "traits", "2300-01-01T00:00:00Z", id: "a1", props: traits(100)),      // ts beyond 2^43
            ev("big", "traits", "2026-03-01T00:00:00Z", id: "b1", props: traits(1_048_676)),  // value beyond 2^20
            ev("old", "traits", "1960-01-01T00:00:00Z", id: "o1", props: traits(500)),        // negative ts
            ev("old", "subscribed", "1960-01-02T00:00:00Z", id: "o2"),
            ev("old", "unsubscribed", "1960-01-03T00:00:00Z", id: "o3"),
            ev("neg", "traits", "2026-03-01T00:00:00Z", id: "n1", props: traits(-5)),         // negative value
        ]
        let model = Model.defaultModel()
        let p = Pipeline(model: model)
        for l in lines { _ = p.process(Array(l.utf8)) }
        func names(_ e: SegmentEngine, _ c: String) -> [String?] {
            e.memberships(of: Array(c.utf8))!.enumerated().map { g, s in s.map { model.groups[g].segments[$0].name } }
        }
        // fit: software +30, US +10, company_size 51..1000 +20.
        #expect(names(p.engine, "late")[1] == "nurture")
        #expect(names(p.engine, "big")[1] == "top_of_funnel")
        #expect(names(p.engine, "neg")[1] == "top_of_funnel")
        #expect(names(p.engine, "old")[0] == "suppressed")
        let q = Pipeline(model: model)
        for c in ["late", "big", "old", "neg"] {
            let i = p.engine.contacts.find(Array(c.utf8))!
            let snap = p.engine.snapshot(contact: i)
            try q.engine.restore(contactId: Array(c.utf8), snapshot: snap)
            #expect(q.engine.snapshot(contact: q.engine.contacts.find(Array(c.utf8))!) == snap)
            #expect(names(q.engine, c) == names(p.engine, c))
        }
        // A later pair that fits replaces an escaped one, and the reverse.
        _ = q.process(Array(ev("late", "traits", "2301-01-01T00:00:00Z", id: "a2", props: traits(5_000_000)).utf8))
        #expect(names(q.engine, "late")[1] == "top_of_funnel")
    }
}

@Suite("Engine: model change keeps state and re-evaluates")
struct ModelChangeTests {
    static let lines: [String] = (0..<300).map { i in
        ev("c\(i % 17)", ["email_open", "page_view", "subscribed", "email_click", "traits", "resource_download"][i % 6],
           EventTime.format(1_772_442_000_000 + Millis(i) * 3_600_000 * 3), id: "e\(i)",
           props: #"{"path": "/pricing", "industry": "SaaS", "company_size": 100, "url": "https://x/case-study"}"#)
    }

    func run(_ p: Pipeline, _ lines: ArraySlice<String>) -> [Transition] {
        var out: [Transition] = []
        for l in lines { _ = p.process(Array(l.utf8)); out += p.engine.takeTransitions() }
        return out
    }

    @Test("the same model again changes nothing")
    func sameModel() {
        let a = Pipeline(model: .defaultModel())
        let full = run(a, Self.lines[...])
        let b = Pipeline(model: .defaultModel())
        var split = run(b, Self.lines[..<150])
        b.migrate(to: .defaultModel())
        #expect(b.engine.takeTransitions().isEmpty)
        split += run(b, Self.lines[150...])
        #expect(split == full)
    }

    @Test("a changed threshold re-evaluates every contact at its clock (cause model)")
    func changedThreshold() throws {
        let yaml = DefaultModel.yaml.replacingOccurrences(of: "{name: sales_ready, when: {score: lead_score, at_least: 80}}",
                                                          with: "{name: sales_ready, when: {score: lead_score, at_least: 200}}")
        #expect(yaml != DefaultModel.yaml)
        let strict = try Model.load(yaml: yaml.replacingOccurrences(of: "version: default-1", with: "version: strict-1"), file: "strict.yaml")
        let p = Pipeline(model: .defaultModel())
        _ = run(p, Self.lines[...])
        let before = (0..<p.engine.contactCount).compactMap { p.engine.memberships(of: p.engine.contactId(at: $0))?[1] }
        #expect(before.contains(0))  // someone is sales_ready under the default model
        p.migrate(to: strict)
        let changes = p.engine.takeTransitions()
        #expect(!changes.isEmpty)
        for t in changes where t.group == 1 && t.from == 0 {
            #expect(t.to == 1)  // sales_ready -> nurture (200 is out of reach)
            #expect(t.cause == .model(previousVersion: "default-1"))
            let clock = p.engine.clock(of: t.contactId)!.clock
            #expect(t.at <= clock)
        }
        let after = (0..<p.engine.contactCount).compactMap { p.engine.memberships(of: p.engine.contactId(at: $0))?[1] }
        #expect(!after.contains(0))
        #expect(p.encoder.model.version == "strict-1")
    }

    @Test("state moves by meaning: renamed filters keep their history")
    func renamedFilter() throws {
        let yaml = DefaultModel.yaml.replacingOccurrences(of: "pricing_visit", with: "pricing_page")
        let renamed = try Model.load(yaml: yaml, file: "renamed.yaml")
        let a = Pipeline(model: .defaultModel())
        let full = run(a, Self.lines[...])
        let b = Pipeline(model: .defaultModel())
        var split = run(b, Self.lines[..<150])
        b.migrate(to: renamed)
        #expect(b.engine.takeTransitions().isEmpty)
        split += run(b, Self.lines[150...])
        #expect(split == full)
    }
}

extension String {
    func replacingOccurrences(of a: String, with b: String) -> String {
        var out = ""
        var rest = Substring(self)
        while let r = rest.range(of: a) {
            out += rest[..<r.lowerBound] + b
            rest = rest[r.upperBound...]
        }
        return out + rest
    }
}

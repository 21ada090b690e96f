import Foundation
import Testing
@testable import SegmentdEngine

/// The engine has two evaluators: the compiled one that makes transitions and the interpreted
/// one behind `explain` and `/contacts`. They must agree at every evaluation, or a contact's
/// explanation would contradict its transitions. This drives both over generated streams
/// (every event type and property the models read, late events, duplicates, far jumps in time)
/// and checks after every record, for every contact touched: the stored membership equals what
/// both evaluators give at the contact's latest evaluation, and the two agree at instants after
/// it (around each boundary too).
@Suite("The compiled and interpreted evaluators agree")
struct EvaluatorAgreementTests {
    /// SplitMix64: small, fast, deterministic.
    struct Generator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15  // wrapping on purpose: a hash step
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// A second model that uses every kind of condition: any/all/not, none_of, static terms of
    /// either sign, integer ranges, latest-of with `is`, first seen, scores in conditions.
    static let richModel = """
    version: rich-1
    filters:
      opens: {type: email_open, not: {prop: machine_open, equals: true}}
      clicks: {type: email_click}
      pricing: {type: page_view, prop: path, starts_with: /pricing}
      docs: {type: page_view, prop: path, in: [/docs, /docs/api, null]}
      demo: {type: form_submit, prop: form, equals: demo}
      subscribed: {type: subscribed}
      gone: {any: [{type: unsubscribed}, {type: spam_complaint}, {type: bounced, prop: kind, equals: hard}]}
    attributes:
      stage: {from: crm_stage, prop: stage, kind: string}
      size: {from: traits, prop: company_size, kind: integer}
      industry: {from: traits, prop: industry, kind: string, case_insensitive: true}
    conditions:
      reachable: {latest_of: [subscribed, gone], is: subscribed}
      big: {attribute: size, between: [100, 5000]}
    scores:
      heat:
        parts:
          - name: fit
            cap: 40
            terms:
              - {points: 25, when: big}
              - {points: -10, when: {attribute: industry, in: [retail]}}
              - {points: 20, when: {attribute: stage, in: [opportunity, customer]}}
          - name: recent
            cap: 60
            window: 3d
            per_event:
              - {points: 7, filter: opens}
              - {points: 13, filter: clicks}
              - {points: 29, filter: pricing}
          - name: slow
            cap: 30
            window: 45d
            per_event:
              - {points: 10, filter: demo}
              - {points: 4, filter: docs}
    groups:
      - name: stage
        unless: {not: reachable}
        segments:
          - {name: hot, when: {all: [{score: heat, at_least: 70}, {at_least: 2, of: pricing, within: 2d}]}}
          - {name: warm, when: {any: [{score: heat, at_least: 40}, {at_least: 3, of: opens, within: 12h}]}}
          - {name: dormant, when: {all: [{none_of: opens, within: 20d}, {first_seen_at_least: 20d}]}}
          - {name: other, when: always}
      - name: docs_reader
        flag: {all: [{at_least: 4, of: docs, within: 5d}, {not: {attribute: stage, equals: customer}}]}
    """

    static let types = ["subscribed", "email_open", "email_click", "email_reply", "page_view", "resource_download",
                        "form_submit", "meeting_booked", "unsubscribed", "bounced", "spam_complaint", "crm_stage", "traits"]

    static func record(_ rng: inout Generator, contact: String, ts: Millis, id: Int?) -> String {
        let type = types[Int.random(in: 0..<types.count, using: &rng)]
        var props: String
        switch type {
        case "email_open": props = Bool.random(using: &rng) ? #"{"machine_open": true}"# : "{}"
        case "email_click": props = [#"{"url": "https://x.io/case-studies/a"}"#, #"{"url": "https://x.io/blog"}"#, "{}"].randomElement(using: &rng)!
        case "page_view": props = [#"{"path": "/pricing"}"#, #"{"path": "/pricing/team"}"#, #"{"path": "/docs"}"#, #"{"path": "/docs/api"}"#, #"{"path": "/"}"#, "{}"].randomElement(using: &rng)!
        case "form_submit": props = [#"{"form": "demo"}"#, #"{"form": "newsletter"}"#].randomElement(using: &rng)!
        case "bounced": props = [#"{"kind": "hard"}"#, #"{"kind": "soft"}"#, "{}", #"{"kind": null}"#].randomElement(using: &rng)!
        case "crm_stage": props = #"{"stage": "\#(["lead", "prospect", "opportunity", "customer", "churned"].randomElement(using: &rng)!)"}"#
        case "traits":
            props = #"{"industry": "\#(["Software", "saas", "retail", "Technology"].randomElement(using: &rng)!)", "company_size": \#([20, 51, 99, 100, 1000, 1001, 5000, 6000].randomElement(using: &rng)!), "country": "\#(["US", "de", "BR"].randomElement(using: &rng)!)"}"#
        default: props = "{}"
        }
        let idPart = id.map { #","event_id":"e\#($0)""# } ?? ""
        return #"{"contact_id":"\#(contact)","type":"\#(type)","ts":\#(ts)\#(idPart),"props":\#(props)}"#
    }

    /// The model language's constructs: declared types, count/sum/min/max, distinct days in a
    /// zone with DST, date attributes.
    static let languageModel = """
    version: lang-agree-1
    timezone: America/New_York
    types:
      purchase: {props: {amount: number}}
      feature_used: {props: {minutes: number}}
    attributes:
      renewal: {from: traits, prop: renewal_date, kind: date}
    groups:
      - name: spend
        segments:
          - {name: big, when: {max: amount, of: {type: purchase}, within: 10d, at_least: 100}}
          - {name: steady, when: {all: [{min: amount, of: {type: purchase}, within: 10d, at_least: 20}, {count: {type: purchase}, within: 10d, at_least: 2}]}}
          - {name: small, when: {max: amount, of: {type: purchase}, within: 10d, at_most: 20}}
      - name: usage
        segments:
          - {name: heavy, when: {sum: minutes, of: {type: feature_used}, within: 3d, at_least: 90, max_events: 6}}
          - {name: daily, when: {days_active: {type: feature_used}, within: 5d, at_least: 4}}
          - {name: light, when: {sum: minutes, of: {type: feature_used}, within: 3d, at_most: 15, max_events: 6}}
      - name: renewal
        segments:
          - {name: due, when: {attribute: renewal, within_before: 14d}}
          - {name: lapsed, when: {attribute: renewal, within_after: 30d}}
          - {name: later, when: {attribute: renewal, is: future}}
    """

    static func languageRecord(_ rng: inout Generator, contact: String, ts: Millis, id: Int?) -> String {
        let type = ["purchase", "feature_used", "feature_used", "traits", "page_view"].randomElement(using: &rng)!
        var props = "{}"
        switch type {
        case "purchase": props = ["{}", #"{"amount": 5}"#, #"{"amount": 19.5}"#, #"{"amount": 20}"#, #"{"amount": 50}"#, #"{"amount": 100}"#, #"{"amount": 250}"#].randomElement(using: &rng)!
        case "feature_used": props = ["{}", #"{"minutes": 1}"#, #"{"minutes": 10}"#, #"{"minutes": 30}"#, #"{"minutes": 45.5}"#].randomElement(using: &rng)!
        case "traits":
            let date = ts + Millis.random(in: (-20 * 86_400_000)...(40 * 86_400_000), using: &rng)
            let text = EventTime.format(date)
            props = #"{"renewal_date": "\#(Bool.random(using: &rng) ? String(text.prefix(10)) : text)"}"#
        default: break
        }
        let idPart = id.map { #","event_id":"e\#($0)""# } ?? ""
        return #"{"contact_id":"\#(contact)","type":"\#(type)","ts":\#(ts)\#(idPart),"props":\#(props)}"#
    }

    /// Returns the transitions made per group (a stream that moves nobody checks little).
    @discardableResult
    func check(model: Model, seed: UInt64, records: Int, lateness: Millis,
               generate: (inout Generator, String, Millis, Int?) -> String = { EvaluatorAgreementTests.record(&$0, contact: $1, ts: $2, id: $3) }) throws -> [Int] {
        var rng = Generator(state: seed)
        let p = Pipeline(model: model, lateness: lateness)
        var clock = EventTime.parseRFC3339("2026-01-01T00:00:00.000Z")!
        var sent: [String] = []
        let contacts = (0..<12).map { "c\($0)" }
        for n in 0..<records {
            // Mostly small steps, sometimes hours or weeks, sometimes a late event.
            switch Int.random(in: 0..<100, using: &rng) {
            case 0..<60: clock += Millis.random(in: 0...600_000, using: &rng)
            case 60..<85: clock += Millis.random(in: 0...(36 * 3_600_000), using: &rng)
            case 85..<92: clock += Millis.random(in: 0...(40 * 86_400_000), using: &rng)
            default: break
            }
            let late = Int.random(in: 0..<100, using: &rng) < 8
            let ts = late ? clock - Millis.random(in: 0...(5 * 86_400_000), using: &rng) : clock
            let contact = contacts.randomElement(using: &rng)!
            let line: String
            if !sent.isEmpty && Int.random(in: 0..<100, using: &rng) < 3 {
                line = sent.randomElement(using: &rng)!  // an upstream redelivery
            } else {
                line = generate(&rng, contact, ts, Bool.random(using: &rng) ? n : nil)
                sent.append(line)
            }
            _ = p.process(Array(line.utf8))
            _ = p.engine.takeTransitions()
            for c in contacts {
                let id = Array(c.utf8)
                guard let now = p.engine.segmentsByBothEvaluators(id) else { continue }
                #expect(now.stored == now.compiled, "seed \(seed) record \(n) \(c) at \(EventTime.format(now.at)): stored \(now.stored), compiled \(now.compiled)")
                #expect(now.compiled == now.interpreted, "seed \(seed) record \(n) \(c) at \(EventTime.format(now.at)): compiled \(now.compiled), interpreted \(now.interpreted)")
                // Later instants: just before, at and after the next boundary, and far ahead.
                var probes: [Millis] = [now.at + 1, now.at + Millis.random(in: 0...(60 * 86_400_000), using: &rng)]
                if let next = p.engine.clock(of: id)?.next { probes += [next - 1, next, next + 1] }
                for t in probes where t >= now.at {
                    let later = p.engine.segmentsByBothEvaluators(id, at: t)!
                    #expect(later.compiled == later.interpreted, "seed \(seed) record \(n) \(c) at \(EventTime.format(t)): compiled \(later.compiled), interpreted \(later.interpreted)")
                }
            }
        }
        return p.engine.stats.transitionsByGroup
    }

    @Test("the default model", arguments: [UInt64(1), 2, 3])
    func defaultModel(seed: UInt64) throws {
        try check(model: .defaultModel(), seed: seed, records: 1500, lateness: 0)
    }

    @Test("the model language: aggregates, sums, days in a zone, dates", arguments: [UInt64(21), 22])
    func languageModel(seed: UInt64) throws {
        let model = try Model.load(yaml: EvaluatorAgreementTests.languageModel, file: "lang.yaml")
        let moved = try check(model: model, seed: seed, records: 1500, lateness: seed == 22 ? 3_600_000 : 0) {
            EvaluatorAgreementTests.languageRecord(&$0, contact: $1, ts: $2, id: $3)
        }
        #expect(moved.allSatisfy { $0 >= 50 }, "transitions per group: \(moved)")
    }

    @Test("a model using every kind of condition", arguments: [UInt64(11), 12, 13])
    func richModel(seed: UInt64) throws {
        let model = try Model.load(yaml: EvaluatorAgreementTests.richModel, file: "rich.yaml")
        try check(model: model, seed: seed, records: 1500, lateness: seed == 12 ? 3_600_000 : 0)
    }

    /// A timer's evaluation takes the boundary after the one it evaluates from the scan that
    /// found that one (an evaluation changes no list and not first seen). Checked after every
    /// record of the generated streams, for every contact, from its cursor and from instants
    /// around its next boundary: a second scan from the first boundary finds the same one.
    @Test("one boundary scan finds the next boundary and the one after it", arguments: [UInt64(31), 32])
    func boundaryScans(seed: UInt64) throws {
        let models: [(Model, (inout Generator, String, Millis, Int?) -> String)] = [
            (.defaultModel(), { EvaluatorAgreementTests.record(&$0, contact: $1, ts: $2, id: $3) }),
            (try Model.load(yaml: EvaluatorAgreementTests.richModel, file: "rich.yaml"), { EvaluatorAgreementTests.record(&$0, contact: $1, ts: $2, id: $3) }),
            (try Model.load(yaml: EvaluatorAgreementTests.languageModel, file: "lang.yaml"), { EvaluatorAgreementTests.languageRecord(&$0, contact: $1, ts: $2, id: $3) }),
        ]
        for (model, generate) in models {
            var rng = Generator(state: seed)
            let pipeline = Pipeline(model: model, lateness: 0)
            var clock = EventTime.parseRFC3339("2026-01-01T00:00:00.000Z")!
            let contacts = (0..<6).map { "c\($0)" }
            var checked = 0, withFollowing = 0
            for n in 0..<600 {
                clock += Int.random(in: 0..<10, using: &rng) == 0 ? Millis.random(in: 0...(20 * 86_400_000), using: &rng) : Millis.random(in: 0...3_600_000, using: &rng)
                let contact = contacts.randomElement(using: &rng)!
                _ = pipeline.process(Array(generate(&rng, contact, clock, n).utf8))
                _ = pipeline.engine.takeTransitions()
                for c in contacts {
                    let id = Array(c.utf8)
                    guard let now = pipeline.engine.clock(of: id) else { continue }
                    var froms = [now.clock, now.clock + Millis.random(in: 0...(30 * 86_400_000), using: &rng)]
                    if let next = now.next { froms += [next - 1, next, next + 1] }
                    for from in froms {
                        let scans = pipeline.engine.boundaryScans(id, after: from)!
                        #expect(scans.following == scans.scannedAfterFirst, "\(model.version) seed \(seed) record \(n) \(c) after \(from): one scan \(scans.first), \(scans.following); again \(scans.scannedAfterFirst)")
                        #expect(scans.first == SegmentEngine.unscheduled || scans.following > scans.first)
                        checked += 1
                        if scans.following != SegmentEngine.unscheduled { withFollowing += 1 }
                    }
                }
            }
            // Thousands of checks must have a boundary after the next one, or they check little
            // (from about a fifth of them to more than half, by model).
            #expect(withFollowing > 1_000, "\(model.version): \(withFollowing) of \(checked) with a second boundary")
        }
    }

    /// The leaf conditions of `c`: what its branching program tests (`all`, `any`, `not` and
    /// `always` become jumps, not steps).
    static func leaves(_ c: Condition) -> Int {
        switch c {
        case .always: return 0
        case .all(let cs), .any(let cs): return cs.map(leaves).reduce(0, +)
        case .not(let x): return leaves(x)
        default: return 1
        }
    }

    @Test("each group and score term compiles to one step per leaf condition, and every jump lands on a step or an exit")
    func programShape() throws {
        for model in [Model.defaultModel(), try Model.load(yaml: EvaluatorAgreementTests.richModel, file: "rich.yaml")] {
            let layout = StateLayout(model: model)
            let program = CompiledProgram(model: model, layout: layout, intern: { Int64($0.utf8.count) })
            defer { program.deallocate() }
            var expected = 0
            for group in model.groups {
                expected += (group.unless.map(EvaluatorAgreementTests.leaves) ?? 0)
                expected += group.segments.map { EvaluatorAgreementTests.leaves($0.when) }.reduce(0, +)
            }
            for score in model.scores { for part in score.parts { expected += part.staticTerms.map { EvaluatorAgreementTests.leaves($0.when) }.reduce(0, +) } }
            #expect(program.steps.count == expected)
            let segmentsPerGroup = model.groups.map(\.segments.count)
            for (k, step) in program.steps.enumerated() {
                for target in [step.onTrue, step.onFalse] {
                    // Built backwards: a step jumps only to steps built before it, so no program loops.
                    #expect(target < k)
                    if target < 0 { #expect(CompiledProgram.Target.result(target) <= segmentsPerGroup.max()!) }
                }
            }
            for (g, entry) in program.groupEntries.enumerated() where entry < 0 {
                #expect(CompiledProgram.Target.result(entry) <= segmentsPerGroup[g])
            }
        }
    }
}

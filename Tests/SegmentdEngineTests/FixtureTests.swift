import Foundation
import Testing
@testable import SegmentdEngine

/// The project's own end-to-end cases (Tests/SegmentdEngineTests/Fixtures): for each entry of
/// `manifest.json`, `NAME.events.ndjson` goes through a pipeline exactly as `segmentd replay`
/// runs it, and the transitions must equal `NAME.expected.ndjson`, contact by contact and in
/// order, on (group, from, to, at, cause.kind, cause.event_id, cause.event_type). Expected
/// lines are JSON arrays `[contact, group, from, to, at, kind, event_id, event_type]`, written
/// from the rules in docs/. When `outcomes` is given, each record's outcome must match too
/// (`applied`, `duplicate`, `bad:REASON`, `ignored:REASON`).
struct FixtureCase: Decodable, Sendable, CustomTestStringConvertible {
    var name: String
    var rule: String
    var until: String?
    var lateness: String?
    var now: String?
    var max_future: String?
    var max_record_bytes: Int?
    var outcomes: [String]?

    var testDescription: String { name }
}

let fixturesDir = repoRoot.appendingPathComponent("Tests/SegmentdEngineTests/Fixtures")

func fixtureCases() -> [FixtureCase] {
    let url = fixturesDir.appendingPathComponent("manifest.json")
    guard let data = try? Data(contentsOf: url) else { return [] }
    return (try? JSONDecoder().decode([FixtureCase].self, from: data)) ?? []
}

/// One transition as the fixtures write it.
struct FixtureTransition: Equatable, CustomStringConvertible {
    var group: String, from: String?, to: String?, at: String, kind: String, eventId: String?, eventType: String?
    var description: String {
        "\(group) \(from ?? "null")->\(to ?? "null") @\(at) \(kind) \(eventId ?? "-") \(eventType ?? "-")"
    }
}

@Suite("Fixtures: the repository's own cases for every rule")
struct FixtureTests {
    @Test("the fixtures are present and well formed")
    func present() throws {
        let cases = fixtureCases()
        #expect(cases.count >= 11, "fixtures not found under \(fixturesDir.path)")
        #expect(Set(cases.map(\.name)).count == cases.count)
    }

    @Test("case", arguments: fixtureCases())
    func fixture(_ c: FixtureCase) throws {
        let lateness = try c.lateness.map { try #require(DurationSpec(parsing: $0)).millis } ?? 0
        let p = Pipeline(model: .defaultModel(), lateness: lateness, maxRecordBytes: c.max_record_bytes ?? 1 << 20)
        if let now = c.now {
            let allowance = try #require(DurationSpec(parsing: c.max_future ?? "1h")).millis
            p.futureGuard = FutureGuard(now: try #require(EventTime.parseRFC3339(now)), allowance: allowance)
        }
        var produced: [[UInt8]] = []
        var outcomes: [String] = []
        // Records are lines; empty lines are not records (as in replay).
        let data = try Data(contentsOf: fixturesDir.appendingPathComponent("\(c.name).events.ndjson"))
        for line in data.split(separator: 10, omittingEmptySubsequences: true) {
            switch p.process(Array(line)) {
            case .applied: outcomes.append("applied")
            case .duplicate: outcomes.append("duplicate")
            case .bad(let e): outcomes.append("bad:" + e.reason.rawValue)
            case .ignored(let r): outcomes.append("ignored:" + r.rawValue)
            }
            for t in p.engine.takeTransitions() { produced.append(p.encoder.encode(t)) }
        }
        if let u = c.until { p.engine.advanceWatermark(to: try #require(EventTime.parseRFC3339(u))) }
        for t in p.engine.takeTransitions() { produced.append(p.encoder.encode(t)) }
        if let want = c.outcomes { #expect(outcomes == want, "record outcomes") }

        // Actual: read back from the CloudEvents documents, so the encoder is checked too.
        var actual: [String: [FixtureTransition]] = [:]
        for doc in produced {
            let obj = try #require(try JSONSerialization.jsonObject(with: Data(doc)) as? [String: Any])
            let d = try #require(obj["data"] as? [String: Any])
            let cause = try #require(d["cause"] as? [String: Any])
            actual[try #require(d["contact_id"] as? String), default: []].append(FixtureTransition(
                group: try #require(d["group"] as? String), from: d["from"] as? String, to: d["to"] as? String,
                at: try #require(d["at"] as? String), kind: try #require(cause["kind"] as? String),
                eventId: cause["event_id"] as? String, eventType: cause["event_type"] as? String))
        }
        var expected: [String: [FixtureTransition]] = [:]
        let exp = try Data(contentsOf: fixturesDir.appendingPathComponent("\(c.name).expected.ndjson"))
        for line in exp.split(separator: 10, omittingEmptySubsequences: true) {
            let a = try #require(try JSONSerialization.jsonObject(with: Data(line)) as? [Any])
            #expect(a.count == 8, "expected line: \(a)")
            func s(_ i: Int) -> String? { a[i] as? String }
            expected[try #require(s(0)), default: []].append(FixtureTransition(
                group: try #require(s(1)), from: s(2), to: s(3), at: try #require(s(4)), kind: try #require(s(5)),
                eventId: s(6), eventType: s(7)))
        }
        #expect(!expected.isEmpty)
        #expect(Set(actual.keys) == Set(expected.keys), "contacts: \(c.rule)")
        for (contact, want) in expected.sorted(by: { $0.key < $1.key }) {
            #expect(actual[contact] ?? [] == want, "contact \(contact): \(c.rule)")
        }
    }
}

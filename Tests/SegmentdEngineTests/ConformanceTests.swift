import Foundation
import Testing
@testable import SegmentdEngine

struct ManifestEntry: Decodable, Sendable, CustomTestStringConvertible {
    var name: String
    var rule: String
    var until: String?
    var lateness: String?
    var set: String = ""

    enum CodingKeys: String, CodingKey { case name, rule, until, lateness }
    var testDescription: String { "\(set)/\(name)" }
}

func manifest(_ set: String) -> [ManifestEntry] {
    let url = conformanceDir.appendingPathComponent(set).appendingPathComponent("manifest.json")
    guard let data = try? Data(contentsOf: url), var entries = try? JSONDecoder().decode([ManifestEntry].self, from: data) else {
        return []
    }
    for i in entries.indices { entries[i].set = set }
    return entries
}

/// Splits a file into lines as raw bytes (some lines are deliberately not UTF-8).
func byteLines(_ url: URL) throws -> [[UInt8]] {
    let data = try Data(contentsOf: url)
    return data.split(separator: 10, omittingEmptySubsequences: false).map { Array($0) }.filter { !$0.isEmpty }
}

/// The checker's comparison tuple, from a CloudEvents line.
func tuple(_ obj: [String: Any]) -> String {
    let d = obj["data"] as! [String: Any]
    let c = d["cause"] as! [String: Any]
    let at = EventTime.parseRFC3339(d["at"] as! String)!
    func s(_ v: Any?) -> String { (v as? String) ?? "null" }
    return "\(s(d["group"])) \(s(d["from"]))->\(s(d["to"])) @\(at) \(s(c["kind"])) \(s(c["event_id"])) \(s(c["event_type"]))"
}

func perContact(_ lines: [[UInt8]]) throws -> [String: [String]] {
    var out: [String: [String]] = [:]
    for l in lines {
        let obj = try JSONSerialization.jsonObject(with: Data(l)) as! [String: Any]
        let d = obj["data"] as! [String: Any]
        // Keyed by the id's bytes: Swift String keys would merge NFC and NFD spellings.
        out[(d["contact_id"] as! String).utf8.map { String(format: "%02x", $0) }.joined(), default: []].append(tuple(obj))
    }
    return out
}

/// The public conformance suite is optional: present beside the repository in CI (or named by
/// `SEGMENTD_CONFORMANCE_DIR`, which then must hold it); a lone clone relies on its own fixtures
/// (FixtureTests).
let conformanceExpected = ProcessInfo.processInfo.environment["SEGMENTD_CONFORMANCE_DIR"] != nil
    || FileManager.default.fileExists(atPath: conformanceDir.path)

@Suite("Conformance (shared/conformance, in-process, when present)")
struct ConformanceTests {
    @Test("the suite is present", .enabled(if: conformanceExpected, "no conformance suite beside this clone"))
    func present() {
        #expect(manifest("cases").count >= 50, "conformance cases not found under \(conformanceDir.path)")
        #expect(manifest("samples").count >= 2)
    }

    @Test("case", arguments: manifest("cases") + manifest("samples"))
    func conformance(_ e: ManifestEntry) throws {
        let dir = conformanceDir.appendingPathComponent(e.set)
        let lateness = e.lateness.flatMap { DurationSpec(parsing: $0)?.millis } ?? 0
        let p = Pipeline(model: .defaultModel(), lateness: lateness)
        var produced: [[UInt8]] = []
        var ids = Set<String>()
        for line in try byteLines(dir.appendingPathComponent("\(e.name).events.ndjson")) {
            _ = p.process(line)
            for t in p.engine.takeTransitions() { produced.append(p.encoder.encode(t)); ids.insert(p.encoder.id(of: t)) }
        }
        if let u = e.until { p.engine.advanceWatermark(to: EventTime.parseRFC3339(u)!) }
        for t in p.engine.takeTransitions() { produced.append(p.encoder.encode(t)); ids.insert(p.encoder.id(of: t)) }
        #expect(ids.count == produced.count, "transition ids must be unique")
        let expected = try perContact(try byteLines(dir.appendingPathComponent("\(e.name).expected.ndjson")))
        let actual = try perContact(produced)
        #expect(Set(actual.keys) == Set(expected.keys), "\(e.rule)")
        for (contact, exp) in expected.sorted(by: { $0.key < $1.key }) {
            #expect(actual[contact] == exp, "contact \(contact): \(e.rule)")
        }
    }
}

import Foundation
import SegmentdEngine
import SegmentdKafka
import Testing
@testable import SegmentdDaemon

/// `segmentd bootstrap`, end to end through the mock broker over TCP: history up to T into the
/// changelog, then `run` on the live topic from T.
@Suite("Bootstrap from history", .serialized)
struct BootstrapTests {
    typealias Harness = DaemonTests.Harness

    /// A record of the generated stream: its bytes, contact, time, and the Kafka timestamp it
    /// is produced with.
    struct Rec {
        var value: [UInt8]
        var contact: [UInt8]?
        var ts: Millis
        var eventId: String?
        var bad = false
    }

    /// `n` synthetic records (late ones, duplicates, bad ones included), in order of time (a bad
    /// record keeps the time of the record before it): the stream as a warehouse would hold it.
    func stream(_ n: Int, seed: UInt64) -> [Rec] {
        var s = SyntheticStream(contacts: 300, start: DaemonTests.start, step: 600_000, seed: seed, badFraction: 0.01)
        var decoder = EventDecoder(model: .defaultModel())
        var out: [Rec] = []
        var last = DaemonTests.start
        for _ in 0..<n {
            let r = s.nextRecord()
            if case .events(let e, _, _) = decoder.decode(r.value) {
                last = e.ts
                out.append(Rec(value: r.value, contact: Array(e.contactId), ts: e.ts, eventId: e.eventId.map { String(decoding: $0, as: UTF8.self) }))
            } else if case .bad = decoder.decode(r.value) {
                out.append(Rec(value: r.value, contact: nil, ts: last, bad: true))
            } else {
                out.append(Rec(value: r.value, contact: nil, ts: last))
            }
        }
        return out.enumerated().sorted { $0.element.ts != $1.element.ts ? $0.element.ts < $1.element.ts : $0.offset < $1.offset }.map(\.element)
    }

    func produce(_ h: Harness, _ records: [Rec], timestamp: (Rec) -> Millis) throws {
        let p = try KafkaProducer(config: ["bootstrap.servers": h.config.brokers, "partitioner": "murmur2_random", "linger.ms": "5"])
        for r in records {
            try p.produce(topic: h.config.inputTopic, key: r.contact ?? Array("malformed".utf8), value: r.value, timestampMs: timestamp(r))
        }
        try p.close()
    }

    /// The changelog's state, restored into one engine per partition as the daemon restores it.
    func restoredEngines(_ h: Harness, partitions: Int32) throws -> [Int32: (SegmentEngine, Changelog.Restored)] {
        let read = try Changelog.read(config: ["bootstrap.servers": h.config.brokers], topic: h.config.changelogTopic, partitions: Array(0..<partitions))
        var out: [Int32: (SegmentEngine, Changelog.Restored)] = [:]
        for (p, r) in read {
            let e = SegmentEngine(model: .defaultModel())
            try r.contacts.forEachLatest { c, s in try e.restore(contactId: c, snapshot: s) }
            if let cp = r.checkpoint { e.restoreCheckpoint(streamTime: cp.streamTime, watermark: cp.watermark) }
            out[p] = (e, r)
        }
        return out
    }

    @Test("bootstrap from the first part of a stream, then run on the rest: the transitions after T and the final state equal replay of the whole stream")
    func handOff() throws { try handOff(fromTopic: false) }

    @Test("the same with history read from the input topic itself, up to its offset at T")
    func handOffFromTopic() throws { try handOff(fromTopic: true) }

    func handOff(fromTopic: Bool) throws {
        let h = try Harness()
        // A quiet day and a half before T: boundaries fall between the last record of history
        // and T (they belong to history, and must not be emitted by run).
        let generated = stream(3300, seed: 301)
        let quietFrom = generated[1800].ts, until = quietFrom + 36 * 3_600_000
        let all = generated.filter { $0.ts < quietFrom || $0.ts >= until }
        let history = all.filter { $0.ts < until }
        var live = all.filter { $0.ts >= until }
        #expect(history.count >= 1700 && live.count >= 1100)
        // Redeliveries: events of history that reach the live topic again, after T (a producer
        // retrying late). The engine's duplicate memory, carried by the snapshots, catches them.
        let redelivered = history.suffix(400).filter { $0.eventId != nil && $0.contact != nil }.enumerated().filter { $0.offset % 10 == 0 }.map(\.element)
        #expect(redelivered.count >= 20)
        live.insert(contentsOf: redelivered, at: 40)
        // The whole stream as the input topic holds it: Kafka timestamps follow the hand-off.
        try produce(h, history) { $0.ts }
        var liveStamp = until
        try produce(h, live) { r in
            liveStamp = max(liveStamp, r.ts)
            return liveStamp
        }

        // History as files hold it: in no particular order (bootstrap sorts by time).
        var rng = SeededGenerator(seed: 17)
        let shuffled = history.shuffled(using: &rng)
        let store = HistoryStore(model: .defaultModel(), partitions: 4, until: until)
        let b = Bootstrap(config: h.config, model: .defaultModel(), until: until, log: { _ in })
        let target = try b.prepare()
        var bad = 0
        if fromTopic {
            var reported: [Int64] = []
            let n = try b.readTopic(into: store, target: target, from: .earliest) { _, o, _ in reported.append(o) }
            #expect(n == history.count, "the topic's records before the hand-off offsets")
            bad = reported.count
            #expect(store.counts.kept == history.filter { $0.contact != nil }.count)
            #expect(bad == history.filter(\.bad).count)
        } else {
            for r in shuffled + live.prefix(50) {
                if case .bad = r.value.withUnsafeBufferPointer({ store.add(line: $0) }) { bad += 1 }
            }
            #expect(store.counts.afterHandOff == live.prefix(50).filter { $0.contact != nil && $0.ts >= until }.count)
            #expect(store.counts.kept == history.filter { $0.contact != nil }.count + live.prefix(50).filter { $0.contact != nil && $0.ts < until }.count)
            #expect(bad == history.filter(\.bad).count + live.prefix(50).filter(\.bad).count)
        }
        #expect(bad > 5, "bad lines are counted and reported, not lost")
        let input = try h.read(h.config.inputTopic)
        for p in Int32(0)..<4 {
            let recs = input.filter { $0.partition == p }.sorted { $0.offset < $1.offset }
            let expected = recs.first { $0.timestampMs >= until }?.offset ?? (recs.last.map { $0.offset + 1 } ?? 0)
            #expect(target.handOff[p] == expected, "partition \(p): the input offset at T")
        }
        // T after every record: the end of each partition; before every record: its start.
        let after = try Bootstrap(config: h.config, model: .defaultModel(), until: live.map(\.ts).max()! + 86_400_000, log: { _ in }).prepare()
        let before = try Bootstrap(config: h.config, model: .defaultModel(), until: all.map(\.ts).min()! - 1, log: { _ in }).prepare()
        for p in Int32(0)..<4 {
            #expect(after.handOff[p] == Int64(input.filter { $0.partition == p }.count))
            #expect(before.handOff[p] == 0)
        }
        let summary = try b.run(history: store, target: target)
        #expect(summary.contacts > 200)
        #expect(summary.transitionsSuppressed > 500)
        #expect(try h.read(h.config.outputTopic).isEmpty, "nothing from history reaches the output topic")

        // run on the rest: it restores the bootstrap's state and reads the live topic from T.
        let liveCount = live.count
        let d = try h.runDaemon(until: { $0.status.records >= liveCount })
        #expect(d.status.records == live.count, "the daemon read exactly the records from the hand-off on")
        #expect(d.status.restoredContacts == summary.contacts)

        // Expected: replay of the whole stream, per input partition in offset order (as the
        // daemon and its restarts see it), without the historical transitions.
        var expected: [String: [String]] = [:]
        var replayEngines: [Int32: Pipeline] = [:]
        var historical = 0
        for p in Int32(0)..<4 {
            let pipeline = Pipeline(model: .defaultModel())
            for r in input.filter({ $0.partition == p }).sorted(by: { $0.offset < $1.offset }) {
                _ = pipeline.process(r.value)
                for t in pipeline.engine.takeTransitions() {
                    if t.at < until { historical += 1; continue }
                    h.add(pipeline.encoder.encode(t), to: &expected)
                }
            }
            replayEngines[p] = pipeline
        }
        #expect(historical > 500)
        let (actual, dups) = try h.actual()
        #expect(dups == 0)
        #expect(expected.values.map(\.count).reduce(0, +) > 300)
        let differing = expected.keys.filter { actual[$0] != expected[$0] }.sorted()
        #expect(differing.isEmpty, "\(differing.count) contacts differ; first: \(differing.first.map { "\($0)\nexpected \(expected[$0]!)\nactual   \(actual[$0] ?? [])" } ?? "")")
        #expect(actual.count == expected.count)

        // The final state: every contact's state as the changelog holds it equals replay's
        // (both restored from their snapshots: a restored engine plans its next boundary from
        // the snapshot alone), and each partition's times.
        let restored = try restoredEngines(h, partitions: 4)
        for p in Int32(0)..<4 {
            let replayed = replayEngines[p]!.engine
            let replay = SegmentEngine(model: .defaultModel())
            for i in 0..<replayed.contactCount { try replay.restore(contactId: replayed.contactId(at: i), snapshot: replayed.snapshot(contact: i)) }
            replay.restoreCheckpoint(streamTime: replayed.checkpoint.streamTime, watermark: replayed.checkpoint.watermark)
            let (engine, r) = restored[p]!
            #expect(engine.contactCount == replay.contactCount, "partition \(p)")
            #expect(r.checkpoint?.streamTime == replay.checkpoint.streamTime)
            #expect(r.checkpoint?.watermark == replay.checkpoint.watermark)
            for i in 0..<replay.contactCount {
                let c = replay.contactId(at: i)
                #expect(engine.memberships(of: c) == replay.memberships(of: c), "contact \(String(decoding: c, as: UTF8.self))")
                #expect(engine.clock(of: c)?.clock == replay.clock(of: c)?.clock)
                // The next boundary: equal, except where the daemon's engine passed a planned
                // instant that changed nothing (no transition, so that contact's snapshot was
                // not written again and still names the passed instant; restoring it fires
                // nothing either).
                let next = engine.clock(of: c)?.next, replayNext = replay.clock(of: c)?.next
                #expect(next == replayNext || (next ?? .max) <= r.checkpoint!.watermark && (replayNext ?? .max) > r.checkpoint!.watermark,
                        "contact \(String(decoding: c, as: UTF8.self)): next \(next.map(EventTime.format) ?? "none") vs \(replayNext.map(EventTime.format) ?? "none")")
                #expect(engine.explain(c).map { "\($0)" } == replay.explain(c).map { "\($0)" })
            }
        }
    }

    static let until = EventTime.parseRFC3339("2026-06-01T00:00:00Z")!

    static let mapping = """
    contact_id: Email Address
    columns:
      created_at: OPTIN_TIME
      last_opened_at: LAST_OPEN
      unsubscribed_at: UNSUB_TIME
      lifecycle_stage: Lifecycle Stage
      industry: Industry
      company_size: Employees
      country: Country
    timezone: "+00:00"
    """

    static let export = """
    Email Address,OPTIN_TIME,LAST_OPEN,UNSUB_TIME,Lifecycle Stage,Industry,Employees,Country\r
    a@example.com,2026-05-20 10:00:00,2026-05-25T09:00:00Z,,,Software,200,US\r
    b@example.com,2025-01-10,2026-02-01 08:30,,lead,Retail,"5,000",de\r
    c@example.com,1748736000000,,,customer,,,\r
    d@example.com,2026-04-01,,2026-05-01 12:00:00,,,,\r
    e@example.com,2026-05-30,yesterday,,,"Saas, Inc.",1-10,\r
    ,2026-05-01,,,,,,\r
    f@example.com,,2026-06-02T00:00:00Z,,,,,\r

    """

    @Test("a CSV export of a few contacts gives the memberships a hand check says; --emit-initial writes them as segment.snapshot records")
    func csvExport() throws {
        let h = try Harness()
        let mapping = try CSVMapping.load(yaml: BootstrapTests.mapping, file: "mapping.yaml")
        let store = HistoryStore(model: .defaultModel(), partitions: 4, until: BootstrapTests.until)
        var problems: [String] = []
        try store.addCSV(Array(BootstrapTests.export.utf8), mapping: mapping, source: "export.csv") { problems.append($0.description) }
        #expect(problems == [
            "line 6: invalid_time: column 'LAST_OPEN' (last_opened_at): 'yesterday' is not an RFC 3339 time, epoch milliseconds or a date and time",
            "line 6: wrong_type: column 'Employees' (company_size): '1-10' is not a whole number of employees",
            "line 7: missing_field: column 'Email Address' (contact_id) is empty: row not read",
        ])
        #expect(store.counts.afterHandOff == 1, "f's open after T is left to the input topic")
        let b = Bootstrap(config: h.config, model: .defaultModel(), until: BootstrapTests.until, log: { _ in })
        b.emitInitial = true
        let summary = try b.run(history: store, target: try b.prepare())
        #expect(summary.contacts == 5)

        // By hand, at T (2026-06-01), default model [lifecycle, lead_score, engagement_tier, hot_lead]:
        // a: subscribed 12 days before, a human open 7 days before; software (30) + 200 people
        //    (20) + US (10) capped at 50, + 5 for the open = 55.
        // b: subscribed long ago, last open 120 days before T: inactive; fit: DE 10 only
        //    (5,000 people is above 1,000); nothing within 30 days: cold.
        // c: a customer (the stage holds as of just before T); no traits, no engagement.
        // d: unsubscribed after subscribing: suppressed everywhere (lead_score has no segment).
        // e: subscribed 2 days before; its open could not be read; industry "Saas, Inc." is
        //    not "saas"; no size: fit 0.
        let expected: [String: [String?]] = [
            "a@example.com": ["new_subscriber", "nurture", "warm", nil],
            "b@example.com": ["inactive", "top_of_funnel", "cold", nil],
            "c@example.com": ["customer", "top_of_funnel", "cold", nil],
            "d@example.com": ["suppressed", nil, "dead", nil],
            "e@example.com": ["new_subscriber", "top_of_funnel", "cold", nil],
        ]
        let m = Model.defaultModel()
        var fromChangelog: [String: [String?]] = [:]
        for (p, (engine, _)) in try restoredEngines(h, partitions: 4) {
            for i in 0..<engine.contactCount {
                let c = engine.contactId(at: i)
                #expect(Murmur2.partition(c, count: 4) == p, "each contact lives on its murmur2 partition")
                fromChangelog[String(decoding: c, as: UTF8.self)] = engine.memberships(of: c)!.enumerated().map { g, s in s.map { m.groups[g].segments[$0].name } }
            }
        }
        #expect(fromChangelog == expected)

        // --emit-initial: one segment.snapshot per contact and group, keyed by contact.
        let out = try h.read(h.config.outputTopic)
        #expect(out.count == 5 * m.groups.count)
        var fromSnapshots: [String: [String?]] = [:]
        var ids = Set<String>()
        for r in out {
            let doc = try JSONSerialization.jsonObject(with: Data(r.value)) as! [String: Any]
            let data = doc["data"] as! [String: Any]
            #expect(doc["type"] as? String == "segment.snapshot")
            #expect(doc["specversion"] as? String == "1.0")
            #expect(doc["source"] as? String == "segmentd/\(data["group"] as! String)")
            #expect(doc["time"] as? String == "2026-05-31T23:59:59.999Z")
            #expect(data["at"] as? String == "2026-05-31T23:59:59.999Z")
            #expect(data["model_version"] as? String == "default-1")
            #expect((doc["id"] as? String)?.count == 32)
            ids.insert(doc["id"] as! String)
            let contact = data["contact_id"] as! String
            #expect(doc["subject"] as? String == contact)
            #expect(r.key == Array(contact.utf8))
            let g = m.groups.firstIndex { $0.name == data["group"] as? String }!
            var row = fromSnapshots[contact] ?? Array(repeating: nil, count: m.groups.count)
            row[g] = data["segment"] as? String
            fromSnapshots[contact] = row
        }
        #expect(ids.count == out.count)
        #expect(fromSnapshots == expected)
    }

    @Test("a changelog that holds state is not overwritten without --force; --force replaces it, deleting contacts history lacks")
    func overwrite() throws {
        let h = try Harness()
        let until = BootstrapTests.until
        func store(_ lines: [String]) -> HistoryStore {
            let s = HistoryStore(model: .defaultModel(), partitions: 4, until: until)
            for l in lines { Array(l.utf8).withUnsafeBufferPointer { _ = s.add(line: $0) } }
            return s
        }
        let first = store((0..<40).map { #"{"contact_id":"old-\#($0)","type":"subscribed","ts":"2026-05-0\#($0 % 9 + 1)T00:00:00Z"}"# })
        let b = Bootstrap(config: h.config, model: .defaultModel(), until: until, log: { _ in })
        _ = try b.run(history: first, target: try b.prepare())
        #expect(try restoredEngines(h, partitions: 4).values.map { $0.0.contactCount }.reduce(0, +) == 40)
        let before = try h.read(h.config.changelogTopic).count

        let again = Bootstrap(config: h.config, model: .defaultModel(), until: until, log: { _ in })
        #expect(throws: Bootstrap.Refusal.self) { _ = try again.prepare() }
        #expect(try h.read(h.config.changelogTopic).count == before, "nothing written")

        again.force = true
        let second = store((30..<50).map { #"{"contact_id":"old-\#($0)","type":"email_open","ts":"2026-05-20T00:00:00Z"}"# })
        let summary = try again.run(history: second, target: try again.prepare())
        #expect(summary.tombstones == 30)
        let restored = try restoredEngines(h, partitions: 4)
        var contacts = Set<String>()
        for (engine, _) in restored.values {
            for i in 0..<engine.contactCount { contacts.insert(String(decoding: engine.contactId(at: i), as: UTF8.self)) }
        }
        #expect(contacts == Set((30..<50).map { "old-\($0)" }))
        // old-30..39 have the second history's state only (an open, no subscription).
        let e = restored[Murmur2.partition(Array("old-35".utf8), count: 4)]!.0
        #expect(e.memberships(of: Array("old-35".utf8))?[0] == nil)
    }
}

extension BootstrapTests {
    @Test("segment.snapshot in binary mode: data alone, the attributes in ce_* headers; ids are deterministic and differ by segment and instant")
    func snapshotBinaryMode() throws {
        let m = Model.defaultModel()
        let structured = SnapshotEncoder(model: m), binary = SnapshotEncoder(model: m, binary: true)
        let contact = Array("c-\"1\"".utf8)
        var doc: [UInt8] = [], data: [UInt8] = []
        #expect(structured.encode(contactId: contact, group: 1, segment: nil, at: BootstrapTests.until - 1, to: &doc).isEmpty)
        let headers = binary.encode(contactId: contact, group: 1, segment: nil, at: BootstrapTests.until - 1, to: &data)
        let full = try JSONSerialization.jsonObject(with: Data(doc)) as! [String: Any]
        let d = try JSONSerialization.jsonObject(with: Data(data)) as! [String: Any]
        #expect(d["contact_id"] as? String == "c-\"1\"")
        #expect(d["group"] as? String == "lead_score")
        #expect(d["segment"] is NSNull)
        #expect(NSDictionary(dictionary: full["data"] as! [String: Any]).isEqual(to: d))
        let h = Dictionary(uniqueKeysWithValues: headers.map { ($0.key, String(decoding: $0.value, as: UTF8.self)) })
        #expect(h == ["ce_specversion": "1.0", "ce_type": "segment.snapshot", "ce_source": "segmentd/lead_score",
                      "ce_id": full["id"] as! String, "ce_time": "2026-05-31T23:59:59.999Z", "ce_subject": "c-\"1\"",
                      "content-type": "application/json"])
        let id = structured.id(contactId: contact, group: 1, segment: nil, at: 5)
        #expect(id == structured.id(contactId: contact, group: 1, segment: nil, at: 5))
        #expect(id != structured.id(contactId: contact, group: 1, segment: 0, at: 5))
        #expect(id != structured.id(contactId: contact, group: 1, segment: nil, at: 6))
        #expect(id != structured.id(contactId: contact, group: 2, segment: nil, at: 5))
    }
}

/// A deterministic generator for shuffles in tests (SplitMix64).
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

/// The `segmentd bootstrap` command itself (the built binary) against the test broker.
@Suite("bootstrap command", .serialized)
struct BootstrapCommandTests {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let bin = repoRoot.appendingPathComponent(".build/debug/segmentd").path

    static func segmentd(_ arguments: [String]) throws -> (stderr: String, status: Int32) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: bin)
        p.arguments = arguments
        let errFile = FileManager.default.temporaryDirectory.appendingPathComponent("segmentd-bootstrap-\(UUID().uuidString).err")
        guard FileManager.default.createFile(atPath: errFile.path, contents: nil) else { throw CocoaError(.fileWriteUnknown) }
        defer { try? FileManager.default.removeItem(at: errFile) }
        p.standardOutput = FileHandle.nullDevice
        p.standardError = try FileHandle(forWritingTo: errFile)
        try p.run()
        p.waitUntilExit()
        return ((try? String(contentsOf: errFile, encoding: .utf8)) ?? "", p.terminationStatus)
    }

    @Test("exit statuses: 0 and a summary, bad lines in --bad-lines; 65 for a changelog with state unless --force; 64 and 66 for the command line and files")
    func exitStatuses() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.bin) else {
            Issue.record("build the segmentd binary first (swift build)")
            return
        }
        let h = try DaemonTests.Harness()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("segmentd-bootstrap-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let history = dir.appendingPathComponent("history.ndjson").path
        try """
        {"event_id":"p1","contact_id":"c-1","type":"page_view","ts":"2026-05-10T09:00:00Z","props":{"path":"/pricing"}}
        {"event_id":"s1","contact_id":"c-1","type":"subscribed","ts":"2026-05-02T09:00:00Z"}
        {"contact_id":"c-2","type":"email_open"
        {"event_id":"x1","contact_id":"c-2","type":"email_open","ts":"2026-06-01T00:00:00Z"}

        """.write(toFile: history, atomically: true, encoding: .utf8)
        let bad = dir.appendingPathComponent("bad.txt").path
        let common = ["bootstrap", "--brokers", h.config.brokers, "--group-id", h.config.groupId, "--until", "2026-06-01T00:00:00Z"]

        let first = try Self.segmentd(common + [history, "--bad-lines", bad])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stderr.contains("kept (before the hand-off): 2, at or after it (left to the input topic): 1"), "\(first.stderr)")
        #expect(first.stderr.contains("state: 1 contacts on 4 partitions"), "\(first.stderr)")
        #expect(first.stderr.contains("lifecycle: suppressed 0, customer 0, new_subscriber 1,"), "\(first.stderr)")
        let badLines = try String(contentsOfFile: bad, encoding: .utf8)
        #expect(badLines.hasPrefix("\(history): line 3: invalid_json: "), "\(badLines)")

        let refused = try Self.segmentd(common + [history, "--quiet"])
        #expect(refused.status == 65)
        #expect(refused.stderr.contains("already holds state (1 contacts"), "\(refused.stderr)")
        let forced = try Self.segmentd(common + [history, "--quiet", "--force"])
        #expect(forced.status == 0, "\(forced.stderr)")

        // A CSV export through its mapping, replacing the state, with the snapshot records.
        let csv = dir.appendingPathComponent("export.csv").path, mapping = dir.appendingPathComponent("mapping.yaml").path
        try BootstrapTests.export.write(toFile: csv, atomically: true, encoding: .utf8)
        try BootstrapTests.mapping.write(toFile: mapping, atomically: true, encoding: .utf8)
        let fromCSV = try Self.segmentd(common + ["--csv", csv, "--mapping", mapping, "--force", "--emit-initial", "--bad-lines", bad])
        #expect(fromCSV.status == 0, "\(fromCSV.stderr)")
        #expect(fromCSV.stderr.contains("segment.snapshot records written: 20"), "\(fromCSV.stderr)")
        #expect(fromCSV.stderr.contains("(1 deletions of replaced contacts)"), "c-1 is not in the export: \(fromCSV.stderr)")
        #expect(try String(contentsOfFile: bad, encoding: .utf8).components(separatedBy: "\n").filter { $0.hasPrefix("\(csv): line ") }.count == 3)
        try "contact_id: Email Address\ncolumns:\n  last_open_at: LAST_OPEN\n".write(toFile: mapping, atomically: true, encoding: .utf8)
        let badMapping = try Self.segmentd(common + ["--csv", csv, "--mapping", mapping, "--force"])
        #expect(badMapping.status == 65)
        #expect(badMapping.stderr.contains("unknown role 'last_open_at' (did you mean 'last_opened_at'?)"), "\(badMapping.stderr)")

        #expect(try Self.segmentd(common + ["--csv", history]).status == 64, "--csv without --mapping")
        #expect(try Self.segmentd(common).status == 64, "no history")
        #expect(try Self.segmentd(common + [dir.appendingPathComponent("missing.ndjson").path]).status == 66)
        #expect(try Self.segmentd(["bootstrap", "--brokers", h.config.brokers, "--until", "soon", history]).status == 64)
    }
}

import Foundation
import SegmentdEngine
import SegmentdKafka
import Testing
@testable import SegmentdDaemon

/// `segmentd rebuild` (backfill for a changed model), end to end through the mock broker over
/// TCP: an instance runs under the default model, the rebuild builds the new model's state from
/// the input topic in a shadow while the instance goes on, then takes over; `run` continues
/// under the new model.
@Suite("Rebuild for a changed model", .serialized)
struct RebuildTests {
    typealias Harness = DaemonTests.Harness

    /// The default model with a new flag over a filter it does not count (3 docs pages in 14
    /// days), hot leads at `pricingVisits` pricing visits in 7 days, and version `version`.
    static func withDocsFlag(version: String, pricingVisits: Int) -> Model {
        try! Model.load(yaml: Model.defaultModel().source
            .replacingOccurrences(of: "version: default-1", with: "version: \(version)")
            .replacingOccurrences(of: "    flag: {at_least: 2, of: pricing_visit, within: 7d}", with: """
                flag: {at_least: \(pricingVisits), of: pricing_visit, within: 7d}
              - name: docs_reader
                flag: {at_least: 3, of: {type: page_view, prop: path, starts_with: /docs}, within: 14d}
            """), file: "\(version).yaml")
    }

    /// The new rule, and a stricter hot lead (3 pricing visits where the old model kept 2:
    /// adoption would keep only the 2 times the old list held).
    static let newModel = withDocsFlag(version: "backfill-1", pricingVisits: 3)

    /// Final memberships per contact (by names) of a replay of each input partition in offset
    /// order up to `ends` (all when nil), under `model`; and the transitions it emitted past
    /// `from` per partition, per contact (the harness's form).
    func replay(_ records: [KafkaRecord], model: Model, upTo ends: [Int32: Int64]? = nil, emittedFrom: [Int32: Int64] = [:],
                _ h: Harness) -> (memberships: [String: [String: String]], transitions: [String: [String]], engines: [Int32: SegmentEngine]) {
        var members: [String: [String: String]] = [:]
        var transitions: [String: [String]] = [:]
        var engines: [Int32: SegmentEngine] = [:]
        for p in Set(records.map(\.partition)) {
            let pipeline = Pipeline(model: model)
            for r in records.filter({ $0.partition == p }).sorted(by: { $0.offset < $1.offset }) {
                if let end = ends?[p], r.offset >= end { break }
                _ = pipeline.process(r.value)
                for t in pipeline.engine.takeTransitions() where r.offset >= emittedFrom[p] ?? .max {
                    h.add(pipeline.encoder.encode(t), to: &transitions)
                }
            }
            let engine = pipeline.engine
            for i in 0..<engine.contactCount {
                let c = engine.contactId(at: i)
                var named: [String: String] = [:]
                for (g, s) in engine.memberships(of: c)!.enumerated() { if let s { named[model.groups[g].name] = model.groups[g].segments[s].name } }
                members[String(decoding: c, as: UTF8.self)] = named
            }
            engines[p] = engine
        }
        return (members, transitions, engines)
    }

    /// The output topic's records past `positions` (per partition: how many it had).
    func output(_ h: Harness, after positions: [Int32: Int]) throws -> [KafkaRecord] {
        try h.read(h.config.outputTopic).filter { $0.offset >= Int64(positions[$0.partition] ?? 0) }.sorted { ($0.partition, $0.offset) < ($1.partition, $1.offset) }
    }

    func positions(_ records: [KafkaRecord]) -> [Int32: Int] {
        var out: [Int32: Int] = [:]
        for r in records { out[r.partition] = max(out[r.partition] ?? 0, Int(r.offset) + 1) }
        return out
    }

    func decode(_ r: KafkaRecord) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(r.value)) as! [String: Any]
    }

    @Test("a backfilled new rule gives what replay under the new model gives; the switch emits each difference once (cause model); run then goes on under the new model without re-adopting")
    func rebuildAndSwitch() throws {
        let h = try Harness()
        let records = BootstrapTests().stream(4200, seed: 501)
        let first = Array(records[0..<2400]), second = Array(records[2400..<3000]), last = Array(records[3000..<3300])
        let third = Array(records[3300...])
        let producing = BootstrapTests()
        try producing.produce(h, first) { $0.ts }
        _ = try h.runDaemon(until: { $0.status.records >= first.count })

        // The shadow: built from the topic up to the instance's position, nothing written.
        let rebuild = Rebuild(config: h.config, model: RebuildTests.newModel, log: { _ in })
        let live = try rebuild.readLive()
        #expect(live.modelVersions == ["default-1"])
        let history = rebuild.history(live)
        var bad = 0
        let read = try rebuild.readTopic(into: history, live: live, report: { _, _, _ in bad += 1 })
        #expect(read == first.count)
        #expect(bad == first.filter(\.bad).count)
        let shadow = rebuild.build(history: history, live: live)
        #expect(shadow.historyTransitions > 500, "history's transitions are dropped")
        let outputBefore = try h.read(h.config.outputTopic)
        let changelogBefore = try h.read(h.config.changelogTopic).count

        // The instance keeps serving under the old model meanwhile; the shadow follows it.
        try producing.produce(h, second) { $0.ts }
        _ = try h.runDaemon(until: { $0.status.records >= second.count })
        #expect(try h.read(h.config.outputTopic).count > outputBefore.count)
        #expect(try h.read(h.config.changelogTopic).count > changelogBefore)
        #expect(try rebuild.follow(shadow) == second.count)
        try producing.produce(h, last) { $0.ts }
        _ = try h.runDaemon(until: { $0.status.records >= last.count })
        let outputAtSwitch = positions(try h.read(h.config.outputTopic))

        // The take-over: catches up on the last records, writes the switch.
        let summary = try rebuild.takeOver(shadow)
        #expect(summary.catchUpRecords == last.count)
        #expect(summary.partitions == 4)
        #expect(summary.previousVersions == ["default-1"])
        #expect(summary.counts.onlyOld == 0 && summary.counts.onlyRebuilt == 0, "the whole history is in the topic")

        // Expected: replay of everything the instance applied, under both models.
        let input = try h.read(h.config.inputTopic)
        let ends = summary.checkpoints
        #expect(ends.values.reduce(0, +) == Int64(first.count + second.count + last.count))
        let before = replay(input, model: .defaultModel(), upTo: ends, h)
        let after = replay(input, model: RebuildTests.newModel, upTo: ends, h)
        #expect(after.memberships.values.contains { $0["docs_reader"] != nil }, "the new rule has members at once")
        // The differences, per contact and group (a group missing from the old model: none).
        var expectedSwitch: Set<String> = []
        for (contact, new) in after.memberships {
            let old = before.memberships[contact] ?? [:]
            for g in RebuildTests.newModel.groups.map(\.name) where old[g] != new[g] {
                expectedSwitch.insert("\(contact) \(g) \(old[g] ?? "null")->\(new[g] ?? "null")")
            }
        }
        #expect(expectedSwitch.count > 50)
        #expect(expectedSwitch.contains { $0.contains(" docs_reader null->docs_reader") })
        let switchRecords = try output(h, after: outputAtSwitch).map(decode)
        var actualSwitch: [String] = []
        var ids = Set<String>()
        for doc in switchRecords {
            let data = doc["data"] as! [String: Any], cause = data["cause"] as! [String: Any]
            #expect(cause["kind"] as? String == "model")
            #expect(cause["previous_model_version"] as? String == "default-1")
            #expect(data["model_version"] as? String == "backfill-1")
            ids.insert(doc["id"] as! String)
            actualSwitch.append("\(data["contact_id"] as! String) \(data["group"] as! String) \((data["from"] as? String) ?? "null")->\((data["to"] as? String) ?? "null")")
        }
        #expect(actualSwitch.count == expectedSwitch.count, "each difference once, nothing else")
        #expect(Set(actualSwitch) == expectedSwitch)
        #expect(ids.count == switchRecords.count)

        // The changelog holds replay's state under the new model.
        let restored = try Changelog.read(config: ["bootstrap.servers": h.config.brokers], topic: h.config.changelogTopic, partitions: [0, 1, 2, 3])
        for (p, r) in restored {
            #expect(r.checkpoint?.modelVersion == "backfill-1")
            #expect(r.checkpoint?.offset == ends[p])
            let engine = SegmentEngine(model: RebuildTests.newModel)
            try r.contacts.forEachLatest { c, s in try engine.restore(contactId: c, snapshot: s) }
            let replayed = after.engines[p]!
            #expect(engine.contactCount == replayed.contactCount)
            for i in 0..<replayed.contactCount {
                let c = replayed.contactId(at: i)
                #expect(engine.memberships(of: c) == replayed.memberships(of: c), "contact \(String(decoding: c, as: UTF8.self))")
                // The same reasons, figures and next change at the switch (the clock differs where
                // the switch emitted: its last transition is the switch's).
                let at = r.checkpoint!.watermark
                let mine = engine.explain(c, at: at), theirs = replayed.explain(c, at: at)
                #expect(mine.map { "\($0.groups)" } == theirs.map { "\($0.groups)" })
                #expect(mine?.nextChange == theirs?.nextChange && mine?.firstSeen == theirs?.firstSeen)
            }
        }

        // run under the new model: restores the rebuilt state (no adoption: no model
        // transition), and emits what replay under the new model emits after the switch.
        try producing.produce(h, third) { $0.ts }
        let outputBeforeRun = positions(try h.read(h.config.outputTopic))
        let r = DaemonTests.RunningDaemon(daemon: Daemon(config: h.config, model: RebuildTests.newModel, log: { _ in }))
        r.wait(until: { $0.status.records >= third.count }, timeout: 60)
        let d = try r.stop()
        #expect(d.status.records == third.count)
        var actual: [String: [String]] = [:]
        for rec in try output(h, after: outputBeforeRun) {
            #expect(((try decode(rec))["data"] as! [String: Any])["model_version"] as? String == "backfill-1")
            h.add(rec.value, to: &actual)
        }
        let expected = replay(try h.read(h.config.inputTopic), model: RebuildTests.newModel, emittedFrom: ends, h).transitions
        #expect(expected.values.map(\.count).reduce(0, +) > 100)
        #expect(!actual.values.joined().contains { $0.contains(" model ") }, "no re-adoption")
        let differing = expected.keys.filter { actual[$0] != expected[$0] }.sorted()
        #expect(differing.isEmpty, "\(differing.count) contacts differ; first: \(differing.first.map { "\($0)\nexpected \(expected[$0]!)\nactual   \(actual[$0] ?? [])" } ?? "")")
        #expect(actual.count == expected.count)
    }
}

extension RebuildTests {
    /// The docs flag added and nothing else changed: the four default groups count alike under
    /// both models, the flag only from history.
    static let docsModel = withDocsFlag(version: "docs-1", pricingVisits: 2)

    @Test("history that expired: a contact with records left gets what they give, filled in with what the old state knew from before them for what both models count alike (the whole stream's result); one without any keeps its state moved by meaning")
    func expiredHistory() throws {
        let h = try Harness()
        let producing = BootstrapTests()
        let records = producing.stream(2400, seed: 521)
        try producing.produce(h, records) { $0.ts }
        _ = try h.runDaemon(until: { $0.status.records >= records.count })
        let outputBefore = positions(try h.read(h.config.outputTopic))
        let input = try h.read(h.config.inputTopic)
        let byPartition = Dictionary(grouping: input, by: \.partition).mapValues { $0.sorted { $0.offset < $1.offset } }
        // As if the topic had dropped the first two thirds of each partition.
        let starts = byPartition.mapValues { $0[$0.count * 2 / 3].offset }

        let rebuild = Rebuild(config: h.config, model: RebuildTests.docsModel, log: { _ in })
        let live = try rebuild.readLive()
        // The old state as the instance held it, and its adoption by the new model.
        var old: [Int32: SegmentEngine] = [:]
        for (p, r) in live.restored {
            let engine = SegmentEngine(model: .defaultModel())
            try r.contacts.forEachLatest { c, snapshot in try engine.restore(contactId: c, snapshot: snapshot) }
            engine.restoreCheckpoint(streamTime: r.checkpoint!.streamTime, watermark: r.checkpoint!.watermark)
            old[p] = engine
        }
        let history = rebuild.history(live)
        _ = try rebuild.readTopic(into: history, live: live, from: .offsets(starts), report: { _, _, _ in })
        let summary = try rebuild.takeOver(rebuild.build(history: history, live: live))
        #expect(summary.counts.onlyOld > 20 && summary.counts.rebuilt > 100)
        #expect(summary.counts.onlyRebuilt == 0)

        let encoder = TransitionEncoder(model: RebuildTests.docsModel)
        var expected: Set<String> = []
        var rebuiltContacts = Set<String>(), adoptedContacts = Set<String>()
        let restored = try Changelog.read(config: ["bootstrap.servers": h.config.brokers], topic: h.config.changelogTopic, partitions: [0, 1, 2, 3])
        for p in Int32(0)..<4 {
            // The retained part under the new model (the docs flag counts only that), and the
            // whole stream (the default groups: the old state fills in what came before).
            let partial = Pipeline(model: RebuildTests.docsModel), whole = Pipeline(model: RebuildTests.docsModel)
            for r in byPartition[p]! {
                if r.offset >= starts[p]! { _ = partial.process(r.value) }
                _ = whole.process(r.value)
            }
            _ = partial.engine.takeTransitions()
            _ = whole.engine.takeTransitions()
            let adopted = SegmentEngine(model: RebuildTests.docsModel)
            adopted.adopt(from: old[p]!)
            let adoption = adopted.takeTransitions()
            let engine = SegmentEngine(model: RebuildTests.docsModel)
            try restored[p]!.contacts.forEachLatest { c, snapshot in try engine.restore(contactId: c, snapshot: snapshot) }
            let oldEngine = old[p]!
            for i in 0..<oldEngine.contactCount {
                let c = oldEngine.contactId(at: i), name = String(decoding: c, as: UTF8.self)
                if let retained = partial.engine.memberships(of: c) {
                    rebuiltContacts.insert(name)
                    let rebuilt = Array(whole.engine.memberships(of: c)!.dropLast()) + [retained.last!]
                    #expect(engine.memberships(of: c) == rebuilt, "contact \(name): the retained records' state, filled in")
                    let before = oldEngine.memberships(of: c)!
                    for (g, group) in RebuildTests.docsModel.groups.enumerated() {
                        let og = Model.defaultModel().groups.firstIndex { $0.name == group.name }
                        let from = og.flatMap { before[$0].map { Model.defaultModel().groups[og!].segments[$0].name } }
                        let to = rebuilt[g].map { group.segments[$0].name }
                        if from != to { expected.insert("\(name) \(group.name) \(from ?? "null")->\(to ?? "null") model") }
                    }
                } else {
                    adoptedContacts.insert(name)
                    #expect(engine.memberships(of: c) == adopted.memberships(of: c), "contact \(name): moved by meaning")
                }
            }
            for t in adoption where adoptedContacts.contains(String(decoding: t.contactId, as: UTF8.self)) {
                let kind: String
                switch t.cause { case .model: kind = "model"; case .time: kind = "time"; case .event: kind = "event" }
                expected.insert("\(String(decoding: t.contactId, as: UTF8.self)) \(encoder.groupName(t)) \(encoder.segmentName(group: t.group, t.from) ?? "null")->\(encoder.segmentName(group: t.group, t.to) ?? "null") \(kind) \(EventTime.format(t.at))")
            }
        }
        #expect(adoptedContacts.count == summary.counts.onlyOld)
        var actual: [String] = []
        for r in try output(h, after: outputBefore) {
            let data = (try decode(r))["data"] as! [String: Any], cause = data["cause"] as! [String: Any]
            let contact = data["contact_id"] as! String, kind = cause["kind"] as! String
            var line = "\(contact) \(data["group"] as! String) \((data["from"] as? String) ?? "null")->\((data["to"] as? String) ?? "null") \(kind)"
            if adoptedContacts.contains(contact) { line += " \(data["at"] as! String)" }
            actual.append(line)
        }
        // The docs flag from what is retained: some contacts enter it at the switch; the default
        // groups, filled in from the old state, are what they were (without the filling, the
        // retained third alone moves many of them).
        let entering = expected.filter { rebuiltContacts.contains(String($0.prefix { $0 != " " })) && $0.contains(" docs_reader null->docs_reader") }
        #expect(!entering.isEmpty)
        #expect(entering.count == expected.count)
        #expect(actual.count == expected.count, "each once")
        #expect(Set(actual) == expected)
    }
}

extension RebuildTests {
    @Test("state under a model whose text the changelog does not keep is refused at the first read, before anything is built or fenced")
    func missingModelText() throws {
        let h = try Harness()
        let producer = try KafkaProducer(config: ["bootstrap.servers": h.config.brokers])
        let pipeline = Pipeline(model: .defaultModel())
        _ = pipeline.process(Array(#"{"contact_id":"c-1","type":"subscribed","ts":"2026-01-01T00:00:00Z"}"#.utf8))
        let engine = pipeline.engine
        let position = Changelog.Position(input: 0, repartition: nil)
        let snapshot = Changelog.contactTag(reflects: position).withUnsafeBytes { engine.snapshot(contact: 0, tag: $0) }
        try producer.produce(topic: h.config.changelogTopic, partition: 0, key: Array("c-1".utf8), value: snapshot)
        let r = Changelog.checkpointRecord(Changelog.Checkpoint(offset: 0, streamTime: DaemonTests.start, watermark: DaemonTests.start,
                                                                modelVersion: "lost-1", modelFingerprint: "0123456789abcdef"))
        try producer.produce(topic: h.config.changelogTopic, partition: 0, key: r.key, value: r.value, headers: r.headers)
        try producer.close()
        let rebuild = Rebuild(config: h.config, model: RebuildTests.newModel, log: { _ in })
        #expect { _ = try rebuild.readLive() } throws: { error in
            "\(error)".contains("holds state of model 'lost-1' (0123456789abcdef) but not that model's text")
        }
    }
}

/// The `segmentd rebuild` command itself (the built binary) against the test broker.
@Suite("rebuild command", .serialized)
struct RebuildCommandTests {
    @Test("exit statuses: 65 for a changelog without state, then 0 with a summary; the same model again switches nothing; 64 and 66 for the command line and files")
    func exitStatuses() throws {
        guard FileManager.default.isExecutableFile(atPath: BootstrapCommandTests.bin) else {
            Issue.record("build the segmentd binary first (swift build)")
            return
        }
        let h = try DaemonTests.Harness(threads: 1)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("segmentd-rebuild-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = dir.appendingPathComponent("backfill.yaml").path
        try RebuildTests.newModel.source.write(toFile: model, atomically: true, encoding: .utf8)
        let common = ["rebuild", "--brokers", h.config.brokers, "--group-id", h.config.groupId,
                      "--transactional-id", h.config.transactionalId, "--threads", "1", "--model", model]

        let empty = try BootstrapCommandTests.segmentd(common)
        #expect(empty.status == 65)
        #expect(empty.stderr.contains("holds no state: nothing to rebuild"), "\(empty.stderr)")

        try h.produce(600, seed: 511)
        _ = try h.runDaemon(until: { $0.status.records >= 600 })
        let history = dir.appendingPathComponent("older.ndjson").path
        try """
        {"event_id":"old-1","contact_id":"c-1","type":"page_view","ts":"2025-12-20T09:00:00Z","props":{"path":"/docs/a"}}
        {"contact_id":"c-1","type":"page_view"
        {"event_id":"new-1","contact_id":"c-1","type":"page_view","ts":"2030-01-01T00:00:00Z","props":{"path":"/docs/b"}}

        """.write(toFile: history, atomically: true, encoding: .utf8)
        let bad = dir.appendingPathComponent("bad.txt").path
        let first = try BootstrapCommandTests.segmentd(common + [history, "--bad-lines", bad])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stderr.contains("'default-1' → 'backfill-1' on 4 partitions"), "\(first.stderr)")
        #expect(first.stderr.contains("history: 600 records of engagement-events (from earliest) and 1 of files (and 1 stamped after the instance's stream time, left to the topic)"), "\(first.stderr)")
        #expect(first.stderr.contains("oldest event applied: 2025-12-20T09:00:00.000Z"), "\(first.stderr)")
        // About 15 days of history (the file's event, then 4 days of stream) for a model that
        // looks back 60 days: said before the take-over.
        #expect(first.stderr.contains("warning: the history read reaches back 15d"), "\(first.stderr)")
        #expect(first.stderr.contains("and the model looks back 60d"), "\(first.stderr)")
        #expect(first.stderr.contains("without history (moved to the new model by meaning)"), "\(first.stderr)")
        #expect(first.stderr.contains("docs_reader: docs_reader 0 → "), "\(first.stderr)")
        #expect(try String(contentsOfFile: bad, encoding: .utf8).hasPrefix("\(history): line 2: invalid_json: "))
        let switched = try h.read(h.config.outputTopic).filter {
            ((try JSONSerialization.jsonObject(with: Data($0.value)) as! [String: Any])["data"] as! [String: Any])["model_version"] as? String == "backfill-1"
        }
        #expect(!switched.isEmpty)
        #expect(first.stderr.contains("switch: \(switched.count) transitions (cause model)"), "\(first.stderr)")

        // The same model and history again: the state already is the rebuilt one.
        let after = try h.read(h.config.outputTopic).count
        let again = try BootstrapCommandTests.segmentd(common + [history])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stderr.contains("'backfill-1' → 'backfill-1'"), "\(again.stderr)")
        #expect(again.stderr.contains("switch: 0 transitions"), "\(again.stderr)")
        #expect(try h.read(h.config.outputTopic).count == after)

        #expect(try BootstrapCommandTests.segmentd(common + ["--topic-from", "soon"]).status == 64)
        #expect(try BootstrapCommandTests.segmentd(common + [dir.appendingPathComponent("missing.ndjson").path]).status == 66)
    }
}

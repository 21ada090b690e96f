import Foundation
import SegmentdEngine
import SegmentdKafka
import Testing
@testable import SegmentdDaemon

/// The daemon hands each consumed run of one partition's records to its engine together
/// (`Pipeline.process(batch:belongsHere:outcome:)`, decoded ahead); every record must still be
/// settled exactly as record-by-record replay settles it.
@Suite("Batched processing in the daemon", .serialized)
struct BatchTests {
    typealias Harness = DaemonTests.Harness

    /// One input partition holding everything at once: valid records of many contacts (most of
    /// them owned by other partitions, so forwarded), malformed ones, ignored ones, repeated
    /// event ids (right after and far after the first), and events ahead of the clock (bad
    /// where their contact's engine applies them, after forwarding for most). Keys: the
    /// contact, a random one, or none.
    func produceMixed(_ h: Harness, count: Int, partition: Int32) throws -> Int {
        let p = try KafkaProducer(config: ["bootstrap.servers": h.config.brokers, "linger.ms": "5"])
        var stream = SyntheticStream(contacts: 300, start: DaemonTests.start, step: 600_000, seed: 301, badFraction: 0.03)
        var values: [[UInt8]] = []
        var extra = 0
        for i in 0..<count {
            var record = stream.nextRecord()
            if i % 97 == 50 {
                // An event in 2100: bad (invalid_time) once it reaches its contact's engine.
                record.value = Array(#"{"event_id":"future-\#(i)","contact_id":"c-\#(i % 300)","type":"email_open","ts":4102444800000}"#.utf8)
                extra += 1
            } else if i % 89 == 40, values.count > 60 {
                // The same record again, well after the first: a duplicate for its contact.
                record.value = values[values.count - 60]
                extra += 1
            }
            values.append(record.value)
            let key: [UInt8]? = switch i % 3 {
            case 0: record.key
            case 1: Array("k-\(i * 7919 % 1000)".utf8)
            default: nil
            }
            try p.produce(topic: h.config.inputTopic, partition: partition, key: key, value: record.value)
        }
        try p.close()
        return extra
    }

    @Test("a mixed batch gives the output and dead-letter topics of replay over what each engine reads", arguments: [1, 2])
    func mixedBatch(threads: Int) throws {
        let h = try Harness(threads: threads)
        h.config.batchSize = 10_000
        let n = 2_000
        let partitions: Int32 = 4
        let crafted = try produceMixed(h, count: n, partition: 0)
        #expect(crafted > 30)
        let d = try h.runDaemon(until: { $0.status.records >= n && $0.status.repartitionRecordsRead >= $0.status.recordsRepartitioned },
                                timeout: 90)
        let clock = Daemon.wallMs()

        // What each engine reads: partition 0's own records (and every record without a
        // contact) from the input in offset order; every other partition the records of its
        // contacts, forwarded in that order. Replayed record by record.
        let input = try h.read(h.config.inputTopic).sorted { $0.offset < $1.offset }
        #expect(input.count == n)
        #expect(input.allSatisfy { $0.partition == 0 })
        var decoder = EventDecoder(model: .defaultModel())
        var reads: [Int32: [KafkaRecord]] = [:]
        for record in input {
            var owner: Int32 = 0
            if case .events(let first, _, _) = decoder.decode(record.value) { owner = Murmur2.partition(Array(first.contactId), count: partitions) }
            reads[owner, default: []].append(record)
        }
        #expect(reads.count == Int(partitions), "every partition's engine gets records")
        var transitions: [[UInt8]: [[UInt8]]] = [:]
        var deadLetters: [Int64: (key: [UInt8]?, value: [UInt8], reason: String)] = [:]
        var duplicates = 0
        var ignored: [String: Int] = [:]
        var applied: [String: Int] = [:]
        for (_, records) in reads {
            let pipeline = Pipeline(model: .defaultModel())
            // The daemon's guard: the clock at each poll, no later than now.
            pipeline.futureGuard = FutureGuard(now: clock, allowance: h.config.maxFuture)
            for record in records {
                if case .bad(let e) = pipeline.process(record.value) {
                    deadLetters[record.offset] = (record.key, record.value, e.reason.rawValue)
                }
                for t in pipeline.engine.takeTransitions() { transitions[t.contactId, default: []].append(pipeline.encoder.encode(t)) }
            }
            let counters = pipeline.counters
            duplicates += counters.duplicates
            for (reason, count) in counters.ignored { ignored[reason, default: 0] += count }
            for (shape, count) in counters.byShape { applied[shape, default: 0] += count }
        }
        #expect(duplicates > 10)
        #expect(deadLetters.count > 40)
        #expect(deadLetters.values.contains { $0.reason == "invalid_time" })
        #expect(!ignored.isEmpty)

        let status = d.status
        #expect(status.records == n)
        #expect(status.recordsRepartitioned == n - reads[0]!.count)
        #expect(status.repartitionRecordsRead == status.recordsRepartitioned)
        #expect(status.deadLetters == deadLetters.count)
        #expect(status.transitions == transitions.values.map(\.count).reduce(0, +))
        #expect(status.aborts == 0)

        // The output topic: each contact's documents, byte for byte and in order.
        var actual: [[UInt8]: [[UInt8]]] = [:]
        for record in try h.read(h.config.outputTopic).sorted(by: { ($0.partition, $0.offset) < ($1.partition, $1.offset) }) {
            actual[record.key ?? [], default: []].append(record.value)
        }
        #expect(actual.count == transitions.count)
        let differing = transitions.keys.filter { actual[$0] != transitions[$0] }.map { String(decoding: $0, as: UTF8.self) }.sorted()
        #expect(differing.count == 0, "contacts whose documents differ: \(differing.prefix(5).joined(separator: ", "))")

        // The dead-letter topic: each bad record once, with its reason, key and input position.
        let dead = try h.read(h.config.deadLetterTopic)
        #expect(dead.count == deadLetters.count)
        var seen = Set<Int64>()
        for letter in dead {
            let headers = Dictionary(letter.headers.map { ($0.key, String(decoding: $0.value, as: UTF8.self)) }, uniquingKeysWith: { a, _ in a })
            let offset = Int64(headers["error.source.offset"] ?? "") ?? -1
            #expect(seen.insert(offset).inserted, "one dead letter per record")
            #expect(headers["error.source.partition"] == "0")
            #expect(headers["error.source.topic"] == h.config.inputTopic)
            guard let expected = deadLetters[offset] else {
                Issue.record("a dead letter for input offset \(offset), which replay applies")
                continue
            }
            #expect(headers["error.reason"] == expected.reason)
            #expect(letter.value == expected.value)
            #expect(letter.key == expected.key)
        }

        // The counters the records feed (exported at each commit, the last one at stop).
        let metrics = d.metrics.exposition()
        #expect(metrics.contains("segmentd_duplicate_events_total \(duplicates)\n"))
        for (reason, count) in ignored {
            #expect(metrics.contains("segmentd_ignored_records_total{reason=\"\(reason)\"} \(count)\n"), "ignored \(reason)")
        }
        for (shape, count) in applied {
            #expect(metrics.contains("segmentd_events_consumed_total{shape=\"\(shape)\"} \(count)\n"), "applied \(shape)")
        }
    }
}

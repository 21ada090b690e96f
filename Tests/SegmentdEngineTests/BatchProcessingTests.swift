import Testing
@testable import SegmentdEngine

/// `Pipeline.process(batch:)` decodes records ahead and prefetches their contacts: it must be
/// exactly `process` applied record by record (outcomes, transitions to the byte, counters).
@Suite("Batch processing: the same as record by record")
struct BatchProcessingTests {
    /// What a pipeline made of `records`: every outcome, the transitions as encoded lines, the
    /// counters and the contacts.
    struct Result {
        var outcomes: [RecordOutcome] = []
        var transitions: [UInt8] = []
        var counters = RecordCounters()
        var contacts = 0
        var eventsByType: [Int] = []
    }

    static func oneByOne(_ records: [[UInt8]], adapters: WebhookAdapters? = nil) -> Result {
        let pipeline = Pipeline(model: .defaultModel())
        if let adapters { pipeline.adapters = adapters }
        var result = Result()
        for record in records {
            result.outcomes.append(pipeline.process(record))
            pipeline.engine.drainTransitions { pipeline.encoder.encodeLine($0, to: &result.transitions) }
        }
        return finish(pipeline, result)
    }

    /// Batches of sizes drawn by `rng` (1 to 40 records: shorter and longer than the lookahead).
    static func batched(_ records: [[UInt8]], _ rng: inout SplitMix, adapters: WebhookAdapters? = nil) -> Result {
        let pipeline = Pipeline(model: .defaultModel())
        if let adapters { pipeline.adapters = adapters }
        var result = Result()
        var start = 0
        while start < records.count {
            let end = min(records.count, start + 1 + Int(rng.next() % 40))
            let slice = Array(records[start..<end])
            var views: [UnsafeBufferPointer<UInt8>] = []
            var outcomes = [RecordOutcome?](repeating: nil, count: slice.count)
            // The records' memory must stay put while the views are in use.
            let storage = slice.map { record -> UnsafeMutableBufferPointer<UInt8> in
                let copy = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: record.count)
                _ = copy.initialize(from: record)
                return copy
            }
            defer { storage.forEach { $0.deallocate() } }
            views = storage.map { UnsafeBufferPointer($0) }
            views.withUnsafeBufferPointer { batch in
                pipeline.process(batch: batch) { index, outcome in
                    #expect(outcomes[index] == nil, "an outcome told twice")
                    outcomes[index] = outcome
                }
            }
            #expect(outcomes.allSatisfy { $0 != nil }, "an outcome never told")
            result.outcomes += outcomes.compactMap { $0 }
            // Written in place (as replay writes them), from a small start so the bytes move as
            // they grow: checked against the record-by-record side's appends to an array.
            var written = OutputBytes(capacity: 64)
            pipeline.engine.drainTransitions { pipeline.encoder.encodeLine($0, to: &written) }
            result.transitions += Array(written.bytes)
            written.deallocate()
            start = end
        }
        return finish(pipeline, result)
    }

    /// Checks `actual` against `expected` part by part, with a short message (the results are
    /// too large to print whole).
    static func check(_ actual: Result, _ expected: Result) {
        let firstOutcome = zip(actual.outcomes, expected.outcomes).enumerated().first { $0.element.0 != $0.element.1 }
        #expect(actual.outcomes.count == expected.outcomes.count && firstOutcome == nil,
                "outcomes differ: \(actual.outcomes.count) against \(expected.outcomes.count), first at \(firstOutcome.map { "\($0.offset): \($0.element.0) against \($0.element.1)" } ?? "-")")
        let sameTransitions = actual.transitions == expected.transitions
        let firstByte = zip(actual.transitions, expected.transitions).enumerated().first { $0.element.0 != $0.element.1 }?.offset
        #expect(sameTransitions, "transitions differ: \(actual.transitions.count) bytes against \(expected.transitions.count), first at byte \(firstByte ?? -1)")
        #expect(actual.counters == expected.counters)
        #expect(actual.contacts == expected.contacts)
        #expect(actual.eventsByType == expected.eventsByType)
    }

    static func finish(_ pipeline: Pipeline, _ partial: Result) -> Result {
        var result = partial
        result.counters = pipeline.counters
        result.contacts = pipeline.engine.contactCount
        result.eventsByType = pipeline.eventsByType
        return result
    }

    /// Native records over many contacts (the table grows during batches) and a few busy ones
    /// (one contact several times in a batch, added by an earlier record of it), with
    /// repeated event ids, late events and bad records mixed in.
    static func stream(_ count: Int, seed: UInt64) -> [[UInt8]] {
        var rng = SplitMix(state: seed)
        let types = ["email_open", "email_click", "page_view", "resource_download", "meeting_booked", "subscribed", "unsubscribed", "form_submit"]
        var out: [[UInt8]] = []
        var ts: Int64 = 1_767_225_600_000
        for i in 0..<count {
            ts += Int64(rng.next() % 3_600_000)
            let late = rng.next() % 10 == 0 ? Int64(rng.next() % 86_400_000) : 0
            let contact = rng.next() % 3 == 0 ? "busy-\(rng.next() % 5)" : "c-\(rng.next() % 20_000)"
            let id = rng.next() % 4 == 0 ? "e-\(rng.next() % 50)" : "e-\(i)"
            let type = types[Int(rng.next() % UInt64(types.count))]
            let props = type == "page_view" && rng.next() % 2 == 0 ? #","props":{"path":"/pricing"}"# : ""
            switch rng.next() % 40 {
            case 0: out.append(Array(#"{"contact_id":"\#(contact)","type":"\#(type)""#.utf8))  // no ts: bad
            case 1: out.append(Array("not json".utf8))
            case 2: out.append(Array(#"{"contact_id":"\#(contact)","type":"fax_sent","ts":\#(ts)}"#.utf8))  // unknown type
            default:
                out.append(Array(#"{"contact_id":"\#(contact)","type":"\#(type)","ts":\#(ts - late),"event_id":"\#(id)"\#(props)}"#.utf8))
            }
        }
        return out
    }

    @Test("native records over many contacts: same outcomes, transitions and counters")
    func nativeStream() {
        let records = BatchProcessingTests.stream(30_000, seed: 7)
        var rng = SplitMix(state: 3)
        let expected = BatchProcessingTests.oneByOne(records)
        #expect(expected.transitions.count > 100_000, "the stream must make transitions to compare")
        BatchProcessingTests.check(BatchProcessingTests.batched(records, &rng), expected)
    }

    @Test("both shapes, every type, and hostile variants: same outcomes, transitions and counters")
    func generatedAndHostile() {
        var rng = SplitMix(state: 19)
        var records = DecoderDifferentialTests.generated(3_000, seed: 23)
        for record in records.prefix(300) { records += DecoderDifferentialTests.hostile(record, &rng) }
        let expected = BatchProcessingTests.oneByOne(records)
        #expect(expected.outcomes.contains { if case .bad = $0 { true } else { false } })
        BatchProcessingTests.check(BatchProcessingTests.batched(records, &rng), expected)
    }

    @Test("with webhook adapters on, records go one by one: same result")
    func adapters() {
        var rng = SplitMix(state: 29)
        let records = BatchProcessingTests.stream(2_000, seed: 31)
        let adapters = WebhookAdapters([.sendgrid])
        BatchProcessingTests.check(BatchProcessingTests.batched(records, &rng, adapters: adapters), BatchProcessingTests.oneByOne(records, adapters: adapters))
    }
}

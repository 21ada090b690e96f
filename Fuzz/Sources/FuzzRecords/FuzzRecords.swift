// The record path: bytes -> records (one per line) -> Pipeline.process with the default model
// and every webhook adapter on (native and Segment records pass through them untouched) ->
// each transition encoded and checked (FuzzSupport.TransitionChecker); at the end the
// watermark moves 400 days on (as `replay --until` does), memberships must equal the
// transitions' story, and every contact's snapshot must restore exactly.
//
// Each line is also decoded by the decoder's fast path and its generic path separately: when
// the fast path decodes a record, its result must be the generic path's, field for field.
//
// The lines also go, with the adapters off (as `replay` runs by default), through two more
// pipelines: record by record and as one batch (`Pipeline.process(batch:)`, which decodes
// ahead and prefetches): outcomes, encoded transitions and counters must be the same.
//
// An optional first line `#lateness=DURATION` sets the allowed lateness (e.g. `#lateness=1h`).
import FuzzSupport
import SegmentdEngine

let model = Model.defaultModel()
let adapters = WebhookAdapters(Set(WebhookAdapters.Provider.allCases))
let latenessPrefix = Array("#lateness=".utf8)
nonisolated(unsafe) var fastDecoder = EventDecoder(model: model, maxRecordBytes: 2048)
nonisolated(unsafe) var genericDecoder = EventDecoder(model: model, maxRecordBytes: 2048)

/// The fast path decodes `line` as the generic path does, or declines.
func checkDecoderPaths(_ line: UnsafeBufferPointer<UInt8>) {
    guard let fast = fastDecoder.decodeFast(line)?.description else { return }
    let generic = genericDecoder.decodeGeneric(line).description
    if fast != generic {
        violated("the decoder's paths differ on \(Array(line)):\n  fast path: \(fast)\n  generic path: \(generic)")
    }
}

/// `process(batch:)` does what `process` does record by record.
func checkBatchPath(_ records: [[UInt8]], lateness: Millis) {
    // Each line in memory of its exact size (as `forEachLine` gives it), alive for the batch.
    let copies = records.map { record -> UnsafeMutableBufferPointer<UInt8> in
        let copy = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: record.count)
        _ = copy.initialize(from: record)
        return copy
    }
    defer { copies.forEach { $0.deallocate() } }
    let lines = copies.map { UnsafeBufferPointer($0) }
    let single = Pipeline(model: model, lateness: lateness, maxRecordBytes: 2048)
    let batched = Pipeline(model: model, lateness: lateness, maxRecordBytes: 2048)
    var singleOutcomes: [RecordOutcome?] = []
    for line in lines { singleOutcomes.append(single.process(line)) }
    var batchedOutcomes = [RecordOutcome?](repeating: nil, count: lines.count)
    lines.withUnsafeBufferPointer { batch in batched.process(batch: batch) { batchedOutcomes[$0] = $1 } }
    var singleOut: [UInt8] = []
    var batchedOut: [UInt8] = []
    single.engine.drainTransitions { single.encoder.encodeLine($0, to: &singleOut) }
    batched.engine.drainTransitions { batched.encoder.encodeLine($0, to: &batchedOut) }
    guard batchedOutcomes == singleOutcomes else { violated("batch outcomes \(batchedOutcomes) where record by record gave \(singleOutcomes)") }
    guard batchedOut == singleOut else { violated("batch transitions differ from record by record's:\n\(String(decoding: batchedOut, as: UTF8.self))\n\(String(decoding: singleOut, as: UTF8.self))") }
    guard batched.counters == single.counters else { violated("batch counters \(batched.counters) where record by record gave \(single.counters)") }
}

func fuzzOne(_ data: UnsafeBufferPointer<UInt8>) {
    var lateness: Millis = 0
    if data.starts(with: latenessPrefix) {
        let end = data.firstIndex(of: 10) ?? data.count
        let text = String(decoding: data[latenessPrefix.count..<end], as: UTF8.self)
        if let d = DurationSpec(parsing: text) { lateness = d.millis }
    }
    let pipeline = Pipeline(model: model, lateness: lateness, maxRecordBytes: 2048)
    pipeline.adapters = adapters
    var checker = TransitionChecker(encoder: pipeline.encoder)
    var records = 0
    var lines: [[UInt8]] = []
    forEachLine(data) { line in
        if line.starts(with: latenessPrefix) { return }
        records += 1
        lines.append(Array(line))
        checkDecoderPaths(line)
        _ = pipeline.process(line)
        checker.checkNoModelCause(pipeline.engine.takeTransitions())
    }
    debugLog("\(records) records, \(pipeline.engine.contactCount) contacts, \(checker.count) transitions, counters \(pipeline.counters)")
    guard pipeline.counters.records == records else { violated("\(records) records processed, counters say \(pipeline.counters.records)") }
    checker.checkMemberships(pipeline.engine)
    advanceToEnd(pipeline.engine)
    checker.checkNoModelCause(pipeline.engine.takeTransitions())
    checker.checkMemberships(pipeline.engine)
    guard pipeline.engine.stats.transitions == checker.count, pipeline.engine.stats.transitionsByGroup.reduce(0, +) == checker.count else {
        violated("\(checker.count) transitions taken, engine stats say \(pipeline.engine.stats.transitions) (\(pipeline.engine.stats.transitionsByGroup))")
    }
    for i in 0..<min(pipeline.engine.contactCount, 8) {
        _ = pipeline.engine.explain(pipeline.engine.contactId(at: i))
    }
    checkSnapshots(pipeline.engine)
    checkBatchPath(lines, lateness: lateness)
}

@_cdecl("FuzzRecords_main")
func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runFuzzer(argc, argv) { data, size in
        withExactCopy(data, size) { fuzzOne($0) }
        return 0
    }
}

// The changelog restore path: bytes -> SegmentEngine.restore(contactId:snapshot:) under the
// default model, as the daemon restores a partition from its changelog topic (whose records
// anyone with write access to the topic, or a bug, can corrupt). A snapshot that is accepted
// must describe a state the engine can use: memberships within the model's segments, a clock in
// the years 0000-9999, a snapshot that restores to itself; then fixed records for the contact
// run through the pipeline with every transition checked (the story starts from the restored
// memberships), the watermark moves to the end, and memberships must match.
//
// FUZZ_SNAPSHOT_SEEDS=DIR: write the snapshots of the contacts of the fixed records to DIR
// (the seed corpus, Fuzz/corpus/snapshot) and exit.
import FuzzSupport
import SegmentdEngine

#if canImport(Glibc)
import Glibc
#endif

let model = Model.defaultModel()
let contact = Array("c".utf8)

func record(_ s: String) -> [UInt8] { Array(s.utf8) }

/// Records that build up varied state: for the seed snapshots (several contacts) and to run
/// after a restore (contact "c").
func records(for id: String, day: Int) -> [[UInt8]] {
    let d = day < 10 ? "0\(day)" : "\(day)"
    return [
        record(#"{"event_id":"s\#(d)","contact_id":"\#(id)","type":"subscribed","ts":"2026-03-\#(d)T09:00:00Z"}"#),
        record(#"{"event_id":"p\#(d)","contact_id":"\#(id)","type":"page_view","ts":"2026-03-\#(d)T10:00:00Z","props":{"path":"/pricing"}}"#),
        record(#"{"contact_id":"\#(id)","type":"page_view","ts":"2026-03-\#(d)T11:00:00Z","props":{"path":"/pricing/team"}}"#),
        record(#"{"contact_id":"\#(id)","type":"traits","ts":"2026-03-\#(d)T12:00:00Z","props":{"industry":"SaaS","company_size":200,"country":"de"}}"#),
        record(#"{"contact_id":"\#(id)","type":"crm_stage","ts":"2026-03-\#(d)T12:30:00Z","props":{"stage":"opportunity"}}"#),
        record(#"{"event_id":"o\#(d)","contact_id":"\#(id)","type":"email_open","ts":"2026-03-\#(d)T13:00:00Z"}"#),
        record(#"{"contact_id":"\#(id)","type":"email_click","ts":"2026-03-\#(d)T08:00:00Z","props":{"url":"https://x/case-study"}}"#),
        record(#"{"contact_id":"\#(id)","type":"bounced","ts":"2026-03-\#(d)T14:00:00Z","props":{"kind":"soft"}}"#),
        record(#"{"event_id":"u\#(d)","contact_id":"\#(id)","type":"unsubscribed","ts":"2026-04-\#(d)T09:00:00Z"}"#),
        record(#"{"event_id":"u\#(d)","contact_id":"\#(id)","type":"unsubscribed","ts":"2026-04-\#(d)T09:00:00Z"}"#),
        record(#"{"contact_id":"\#(id)","type":"meeting_booked","ts":"9999-12-31T23:59:59.999Z"}"#),
    ]
}

func writeSeeds(_ dir: String) {
    func write(_ p: Pipeline) {
        for i in 0..<p.engine.contactCount {
            let snap = p.engine.snapshot(contact: i)
            let path = "\(dir)/snapshot-\(String(decoding: p.engine.contactId(at: i), as: UTF8.self))"
            guard let f = fopen(path, "wb") else { fatalError("cannot write \(path)") }
            _ = snap.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
            fclose(f)
        }
    }
    // One pipeline per contact, so one contact's times do not move the others' watermark.
    for (k, n) in [1, 3, 5, 8, 10, 11].enumerated() {
        let p = Pipeline(model: model)
        for r in records(for: "c\(k)", day: 1 + k).prefix(n) { _ = p.process(r) }
        p.engine.advanceWatermark(to: EventTime.parseRFC3339("2026-03-20T00:00:00Z")!)
        write(p)
    }
    let p = Pipeline(model: model)
    _ = p.process(record(#"{"contact_id":"old","type":"subscribed","ts":"0000-01-01T00:00:00Z"}"#))
    write(p)
}

func fuzzOne(_ data: UnsafeBufferPointer<UInt8>) {
    let pipeline = Pipeline(model: model)
    do {
        try pipeline.engine.restore(contactId: contact, snapshot: Array(data))
    } catch {
        debugLog("refused: \(error)")
        return
    }
    guard let members = pipeline.engine.memberships(of: contact), let clock = pipeline.engine.clock(of: contact) else {
        violated("a restored contact is unknown to the engine")
    }
    for (g, s) in members.enumerated() where s.map({ $0 < 0 || $0 >= model.groups[g].segments.count }) ?? false {
        violated("restore accepted segment \(s!) in group \(model.groups[g].name) (\(model.groups[g].segments.count) segments)")
    }
    guard clock.clock == .min || EventTime.isInRange(clock.clock) else {
        violated("restore accepted a clock of \(clock.clock), outside the years 0000-9999")
    }
    debugLog("restored: memberships \(members), clock \(clock)")
    checkSnapshots(pipeline.engine)
    var checker = TransitionChecker(encoder: pipeline.encoder)
    checker.start(contact: contact, memberships: members)
    for r in records(for: "c", day: 2) {
        _ = r.withUnsafeBufferPointer { pipeline.process($0) }
        checker.checkNoModelCause(pipeline.engine.takeTransitions())
    }
    advanceToEnd(pipeline.engine)
    checker.checkNoModelCause(pipeline.engine.takeTransitions())
    checker.checkMemberships(pipeline.engine)
    _ = pipeline.engine.explain(contact)
}

@_cdecl("FuzzSnapshot_main")
func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    if let dir = getenv("FUZZ_SNAPSHOT_SEEDS") {
        writeSeeds(String(cString: dir))
        return 0
    }
    return runFuzzer(argc, argv) { data, size in
        withExactCopy(data, size) { fuzzOne($0) }
        return 0
    }
}

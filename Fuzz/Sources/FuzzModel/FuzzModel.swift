// The model compiler: bytes -> Model.load (YAML parse, compile), as `validate` and `--model` do.
// A refused model must say where (line and column from 1). A model that compiles is summarised
// (`segmentd validate`'s output) and must then run: a Pipeline over it takes fixed records of
// every canonical type in both shapes, records carrying each property the model reads (as a
// string, an integer and a boolean) and each of its Segment track events, at ordinary and
// extreme times; every transition is checked as in the record target, the watermark moves to
// the end, and snapshots must restore. The same records then run with a live model change
// halfway (Pipeline.migrate: state moved by meaning), from the default model to this one and
// back, and the segments' story must go on by name. Never a crash, never memory exhaustion
// (libFuzzer's -rss_limit_mb / -malloc_limit_mb report those).
import FuzzSupport
import SegmentdEngine

let adapters = WebhookAdapters(Set(WebhookAdapters.Provider.allCases))
let defaultModel = Model.defaultModel()

/// Records every model sees, whatever it reads.
let fixedRecords: [String] = {
    var r: [String] = []
    let types = CanonicalTypes.all
    for (i, t) in types.enumerated() {
        let ts = "2026-03-\(String(format2(1 + i)))T09:00:00.000Z"
        r.append(#"{"event_id":"e\#(i)","contact_id":"c-1","type":"\#(t)","ts":"\#(ts)","props":{"path":"/pricing","url":"https://x.example/case-study","stage":"customer","kind":"hard","form":"demo","machine_open":false,"industry":"Software","company_size":120,"country":"us"}}"#)
    }
    r += [
        #"{"type":"identify","userId":"u1","messageId":"m1","timestamp":"2026-03-01T00:00:00Z","traits":{"lifecycle_stage":"customer","industry":"saas","company_size":"77","employees":5}}"#,
        #"{"type":"page","userId":"u1","timestamp":"2026-03-02T10:15:00.250Z","properties":{"path":"/pricing"}}"#,
        #"{"type":"page","userId":"u1","timestamp":"2026-03-02T10:16:00.250+05:30","properties":{"url":"https://example.com/pricing/team?x=1"}}"#,
        #"{"contact_id":"c-1","type":"page_view","ts":"2026-03-03T10:15:00.250Z","props":{"path":"/pricing"}}"#,
        #"{"contact_id":"c-1","type":"page_view","ts":1772533000000,"props":{"path":"/pricing"}}"#,
        #"{"event_id":"e0","contact_id":"c-1","type":"subscribed","ts":"2026-03-01T09:00:00.000Z"}"#,
        #"{"contact_id":"c-old","type":"subscribed","ts":"0000-01-01T00:00:00Z"}"#,
        #"{"contact_id":"c-old","type":"page_view","ts":-62167219200000,"props":{"path":"/pricing"}}"#,
        #"{"contact_id":"c-late","type":"email_click","ts":"2026-01-01T00:00:00Z","props":{"url":"x"}}"#,
    ]
    return r
}()

/// Far-future records, run after the others (they move the watermark to 9999).
let lastRecords = [
    #"{"contact_id":"c-new","type":"page_view","ts":"9999-12-31T23:59:59.999Z","props":{"path":"/pricing"}}"#,
    #"{"event_id":"x","contact_id":"c-new","type":"traits","ts":253402300799999,"props":{"company_size":9223372036854775807,"industry":"saas"}}"#,
]

func format2(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }

func json(_ s: String) -> String {
    var b: [UInt8] = []
    JSONWriter.string(s, to: &b)
    return String(decoding: b, as: UTF8.self)
}

/// Records shaped by the model: each property it reads, each of its track events.
func modelRecords(_ m: Model) -> [String] {
    var r: [String] = []
    let types = CanonicalTypes.all
    for (k, key) in m.propKeys.prefix(8).enumerated() {
        let t = types[k % types.count]
        for (j, v) in [json("/pricing-" + key), "250", "true", "null"].enumerated() {
            r.append(#"{"contact_id":"p-\#(k)","type":"\#(t)","ts":"2026-04-0\#(1 + j)T00:00:00Z","props":{\#(json(key)):\#(v)}}"#)
        }
    }
    // Each declared type with each of its properties as every kind, at days around a DST
    // change; each property also as a date (date attributes and date-like strings).
    for (d, declared) in m.declaredTypes.prefix(8).enumerated() {
        let t = json(declared.name)
        r.append(#"{"contact_id":"d-\#(d)","type":\#(t),"ts":"2026-03-28T23:30:00Z"}"#)
        for (k, prop) in declared.props.prefix(4).enumerated() {
            for (j, v) in ["1", "-2.5", "1e300", "9223372036854775807", json("x"), "true", "null", "[1]", json("2026-03-20"), json("2026-03-29T01:30:00+01:00")].enumerated() {
                r.append(#"{"contact_id":"d-\#(d)-\#(k)","type":\#(t),"ts":"2026-03-\#(format2(20 + j))T23:30:00Z","props":{\#(json(prop.name)):\#(v)}}"#)
            }
        }
    }
    for (k, key) in m.propKeys.prefix(8).enumerated() {
        for (j, v) in [json("2026-04-20"), json("2026-04-20T12:00:00.5-07:00"), json("9999-12-31")].enumerated() {
            r.append(#"{"contact_id":"a-\#(k)","type":"traits","ts":"2026-04-1\#(j)T00:00:00Z","props":{\#(json(key)):\#(v)}}"#)
        }
    }
    for (k, (name, mapping)) in m.trackMappings.sorted(by: { $0.key < $1.key }).prefix(8).enumerated() {
        var props: [String] = []
        for p in mapping.props.prefix(4) { for s in p.sources.prefix(2) { props.append("\(json(s)):\(json("/pricing"))") } }
        r.append(#"{"type":"track","event":\#(json(name)),"userId":"t-\#(k)","messageId":"tm\#(k)","timestamp":"2026-04-10T00:00:00Z","properties":{\#(props.joined(separator: ","))}}"#)
    }
    return r
}

/// Runs `records` through a pipeline under `m`; with `from`, the pipeline starts under that
/// model and moves to `m` (live reload, `Pipeline.migrate(to:)`) halfway, and the story of
/// every contact's segments must go on consistently across the change.
func run(_ m: Model, _ records: [String], from start: Model? = nil) {
    let pipeline = Pipeline(model: start ?? m, lateness: 0)
    pipeline.adapters = adapters
    var checker = TransitionChecker(encoder: pipeline.encoder)
    for (n, rec) in records.enumerated() {
        if start != nil && n == records.count / 2 {
            let previous = pipeline.engine.model.version
            pipeline.migrate(to: m)
            checker.migrate(to: pipeline.encoder)
            checker.checkModelChange(pipeline.engine.takeTransitions(), previousVersion: previous)
            checker.checkMemberships(pipeline.engine)
        }
        var bytes = Array(rec.utf8)
        _ = bytes.withUnsafeMutableBufferPointer { pipeline.process(UnsafeBufferPointer($0)) }
        checker.checkNoModelCause(pipeline.engine.takeTransitions())
    }
    advanceToEnd(pipeline.engine)
    checker.checkNoModelCause(pipeline.engine.takeTransitions())
    checker.checkMemberships(pipeline.engine)
    debugLog("\(records.count) records\(start == nil ? "" : " (model change halfway)"), \(pipeline.engine.contactCount) contacts, \(checker.count) transitions, counters \(pipeline.counters)")
    for i in 0..<min(pipeline.engine.contactCount, 4) {
        _ = pipeline.engine.explain(pipeline.engine.contactId(at: i))
    }
    checkSnapshots(pipeline.engine, limit: 8)
}

func fuzzOne(_ data: UnsafeBufferPointer<UInt8>) {
    let yaml = String(decoding: data, as: UTF8.self)
    let m: Model
    do {
        m = try Model.load(yaml: yaml, file: "fuzz.yaml")
    } catch {
        debugLog("refused: \(error)")
        guard error.line >= 1, error.column >= 1, !error.message.isEmpty else { violated("model error without a position: \(error)") }
        return
    }
    let summary = ModelSummary.describe(m)
    debugLog(summary)
    _ = m.fingerprint
    let records = fixedRecords + modelRecords(m) + lastRecords
    run(m, records)
    // Live reload both ways: from the default model to this one, and back.
    run(m, records, from: defaultModel)
    run(defaultModel, records, from: m)
}

@_cdecl("FuzzModel_main")
func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runFuzzer(argc, argv) { data, size in
        withExactCopy(data, size) { fuzzOne($0) }
        return 0
    }
}

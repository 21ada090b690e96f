// segmentd-bench: the engine's throughput and memory on a synthetic B2B stream.
//
//   swift run -c release segmentd-bench [--contacts N] [--events N] [--days D] [--seed S]
//                                       [--batch N] [--emit 1 [--emit-time epoch|rfc3339]]
//
// Generates a realistic stream (opens, clicks, pricing visits, downloads, forms, meetings,
// subscribes, unsubscribes, bounces, CRM stage and trait changes, both input shapes, a few
// late and duplicate records) in chunks, and times decode + apply + evaluate + encode of the
// transitions on one core with the default model. Generation is not timed. Prints events/s
// and resident bytes per contact after the run.

import SegmentdEngine

#if canImport(Glibc)
import Glibc
#endif

struct Options {
    var contacts = 1_000_000
    var events = 20_000_000
    var days = 120
    var seed: UInt64 = 42
    var chunk = 200_000
    /// `--emit 1`: write the generated records as NDJSON to stdout instead of timing them
    /// (a fixed input for comparing replay outputs before and after an engine change).
    var emit = false
    /// `--emit-time rfc3339`: native records carry `ts` as an RFC 3339 string
    /// (`2026-01-03T01:18:57.201Z`, one in ten with an offset such as `+05:30`) and longer
    /// contact and event ids, about 150 bytes a line, 1% of lines redelivered, as production
    /// streams are; `epoch` (the default):
    /// epoch milliseconds and short ids, about 116 bytes a line.
    var rfc3339Times = false
    /// `--batch N`: records handed to `Pipeline.process(batch:)` at a time, as replay does
    /// (decoded ahead, their contacts prefetched); `--batch 1` processes record by record
    /// (`Pipeline.process`), as before, for comparisons in one run.
    var batch = 256
    /// `--duplicate-horizon D`: how long event ids are remembered (`duplicate_horizon`).
    var duplicateHorizon = DurationSpec(millis: SegmentEngine.defaultDuplicateHorizon)

    init() {
        var args = CommandLine.arguments.dropFirst().makeIterator()
        while let a = args.next() {
            guard let v = args.next() else { break }
            switch a {
            case "--contacts": contacts = Int(v)!
            case "--events": events = Int(v)!
            case "--days": days = Int(v)!
            case "--seed": seed = UInt64(v)!
            case "--batch":
                guard let n = Int(v), n >= 1 else { fatalError("--batch takes a count of records, 1 or more, not \(v)") }
                batch = n
            case "--emit": emit = v == "1"
            case "--duplicate-horizon":
                guard let d = DurationSpec(parsing: v), SegmentEngine.duplicateHorizons.contains(d.millis) else {
                    fatalError("--duplicate-horizon takes a duration from 24h to 24d, not \(v)")
                }
                duplicateHorizon = d
            case "--emit-time":
                guard v == "rfc3339" || v == "epoch" else { fatalError("--emit-time takes epoch or rfc3339, not \(v)") }
                rfc3339Times = v == "rfc3339"
            default: fatalError("unknown option \(a)")
            }
        }
    }
}

/// SplitMix64: fast, deterministic.
struct Rng {
    var s: UInt64
    mutating func next() -> UInt64 {
        s &+= 0x9e37_79b9_7f4a_7c15
        var z = s
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    mutating func chance(_ p: Double) -> Bool { Double(next() >> 11) / Double(1 << 53) < p }
}

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func cpuSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func residentBytes() -> Int {
    guard let f = fopen("/proc/self/statm", "r") else { return 0 }
    defer { fclose(f) }
    var size = 0, rss = 0
    withUnsafeMutablePointer(to: &size) { s in
        withUnsafeMutablePointer(to: &rss) { r in
            _ = withVaList([s, r]) { vfscanf(f, "%ld %ld", $0) }
        }
    }
    return rss * Int(sysconf(Int32(_SC_PAGESIZE)))
}

/// A 20-digit hex id for event number `n` (a mix of `n`, so ids look random but repeat for a
/// duplicate).
func hexId(_ n: Int) -> String {
    var r = Rng(s: UInt64(n))
    let hex = String(r.next(), radix: 16)
    return String(repeating: "0", count: 16 - hex.count) + hex + String(UInt64(n) & 0xffff, radix: 16)
}

/// `t` as RFC 3339 with milliseconds: in UTC (`Z`), or one time in ten as the same instant in
/// another offset (`+05:30`, `-08:00`, `+01:00`).
func rfc3339(_ t: Int64, _ rng: inout Rng) -> String {
    guard rng.chance(0.1) else { return EventTime.format(t) }
    let (minutes, text) = [(330, "+05:30"), (-480, "-08:00"), (60, "+01:00")][rng.below(3)]
    return String(EventTime.format(t + Int64(minutes) * 60_000).dropLast()) + text
}

/// Appends one synthetic record (a line without newline) for event number `i`.
func generate(_ i: Int, _ o: Options, _ rng: inout Rng, _ out: inout [UInt8]) {
    let start: Int64 = 1_767_225_600_000  // 2026-01-01
    let span = Int64(o.days) * 86_400_000
    var ts = start + span * Int64(i) / Int64(o.events) + Int64(rng.below(60_000))
    if rng.chance(0.02) { ts -= Int64(rng.below(3 * 86_400_000)) }  // late
    // Skewed activity: a quarter of the contacts produce most events.
    let c = rng.chance(0.7) ? rng.below(max(1, o.contacts / 4)) : rng.below(o.contacts)
    let contact = o.rfc3339Times ? "contact-" + String(String(100_000_000 + c).dropFirst()) : "c-\(c)"
    let idNumber = rng.chance(0.01) ? i - 1 : i  // ~1% duplicates of the previous record
    let id = o.rfc3339Times ? "evt_\(hexId(idNumber))" : "e-\(idNumber)"
    let r = rng.below(1000)
    let line: String
    if rng.chance(0.15) {
        // Segment Spec shape.
        let t = EventTime.format(ts)
        switch r {
        case 0..<500: line = #"{"type":"track","event":"Email Opened","userId":"\#(contact)","messageId":"\#(id)","timestamp":"\#(t)","properties":{"machine_open":\#(r < 60)}}"#
        case 500..<800: line = #"{"type":"page","userId":"\#(contact)","messageId":"\#(id)","timestamp":"\#(t)","properties":{"url":"https://example.com/\#(r < 620 ? "pricing" : "blog/post-\(r)")?utm=x"}}"#
        case 800..<980: line = #"{"type":"track","event":"Email Link Clicked","userId":"\#(contact)","messageId":"\#(id)","timestamp":"\#(t)","properties":{"link_url":"https://example.com/\#(r < 850 ? "case-study" : "blog")"}}"#
        default: line = #"{"type":"identify","userId":"\#(contact)","messageId":"\#(id)","timestamp":"\#(t)","traits":{"industry":"SaaS","employees":\#(r * 3),"country":"us","lifecycle_stage":"\#(r < 995 ? "opportunity" : "customer")"}}"#
        }
    } else {
        let (type, props): (String, String)
        switch r {
        case 0..<420: (type, props) = ("email_open", r < 50 ? #","props":{"machine_open":true}"# : "")
        case 420..<520: (type, props) = ("email_click", r < 450 ? #","props":{"url":"https://example.com/case-studies/acme"}"# : #","props":{"url":"https://example.com/blog"}"#)
        case 520..<540: (type, props) = ("email_reply", "")
        case 540..<800: (type, props) = ("page_view", r < 600 ? #","props":{"path":"/pricing"}"# : #","props":{"path":"/docs/getting-started"}"#)
        case 800..<860: (type, props) = ("resource_download", #","props":{"asset":"whitepaper"}"#)
        case 860..<890: (type, props) = ("form_submit", r < 870 ? #","props":{"form":"demo"}"# : #","props":{"form":"newsletter"}"#)
        case 890..<900: (type, props) = ("meeting_booked", "")
        case 900..<950: (type, props) = ("subscribed", "")
        case 950..<960: (type, props) = ("unsubscribed", "")
        case 960..<965: (type, props) = ("bounced", r < 962 ? #","props":{"kind":"hard"}"# : #","props":{"kind":"soft"}"#)
        case 965..<966: (type, props) = ("spam_complaint", "")
        case 966..<980: (type, props) = ("crm_stage", #","props":{"stage":"\#(["lead", "prospect", "opportunity", "customer"][r % 4])"}"#)
        default: (type, props) = ("traits", #","props":{"industry":"software","company_size":\#(r),"country":"DE"}"#)
        }
        let time = o.rfc3339Times ? "\"\(rfc3339(ts, &rng))\"" : "\(ts)"
        line = #"{"event_id":"\#(id)","contact_id":"\#(contact)","type":"\#(type)","ts":\#(time)\#(props)}"#
    }
    out.append(contentsOf: line.utf8)
}

let o = Options()
if o.emit {
    var rng = Rng(s: o.seed)
    var line: [UInt8] = []
    for i in 0..<o.events {
        // With RFC 3339 times, 1% of the lines redeliver the line before (true duplicates).
        if o.rfc3339Times && i > 0 && rng.chance(0.01) {
            line.withUnsafeBufferPointer { _ = write(1, $0.baseAddress, $0.count) }
            continue
        }
        line.removeAll(keepingCapacity: true)
        generate(i, o, &rng, &line)
        line.append(10)
        line.withUnsafeBufferPointer { _ = write(1, $0.baseAddress, $0.count) }
    }
    exit(0)
}
print("segmentd-bench: \(o.events) events, \(o.contacts) contacts, \(o.days) days, default model, one core, " + (o.batch == 1 ? "record by record" : "batches of \(o.batch) records") + ", duplicate horizon \(o.duplicateHorizon)")
// The bench's own buffers (a generated chunk is ~23 MB) are allocated and touched before the
// baseline, so the RSS growth is the pipeline's alone.
var buf: [UInt8] = Array(repeating: 0, count: o.chunk * 256)
buf.removeAll(keepingCapacity: true)
var ends: [Int] = Array(repeating: 0, count: o.chunk)
ends.removeAll(keepingCapacity: true)
// Transitions are written in place, as replay writes them (behind a pointer: a global
// variable is checked for exclusive access at run time on every use).
let out = UnsafeMutablePointer<OutputBytes>.allocate(capacity: 1)
out.initialize(to: OutputBytes(capacity: 1 << 21))
for page in stride(from: 0, to: out.pointee.capacity, by: 4096) { out.pointee.start[page] = 0 }
let rssBefore = residentBytes()
let pipeline = Pipeline(model: .defaultModel(), duplicateHorizon: o.duplicateHorizon.millis)
var rng = Rng(s: o.seed)
var busy = 0.0
var inputBytes = 0
var transitions = 0
var i = 0
while i < o.events {
    buf.removeAll(keepingCapacity: true)
    ends.removeAll(keepingCapacity: true)
    let n = min(o.chunk, o.events - i)
    for k in 0..<n {
        generate(i + k, o, &rng, &buf)
        ends.append(buf.count)
    }
    inputBytes += buf.count
    let t0 = cpuSeconds()
    // The engine and encoder do not change during the run: read them once per chunk (reading
    // `pipeline.encoder` per transition copies the struct, retaining and releasing its arrays).
    let engine = pipeline.engine
    let encoder = pipeline.encoder
    buf.withUnsafeBufferPointer { b in
        var s = 0
        var records: [UnsafeBufferPointer<UInt8>] = []
        records.reserveCapacity(o.batch)
        for (k, e) in ends.enumerated() {
            records.append(UnsafeBufferPointer(rebasing: b[s..<e]))
            s = e
            if records.count < o.batch && k < ends.count - 1 { continue }
            if o.batch == 1 {
                _ = pipeline.process(records[0])
            } else {
                records.withUnsafeBufferPointer { pipeline.process(batch: $0) { _, _ in } }
            }
            records.removeAll(keepingCapacity: true)
            engine.drainTransitions { t in
                encoder.encodeLine(t, to: &out.pointee)
                transitions += 1
            }
            if out.pointee.count > 1 << 20 { out.pointee.removeAll() }
        }
    }
    busy += cpuSeconds() - t0
    i += n
}
let rssAfter = residentBytes()
let c = pipeline.counters
let contacts = pipeline.engine.contactCount
func fmt(_ x: Double) -> String { String(Int(x.rounded())) }
print("records: \(c.records) (applied \(c.applied), duplicates \(c.duplicates), bad \(c.badTotal), ignored \(c.ignoredTotal)), late events \(pipeline.engine.stats.lateEvents)")
print("input: \(inputBytes / c.records) bytes/record on average; transitions: \(transitions)")
print("contacts: \(contacts)")
print("throughput: \(fmt(Double(o.events) / busy)) events/s on one core (decode + apply + evaluate + encode, \(String(format: "%.2f", busy)) s CPU)")
print("memory: \(fmt(Double(rssAfter - rssBefore) / Double(contacts))) resident bytes per contact (RSS growth \((rssAfter - rssBefore) >> 20) MiB)")
let footprint = pipeline.engine.footprint
func perContact(_ bytes: Int) -> String { fmt(Double(bytes) / Double(contacts)) }
print("memory: \(perContact(footprint.total)) bytes per contact held by engine structures (\(pipeline.engine.layout.stride) state slots per contact): "
      + "rows \(perContact(footprint.rows)), contact table \(perContact(footprint.contactTable)), timers \(perContact(footprint.timers)), "
      + "duplicate overflow \(perContact(footprint.duplicateOverflow)), wide pairs \(perContact(footprint.widePairs))")
let occupancy = pipeline.engine.listOccupancy()
func tenthsPerContact(_ n: Int) -> String { String(format: "%.1f", Double(n) / Double(contacts)) }
print("lists: \(tenthsPerContact(occupancy.slots)) slots per contact, \(tenthsPerContact(occupancy.held)) hold an entry, "
      + "\(tenthsPerContact(occupancy.outsideEveryWindow)) of them outside every window "
      + "(\(tenthsPerContact(occupancy.newestOutsideEveryWindow)) the newest of their list)")

// The changelog's two halves in the engine alone: every contact snapshotted (as the daemon
// does for each changed contact at a commit), then restored into a fresh engine (as a new
// owner of a partition does), each timed on one core.
let snapshotStart = cpuSeconds()
var snapshots: [[UInt8]] = []
snapshots.reserveCapacity(contacts)
var snapshotBytes = 0
for index in 0..<contacts {
    let snapshot = pipeline.engine.snapshot(contact: index)
    snapshotBytes += snapshot.count
    snapshots.append(snapshot)
}
let snapshotSeconds = cpuSeconds() - snapshotStart
let restored = SegmentEngine(model: .defaultModel(), duplicateHorizon: o.duplicateHorizon.millis)
let restoreStart = cpuSeconds()
for (index, snapshot) in snapshots.enumerated() {
    do {
        try restored.restore(contactId: pipeline.engine.contactId(at: index), snapshot: snapshot)
    } catch {
        fatalError("restore of contact \(index) failed: \(error)")
    }
}
let restoreSeconds = cpuSeconds() - restoreStart
print("snapshot: \(fmt(Double(contacts) / snapshotSeconds)) contacts/s (\(snapshotBytes / max(1, contacts)) bytes each); restore: \(fmt(Double(contacts) / restoreSeconds)) contacts/s (one core)")

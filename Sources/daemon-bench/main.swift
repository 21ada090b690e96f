// daemon-bench: the daemon end to end against the plain librdkafka consumer, in one run.
//
//   swift run -c release daemon-bench [--events N] [--partitions P] [--contacts C]
//       [--guarantee exactly_once|at_least_once] [--commit-intervals 0ms,100ms] [--repartition auto|off]
//       [--restore-contacts N] [--threads 1,2] [--latency-seconds S] [--latency-rate R]
//
// Starts the embedded broker (librdkafka's mock cluster, over TCP on 127.0.0.1), loads N
// synthetic B2B events (lz4, keyed by contact), then reads them with a plain consumer that only
// reads (the limit on this machine), and with the daemon once per commit interval (decode,
// segment, produce transitions, changelog and checkpoints, commit transactions), each run with
// its own group, changelog and repartition topic; `0ms` commits after every poll (as the daemon
// did before `commit_interval` existed). Each rate is timed from the first record to the last,
// so the ~3 s group join is not counted. Every commit interval runs once per `--threads` value
// (processing threads per instance), in the same run. Then a fresh instance restores every partition from
// the last run's changelog. With `--restore-contacts N`, a restore benchmark follows: the daemon
// processes one event for each of N distinct contacts (a changelog of N contact snapshots, on
// topics of their own with the same partition count), then a fresh instance restores them all.
// With `--latency-seconds S` (default 10; 0: off), a latency run follows: a fresh instance
// with the last commit interval and the most threads reads a topic of its own while events are
// produced into it at half the rate that configuration reached above, for S seconds (after 3 s
// of warm-up at that rate, not counted); the
// p50/p99 from each event's Kafka timestamp to the commit of the transitions it caused come
// from the daemon's own histogram (segmentd_event_to_transition_seconds). `--latency-rate R`
// produces R events/s instead; the drain time after the last event says whether it kept up.
// CPU (user + system, every thread of the process, the embedded broker's included) is printed
// per record for the plain consumer's reading and for each daemon run while it processes (with
// the time its threads waited for a core other work held: /proc's run-queue wait), and
// for the engine alone: the same records, each partition's in offset order through its own
// pipeline on one thread (decode, apply, encode the transitions; no Kafka).
// Prints figures.

import Foundation
import SegmentdDaemon
import SegmentdEngine
import SegmentdKafka
import Synchronization

var events = 1_000_000
var partitions: Int32 = 32
var contacts = 100_000
var guarantee = "exactly_once"
var commitIntervals = ["0ms", "100ms"]
var repartition = "auto"
var restoreContacts = 0
var threadCounts = [1, 2]
var latencySeconds = 10
var latencyRate = 0
var args = CommandLine.arguments.dropFirst().makeIterator()
while let a = args.next() {
    guard let v = args.next() else { break }
    switch a {
    case "--events": events = Int(v)!
    case "--partitions": partitions = Int32(v)!
    case "--contacts": contacts = Int(v)!
    case "--guarantee": guarantee = v
    case "--commit-intervals": commitIntervals = v.split(separator: ",").map(String.init)
    case "--repartition": repartition = v
    case "--restore-contacts": restoreContacts = Int(v)!
    case "--threads": threadCounts = v.split(separator: ",").map { Int($0)! }
    case "--latency-seconds": latencySeconds = Int(v)!
    case "--latency-rate": latencyRate = Int(v)!
    default: fatalError("unknown option \(a)")
    }
}

func now() -> Double { Date().timeIntervalSince1970 }
/// CPU seconds of each live thread of the process, by thread id, with its name (librdkafka
/// names its threads `rdk:…`; the embedded broker's is `rdk:mock`), from /proc.
func cpuByThread() -> [Int: (name: String, seconds: Double)] {
    var out: [Int: (name: String, seconds: Double)] = [:]
    let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
    for tid in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? [] {
        guard let id = Int(tid), let stat = try? String(contentsOfFile: "/proc/self/task/\(tid)/stat", encoding: .utf8),
              let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")") else { continue }
        let name = String(stat[stat.index(after: open)..<close])
        let fields = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { continue }
        out[id] = (name, (user + system) / ticks)
    }
    return out
}

/// CPU seconds by thread name since `before` (a `cpuByThread()` taken earlier), threads that
/// ran at least `minimum`, most first. Per thread id, so that a thread gone since (a previous
/// run's thread of the same name) takes nothing off a new one.
func cpuByName(since before: [Int: (name: String, seconds: Double)], minimum: Double) -> [(String, Double)] {
    var byName: [String: Double] = [:]
    for (id, thread) in cpuByThread() { byName[thread.name, default: 0] += thread.seconds - (before[id]?.seconds ?? 0) }
    return byName.filter { $0.value >= minimum }.sorted { $0.value > $1.value }.map { ($0.key, $0.value) }
}

/// Seconds each live thread of the process spent runnable while no core was free for it (the
/// run-queue wait of /proc's schedstat), by thread id: CPU the machine's other work took.
func runQueueWaitByThread() -> [Int: Double] {
    var out: [Int: Double] = [:]
    for tid in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? [] {
        guard let id = Int(tid), let stat = try? String(contentsOfFile: "/proc/self/task/\(tid)/schedstat", encoding: .utf8) else { continue }
        let fields = stat.split(separator: " ")
        guard fields.count > 1, let waited = Double(fields[1].trimmingCharacters(in: .whitespacesAndNewlines)) else { continue }
        out[id] = waited / 1e9
    }
    return out
}

/// Run-queue wait of the process's threads since `before` (threads gone since are not counted).
func runQueueWait(since before: [Int: Double]) -> Double {
    runQueueWaitByThread().reduce(0) { $0 + $1.value - (before[$1.key] ?? 0) }
}

/// User and system CPU time of the whole process so far (every thread, the embedded broker's too).
func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}
func rate(_ n: Int, _ s: Double) -> String { "\(Int(Double(n) / s)) records/s" }
/// CPU seconds per record, in microseconds.
func microseconds(_ cpu: Double, _ records: Int) -> String { String(format: "%.2f µs", cpu / Double(max(records, 1)) * 1e6) }

var config = DaemonConfig()
config.idleAdvance = nil
// SEGMENTD_* variables tune the daemon as for `segmentd run` (e.g. SEGMENTD_CONSUMER_FETCH_MAX_BYTES).
try config.apply(environment: ProcessInfo.processInfo.environment)
try config.set("processing_guarantee", guarantee, origin: "flag --guarantee")
try config.set("repartition", repartition, origin: "flag --repartition")
let broker = try EmbeddedBroker(config: config, partitions: partitions)
config.brokers = broker.bootstrapServers
print("daemon-bench: \(events) events, \(partitions) partitions, \(contacts) contacts, \(guarantee), repartition \(repartition), embedded broker \(broker.bootstrapServers)")

// Load.
let producer = try KafkaProducer(config: ["bootstrap.servers": broker.bootstrapServers, "compression.type": "lz4",
                                          "linger.ms": "20", "batch.size": "1000000", "partitioner": "murmur2_random",
                                          "queue.buffering.max.messages": "1000000"])
var stream = SyntheticStream(contacts: contacts, start: 1_767_225_600_000, step: 120 * 86_400_000 / Int64(events), badFraction: 0.01)
var bytes = 0
/// Each input partition's values in offset order (murmur2 of the key, as the producer places
/// them), for the engine-alone phase: one buffer per partition, and where each value ends in it.
var valuesByPartition = [(bytes: [UInt8], ends: [Int])](repeating: ([], []), count: Int(partitions))
let t0 = now()
for _ in 0..<events {
    let r = stream.nextRecord()
    bytes += r.value.count
    let owner = Int(Murmur2.partition(r.key ?? Array("malformed".utf8), count: partitions))
    valuesByPartition[owner].bytes += r.value
    valuesByPartition[owner].ends.append(valuesByPartition[owner].bytes.count)
    try producer.produce(topic: config.inputTopic, key: r.key ?? Array("malformed".utf8), value: r.value)
}
try producer.flush(timeoutMs: 120_000)
try producer.close()
print("load: \(rate(events, now() - t0)) (\(bytes / events) bytes/record)")

// Plain consumer: read only.
let plain = try KafkaConsumer(config: ["bootstrap.servers": broker.bootstrapServers, "group.id": "plain-reader",
                                       "auto.offset.reset": "earliest"], rebalanceHandler: DefaultRebalanceHandler())
try plain.subscribe(topics: [config.inputTopic])
var seen = 0
var first = 0.0
var plainCpu0 = 0.0
var plainThreadsCpu0: [Int: (name: String, seconds: Double)] = [:]
var plainWait0: [Int: Double] = [:]
let deadline = now() + 300
while seen < events && now() < deadline {
    try plain.poll(maxRecords: 10_000, timeoutMs: 100) { view in
        if seen == 0 {
            first = now()
            plainCpu0 = cpuSeconds()
            plainThreadsCpu0 = cpuByThread()
            plainWait0 = runQueueWaitByThread()
        }
        seen += 1
        _ = view.value.count
    }
}
let plainSeconds = now() - first
// CPU from the first record to the last, every thread (the embedded broker serving the fetches too).
let plainCpu = cpuSeconds() - plainCpu0
let plainThreadsCpu = cpuByName(since: plainThreadsCpu0, minimum: 0.01)
let plainWait = runQueueWait(since: plainWait0)
try plain.close()
let plainRate = Double(seen) / plainSeconds
print("plain consumer: \(seen) records in \(String(format: "%.2f", plainSeconds)) s = \(rate(seen, plainSeconds))")
print("  CPU while reading: \(String(format: "%.2f", plainCpu)) s = \(microseconds(plainCpu, seen)) per record (\(String(format: "%.2f", plainCpu / plainSeconds)) cores); by thread: "
      + plainThreadsCpu.map { "\($0.0) \(String(format: "%.2f", $0.1)) s" }.joined(separator: ", ")
      + "; its threads waited \(String(format: "%.2f", plainWait)) s for a free core")

// The engine alone on the same records: one pipeline per partition, each partition's records in
// offset order, batched as replay does, every transition encoded (no Kafka, no changelog).
do {
    var engineTransitions = 0
    var encoded: [UInt8] = []
    let engineCpu0 = cpuSeconds()
    let engineStart = now()
    var batch: [UnsafeBufferPointer<UInt8>] = []
    for (bytes, ends) in valuesByPartition {
        let pipeline = Pipeline(model: .defaultModel())
        bytes.withUnsafeBufferPointer { all in
            var start = 0
            while start < ends.count {
                let end = min(ends.count, start + 10_000)
                batch.removeAll(keepingCapacity: true)
                for i in start..<end {
                    let from = i == 0 ? 0 : ends[i - 1]
                    batch.append(UnsafeBufferPointer(rebasing: all[from..<ends[i]]))
                }
                batch.withUnsafeBufferPointer { pipeline.process(batch: $0) { _, _ in } }
                pipeline.engine.drainTransitions { t in
                    pipeline.encoder.encode(t, to: &encoded)
                    engineTransitions += 1
                }
                encoded.removeAll(keepingCapacity: true)
                start = end
            }
        }
    }
    let engineSeconds = now() - engineStart
    let engineCpu = cpuSeconds() - engineCpu0
    print("engine alone (decode, apply, encode; \(partitions) pipelines, one thread): \(events) records in \(String(format: "%.2f", engineSeconds)) s = \(rate(events, engineSeconds)); \(engineTransitions) transitions; CPU \(String(format: "%.2f", engineCpu)) s = \(microseconds(engineCpu, events)) per record")
}

// The daemon, once per commit interval and thread count, each with its own group and state topics.
var lastRun = config
var rates: [String: Double] = [:]
for interval in commitIntervals {
    for threads in threadCounts {
        var c = config
        try c.set("commit_interval", interval, origin: "flag --commit-intervals")
        c.threads = threads
        let name = "\(interval)-t\(threads)"
        c.groupId = "bench-\(name)"
        c.transactionalId = "bench-\(name)"
        c.changelogTopic = "segmentd-changelog-\(name)"
        try broker.cluster.createTopic(c.changelogTopic, partitions: partitions)
        if c.repartition == .auto { try broker.cluster.createTopic(c.repartitionTopic, partitions: partitions) }
        let daemon = Daemon(config: c, model: .defaultModel(), log: { _ in })
        let finished = Atomic<Bool>(false)
        let cpu0 = cpuSeconds()
        var threadsCpu0 = cpuByThread()
        Thread.detachNewThread {
            do { try daemon.run() } catch { print("daemon failed: \(error)") }
            finished.store(true, ordering: .sequentiallyConsistent)
        }
        // From the moment every thread holds its partitions (the group's join, about 3 s on the
        // mock, is not counted) to the commit of the last record, the first transaction included.
        // A thread that joined first may process records before the others got theirs: what
        // committed by then is not counted.
        var dStart = 0.0
        var processCpu0 = 0.0
        var recordsBeforeReady = 0
        var wait0: [Int: Double] = [:]
        let runDeadline = now() + 900
        while daemon.status.records < events && now() < runDeadline && !finished.load(ordering: .sequentiallyConsistent) {
            if dStart == 0 && daemon.isReady {
                dStart = now()
                threadsCpu0 = cpuByThread()
                processCpu0 = cpuSeconds()
                recordsBeforeReady = daemon.status.records
                wait0 = runQueueWaitByThread()
            }
            usleep(2_000)
        }
        let dSeconds = now() - dStart
        let processCpu = cpuSeconds() - processCpu0
        // CPU from the start of processing to the last commit, by thread (every thread of the
        // process: the daemon's, librdkafka's, the embedded broker's).
        let threadsCpu = cpuByName(since: threadsCpu0, minimum: 0.05)
        let waited = runQueueWait(since: wait0)
        daemon.stop()
        while !finished.load(ordering: .sequentiallyConsistent) { usleep(10_000) }
        let s = daemon.status
        let counted = s.records - recordsBeforeReady
        let daemonRate = Double(counted) / dSeconds
        rates[name] = daemonRate
        print("daemon (\(guarantee), commit_interval \(interval), threads \(threads)): \(counted) records in \(String(format: "%.2f", dSeconds)) s = \(rate(counted, dSeconds))\(recordsBeforeReady > 0 ? " (and \(recordsBeforeReady) committed before every thread held its partitions, not counted)" : ""); \(s.transitions) transitions, \(s.deadLetters) dead letters, \(s.recordsRepartitioned) repartitioned, \(s.transactions) transactions")
        print("daemon (commit_interval \(interval), threads \(threads)) / plain consumer: \(String(format: "%.2f", daemonRate / plainRate))")
        print("  CPU of the process, join to stop: \(String(format: "%.2f", cpuSeconds() - cpu0)) s; while processing, by thread: "
              + threadsCpu.map { "\($0.0) \(String(format: "%.2f", $0.1)) s" }.joined(separator: ", ")
              + "; \(s.recordsDuringCommit) records processed while a commit ran")
        let processingThreads = threadsCpu.filter { $0.0.hasPrefix("segmentd-") }.reduce(0) { $0 + $1.1 }
        print("  CPU while processing: \(String(format: "%.2f", processCpu)) s = \(microseconds(processCpu, counted)) per record (\(String(format: "%.2f", processCpu / dSeconds)) cores), "
              + "of which the processing threads \(microseconds(processingThreads, counted)), every other thread (librdkafka's, the embedded broker's, the committers') \(microseconds(processCpu - processingThreads, counted)); "
              + "its threads waited \(String(format: "%.2f", waited)) s for a free core")
        if threads != threadCounts[0], let base = rates["\(interval)-t\(threadCounts[0])"] {
            print("daemon (commit_interval \(interval)) threads \(threads) / threads \(threadCounts[0]): \(String(format: "%.2f", daemonRate / base))")
        }
        lastRun = c
    }
}

// Restore: a fresh daemon instance rebuilds every partition from the last run's changelog.
func timeRestore(_ c: DaemonConfig, _ what: String, partitions: Int32) throws {
    let restorer = Daemon(config: c, model: .defaultModel(), log: { line in if line.hasPrefix("restored ") { print("  " + line) } })
    let r0 = now()
    let cpu0 = cpuSeconds()
    let threads0 = cpuByThread()
    _ = try restorer.restore(partitions: Array(0..<partitions))
    let rs = now() - r0
    let cpu = cpuSeconds() - cpu0
    var byThread = cpuByName(since: threads0, minimum: 0.01)
    byThread.append(("threads gone by the end (the changelog readers' librdkafka threads)", cpu - byThread.reduce(0) { $0 + $1.1 }))
    print("  CPU by thread: " + byThread.map { "\($0.0) \(String(format: "%.2f", $0.1)) s" }.joined(separator: ", "))
    let restored = restorer.status.restoredContacts
    print("restore (\(what)): \(restored) contacts from the changelog in \(String(format: "%.2f", rs)) s = \(Int(Double(restored) / rs)) contacts/s (CPU of the process, embedded broker included: \(String(format: "%.2f", cpu)) s)")
}
try timeRestore(lastRun, "the last run's changelog", partitions: partitions)

/// Runs the daemon on its own thread until it has read `records` records.
func runDaemon(_ c: DaemonConfig, records: Int) {
    let daemon = Daemon(config: c, model: .defaultModel(), log: { _ in })
    let finished = Atomic<Bool>(false)
    Thread.detachNewThread {
        do { try daemon.run() } catch { print("daemon failed: \(error)") }
        finished.store(true, ordering: .sequentiallyConsistent)
    }
    let until = now() + 900
    while daemon.status.records < records && now() < until && !finished.load(ordering: .sequentiallyConsistent) { usleep(10_000) }
    daemon.stop()
    while !finished.load(ordering: .sequentiallyConsistent) { usleep(10_000) }
}

/// p-quantile of a Prometheus histogram (cumulative buckets, `le` → count), interpolated
/// linearly inside the bucket that holds it.
func quantile(_ q: Double, _ buckets: [(Double, Double)]) -> Double? {
    guard let total = buckets.last?.1, total > 0 else { return nil }
    let rank = q * total
    var lower = 0.0, below = 0.0
    for (le, count) in buckets {
        if count >= rank {
            if le.isInfinite { return lower }
            return lower + (le - lower) * (count > below ? (rank - below) / (count - below) : 1)
        }
        lower = le.isInfinite ? lower : le
        below = count
    }
    return nil
}

if latencySeconds > 0 {
    var c = lastRun
    let best = rates["\(commitIntervals.last!)-t\(threadCounts.max()!)"] ?? 10_000
    let target = latencyRate > 0 ? latencyRate : max(1_000, Int(best / 2))
    c.inputTopic = "latency-events"
    c.groupId = "latency-bench"
    c.transactionalId = "latency-bench"
    c.changelogTopic = "latency-bench-changelog"
    c.threads = threadCounts.max()!
    for t in [c.inputTopic, c.changelogTopic] + (c.repartition == .auto ? [c.repartitionTopic] : []) {
        try broker.cluster.createTopic(t, partitions: partitions)
    }
    let rebalanceLines = Mutex<[(Double, String)]>([])
    let daemon = Daemon(config: c, model: .defaultModel(), log: { line in
        // Partitions moving between threads hold their records back: when, relative to the first event.
        if line.contains(": restored ") && line.contains(" partitions, ") || line.contains("revoked") {
            rebalanceLines.withLock { $0.append((now(), line.contains("revoked") ? String(line.prefix { $0 != ":" }) + ": partitions revoked" : line)) }
        }
    })
    let finished = Atomic<Bool>(false)
    Thread.detachNewThread {
        do { try daemon.run() } catch { print("daemon failed: \(error)") }
        finished.store(true, ordering: .sequentiallyConsistent)
    }
    let readyBy = now() + 60
    while !daemon.isReady && now() < readyBy { usleep(10_000) }
    let p = try KafkaProducer(config: ["bootstrap.servers": broker.bootstrapServers, "compression.type": "lz4",
                                       "linger.ms": "5", "partitioner": "murmur2_random", "queue.buffering.max.messages": "1000000"])
    // Events of the present (their event times follow the wall clock), paced every 10 ms.
    var live = SyntheticStream(contacts: contacts, start: Daemon.wallMs() - 1_000, step: max(1, 1_000 / Int64(target)), seed: 99, badFraction: 0.01)
    /// A histogram's cumulative buckets from the daemon's exposition.
    func histogram(_ name: String) -> [(Double, Double)] {
        var buckets: [(Double, Double)] = []
        for line in daemon.metrics.exposition().split(separator: "\n") where line.hasPrefix(name + "_bucket{") {
            guard let open = line.range(of: "le=\""), let close = line[open.upperBound...].firstIndex(of: "\""),
                  let count = Double(line.split(separator: " ").last ?? "") else { continue }
            let le = String(line[open.upperBound..<close])
            buckets.append((le == "+Inf" ? .infinity : Double(le) ?? .infinity, count))
        }
        return buckets.sorted { $0.0 < $1.0 }
    }
    /// What `after` counted since `before` (same buckets).
    func since(_ after: [(Double, Double)], _ before: [(Double, Double)]) -> [(Double, Double)] {
        after.map { b in (b.0, b.1 - (before.first { $0.0 == b.0 }?.1 ?? 0)) }
    }
    // Warm-up (the first transactions of each producer, metadata): produced at the same rate for
    // 3 s, then not counted.
    let warmUp = 3.0
    var warm: ([(Double, Double)], [(Double, Double)], [(Double, Double)]) = ([], [], [])
    var produced = 0
    let l0 = now()
    // Beside the daemon, a plain consumer (read_uncommitted, no processing) measures how long
    // events take to reach a reader at all (the bench's producer, the broker, the fetch): the
    // part of the latency that is not the daemon's.
    let observed = Mutex<[Double]>([])
    let observerDone = Atomic<Bool>(false)
    let observer = try KafkaConsumer(config: ["bootstrap.servers": broker.bootstrapServers, "group.id": "latency-observer",
                                              "auto.offset.reset": "earliest"], rebalanceHandler: DefaultRebalanceHandler())
    try observer.subscribe(topics: [c.inputTopic])
    Thread.detachNewThread {
        var delays: [Double] = []
        while !observerDone.load(ordering: .sequentiallyConsistent) {
            _ = try? observer.poll(maxRecords: 10_000, timeoutMs: 50) { view in
                // Events produced after the warm-up (the observer's own join reads a backlog).
                if Double(view.timestampMs) >= (l0 + warmUp) * 1000 { delays.append(now() * 1000 - Double(view.timestampMs)) }
            }
        }
        observed.withLock { $0 = delays }
    }
    while now() - l0 < Double(latencySeconds) + warmUp {
        if warm.0.isEmpty && now() - l0 >= warmUp {
            warm = (histogram("segmentd_event_to_transition_seconds"), histogram("segmentd_batch_seconds"), histogram("segmentd_commit_seconds"))
        }
        let due = Int(Double(target) * (now() - l0))
        while produced < due {
            let r = live.nextRecord()
            try p.produce(topic: c.inputTopic, key: r.key ?? Array("malformed".utf8), value: r.value)
            produced += 1
        }
        usleep(10_000)
    }
    try p.flush(timeoutMs: 60_000)
    try p.close()
    let producedBy = now()
    let drainBy = producedBy + 120
    while daemon.status.records < produced && now() < drainBy { usleep(10_000) }
    let drained = now() - producedBy
    usleep(300_000)  // the last transaction commits
    let buckets = since(histogram("segmentd_event_to_transition_seconds"), warm.0)
    let batches = since(histogram("segmentd_batch_seconds"), warm.1)
    let commits = since(histogram("segmentd_commit_seconds"), warm.2)
    daemon.stop()
    while !finished.load(ordering: .sequentiallyConsistent) { usleep(10_000) }
    var lastPrinted = ""
    for (at, line) in rebalanceLines.withLock({ $0 }) where at >= l0 && at <= producedBy + drained && line != lastPrinted {
        print("  \(String(format: "%+.2f", at - l0 - warmUp)) s from the end of the warm-up: \(line)")
        lastPrinted = line
    }
    observerDone.store(true, ordering: .sequentiallyConsistent)
    var delays: [Double] = []
    while delays.isEmpty && now() < drainBy { delays = observed.withLock { $0 }; usleep(10_000) }
    try observer.close()
    delays.sort()
    if !delays.isEmpty {
        print("  a plain consumer beside it (read only): event Kafka timestamp to read p50 \(Int(delays[delays.count / 2])) ms, p99 \(Int(delays[delays.count * 99 / 100])) ms over \(delays.count) events")
    }
    func ms(_ v: Double?) -> String { v.map { String(format: "%.0f ms", $0 * 1000) } ?? "n/a" }
    print("latency (commit_interval \(commitIntervals.last!), threads \(c.threads), \(target) events/s\(latencyRate > 0 ? "" : " = half of \(Int(best))"), \(latencySeconds) s, \(produced) events, \(Int(buckets.last?.1 ?? 0)) with transitions; all committed \(String(format: "%.2f", drained)) s after the last was produced): event Kafka timestamp to commit p50 \(ms(quantile(0.5, buckets))), p99 \(ms(quantile(0.99, buckets))); batch (with its commit when due) p50 \(ms(quantile(0.5, batches))), p99 \(ms(quantile(0.99, batches))); commit p50 \(ms(quantile(0.5, commits))), p99 \(ms(quantile(0.99, commits)))")
}

if restoreContacts > 0 {
    var c = config
    c.inputTopic = "restore-bench-events"
    c.changelogTopic = "restore-bench-changelog"
    c.groupId = "restore-bench"
    c.transactionalId = "restore-bench"
    for t in [c.inputTopic, c.changelogTopic] + (c.repartition == .auto ? [c.repartitionTopic] : []) {
        try broker.cluster.createTopic(t, partitions: partitions)
    }
    let p = try KafkaProducer(config: ["bootstrap.servers": broker.bootstrapServers, "compression.type": "lz4",
                                       "linger.ms": "20", "batch.size": "1000000", "partitioner": "murmur2_random",
                                       "queue.buffering.max.messages": "1000000"])
    let start: Int64 = 1_767_225_600_000
    for i in 0..<restoreContacts {
        let contact = "r-\(i)"
        let ts = start + Int64(i)
        let value = i % 2 == 0
            ? #"{"event_id":"e-\#(i)","contact_id":"\#(contact)","type":"email_open","ts":\#(ts)}"#
            : #"{"event_id":"e-\#(i)","contact_id":"\#(contact)","type":"page_view","ts":\#(ts),"props":{"path":"/pricing"}}"#
        try p.produce(topic: c.inputTopic, key: Array(contact.utf8), value: Array(value.utf8))
    }
    try p.flush(timeoutMs: 300_000)
    try p.close()
    let w0 = now()
    runDaemon(c, records: restoreContacts)
    print("restore bench: the daemon wrote the changelog of \(restoreContacts) contacts in \(String(format: "%.1f", now() - w0)) s")
    try timeRestore(c, "\(restoreContacts) contacts, one snapshot each", partitions: partitions)
}
broker.close()

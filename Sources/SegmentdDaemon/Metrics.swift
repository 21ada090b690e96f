import Prometheus
import SegmentdEngine
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The daemon's Prometheus metrics, one set per instance. Written from every processing thread
/// (counters and histograms are thread-safe in swift-prometheus; the partition gauges of a
/// partition are written by the one thread that holds it; segment sizes and the aborts gauge
/// are set by the instance from all threads' figures), read by the HTTP server's `/metrics`.
public final class DaemonMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry

    let records: Counter
    let recordsRepartitioned: Counter
    let recordsDuringCommit: Counter
    let recordsByShape: [String: Counter]
    /// Events applied by type name (canonical and declared types: bounded by the model's
    /// `Model.maxEventTypes`), made when first counted.
    private let recordsByType = Mutex<[String: Counter]>([:])
    let ignored: [String: Counter]
    let deadLetters: [String: Counter]
    let late: Counter
    let duplicates: Counter
    /// The families whose labels come from the model (group and segment names), rebuilt
    /// when the model is reloaded.
    private let tables: Mutex<ModelTables>

    /// Events applied by the segment they found their contact in (`EngagementCounts`), by
    /// group, segment (`none` outside every segment) and type: bounded by the model (groups ×
    /// (segments + 1) × event types), made when first counted.
    private let segmentEventCounters = Mutex<[String: Counter]>([:])

    func segmentEvents(group: String, segment: String, type: String) -> Counter {
        segmentEventCounters.withLock { counters in
            let key = group + "\u{0}" + segment + "\u{0}" + type
            if let c = counters[key] { return c }
            let c = registry.counter("segmentd_segment_events_total", labels: [("group", group), ("segment", segment), ("type", type)],
                                     help: "Events applied, by the segment each found its contact in (group, segment or none, event type)")
            counters[key] = c
            return c
        }
    }

    /// The counter of events applied of one type.
    func eventsOfType(_ name: String) -> Counter {
        recordsByType.withLock { counters in
            if let c = counters[name] { return c }
            let c = registry.counter("segmentd_events_by_type_total", labels: [("type", name)], help: "Events applied, by event type (canonical or declared by the model)")
            counters[name] = c
            return c
        }
    }

    struct ModelTables {
        /// [group][from + 1][to + 1] (index 0: no segment); nil where from == to (no such
        /// transition exists, null to null included), so no impossible series is exported.
        var transitions: [[[Counter?]]]
        var segmentSize: [[Gauge]]
    }
    let commits: Counter
    let aborts: Counter
    let consecutiveAborts: Gauge
    let offsetResets: Counter
    let truncatedDeadLetters: Counter
    let restores: Counter
    let restoreSeconds: ValueHistogram
    let batchSeconds: ValueHistogram
    let eventToTransitionSeconds: ValueHistogram
    let commitSeconds: ValueHistogram
    private let partitionGauges = Mutex<[Int32: PartitionGauges]>([:])

    struct PartitionGauges {
        var contacts: Gauge
        var stateBytes: Gauge
        var watermarkLag: Gauge
        var consumerLag: Gauge
    }

    /// `segmentd_build_info{version, librdkafka} 1`: which build runs, for dashboards and alerts.
    public func setBuildInfo(version: String, librdkafka: String) {
        registry.gauge("segmentd_build_info", labels: [("version", version), ("librdkafka", librdkafka)],
                       help: "Always 1: the version of segmentd and of the librdkafka it runs with").set(Double(1))
    }

    public init(model: Model, registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        tables = Mutex(DaemonMetrics.tables(for: model, registry))
        records = registry.counter("segmentd_records_total", help: "Input records read")
        recordsRepartitioned = registry.counter("segmentd_records_repartitioned_total",
                                                help: "Input records whose contact belongs to another partition, forwarded to the repartition topic")
        recordsDuringCommit = registry.counter("segmentd_records_during_commit_total",
                                               help: "Records processed while the previous transaction committed (they join the next one)")
        var byShape: [String: Counter] = [:]
        for s in ["native", "segment"] {
            byShape[s] = registry.counter("segmentd_events_consumed_total", labels: [("shape", s)], help: "Records applied, by input shape")
        }
        recordsByShape = byShape
        var ign: [String: Counter] = [:]
        for r in IgnoreReason.allCases {
            ign[r.rawValue] = registry.counter("segmentd_ignored_records_total", labels: [("reason", r.rawValue)], help: "Valid records carrying nothing for the engine")
        }
        ignored = ign
        var dl: [String: Counter] = [:]
        for r in DecodeError.Reason.allCases {
            dl[r.rawValue] = registry.counter("segmentd_dead_letters_total", labels: [("reason", r.rawValue)], help: "Bad records sent to the dead-letter topic")
        }
        deadLetters = dl
        late = registry.counter("segmentd_late_events_total", help: "Events older than their contact's clock (applied, emitted at the clock)")
        duplicates = registry.counter("segmentd_duplicate_events_total", help: "Records whose event id was already applied for the contact")
        commits = registry.counter("segmentd_transactions_total", labels: [("result", "commit")], help: "Kafka transactions (or at-least-once commits)")
        aborts = registry.counter("segmentd_transactions_total", labels: [("result", "abort")], help: "Kafka transactions (or at-least-once commits)")
        consecutiveAborts = registry.gauge("segmentd_transaction_aborts_in_a_row", help: "Transaction aborts since the last commit (0 while commits succeed)")
        offsetResets = registry.counter("segmentd_offset_resets_total", help: "Partitions whose committed position was gone from the broker (records skipped or read again)")
        truncatedDeadLetters = registry.counter("segmentd_dead_letters_truncated_total", help: "Dead letters Kafka refused whole, stored truncated with an error.truncated header")
        restores = registry.counter("segmentd_restores_total", help: "Partitions restored from the changelog")
        let secs: [Double] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
        restoreSeconds = registry.histogram("segmentd_restore_seconds", buckets: secs, help: "Time to restore the partitions of one assignment from the changelog (read together, built in parallel)")
        batchSeconds = registry.histogram("segmentd_batch_seconds", buckets: secs, help: "Time to process one poll's batch, and commit the transaction when due")
        // Finer around the commit interval (100 ms by default), where this latency lives.
        let latency: [Double] = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.175, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 10, 30, 60]
        eventToTransitionSeconds = registry.histogram("segmentd_event_to_transition_seconds", buckets: latency,
                                                               help: "From an event's Kafka timestamp to the commit of the transitions it caused")
        commitSeconds = registry.histogram("segmentd_commit_seconds", buckets: latency,
                                           help: "Time to complete one transaction: changelog records, checkpoints, offsets and the commit (the part after the changelog records runs while the next records are processed)")
        // Every canonical type's series exists from the start (declared types' on first use).
        for type in CanonicalTypes.all { _ = eventsOfType(type) }
    }

    static func tables(for model: Model, _ registry: PrometheusCollectorRegistry) -> ModelTables {
        let transitions = model.groups.map { g in
            let names: [String] = ["null"] + g.segments.map(\.name)
            return names.map { from in
                names.map { to -> Counter? in
                    guard from != to else { return nil }
                    return registry.counter("segmentd_transitions_total", labels: [("group", g.name), ("from", from), ("to", to)],
                                         help: "Segment transitions emitted")
                }
            }
        }
        let sizes = model.groups.map { g in
            g.segments.map { registry.gauge("segmentd_segment_contacts", labels: [("group", g.name), ("segment", $0.name)],
                                                help: "Contacts in each segment, over this instance's partitions") }
        }
        return ModelTables(transitions: transitions, segmentSize: sizes)
    }

    /// Transitions a processing thread counted since it last added them here, by group, from
    /// and to (none as index 0) under one model: counted per transition without a lock, added
    /// to the metrics in one step (`add(_:)`, with the gauges).
    struct TransitionCounts {
        private var counts: [Int]
        /// Per group: its first index in `counts`, and its side (segments + 1, for none).
        private let starts: [Int]
        private let sides: [Int]

        init(model: Model) {
            var starts: [Int] = [], sides: [Int] = [], total = 0
            for g in model.groups {
                starts.append(total)
                sides.append(g.segments.count + 1)
                total += (g.segments.count + 1) * (g.segments.count + 1)
            }
            self.starts = starts
            self.sides = sides
            counts = Array(repeating: 0, count: total)
        }

        mutating func count(group: Int, from: Int?, to: Int?) {
            guard group < sides.count else { return }
            let side = sides[group], f = (from ?? -1) + 1, x = (to ?? -1) + 1
            guard f < side, x < side else { return }
            counts[starts[group] + f * side + x] += 1
        }

        /// Calls `body` with each non-zero count (group, from + 1, to + 1, count) and clears them.
        mutating func drain(_ body: (Int, Int, Int, Int) -> Void) {
            for g in starts.indices {
                let side = sides[g]
                for f in 0..<side {
                    for x in 0..<side where counts[starts[g] + f * side + x] != 0 {
                        body(g, f, x, counts[starts[g] + f * side + x])
                        counts[starts[g] + f * side + x] = 0
                    }
                }
            }
        }
    }

    /// Adds what `counts` holds to the transition counters, and clears it.
    func add(_ counts: inout TransitionCounts) {
        // Bounds checked: during a reload, a worker may still count under the other model.
        tables.withLock { t in
            counts.drain { group, f, x, n in
                guard f != x, group < t.transitions.count, f < t.transitions[group].count, x < t.transitions[group][f].count else { return }
                t.transitions[group][f][x]?.increment(by: Int64(n))
            }
        }
    }

    func setSegmentSizes(_ sizes: [[Int]]) {
        tables.withLock { t in
            for (g, row) in sizes.enumerated() where g < t.segmentSize.count {
                for (s, v) in row.enumerated() where s < t.segmentSize[g].count { t.segmentSize[g][s].set(Double(v)) }
            }
        }
    }

    /// After a model reload: segment gauges of the old model go away, the new model's appear.
    func switchModel(_ model: Model) {
        tables.withLock { t in
            for row in t.segmentSize { for g in row { registry.unregisterGauge(g) } }
            t = DaemonMetrics.tables(for: model, registry)
        }
    }

    func partition(_ p: Int32) -> PartitionGauges {
        partitionGauges.withLock { g in
            if let x = g[p] { return x }
            let l = [("partition", String(p))]
            let x = PartitionGauges(
                contacts: registry.gauge("segmentd_contacts", labels: l, help: "Contacts in state"),
                stateBytes: registry.gauge("segmentd_state_bytes", labels: l, help: "Bytes of engine state"),
                watermarkLag: registry.gauge("segmentd_watermark_lag_seconds", labels: l, help: "Wall clock minus the partition's watermark"),
                consumerLag: registry.gauge("segmentd_consumer_lag", labels: l, help: "Records between the partition's end and the next offset to read"))
            g[p] = x
            return x
        }
    }

    func forget(_ p: Int32) {
        partitionGauges.withLock { g in
            if let x = g.removeValue(forKey: p) {
                registry.unregisterGauge(x.contacts)
                registry.unregisterGauge(x.stateBytes)
                registry.unregisterGauge(x.watermarkLag)
                registry.unregisterGauge(x.consumerLag)
            }
        }
    }

    /// The metrics in Prometheus text format, followed by the process metrics.
    public func exposition() -> String { registry.emitToString() + ProcessMetrics.exposition() }
}

/// The standard `process_*` metrics (the names of the Prometheus client libraries' process
/// collector), read from `/proc/self` at each scrape. Empty where there is no `/proc`.
enum ProcessMetrics {
    static func exposition() -> String {
        #if os(Linux)
        guard let stat = try? readTextFile("/proc/self/stat"),
              let close = stat.lastIndex(of: ")") else { return "" }
        // Fields after the command name (which may hold spaces), from field 3 (state) on.
        let f = stat[stat.index(after: close)...].split(separator: " ")
        func field(_ n: Int) -> Double? { n - 3 < f.count ? Double(f[n - 3]) : nil }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        let page = Double(sysconf(Int32(_SC_PAGESIZE)))
        var out = ""
        func emit(_ name: String, _ type: String, _ help: String, _ value: Double?) {
            guard let value else { return }
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n\(name) \(value)\n"
        }
        if ticks > 0, let u = field(14), let s = field(15) {
            emit("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.", (u + s) / ticks)
        }
        emit("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", field(24).map { $0 * page })
        emit("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", field(23))
        if ticks > 0, let start = field(22), let boot = bootTime() {
            emit("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.", boot + start / ticks)
        }
        if let dir = opendir("/proc/self/fd") {
            var n = 0
            while let e = readdir(dir) {
                if e.pointee.d_name.0 != 0x2E { n += 1 }  // not "." or ".."
            }
            closedir(dir)
            // Less the descriptor opendir held while counting.
            emit("process_open_fds", "gauge", "Number of open file descriptors.", Double(max(n - 1, 0)))
        }
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 {
            emit("process_max_fds", "gauge", "Maximum number of open file descriptors.", Double(limit.rlim_cur))
        }
        return out
        #else
        return ""
        #endif
    }

    #if os(Linux)
    /// `btime` of `/proc/stat`: the boot time in seconds since the epoch.
    private static func bootTime() -> Double? {
        guard let s = try? readTextFile("/proc/stat") else { return nil }
        for line in s.split(separator: "\n") where line.hasPrefix("btime ") {
            return Double(line.split(separator: " ").last ?? "")
        }
        return nil
    }
    #endif
}

/// Metrics by name, labels and help text, through swift-prometheus's descriptor API (our names
/// already end in their unit, `_total` or `_seconds`, so the descriptor's unit is empty).
extension PrometheusCollectorRegistry {
    func counter(_ name: String, labels: [(String, String)] = [], help: String) -> Counter {
        makeCounter(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help), labels: labels)
    }

    func gauge(_ name: String, labels: [(String, String)] = [], help: String) -> Gauge {
        makeGauge(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help), labels: labels)
    }

    func histogram(_ name: String, buckets: [Double], help: String) -> ValueHistogram {
        makeValueHistogram(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help), buckets: buckets)
    }
}

import SegmentdEngine
import SegmentdKafka
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One line of the daemon's log, on stderr.
public typealias LogSink = @Sendable (String) -> Void

/// Why the daemon stopped other than by request.
public struct DaemonError: Error, CustomStringConvertible {
    public var description: String
}

/// What the daemon has done so far (read from other threads through `Daemon.status`).
public struct DaemonStatus: Sendable {
    /// Records read from the input topic.
    public var records = 0
    /// Input records forwarded to the repartition topic (committed).
    public var recordsRepartitioned = 0
    /// Records read from the repartition topic and handed to their partition's engine.
    public var repartitionRecordsRead = 0
    /// Records (input and repartition topic) processed while the previous transaction
    /// committed, committed with the next one.
    public var recordsDuringCommit = 0
    public var transitions = 0
    public var deadLetters = 0
    public var transactions = 0
    public var aborts = 0
    public var assigned: [Int32] = []
    public var restoredContacts = 0
    public var restoreSeconds = 0.0
    /// Partitions whose checkpointed (or processed) position was gone from the broker.
    public var offsetResets = 0
    /// Dead letters refused by Kafka as they were and stored truncated.
    public var truncatedDeadLetters = 0
    /// Transaction aborts since the last commit.
    public var consecutiveAborts = 0
}

/// Where the daemon is in its life (for answers that cannot be given, and for logs).
public enum DaemonPhase: Int, Sendable, CustomStringConvertible {
    case starting, initialisingTransactions, waitingForAssignment, restoring, running, stopping, stopped

    public var description: String {
        switch self {
        case .starting: "starting"
        case .initialisingTransactions: "initialising transactions with the broker"
        case .waitingForAssignment: "waiting for a partition assignment"
        case .restoring: "restoring a partition from the changelog"
        case .running: "running"
        case .stopping: "shutting down"
        case .stopped: "stopped"
        }
    }
}

/// Why a question to the daemon got no answer (the HTTP server turns it into a 503).
public struct Unavailable: Error, CustomStringConvertible, Sendable {
    public var description: String
}

/// `segmentd run`: consume engagement events, segment them, produce transitions, exactly once.
///
/// An instance runs `threads` workers (`Worker`), each the whole processing loop on its own OS
/// thread with its own consumer in the group, its own transactional producer
/// (`<transactional_id>-<i>`) and the engines of the partitions Kafka assigned to it: Kafka
/// Streams' StreamThread model under exactly-once v2. Contacts never cross threads because
/// partitions never do, so workers share nothing but settings, the stop flag and metrics.
///
/// This class wires them and answers for the instance: status, phase, liveness and readiness
/// over every worker; contact queries answered by the worker that holds the contact's
/// partition; a model reload applied by every worker; a stop asked of every worker (each
/// commits and leaves the group); and a fatal error in one worker stops the instance, which
/// then throws that error.
public final class Daemon: @unchecked Sendable {
    public let config: DaemonConfig
    private let modelBox: Mutex<Model>
    /// The model running now (replaced by a reload).
    public var model: Model { modelBox.withLock { $0 } }
    private let log: LogSink
    private let debug: LogSink?
    private let errorSink: LogSink?
    public let metrics: DaemonMetrics
    /// Committed transitions for the live console (`RecentTransitions`), staged per thread.
    public let recent: RecentTransitions
    private let stopFlag = Atomic<Bool>(false)
    var stopping: Bool { stopFlag.load(ordering: .relaxed) }
    /// `run` returned.
    private let ended = Atomic<Bool>(false)
    /// The workers, set once `run` (or `restore`) starts.
    private let workerList = Mutex<[Worker]>([])
    private var workers: [Worker] { workerList.withLock { $0 } }
    /// Which worker holds each of this instance's partitions (routes contact queries).
    private let owners = Mutex<[Int32: Int]>([:])
    private let partitionCount = Atomic<Int32>(0)
    /// The address other instances reach this one's HTTP server at (published in the instances
    /// topic): `DaemonConfig.advertisedHTTPAddress`, with the bound port once the server runs.
    private let advertised: Mutex<String?>
    /// The other instances of the group and their partitions, while `run` runs.
    private let directoryBox = Mutex<InstanceDirectory?>(nil)
    /// The first worker failure: it stops the instance and `run` throws it.
    private let failure = Mutex<(any Error)?>(nil)

    /// Test hook: every record handed to an engine (partition, value), in the order read, from
    /// every worker's thread.
    var engineInputTap: ((Int32, [UInt8]) -> Void)?

    public init(config: DaemonConfig, model: Model, log: @escaping LogSink, debug: LogSink? = nil, error: LogSink? = nil,
                metrics: DaemonMetrics? = nil) {
        self.config = config
        self.modelBox = Mutex(model)
        self.log = log
        self.debug = debug
        self.errorSink = error
        self.metrics = metrics ?? DaemonMetrics(model: model)
        self.recent = RecentTransitions(keepContactIds: config.httpContactIds)
        self.advertised = Mutex(config.advertisedHTTPAddress())
    }

    /// This instance's id in the group (its `transactional_id`): the key of its record in the
    /// instances topic, and what answers name as the instance that answered.
    public var instanceId: String { config.transactionalId }

    /// The HTTP server listens on `port` (the one it got when `http_address` asks for port 0):
    /// the advertised address follows unless `http_advertised_address` is set.
    public func httpListening(port: Int) {
        let address = config.advertisedHTTPAddress(boundPort: port)
        advertised.withLock { $0 = address }
    }

    /// The address this instance publishes for its HTTP server (nil: off or not known yet).
    public var advertisedHTTPAddress: String? { advertised.withLock { $0 } }

    /// Another instance of the group, as this one last read it in the instances topic.
    public struct Peer: Sendable, Equatable {
        public var instance: String
        /// Its advertised HTTP address; nil when its HTTP server is off.
        public var httpAddress: String?
        public var partitions: [Int32]
    }

    /// The other instance that owns `partition`, by the latest record claiming it in the
    /// instances topic; nil when none is known (not read yet, a rebalance in flight, the topic
    /// missing).
    public func owner(of partition: Int32) -> Peer? {
        directoryBox.withLock { $0 }?.owner(of: partition).map { Peer(instance: $0.instance, httpAddress: $0.httpAddress, partitions: $0.partitions) }
    }

    /// The other instances of the group, as read in the instances topic.
    public var peers: [Peer] {
        (directoryBox.withLock { $0 }?.others ?? []).map { Peer(instance: $0.instance, httpAddress: $0.httpAddress, partitions: $0.partitions) }
    }

    /// Input partition count (for locating a contact's partition), read at start.
    public var inputPartitions: Int32 { partitionCount.load(ordering: .relaxed) }

    func noteInputPartitions(_ n: Int32) {
        if n > 0 { partitionCount.store(n, ordering: .relaxed) }
    }

    func noteOwner(of partition: Int32, _ worker: Int?) {
        owners.withLock { $0[partition] = worker }
    }

    /// What the instance has done so far: the sum over its workers (`assigned`: all their
    /// partitions; `consecutiveAborts`: the most of any worker).
    public var status: DaemonStatus {
        var s = DaemonStatus()
        for w in workers {
            let x = w.status
            s.records += x.records
            s.recordsRepartitioned += x.recordsRepartitioned
            s.repartitionRecordsRead += x.repartitionRecordsRead
            s.recordsDuringCommit += x.recordsDuringCommit
            s.transitions += x.transitions
            s.deadLetters += x.deadLetters
            s.transactions += x.transactions
            s.aborts += x.aborts
            s.assigned += x.assigned
            s.restoredContacts += x.restoredContacts
            s.restoreSeconds += x.restoreSeconds
            s.offsetResets += x.offsetResets
            s.truncatedDeadLetters += x.truncatedDeadLetters
            s.consecutiveAborts = max(s.consecutiveAborts, x.consecutiveAborts)
        }
        s.assigned.sort()
        return s
    }

    /// Where the instance is: stopping once any worker stops; otherwise the earliest start
    /// phase of a worker still starting, else restoring while any worker restores, running
    /// once any worker consumes its partitions.
    public var phase: DaemonPhase {
        if ended.load(ordering: .relaxed) { return .stopped }
        let phases = workers.map(\.phase)
        guard !phases.isEmpty else { return .starting }
        if phases.allSatisfy({ $0 == .stopped }) { return .stopped }
        if phases.contains(where: { $0 == .stopping || $0 == .stopped }) || stopping { return .stopping }
        if let early = phases.filter({ $0 == .starting || $0 == .initialisingTransactions }).min(by: { $0.rawValue < $1.rawValue }) {
            return early
        }
        if phases.contains(.restoring) { return .restoring }
        if phases.contains(.running) { return .running }
        return .waitingForAssignment
    }

    /// Why the instance is not live, or nil: a worker's loop has not run for 30 s, or a worker
    /// has input waiting and committed nothing for `stall_timeout` (`/healthz`).
    public var livenessProblem: String? {
        if phase == .stopped { return "stopped" }
        for w in workers {
            if let p = w.livenessProblem { return config.threads > 1 ? "thread \(w.index): \(p)" : p }
        }
        return nil
    }

    /// Every worker runs and makes progress (liveness: `/healthz`).
    public var isAlive: Bool { livenessProblem == nil }

    /// Partitions are assigned, restored and being consumed (readiness: `/readyz`): every
    /// worker got its share of the assignment (a worker may get none when the instance has
    /// more threads than partitions) and at least one holds partitions.
    public var isReady: Bool {
        let ws = workers
        return ws.contains(where: \.holdsPartitions) && ws.allSatisfy { $0.holdsPartitions || $0.hasAssignment } && isAlive
    }

    /// Contacts per segment over this instance's partitions, [group][segment].
    public var segmentContacts: [[Int]] {
        var sizes = model.groups.map { Array(repeating: 0, count: $0.segments.count) }
        for w in workers {
            for (g, row) in w.segmentContacts.enumerated() where g < sizes.count {
                for (s, v) in row.enumerated() where s < sizes[g].count { sizes[g][s] += v }
            }
        }
        return sizes
    }

    /// A worker's segment sizes changed: the instance's gauges get the sum.
    func publishSegmentSizes() { metrics.setSegmentSizes(segmentContacts) }

    /// A worker committed or aborted: the gauge shows the most aborts in a row of any worker.
    func publishConsecutiveAborts() {
        metrics.consecutiveAborts.set(Double(workers.map(\.status.consecutiveAborts).max() ?? 0))
    }

    /// Asks every worker to finish the batch in hand, commit, and leave the group. Also
    /// interrupts the start (transaction initialisation, waiting for an assignment).
    public func stop() { stopFlag.store(true, ordering: .relaxed) }

    /// The workers this instance runs (worker i logs with a `thread i:` prefix when there are
    /// several).
    private func makeWorkers() -> [Worker] {
        let n = config.threads
        return (0..<n).map { i in
            Worker(index: i, instance: self, config: config.forThread(i), model: model,
                   log: Daemon.prefixed(log, thread: i, of: n)!,
                   debug: Daemon.prefixed(debug, thread: i, of: n),
                   error: Daemon.prefixed(errorSink, thread: i, of: n))
        }
    }

    /// `sink` with a `thread i: ` prefix when the instance runs several threads.
    private static func prefixed(_ sink: LogSink?, thread i: Int, of n: Int) -> LogSink? {
        guard let sink, n > 1 else { return sink }
        let prefix = "thread \(i): "
        return { line in sink(prefix + line) }
    }

    /// Runs the workers until `stop()`, worker 0 on the calling thread and each other one on
    /// a thread of its own; returns when all have committed and left the group. The first
    /// worker that fails stops the others, and its error is thrown once they are done.
    public func run() throws {
        defer { ended.store(true, ordering: .relaxed) }
        try config.checkConsistency()
        let ws = makeWorkers()
        workerList.withLock { $0 = ws }
        // The instances topic: this instance's partitions and address for the others, theirs
        // for this one (contact queries reach the owner). Stopped after the workers left the
        // group, with a tombstone.
        let directory = InstanceDirectory(config: config, log: log) { [self] in
            (owners.withLock { $0.keys.sorted() }, advertisedHTTPAddress)
        }
        directoryBox.withLock { $0 = directory }
        var directoryThread: pthread_t?
        do { directoryThread = try startThread { directory.run() } } catch { log("instances topic: \(error)") }
        defer {
            directory.stop()
            if let directoryThread { pthread_join(directoryThread, nil) }
            directoryBox.withLock { $0 = nil }
        }
        if ws.count > 1 {
            log("\(ws.count) processing threads, each with its own consumer in group \(config.groupId) and its own transactional producer (\(config.forThread(0).transactionalId) … \(config.forThread(ws.count - 1).transactionalId))")
        }
        var threads: [pthread_t] = []
        for w in ws.dropFirst() {
            do {
                threads.append(try startThread { self.runWorker(w) })
            } catch {
                failure.withLock { if $0 == nil { $0 = error } }
                stop()
                break
            }
        }
        runWorker(ws[0])
        for t in threads { pthread_join(t, nil) }
        if let e = failure.withLock({ $0 }) { throw e }
    }

    private func runWorker(_ w: Worker) {
        do {
            try w.run()
        } catch {
            let first = failure.withLock { f in
                if f == nil { f = error; return true }
                return false
            }
            if first && config.threads > 1 { log("thread \(w.index) failed: \(error); stopping the instance") }
            stop()
        }
    }

    /// Why no question can be answered now (not consuming yet, or shutting down), or nil.
    private var unavailable: Unavailable? {
        let phase = self.phase
        switch phase {
        case .starting, .initialisingTransactions: return Unavailable(description: "not ready: \(phase)")
        case .stopping, .stopped: return Unavailable(description: "shutting down")
        default: return nil
        }
    }

    /// What the daemon knows about one contact.
    public enum ContactLookup: Sendable {
        case found(partition: Int32, Explanation, memberships: [Int?])
        /// The contact would live on `partition`, which another instance owns.
        case elsewhere(partition: Int32)
        /// The partition is ours but the contact has no state.
        case unknown(partition: Int32)
    }

    /// Looks a contact up in this instance's engines, else says which partition owns it (by
    /// the murmur2 key hash Kafka's default partitioner uses). The worker holding that
    /// partition answers first (on its thread, between batches); the others are asked only
    /// when it does not hold the contact (a contact may live where its records arrived: with
    /// `repartition: off`, or webhook-adapter records).
    public func lookup(_ contactId: [UInt8], timeoutMs: Int = 10_000) async -> Result<ContactLookup, Unavailable> {
        if let why = unavailable { return .failure(why) }
        let n = inputPartitions
        let p = n > 0 ? Murmur2.partition(contactId, count: n) : -1
        let owner = owners.withLock { $0[p] }
        let ws = workers
        let order = ws.filter { $0.index == owner } + ws.filter { $0.index != owner }
        for w in order {
            switch await w.ask(timeoutMs: timeoutMs, { $0.find(contactId) }) {
            case .success(let found?): return .success(found)
            case .success(nil): continue
            case .failure(let why):
                if w.index == owner { return .failure(why) }
            }
        }
        return .success(owners.withLock { $0[p] } == nil ? .elsewhere(partition: p) : .unknown(partition: p))
    }

    /// Runs `body` on every processing thread, between its batches, over that thread's engines
    /// by partition (the engines are not thread-safe: only their thread reads them), and
    /// returns the answers in thread order. Fails when a thread cannot be asked (starting,
    /// shutting down, busy past `timeoutMs`).
    public func askEachThread<T: Sendable>(timeoutMs: Int = 10_000,
                                           _ body: @escaping @Sendable (_ enginesByPartition: [(partition: Int32, engine: SegmentEngine)]) -> T) async -> Result<[T], Unavailable> {
        if let why = unavailable { return .failure(why) }
        let ws = workers
        guard !ws.isEmpty else { return .failure(Unavailable(description: "not ready: \(phase)")) }
        var answers: [T] = []
        for w in ws {
            switch await w.ask(timeoutMs: timeoutMs, { body($0.enginesByPartition()) }) {
            case .success(let answer): answers.append(answer)
            case .failure(let why): return .failure(why)
            }
        }
        return .success(answers)
    }

    /// Loads the model file again (SIGHUP, `POST /admin/reload`). A model that does not load
    /// is refused and the running one stays (the inner failure). Otherwise every worker moves
    /// its partitions' contacts to the new model and re-evaluates them at their clocks, on its
    /// own thread; the changes are emitted as transitions and committed with its next batch.
    /// The outer failure: a worker could not be asked (starting, shutting down, busy past
    /// `timeoutMs`); a reload asked again finishes the workers that still run the old model.
    public func reloadModel(timeoutMs: Int = 60_000) async -> Result<Result<String, DaemonError>, Unavailable> {
        if let why = unavailable { return .failure(why) }
        guard let path = config.modelPath else {
            log("model reload: no model file is configured (the built-in default model keeps running)")
            return .success(.failure(DaemonError(description: "no model file is configured (the built-in default model is running)")))
        }
        let new: Model
        do {
            new = try Model.load(yaml: try readTextFile(path), file: path)
        } catch {
            log("model reload refused: \(error)")
            return .success(.failure(DaemonError(description: "\(error)")))
        }
        let ws = workers
        guard !ws.isEmpty else { return .failure(Unavailable(description: "not ready: \(phase)")) }
        let results = await withTaskGroup(of: (Int, Result<Result<Int, DaemonError>, Unavailable>).self) { group in
            for w in ws {
                group.addTask { (w.index, await w.ask(timeoutMs: timeoutMs) { $0.switchModel(to: new) }) }
            }
            var all: [(Int, Result<Result<Int, DaemonError>, Unavailable>)] = []
            for await r in group { all.append(r) }
            return all.sorted { $0.0 < $1.0 }
        }
        var changed = 0
        var refused: [String] = []
        var unavailable: [String] = []
        for (i, r) in results {
            let who = ws.count > 1 ? "thread \(i): " : ""
            switch r {
            case .success(.success(let n)): changed += n
            case .success(.failure(let e)): refused.append(who + e.description)
            case .failure(let why): unavailable.append(who + why.description)
            }
        }
        let before = model
        if refused.isEmpty && unavailable.isEmpty {
            modelBox.withLock { $0 = new }
            if new.fingerprint != before.fingerprint { metrics.switchModel(new) }
        }
        if !unavailable.isEmpty { return .failure(Unavailable(description: unavailable.joined(separator: "; "))) }
        if !refused.isEmpty { return .success(.failure(DaemonError(description: refused.joined(separator: "; ")))) }
        if new.fingerprint == before.fingerprint && changed == 0 { return .success(.success("model \(new.version) unchanged")) }
        log("model reloaded from \(path): version \(new.version); \(changed) transitions from re-evaluation")
        return .success(.success("model \(new.version) loaded; \(changed) transitions from re-evaluation"))
    }

    /// Builds the engines of `partitions` from the changelog in one worker (as an assignment
    /// does) and returns each one's input offset to start from (benchmarks: restore alone).
    public func restore(partitions: [Int32]) throws -> [Int32: Int64] {
        let w = Worker(index: 0, instance: self, config: config.forThread(0), model: model, log: log, debug: debug, error: errorSink)
        workerList.withLock { $0 = [w] }
        return try w.restore(partitions: partitions)
    }

    /// Wall-clock milliseconds since the epoch.
    public static func wallMs() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }
}

/// What a thread started by `startThread` runs.
private final class ThreadBody: @unchecked Sendable {
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
}

/// Starts an OS thread (8 MiB of stack) running `body`; join it with `pthread_join`.
/// Names the calling thread as `top -H` and /proc show it (Linux keeps 15 bytes; elsewhere
/// nothing happens).
func nameCurrentThread(_ name: String) {
    let fd = open("/proc/thread-self/comm", O_WRONLY)
    guard fd >= 0 else { return }
    defer { close(fd) }
    let bytes = Array(name.utf8.prefix(15))
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
}

func startThread(_ body: @escaping () -> Void) throws -> pthread_t {
    var attr = pthread_attr_t()
    pthread_attr_init(&attr)
    defer { pthread_attr_destroy(&attr) }
    pthread_attr_setstacksize(&attr, 8 << 20)
    let context = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
    var thread = pthread_t()
    let rc = pthread_create(&thread, &attr, { context in
        Unmanaged<ThreadBody>.fromOpaque(context!).takeRetainedValue().run()
        return nil
    }, context)
    guard rc == 0 else {
        Unmanaged<ThreadBody>.fromOpaque(context).release()
        throw DaemonError(description: "cannot start a processing thread: \(String(cString: strerror(rc)))")
    }
    return thread
}

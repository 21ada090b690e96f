import SegmentdEngine
import SegmentdKafka

/// `segmentd rebuild`: backfill for a changed model (issue 14, part 2). Rebuilds every
/// partition's state under a new model from history (the input topic from its oldest retained
/// record, and NDJSON history files) while the running instance keeps serving under its model,
/// then takes over: the changelog's state is replaced by the rebuilt one and only the
/// differences between what the output topic last said of each contact and the rebuilt
/// segments are emitted, once each, with cause `model`.
///
/// Phases:
/// 1. **Shadow** (`readLive`, `readTopic`, `build`): the changelog is read (each partition's
///    checkpoint is the live position), history is read up to each partition's checkpoint
///    offset and the new model's engines are built from it in order of time, as bootstrap
///    builds them. Nothing is written; the instance keeps running.
/// 2. **Follow** (`follow`, `catchUp`): the shadow catches up on what the instance committed
///    meanwhile, round after round, until little is left.
/// 3. **Take-over** (`takeOver`): the instance is fenced (a producer is initialised under each
///    of its threads' transactional ids, `<transactional_id>-<i>`: on a real cluster its open
///    transaction is aborted and its next commit fails, so it stops), the changelog is read
///    again (now final), the engines catch up on the last input records, and each partition is
///    written in one transaction: the new model's record, every contact's snapshot, the
///    transitions of the switch (`SegmentEngine.takeOver(from:)`) and the checkpoint, under the
///    new model's fingerprint. `segmentd run` with the new model then restores it as its own,
///    with no re-adoption.
///
/// The writer's transactional id is the instance's first thread's, `<transactional_id>-0`: an
/// instance started again before the rebuild finished fences the rebuild in turn, so each
/// partition is either rebuilt before that instance restores it, or not at all (it is then
/// adopted by meaning, as on any restart under a changed model).
public final class Rebuild {
    public let config: DaemonConfig
    public let model: Model
    let log: LogSink
    /// Reads history from the input topic as bootstrap does (its hand-off is the checkpoints).
    let reader: Bootstrap

    public init(config: DaemonConfig, model: Model, log: @escaping LogSink) {
        self.config = config
        self.model = model
        self.log = log
        reader = Bootstrap(config: config, model: model, until: .max, log: log)
    }

    /// The changelog as read at one moment: each partition's committed state.
    public struct Live: Sendable {
        public var partitions: Int32
        /// Per partition with state: its checkpoint (the live position).
        var checkpoints: [Int32: Changelog.Checkpoint]
        var restored: [Int32: Changelog.Restored]
        /// The input offset each checkpointed partition's state reflects.
        public var offsets: [Int32: Int64] { checkpoints.mapValues(\.offset) }
        /// The model versions the state was written under.
        public var modelVersions: Set<String> { Set(checkpoints.values.map(\.modelVersion)) }
        public var contacts: Int { restored.values.map(\.contacts.withState).reduce(0, +) }
        /// The newest stream time of the instance's partitions (nil: none applied anything).
        public var newestStreamTime: Millis? { checkpoints.values.map(\.streamTime).filter { $0 != .min }.max() }
    }

    var committedConfig: KafkaConfig {
        var c = reader.readConfig
        c["isolation.level"] = "read_committed"
        return c
    }

    /// Reads the changelog's committed state and checks the topics. `final`: first wait for no
    /// transaction to be open on it (after the fence: the instance's open transactions were
    /// aborted, so what is committed is all there will be); the shadow's read does not wait (a
    /// running instance nearly always has one open; read_committed shows what it committed).
    /// Throws when no partition has state: there is nothing to rebuild (bootstrap builds
    /// day-one state).
    public func readLive(final: Bool = false) throws -> Live {
        let input = try TopicReader(config: reader.readConfig, topic: config.inputTopic)
        let n = try input.partitionCount(timeoutMs: 10_000)
        guard n > 0 else { throw DaemonError(description: "the input topic \(config.inputTopic) has no partitions") }
        let changelogCount = try TopicReader(config: reader.readConfig, topic: config.changelogTopic).partitionCount(timeoutMs: 10_000)
        guard changelogCount == n else {
            throw DaemonError(description: "the changelog topic \(config.changelogTopic) has \(changelogCount) partitions; it needs the input's \(n)")
        }
        let all = Array(0..<n)
        if final {
            _ = try Changelog.awaitNoOpenTransaction(config: committedConfig, topic: config.changelogTopic, partitions: all,
                                                     timeoutMs: config.transactionTimeoutMs + 5_000, log: log)
        }
        let read = try Changelog.read(config: committedConfig, topic: config.changelogTopic, partitions: all)
        var checkpoints: [Int32: Changelog.Checkpoint] = [:]
        for (p, r) in read {
            if let c = r.checkpoint { checkpoints[p] = c }
        }
        guard !checkpoints.isEmpty else {
            throw DaemonError(description: "the changelog topic \(config.changelogTopic) holds no state: nothing to rebuild (segmentd bootstrap builds day-one state)")
        }
        // The old state must be readable before anything is built (or the instance fenced).
        var checked = Set<String>()
        for (p, cp) in checkpoints.sorted(by: { $0.key < $1.key }) where read[p]!.contacts.records > 0 && checked.insert(cp.modelFingerprint).inserted {
            _ = try read[p]!.stateModel(partition: p, current: model)
        }
        return Live(partitions: n, checkpoints: checkpoints, restored: read)
    }

    /// The hand-off of a read of the input topic: each checkpointed partition up to its
    /// offset (partitions without state are not read: `run` starts them from the beginning).
    func target(_ live: Live) -> Bootstrap.Target {
        Bootstrap.Target(partitions: live.partitions, handOff: live.offsets, repartitionEnds: nil, existingContacts: [:], existingCheckpoints: 0)
    }

    /// An empty history for the shadow: a record of a file is kept when it is stamped before
    /// the instance's newest stream time (a later one is left to the input topic, which
    /// carries what the instance has not read yet; it is counted as after the hand-off).
    public func history(_ live: Live) -> HistoryStore {
        history(partitions: live.partitions, until: live.newestStreamTime.map { $0 + 1 } ?? .max)
    }

    func history(partitions: Int32, until: Millis) -> HistoryStore {
        HistoryStore(model: model, partitions: partitions, until: until, maxRecordBytes: config.maxRecordBytes)
    }

    /// Reads the input topic into `history`, from `start` (default: each partition's oldest
    /// retained record) up to the live position. Returns the records read.
    public func readTopic(into history: HistoryStore, live: Live, from start: Bootstrap.TopicStart = .earliest,
                          report: (Int32, Int64, DecodeError) -> Void, progress: (Int) -> Void = { _ in }) throws -> Int {
        try reader.readTopic(into: history, target: target(live), from: start, report: report, progress: progress)
    }

    /// The rebuilt engines, per checkpointed partition, and what was applied to them.
    public final class Shadow {
        var pipelines: [Int32: Pipeline] = [:]
        /// The input offsets the engines reflect.
        public internal(set) var offsets: [Int32: Int64] = [:]
        public internal(set) var recordsApplied = 0
        public internal(set) var duplicates = 0
        public internal(set) var historyTransitions = 0
        /// The oldest event time applied (nil: none).
        public internal(set) var oldestEvent: Millis?
    }

    /// Builds the new model's engine of every checkpointed partition from `history` (in order
    /// of time, its transitions dropped). `progress(done, contacts)` now and then.
    public func build(history: HistoryStore, live: Live, progress: (Int, Int) -> Void = { _, _ in }) -> Shadow {
        let shadow = Shadow()
        shadow.offsets = live.offsets
        var applied = 0, contacts = 0
        for p in live.checkpoints.keys.sorted() {
            let pipeline = Pipeline(model: model, lateness: config.lateness, duplicateHorizon: config.duplicateHorizon, maxRecordBytes: config.maxRecordBytes)
            apply(history, partition: p, to: pipeline, shadow) {
                applied += 1
                if applied & 0x3fff == 0 { progress(applied, contacts + pipeline.engine.contactCount) }
            }
            contacts += pipeline.engine.contactCount
            shadow.pipelines[p] = pipeline
        }
        return shadow
    }

    /// Applies history's records of partition `p` to `pipeline`, dropping its transitions.
    func apply(_ history: HistoryStore, partition p: Int32, to pipeline: Pipeline, _ shadow: Shadow, each: () -> Void = {}) {
        let engine = pipeline.engine
        let before = pipeline.counters
        history.forEachRecord(partition: p) { record in
            _ = pipeline.process(record)
            if engine.hasPendingTransitions { engine.drainTransitions { _ in shadow.historyTransitions += 1 } }
            each()
        }
        history.release(partition: p)
        let after = pipeline.counters
        shadow.recordsApplied += after.applied - before.applied
        shadow.duplicates += after.duplicates - before.duplicates
        if let oldest = history.oldestKept { shadow.oldestEvent = min(shadow.oldestEvent ?? oldest, oldest) }
    }

    /// Fences the running instance: a producer initialised under each of its threads'
    /// transactional ids but the first (the writer takes that one). On a real cluster the
    /// instance's open transactions are aborted and its next commits fail.
    func fence(except writerId: String) throws {
        for i in 0..<config.threads {
            let id = "\(config.transactionalId)-\(i)"
            guard id != writerId else { continue }
            var props = config.producerProperties()
            props["transactional.id"] = id
            let producer = try KafkaProducer(config: KafkaConfig(props))
            try producer.initTransactions(timeoutMs: 60_000)
            try producer.close(timeoutMs: 10_000)
        }
    }

    /// Applies to the shadow the input records the instance applied since the shadow's
    /// position, up to `live`'s checkpoints, and moves the shadow there. Returns the records
    /// read. Throws (nothing changed) when a checkpoint is behind the shadow: the changelog was
    /// replaced meanwhile.
    @discardableResult
    public func catchUp(_ shadow: Shadow, to live: Live) throws -> Int {
        for p in shadow.pipelines.keys.sorted() {
            guard let cp = live.checkpoints[p], let at = shadow.offsets[p], cp.offset >= at else {
                throw DaemonError(description: "partition \(p): the changelog's checkpoint went back (offset \(live.checkpoints[p]?.offset.description ?? "none"), the shadow read up to \(shadow.offsets[p] ?? 0)): was it replaced while rebuilding? Nothing was written; run rebuild again")
            }
        }
        let rest = history(partitions: live.partitions, until: .max)
        var catchUpTarget = target(live)
        catchUpTarget.handOff = catchUpTarget.handOff.filter { shadow.pipelines[$0.key] != nil }
        let n = try reader.readTopic(into: rest, target: catchUpTarget, from: .offsets(shadow.offsets), report: { _, _, _ in })
        for (p, pipeline) in shadow.pipelines {
            apply(rest, partition: p, to: pipeline, shadow)
            shadow.offsets[p] = live.checkpoints[p]!.offset
        }
        return n
    }

    /// Follows the running instance before the take-over: catches the shadow up on what it
    /// committed, round after round, until a round reads at most `lag` records (or after
    /// `rounds` rounds), so that the take-over, during which the instance is stopped, has
    /// little left to read. Returns the records read.
    public func follow(_ shadow: Shadow, lag: Int = 10_000, rounds: Int = 10, progress: (Int) -> Void = { _ in }) throws -> Int {
        var total = 0
        for _ in 0..<rounds {
            let n = try catchUp(shadow, to: readLive())
            total += n
            progress(total)
            if n <= lag { break }
        }
        return total
    }

    public struct Summary: Sendable {
        public var partitions = 0
        /// Input records read after the fence (between the shadow's position and the final checkpoints).
        public var catchUpRecords = 0
        public var counts = TakeOverCounts()
        /// Transitions of the switch (cause `model`), per group.
        public var transitionsByGroup: [Int] = []
        /// Transitions of the switch, all groups.
        public var transitions: Int { transitionsByGroup.reduce(0, +) }
        public var changelogRecords = 0
        /// Contacts per segment, [group][segment]: under the old state (by name) and rebuilt.
        public var sizesBefore: [[Int]] = []
        public var sizesAfter: [[Int]] = []
        public var previousVersions: Set<String> = []
        public var checkpoints: [Int32: Int64] = [:]
        public var writeSeconds = 0.0
    }

    /// The take-over: fences the instance, reads the changelog again, catches the shadow up to
    /// the final checkpoints, and writes each partition's switch in one transaction.
    /// `progress` names each step as it starts.
    public func takeOver(_ shadow: Shadow, progress: (String) -> Void = { _ in }) throws -> Summary {
        var summary = Summary()
        summary.transitionsByGroup = Array(repeating: 0, count: model.groups.count)
        summary.sizesBefore = model.groups.map { Array(repeating: 0, count: $0.segments.count) }
        summary.sizesAfter = summary.sizesBefore
        let writerId = "\(config.transactionalId)-0"
        var producerProps = config.producerProperties()
        producerProps["transactional.id"] = writerId
        // A partition's whole state is one transaction: give it time (as bootstrap does).
        producerProps["transaction.timeout.ms"] = config.producer["transaction.timeout.ms"] ?? config.kafka["transaction.timeout.ms"] ?? "300000"
        progress("fencing the instance")
        let producer = try KafkaProducer(config: KafkaConfig(producerProps))
        defer { try? producer.close(timeoutMs: 30_000) }
        try producer.initTransactions(timeoutMs: 60_000)
        try fence(except: writerId)
        log("fenced the instance's transactional ids: \((0..<config.threads).map { "\(config.transactionalId)-\($0)" }.joined(separator: ", "))")

        // The state as it is now that nothing else writes, and the last input records the
        // instance applied.
        let live = try readLive(final: true)
        let newlyCheckpointed = Set(live.checkpoints.keys).subtracting(shadow.pipelines.keys)
        if !newlyCheckpointed.isEmpty {
            log("partitions \(newlyCheckpointed.sorted()) got state while rebuilding: they are moved to the new model by meaning on the next run, not rebuilt")
        }
        progress("catching up on the last records the instance applied")
        summary.catchUpRecords = try catchUp(shadow, to: live)
        var repartitionEnds: [Int32: Int64]? = nil
        if config.repartition == .auto {
            let reader = try TopicReader(config: committedConfig, topic: config.repartitionTopic)
            repartitionEnds = try reader.ends(partitions: Array(0..<live.partitions), timeoutMs: 10_000)
        }
        let changelogReader = try TopicReader(config: committedConfig, topic: config.changelogTopic)
        let changelogEnds = try changelogReader.ends(partitions: Array(0..<live.partitions), timeoutMs: 10_000)

        let encoder = TransitionEncoder(model: model)
        for p in shadow.pipelines.keys.sorted() {
            let t0 = Bootstrap.monotonicSeconds()
            let cp = live.checkpoints[p]!, restored = live.restored[p]!
            let old = try oldEngine(partition: p, restored, cp)
            summary.previousVersions.insert(cp.modelVersion)
            let engine = shadow.pipelines[p]!.engine
            // Where the instance stood: its watermark (idle advance included), its stream time.
            if engine.watermark < cp.watermark { engine.advanceWatermark(to: cp.watermark) }
            engine.drainTransitions { _ in shadow.historyTransitions += 1 }
            _ = engine.takeDirtyContacts()
            for i in 0..<old.contactCount {
                for (g, seg) in (old.memberships(of: old.contactId(at: i)) ?? []).enumerated() {
                    guard let seg, let ng = model.groups.firstIndex(where: { $0.name == old.model.groups[g].name }),
                          let ns = model.groups[ng].segments.firstIndex(where: { $0.name == old.model.groups[g].segments[seg].name }) else { continue }
                    summary.sizesBefore[ng][ns] += 1
                }
            }
            let counts = engine.takeOver(from: old)
            summary.counts.rebuilt += counts.rebuilt
            summary.counts.onlyRebuilt += counts.onlyRebuilt
            summary.counts.onlyOld += counts.onlyOld
            summary.counts.changedContacts += counts.changedContacts
            let transitions = engine.takeTransitions()
            _ = engine.takeDirtyContacts()

            // Nothing else may have written since the final read (an instance under another
            // transactional id, which the fence does not reach).
            let end = try changelogReader.ends(partitions: [p], timeoutMs: 10_000)[p] ?? 0
            guard end == changelogEnds[p] ?? 0 else {
                throw DaemonError(description: "partition \(p): the changelog moved after the fence (end \(changelogEnds[p] ?? 0) → \(end)): an instance with another transactional_id is still running. Stop it and run rebuild again (partitions written so far are rebuilt)")
            }
            let position = Changelog.Position(input: cp.offset, repartition: repartitionEnds?[p] ?? cp.repartitionOffset)
            try Changelog.writeState(producer, topic: config.changelogTopic, partition: p, model: model, engine: engine, position: position) {
                let tag = Changelog.contactTag(reflects: position)
                for i in 0..<engine.contactCount {
                    let id = engine.contactId(at: i)
                    let value = tag.withUnsafeBytes { engine.snapshot(contact: i, tag: $0) }
                    try producer.produce(topic: config.changelogTopic, partition: p, key: id, value: value)
                    for (g, seg) in (engine.memberships(of: id) ?? []).enumerated() { if let seg { summary.sizesAfter[g][seg] += 1 } }
                }
                var document: [UInt8] = []
                for t in transitions {
                    try Rebuild.produce(t, encoder: encoder, config: config, buffer: &document) { topic, value, headers in
                        try producer.produce(topic: topic, partition: nil, key: t.contactId, value: value, headers: headers)
                    }
                    summary.transitionsByGroup[t.group] += 1
                }
            }
            summary.changelogRecords += engine.contactCount + 2
            summary.checkpoints[p] = position.input
            summary.partitions += 1
            summary.writeSeconds += Bootstrap.monotonicSeconds() - t0
            log("partition \(p): \(engine.contactCount) contacts under '\(model.version)' (was '\(cp.modelVersion)'), \(transitions.count) transitions at the switch; input offset \(cp.offset)")
            shadow.pipelines[p] = nil
        }
        return summary
    }

    /// The old state of a partition, under the model it was written under.
    func oldEngine(partition p: Int32, _ restored: Changelog.Restored, _ cp: Changelog.Checkpoint) throws -> SegmentEngine {
        let engine = SegmentEngine(model: try restored.stateModel(partition: p, current: model), lateness: config.lateness, duplicateHorizon: config.duplicateHorizon)
        do {
            try restored.contacts.forEachLatest { contact, snapshot in try engine.restore(contactId: contact, snapshot: snapshot) }
        } catch {
            throw DaemonError(description: "changelog of partition \(p): \(error)")
        }
        engine.restoreCheckpoint(streamTime: cp.streamTime, watermark: cp.watermark)
        _ = engine.takeTransitions()
        return engine
    }

    /// The records one transition makes, as `run` writes them: the output topic's (structured
    /// or binary mode) and, with a Segment mirror, its calls.
    static func produce(_ t: Transition, encoder: TransitionEncoder, config: DaemonConfig, buffer: inout [UInt8],
                        _ send: (String, [UInt8], [KafkaHeader]) throws -> Void) throws {
        buffer.removeAll(keepingCapacity: true)
        if config.binaryMode {
            encoder.encodeData(t, to: &buffer)
            try send(config.outputTopic, buffer, encoder.binaryHeaders(t).map { KafkaHeader($0.0, $0.1) })
        } else {
            encoder.encode(t, to: &buffer)
            try send(config.outputTopic, buffer, [])
        }
        if let mirror = config.segmentMirrorTopic {
            for call in SegmentMirror.calls(t, encoder) { try send(mirror, call, []) }
        }
    }
}

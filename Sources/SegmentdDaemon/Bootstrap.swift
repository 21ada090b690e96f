import SegmentdEngine
import SegmentdKafka

#if canImport(Glibc)
import Glibc
#endif

/// `segmentd bootstrap`: day-one state. Builds every input partition's state from history
/// (a `HistoryStore`) up to the hand-off instant T and writes it to the changelog exactly as
/// the daemon writes its own (the model record, one snapshot per contact, the checkpoint), so
/// that `segmentd run` restores it and continues from there.
///
/// - Each partition's checkpoint is the input topic's offset at T (offsets for times: the first
///   record stamped at or after T), so the daemon reads the live topic from there.
/// - Duplicate memory: the engines apply history's event ids like any others, and each
///   contact's snapshot carries the ids the engine still remembers (those within the 7-day
///   horizon of the contact's newest event). A live record repeating an event of history with
///   the same id is therefore a duplicate for the daemon, as it would be for one replay.
/// - The watermark is moved to T − lateness − 1 ms (what a record stamped T would make it), so
///   every boundary before the hand-off has fired in history and nothing of it is emitted later.
/// - Nothing goes to the output topic unless `emitInitial`: then one `segment.snapshot` record
///   per contact and group, in the same transaction as the partition's changelog.
///
/// One transaction per partition: its snapshots, snapshot records and checkpoint commit
/// together or not at all.
public final class Bootstrap {
    public let config: DaemonConfig
    public let model: Model
    public let until: Millis
    public var emitInitial = false
    public var force = false
    let log: LogSink

    public init(config: DaemonConfig, model: Model, until: Millis, log: @escaping LogSink) {
        self.config = config
        self.model = model
        self.until = until
        self.log = log
    }

    /// What the broker holds before the bootstrap writes anything.
    public struct Target: Sendable {
        public var partitions: Int32
        /// Per partition: the input offset at the hand-off.
        public var handOff: [Int32: Int64]
        /// Per partition: the repartition topic's end (nil with `repartition: off`).
        public var repartitionEnds: [Int32: Int64]?
        /// Contacts the changelog holds now, per partition (replaced only with `force`).
        public var existingContacts: [Int32: [[UInt8]]]
        public var existingCheckpoints: Int
    }

    /// Refused: the changelog already holds state and `force` is off.
    public struct Refusal: Error, CustomStringConvertible {
        public var description: String
    }

    var readConfig: KafkaConfig {
        var c = KafkaConfig(config.kafka.merging(config.consumer) { $1 })
        c["bootstrap.servers"] = config.brokers
        return c
    }

    /// Reads partition counts, the changelog's current state and the hand-off offsets. Throws
    /// `Refusal` when the changelog holds state and `force` is off.
    public func prepare() throws -> Target {
        let input = try TopicReader(config: readConfig, topic: config.inputTopic)
        let n = try input.partitionCount(timeoutMs: 10_000)
        guard n > 0 else { throw DaemonError(description: "the input topic \(config.inputTopic) has no partitions") }
        let changelogCount = try TopicReader(config: readConfig, topic: config.changelogTopic).partitionCount(timeoutMs: 10_000)
        guard changelogCount == n else {
            throw DaemonError(description: "the changelog topic \(config.changelogTopic) has \(changelogCount) partitions; it needs the input's \(n)")
        }
        let all = Array(0..<n)
        var committedConfig = readConfig
        committedConfig["isolation.level"] = "read_committed"
        _ = try Changelog.awaitNoOpenTransaction(config: committedConfig, topic: config.changelogTopic, partitions: all,
                                                 timeoutMs: config.transactionTimeoutMs + 5_000, log: log)
        let existing = try Changelog.read(config: committedConfig, topic: config.changelogTopic, partitions: all)
        var existingContacts: [Int32: [[UInt8]]] = [:]
        var checkpoints = 0, contacts = 0
        for (p, r) in existing {
            if r.checkpoint != nil { checkpoints += 1 }
            let ids = r.contacts.ids
            contacts += ids.count
            existingContacts[p] = ids
        }
        if (checkpoints > 0 || contacts > 0) && !force {
            throw Refusal(description: "the changelog topic \(config.changelogTopic) already holds state (\(contacts) contacts, checkpoints on \(checkpoints) of \(n) partitions): bootstrap would replace it. Give --force to replace it (every contact not in the history is deleted), or bootstrap into another changelog_topic")
        }
        // Offsets at T: the broker's answer, or the partition read where the broker says no
        // record is that recent although some is (librdkafka's mock cluster says so to every
        // lookup by time).
        let handOff = try input.offsets(atOrAfter: until, partitions: all, timeoutMs: 300_000)
        var repartitionEnds: [Int32: Int64]? = nil
        if config.repartition == .auto {
            let reader = try TopicReader(config: committedConfig, topic: config.repartitionTopic)
            let m = try reader.partitionCount(timeoutMs: 10_000)
            guard m == n else {
                throw DaemonError(description: "the repartition topic \(config.repartitionTopic) has \(m) partitions; it needs the input's \(n) (create it so, or set repartition: off)")
            }
            repartitionEnds = try reader.ends(partitions: all, timeoutMs: 10_000)
        }
        return Target(partitions: n, handOff: handOff, repartitionEnds: repartitionEnds,
                      existingContacts: existingContacts, existingCheckpoints: checkpoints)
    }

    /// Where history read from the input topic starts on each partition.
    public enum TopicStart: Sendable, Equatable {
        case earliest
        /// The first record stamped at or after this instant.
        case time(Millis)
        /// Per partition; partitions not listed start at their earliest record.
        case offsets([Int32: Int64])
    }

    /// The input topic as a source: each partition's records from `start` up to (not
    /// including) its offset at the hand-off are history, whatever their event time (the
    /// daemon reads from that offset on, so nothing is read twice or skipped). Each record
    /// goes to its contact's partition as any other. Bad records are handed to `report` with
    /// their position. Returns the records read.
    public func readTopic(into history: HistoryStore, target: Target, from start: TopicStart,
                          report: (Int32, Int64, DecodeError) -> Void, progress: (Int) -> Void = { _ in }) throws -> Int {
        let input = try TopicReader(config: readConfig.withDefaults(Changelog.bulkReadProperties), topic: config.inputTopic)
        let all = Array(0..<target.partitions)
        var starts: [Int32: Int64] = [:]
        switch start {
        case .earliest:
            for p in all { starts[p] = KafkaOffset.beginning }
        case .offsets(let o):
            for p in all { starts[p] = o[p] ?? KafkaOffset.beginning }
        case .time(let t):
            starts = try input.offsets(atOrAfter: t, partitions: all, timeoutMs: 300_000)
        }
        var n = 0
        for p in all {
            guard let end = target.handOff[p], let from = starts[p], from == KafkaOffset.beginning || from < end else { continue }
            try input.readViews(partitions: [p], from: [p: from], timeoutMs: 3_600_000) { v in
                guard v.offset < end else { return false }
                n += 1
                let outcome = history.add(record: v.value.assumingMemoryBound(to: UInt8.self), beforeHandOff: true)
                if case .bad(let e) = outcome { report(p, v.offset, e) }
                if n & 0xffff == 0 { progress(n) }
                return v.offset + 1 < end
            }
        }
        return n
    }

    /// Progress of the build, for a terminal: records applied so far of all kept, contacts.
    public struct Progress: Sendable {
        public var phase: String
        public var done: Int
        public var total: Int
        public var contacts: Int
    }

    public struct Summary: Sendable {
        public var partitions = 0
        public var contacts = 0
        public var recordsApplied = 0
        public var eventsApplied = 0
        public var duplicates = 0
        public var transitionsSuppressed = 0
        public var snapshotsEmitted = 0
        public var tombstones = 0
        public var changelogRecords = 0
        /// Contacts per segment at the hand-off: [group][segment].
        public var segmentSizes: [[Int]] = []
        public var buildSeconds = 0.0
        public var writeSeconds = 0.0
    }

    /// Builds each partition's engine from `history` and writes it (one transaction per
    /// partition). `progress` is called now and then from this thread.
    public func run(history: HistoryStore, target: Target, progress: (Progress) -> Void = { _ in }) throws -> Summary {
        precondition(history.partitions == target.partitions && history.until == until)
        var summary = Summary()
        summary.partitions = Int(target.partitions)
        summary.segmentSizes = model.groups.map { Array(repeating: 0, count: $0.segments.count) }
        var producerProps = config.producerProperties()
        producerProps["transactional.id"] = config.transactionalId + "-bootstrap"
        // A partition's whole state is one transaction: give it time (the daemon's 10 s default
        // is for its 100 ms transactions).
        producerProps["transaction.timeout.ms"] = config.producer["transaction.timeout.ms"] ?? config.kafka["transaction.timeout.ms"] ?? "300000"
        let producer = try KafkaProducer(config: KafkaConfig(producerProps))
        defer { try? producer.close(timeoutMs: 30_000) }
        try producer.initTransactions(timeoutMs: 60_000)
        let total = history.counts.kept
        var applied = 0
        let lateness = config.lateness
        let snapshotEncoder = SnapshotEncoder(model: model, binary: config.binaryMode)
        for p in 0..<target.partitions {
            let t0 = Bootstrap.monotonicSeconds()
            let pipeline = Pipeline(model: model, lateness: lateness, duplicateHorizon: config.duplicateHorizon, maxRecordBytes: config.maxRecordBytes)
            let engine = pipeline.engine
            var sinceProgress = 0
            history.forEachRecord(partition: p) { record in
                _ = pipeline.process(record)
                // History's transitions happened before the hand-off: none is emitted.
                if engine.hasPendingTransitions { engine.drainTransitions { _ in summary.transitionsSuppressed += 1 } }
                applied += 1
                sinceProgress += 1
                if sinceProgress == 16_384 {
                    sinceProgress = 0
                    progress(Progress(phase: "building", done: applied, total: total, contacts: summary.contacts + engine.contactCount))
                }
            }
            history.release(partition: p)
            let handOffWatermark = until - lateness - 1
            if engine.watermark < handOffWatermark { engine.advanceWatermark(to: handOffWatermark) }
            engine.drainTransitions { _ in summary.transitionsSuppressed += 1 }
            _ = engine.takeDirtyContacts()
            let counters = pipeline.counters
            summary.recordsApplied += counters.applied
            summary.duplicates += counters.duplicates
            summary.eventsApplied += engine.stats.eventsApplied
            summary.contacts += engine.contactCount
            let t1 = Bootstrap.monotonicSeconds()
            summary.buildSeconds += t1 - t0

            // The partition's transaction: model, deletions, snapshots, snapshot records, checkpoint.
            let position = Changelog.Position(input: target.handOff[p] ?? 0, repartition: target.repartitionEnds?[p])
            var written = 0
            try Changelog.writeState(producer, topic: config.changelogTopic, partition: p, model: model, engine: engine, position: position) {
                let headers = Changelog.contactHeaders(reflects: position)  // tombstones
                let tag = Changelog.contactTag(reflects: position)  // snapshots
                if force, let old = target.existingContacts[p], !old.isEmpty {
                    // Contacts of the replaced state that history does not have: deleted (a
                    // tombstone: the snapshot is empty).
                    for id in old where engine.memberships(of: id) == nil {
                        try producer.produce(topic: config.changelogTopic, partition: p, key: id, value: [], headers: headers)
                        summary.tombstones += 1
                        written += 1
                    }
                }
                var doc: [UInt8] = []
                for i in 0..<engine.contactCount {
                    let id = engine.contactId(at: i)
                    let value = tag.withUnsafeBytes { engine.snapshot(contact: i, tag: $0) }
                    try producer.produce(topic: config.changelogTopic, partition: p, key: id, value: value)
                    written += 1
                    let memberships = engine.memberships(of: id) ?? []
                    for (g, seg) in memberships.enumerated() {
                        if let seg { summary.segmentSizes[g][seg] += 1 }
                        guard emitInitial else { continue }
                        doc.removeAll(keepingCapacity: true)
                        let h = snapshotEncoder.encode(contactId: id, group: g, segment: seg, at: handOffWatermark, to: &doc)
                        try producer.produce(topic: config.outputTopic, partition: nil, key: id, value: doc, headers: h)
                        summary.snapshotsEmitted += 1
                    }
                }
            }
            summary.changelogRecords += written + 2
            summary.writeSeconds += Bootstrap.monotonicSeconds() - t1
            log("partition \(p): \(engine.contactCount) contacts from \(counters.records) records; input offset at the hand-off \(target.handOff[p] ?? 0)\(target.repartitionEnds.map { ", repartition offset \($0[p] ?? 0)" } ?? "")")
        }
        return summary
    }

    public static func monotonicSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}

/// The `segment.snapshot` CloudEvent (`bootstrap --emit-initial`): a contact's membership in
/// one group at the hand-off, so downstream tools can load their starting lists without
/// triggers. Structured mode (the document is the record value), or binary mode (`data` alone,
/// the attributes in `ce_*` headers) as the output topic is configured.
public struct SnapshotEncoder: Sendable {
    public let model: Model
    public let binary: Bool
    public static let type = "segment.snapshot"

    public init(model: Model, binary: Bool = false) {
        self.model = model
        self.binary = binary
    }

    /// The deterministic id: a 128-bit FNV-1a hash of ("segment.snapshot", contact id, group,
    /// segment or none, at), in hex: the same bootstrap gives the same ids.
    public func id(contactId: [UInt8], group: Int, segment: Int?, at: Millis) -> String {
        var h = CloudEventIdHasher()
        h.feed(Array(SnapshotEncoder.type.utf8))
        h.feed(contactId)
        h.feed(Array(model.groups[group].name.utf8))
        h.feed(segment.map { Array(model.groups[group].segments[$0].name.utf8) } ?? CloudEventIdHasher.noSegment)
        h.feed(decimal: at)
        return h.hex()
    }

    /// Appends the record value to `out` and returns its headers (binary mode), none otherwise.
    @discardableResult
    public func encode(contactId: [UInt8], group: Int, segment: Int?, at: Millis, to out: inout [UInt8]) -> [KafkaHeader] {
        let groupName = model.groups[group].name
        let subject = String(decoding: contactId, as: UTF8.self)
        let id = self.id(contactId: contactId, group: group, segment: segment, at: at)
        let time = EventTime.format(at)
        func data(_ out: inout [UInt8]) {
            out.append(contentsOf: #"{"contact_id":"#.utf8)
            JSONWriter.string(subject, to: &out)
            out.append(contentsOf: #","group":"#.utf8)
            JSONWriter.string(groupName, to: &out)
            out.append(contentsOf: #","segment":"#.utf8)
            if let segment { JSONWriter.string(model.groups[group].segments[segment].name, to: &out) } else { out.append(contentsOf: "null".utf8) }
            out.append(contentsOf: #","at":"\#(time)","model_version":"#.utf8)
            JSONWriter.string(model.version, to: &out)
            out.append(125)
        }
        if binary {
            data(&out)
            return [KafkaHeader("ce_specversion", Array("1.0".utf8)), KafkaHeader("ce_type", Array(SnapshotEncoder.type.utf8)),
                    KafkaHeader("ce_source", Array("segmentd/\(groupName)".utf8)), KafkaHeader("ce_id", Array(id.utf8)),
                    KafkaHeader("ce_time", Array(time.utf8)), KafkaHeader("ce_subject", contactId),
                    KafkaHeader("content-type", Array("application/json".utf8))]
        }
        out.append(contentsOf: #"{"specversion":"1.0","type":"segment.snapshot","source":"#.utf8)
        JSONWriter.string("segmentd/\(groupName)", to: &out)
        out.append(contentsOf: #","id":"\#(id)","time":"\#(time)","subject":"#.utf8)
        JSONWriter.string(subject, to: &out)
        out.append(contentsOf: #","datacontenttype":"application/json","data":"#.utf8)
        data(&out)
        out.append(125)
        return []
    }
}

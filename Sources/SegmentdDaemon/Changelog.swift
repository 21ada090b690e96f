import SegmentdEngine
import SegmentdKafka

/// The changelog topic: each input partition's state, written in the same transaction as that
/// partition's transitions and input offsets, and read back when the partition is assigned.
///
/// Records, on the changelog partition with the input partition's number:
/// - `segmentd.kind: contact`: key = contact id, value = the engine's snapshot of that contact,
///   `segmentd.offset` = the input offset the snapshot reflects (the next one to read), and
///   `segmentd.repartition_offset` the repartition topic's (when repartitioning);
/// - `segmentd.kind: checkpoint`: key `segmentd.checkpoint`, value = JSON with the next input
///   offset, the next repartition-topic offset (when repartitioning), stream time and
///   watermark; written last in each transaction.
///
/// - `segmentd.kind: model`: key `segmentd.model`, value = the model's YAML, header
///   `segmentd.model` = its fingerprint; written before the first checkpoint under a model, so
///   a restart under a changed model can read the old state and move it to the new model.
///
/// A contact record with an empty value is a tombstone: the contact has no state (written by
/// `segmentd bootstrap --force` for the contacts of the state it replaces; compaction then
/// removes the contact).
///
/// Restore takes the last checkpoint and every contact snapshot reflecting an offset at or
/// before it (the latest per contact). On a real cluster (read_committed, compaction) that is
/// exactly the committed state; on the mock broker, which shows the records of transactions
/// that never committed, it also skips the tail of a transaction killed before its checkpoint.
enum Changelog {
    static let kindHeader = "segmentd.kind"
    static let offsetHeader = "segmentd.offset"
    static let repartitionOffsetHeader = "segmentd.repartition_offset"
    static let checkpointKey = Array("segmentd.checkpoint".utf8)
    static let modelKey = Array("segmentd.model".utf8)
    static let modelHeader = "segmentd.model"

    struct Checkpoint: Equatable {
        var offset: Int64
        /// Next offset to read on the partition's repartition topic (nil: never read from it).
        var repartitionOffset: Int64? = nil
        var streamTime: Millis
        var watermark: Millis
        var modelVersion: String
        var modelFingerprint: String

        var position: Position { Position(input: offset, repartition: repartitionOffset) }

        func encode() -> [UInt8] {
            var s = #"{"offset":\#(offset),"#
            if let repartitionOffset { s += #""repartition_offset":\#(repartitionOffset),"# }
            s += #""stream_time":\#(streamTime),"watermark":\#(watermark),"model_version":"#
            var v: [UInt8] = []
            JSONWriter.string(modelVersion, to: &v)
            s += String(decoding: v, as: UTF8.self) + #","model_fingerprint":"\#(modelFingerprint)"}"#
            return Array(s.utf8)
        }

        static func decode(_ b: [UInt8]) -> Checkpoint? {
            // Our own fixed format, written by `encode`.
            let s = String(decoding: b, as: UTF8.self)
            func int(_ k: String) -> Int64? {
                guard let r = s.range(of: "\"\(k)\":") else { return nil }
                let rest = s[r.upperBound...].prefix { $0 == "-" || $0.isNumber }
                return Int64(rest)
            }
            guard let o = int("offset"), let st = int("stream_time"), let w = int("watermark") else { return nil }
            func str(_ k: String) -> String {
                guard let r = s.range(of: "\"\(k)\":\"") else { return "" }
                return String(s[r.upperBound...].prefix { $0 != "\"" })
            }
            return Checkpoint(offset: o, repartitionOffset: int("repartition_offset"), streamTime: st, watermark: w, modelVersion: str("model_version"), modelFingerprint: str("model_fingerprint"))
        }
    }

    /// Where a partition's engine stands: the next input offset and, when repartitioning, the
    /// next repartition-topic offset. State reflects every record before both.
    struct Position: Equatable {
        var input: Int64
        var repartition: Int64?

        /// Every record `other` reflects, this reflects too (an unknown repartition offset on
        /// either side does not constrain: the setting was off for one of them).
        func covers(_ other: Position) -> Bool {
            guard other.input <= input else { return false }
            if let a = repartition, let b = other.repartition { return b <= a }
            return true
        }
    }

    /// The headers of a contact snapshot (key = contact id, value = snapshot).
    static func contactHeaders(reflects p: Position) -> [KafkaHeader] {
        var h = [KafkaHeader(kindHeader, Array("contact".utf8)), KafkaHeader(offsetHeader, Array(String(p.input).utf8))]
        if let r = p.repartition { h.append(KafkaHeader(repartitionOffsetHeader, Array(String(r).utf8))) }
        return h
    }

    static func checkpointRecord(_ c: Checkpoint) -> (key: [UInt8], value: [UInt8], headers: [KafkaHeader]) {
        (checkpointKey, c.encode(), [KafkaHeader(kindHeader, Array("checkpoint".utf8)), KafkaHeader(offsetHeader, Array(String(c.offset).utf8))])
    }

    static func modelRecord(_ m: Model) -> (key: [UInt8], value: [UInt8], headers: [KafkaHeader]) {
        (modelKey, Array(m.source.utf8), [KafkaHeader(kindHeader, Array("model".utf8)), KafkaHeader(modelHeader, Array(m.fingerprint.utf8))])
    }

    /// Writes one partition's whole state in one transaction (bootstrap, rebuild): the model's
    /// record, what `body` produces (snapshots, output records), then the checkpoint at
    /// `position` with the engine's stream time and watermark under `model`. Commits, or aborts
    /// on any error and rethrows it.
    static func writeState(_ producer: KafkaProducer, topic: String, partition p: Int32, model: Model, engine: SegmentEngine,
                           position: Position, _ body: () throws -> Void) throws {
        try producer.beginTransaction()
        do {
            let m = modelRecord(model)
            try producer.produce(topic: topic, partition: p, key: m.key, value: m.value, headers: m.headers)
            try body()
            let checkpoint = Checkpoint(offset: position.input, repartitionOffset: position.repartition,
                                        streamTime: engine.checkpoint.streamTime, watermark: engine.checkpoint.watermark,
                                        modelVersion: model.version, modelFingerprint: model.fingerprint)
            let r = checkpointRecord(checkpoint)
            try producer.produce(topic: topic, partition: p, key: r.key, value: r.value, headers: r.headers)
            try producer.commitTransaction(timeoutMs: 300_000)
        } catch {
            try? producer.abortTransaction(timeoutMs: 30_000)
            throw error
        }
    }

    struct Restored {
        var checkpoint: Checkpoint?
        var contacts: [([UInt8], [UInt8])]
        var recordsRead: Int
        /// Model sources seen in the changelog, by fingerprint.
        var models: [String: String]

        /// The model partition `p`'s state was written under: `current` when it is that one or
        /// there is no state, else the one whose text the changelog keeps. Throws when the text
        /// is missing or does not load.
        func stateModel(partition p: Int32, current: Model) throws -> Model {
            guard let cp = checkpoint, cp.modelFingerprint != current.fingerprint, !contacts.isEmpty else { return current }
            guard let source = models[cp.modelFingerprint] else {
                throw DaemonError(description: "the changelog of partition \(p) holds state of model '\(cp.modelVersion)' (\(cp.modelFingerprint)) but not that model's text")
            }
            do { return try Model.load(yaml: source, file: "changelog model \(cp.modelVersion)") } catch {
                throw DaemonError(description: "the changelog of partition \(p): its model does not load: \(error)")
            }
        }
    }

    /// librdkafka properties for reading changelog partitions in bulk: large fetches, and a
    /// local queue large enough that a fetch never overshoots `queued.min.messages` (librdkafka
    /// 2.0.2 then stalls for a second, see the notes).
    static let bulkReadProperties: [String: String] = [
        "fetch.max.bytes": "52428800",
        "max.partition.fetch.bytes": "8388608",
        "queued.min.messages": "10000000",
        "queued.max.messages.kbytes": "2097151",
        "fetch.wait.max.ms": "10",
    ]

    /// Waits until no transaction is open on these changelog partitions: each one's last
    /// stable offset (its end under read_committed) has reached its high watermark (its end
    /// under read_uncommitted). A transaction left open by a killed owner holds the last stable
    /// offset back, and its committed predecessors stay invisible behind it; restoring then
    /// would resume from an older checkpoint (see the README's *Restarts and fencing*). The
    /// broker aborts such a transaction after its `transaction.timeout.ms`; past `timeoutMs` this
    /// throws rather than restore from a partial view. Returns the partitions that had to be
    /// waited for.
    static func awaitNoOpenTransaction(config: KafkaConfig, topic: String, partitions: [Int32], timeoutMs: Int,
                                       log: (String) -> Void) throws -> [Int32] {
        var committedConfig = config
        committedConfig["isolation.level"] = "read_committed"
        var uncommittedConfig = config
        uncommittedConfig["isolation.level"] = "read_uncommitted"
        let committed = try TopicReader(config: committedConfig, topic: topic)
        let uncommitted = try TopicReader(config: uncommittedConfig, topic: topic)
        let start = Daemon.wallMs()
        var waited = Set<Int32>()
        while true {
            let stable = try committed.ends(partitions: partitions, timeoutMs: 10_000)
            let high = try uncommitted.ends(partitions: partitions, timeoutMs: 10_000)
            let open = partitions.filter { (stable[$0] ?? 0) < (high[$0] ?? 0) }
            if open.isEmpty { return waited.sorted() }
            let elapsed = Daemon.wallMs() - start
            if waited.isEmpty {
                log("changelog partitions \(open) have a transaction open (last stable offset below the end): waiting up to \(timeoutMs / 1000) s for it to commit or be aborted before restoring")
            }
            waited.formUnion(open)
            if elapsed >= timeoutMs {
                throw DaemonError(description: "changelog partitions \(open) of \(topic) still have a transaction open after \(elapsed / 1000) s (last stable offsets \(open.map { stable[$0] ?? 0 }), ends \(open.map { high[$0] ?? 0 })): restoring now could miss committed state")
            }
            usleep(100_000)
        }
    }

    /// Reads changelog partitions to their end, all at once through one reader (zero-copy
    /// records, headers compared as bytes), and returns each partition's state to restore.
    /// `upTo`: a partition's checkpoints past its position are skipped with the snapshots
    /// before them (they belong to a transaction known to have aborted).
    static func read(config: KafkaConfig, topic: String, partitions: [Int32], upTo: [Int32: Position] = [:]) throws -> [Int32: Restored] {
        var cfg = config
        for (k, v) in bulkReadProperties where cfg[k] == nil { cfg[k] = v }
        let reader = try TopicReader(config: cfg, topic: topic)
        var states: [Int32: PartitionRead] = [:]
        for p in partitions { states[p] = PartitionRead(upTo: upTo[p]) }
        try reader.readAllViews(partitions: partitions, timeoutMs: 300_000) { v in
            states[v.partition]?.add(v)
        }
        return states.mapValues { $0.restored }
    }

    /// A contact id as a dictionary key, hashed as one run of bytes (an `[UInt8]` key is
    /// hashed byte by byte, which dominated the restore's bookkeeping).
    struct ContactKey: Hashable {
        let bytes: [UInt8]
        func hash(into hasher: inout Hasher) { bytes.withUnsafeBytes { hasher.combine(bytes: $0) } }
        static func == (a: ContactKey, b: ContactKey) -> Bool { a.bytes == b.bytes }
    }

    /// One partition's state as its changelog records are read in order.
    struct PartitionRead {
        let upTo: Position?
        var committed: [ContactKey: [UInt8]] = [:]
        var pending: [(key: [UInt8], position: Position, snapshot: [UInt8])] = []
        var checkpoint: Checkpoint?
        var models: [String: String] = [:]
        var n = 0

        init(upTo: Position?) { self.upTo = upTo }

        static let contactKind = Array("contact".utf8), checkpointKind = Array("checkpoint".utf8), modelKind = Array("model".utf8)

        mutating func add(_ v: KafkaMessageView) {
            n += 1
            guard let kind = v.header(kindHeader) else { return }
            if kind.elementsEqual(PartitionRead.contactKind) {
                guard let key = v.key else { return }
                let position = Position(input: v.header(offsetHeader).flatMap(PartitionRead.int) ?? -1,
                                        repartition: v.header(repartitionOffsetHeader).flatMap(PartitionRead.int))
                pending.append((Array(key), position, Array(v.value)))
            } else if kind.elementsEqual(PartitionRead.checkpointKind) {
                guard let c = Checkpoint.decode(Array(v.value)) else { return }
                if let upTo, !upTo.covers(c.position) {
                    pending.removeAll()
                    return
                }
                checkpoint = c
                // Snapshots of a transaction whose checkpoint never landed reflect offsets past it.
                if committed.isEmpty { committed.reserveCapacity(pending.count) }
                for p in pending where c.position.covers(p.position) {
                    // An empty value is a tombstone (`segmentd bootstrap --force` deletes the
                    // contacts of the state it replaces so): the contact has no state.
                    if p.snapshot.isEmpty { committed[ContactKey(bytes: p.key)] = nil } else { committed[ContactKey(bytes: p.key)] = p.snapshot }
                }
                pending.removeAll(keepingCapacity: true)
            } else if kind.elementsEqual(PartitionRead.modelKind) {
                if let fp = v.header(modelHeader) {
                    models[String(decoding: fp, as: UTF8.self)] = String(decoding: v.value, as: UTF8.self)
                }
            }
        }

        /// A decimal header value (our own, ASCII digits with an optional minus).
        static func int(_ b: UnsafeRawBufferPointer) -> Int64? {
            guard !b.isEmpty else { return nil }
            var i = 0, negative = false, v: Int64 = 0
            if b[0] == UInt8(ascii: "-") { negative = true; i = 1 }
            guard i < b.count else { return nil }
            while i < b.count {
                let d = b[i] &- UInt8(ascii: "0")
                guard d < 10 else { return nil }
                v = v &* 10 &+ Int64(d)
                i += 1
            }
            return negative ? -v : v
        }

        var restored: Restored {
            Restored(checkpoint: checkpoint, contacts: committed.map { ($0.key.bytes, $0.value) }, recordsRead: n, models: models)
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif

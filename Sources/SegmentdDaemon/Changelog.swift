import SegmentdEngine
import SegmentdKafka

/// The changelog topic: each input partition's state, written in the same transaction as that
/// partition's transitions and input offsets, and read back when the partition is assigned.
///
/// Records, on the changelog partition with the input partition's number:
/// - a contact: key = contact id, value = the engine's snapshot of that contact (compact format
///   3) tagged with the position it reflects: the next input offset and, when repartitioning,
///   the repartition topic's (`contactTag(reflects:)`). No headers: restore tells these records
///   by the snapshot's format marker and reads the position from the value, so it never
///   parses headers per record. Changelogs written before carry the snapshot (format 1 or 2)
///   with headers `segmentd.kind: contact`, `segmentd.offset` and `segmentd.repartition_offset`;
///   they are still read.
/// - `segmentd.kind: checkpoint`: key `segmentd.checkpoint`, value = JSON with the next input
///   offset, the next repartition-topic offset (when repartitioning), stream time and
///   watermark; written last in each transaction.
///
/// - `segmentd.kind: model`: key `segmentd.model`, value = the model's YAML, header
///   `segmentd.model` = its fingerprint; written before the first checkpoint under a model, so
///   a restart under a changed model can read the old state and move it to the new model.
///
/// A contact record with an empty value (and the contact headers) is a tombstone: the contact
/// has no state (written by `segmentd bootstrap --force` for the contacts of the state it
/// replaces; compaction then removes the contact).
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

        static func decode(_ b: [UInt8]) -> Checkpoint? { b.withUnsafeBytes { decode($0) } }

        /// Reads our own fixed format, written by `encode`, straight from the record's bytes
        /// (a changelog holds one checkpoint per partition and commit).
        static func decode(_ b: UnsafeRawBufferPointer) -> Checkpoint? {
            let bytes = b.bindMemory(to: UInt8.self)
            /// Where the value of `"name":` starts.
            func value(_ name: String) -> Int? {
                let pattern = Array("\"\(name)\":".utf8)
                guard bytes.count >= pattern.count else { return nil }
                var i = 0
                while i <= bytes.count - pattern.count {
                    if bytes[i] == pattern[0] && bytes[i..<(i + pattern.count)].elementsEqual(pattern) { return i + pattern.count }
                    i += 1
                }
                return nil
            }
            func int(_ name: String) -> Int64? {
                guard var i = value(name) else { return nil }
                var negative = false
                if i < bytes.count && bytes[i] == UInt8(ascii: "-") { negative = true; i += 1 }
                var v: Int64 = 0, digits = 0
                while i < bytes.count, bytes[i] >= UInt8(ascii: "0"), bytes[i] <= UInt8(ascii: "9") {
                    let (times10, overflow) = v.multipliedReportingOverflow(by: 10)
                    let (sum, overflow2) = times10.addingReportingOverflow(Int64(bytes[i] - UInt8(ascii: "0")))
                    if overflow || overflow2 { return nil }
                    v = sum
                    i += 1
                    digits += 1
                }
                return digits == 0 ? nil : (negative ? -v : v)
            }
            func str(_ name: String) -> String {
                guard let start = value(name), start < bytes.count, bytes[start] == UInt8(ascii: "\"") else { return "" }
                var end = start + 1
                while end < bytes.count && bytes[end] != UInt8(ascii: "\"") { end += 1 }
                return String(decoding: bytes[(start + 1)..<end], as: UTF8.self)
            }
            guard let o = int("offset"), let st = int("stream_time"), let w = int("watermark") else { return nil }
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

    /// The tag of a contact record's snapshot: the position it reflects, as variable-length
    /// integers (the input offset, then 0 without a repartition offset or 1 + the offset).
    static func contactTag(reflects p: Position) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: 2 * VarInt.maxBytes) { buffer, written in
            var at = 0
            VarInt.write(VarInt.zigzag(p.input), to: buffer.baseAddress!, at: &at)
            VarInt.write(p.repartition.map { VarInt.zigzag($0) &+ 1 } ?? 0, to: buffer.baseAddress!, at: &at)
            written = at
        }
    }

    /// The position in a contact record's tag (nil: not one `contactTag` wrote).
    static func position(tag: UnsafeRawBufferPointer) -> Position? {
        var at = 0
        guard let input = VarInt.read(tag, at: &at), let repartition = VarInt.read(tag, at: &at), at == tag.count else { return nil }
        return Position(input: VarInt.unzigzag(input), repartition: repartition == 0 ? nil : VarInt.unzigzag(repartition &- 1))
    }

    /// The headers of a tombstone (key = contact id, empty value), as contact records had them.
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
        var contacts: RestoredContacts
        var recordsRead: Int
        /// Model sources seen in the changelog, by fingerprint.
        var models: [String: String]

        /// The model partition `p`'s state was written under: `current` when it is that one or
        /// there is no state, else the one whose text the changelog keeps. Throws when the text
        /// is missing or does not load.
        func stateModel(partition p: Int32, current: Model) throws -> Model {
            guard let cp = checkpoint, cp.modelFingerprint != current.fingerprint, contacts.records > 0 else { return current }
            guard let source = models[cp.modelFingerprint] else {
                throw DaemonError(description: "the changelog of partition \(p) holds state of model '\(cp.modelVersion)' (\(cp.modelFingerprint)) but not that model's text")
            }
            do { return try Model.load(yaml: source, file: "changelog model \(cp.modelVersion)") } catch {
                throw DaemonError(description: "the changelog of partition \(p): its model does not load: \(error)")
            }
        }
    }

    /// The contact records read since one checkpoint and committed by the next, key then
    /// snapshot back to back in one arena of bytes (records the checkpoint does not cover stay
    /// in the arena, uncommitted). Nothing is allocated per record.
    struct CommittedRecords {
        /// Every contact record read, key then snapshot, back to back.
        private var bytes: [UInt8] = []
        /// The committed records, in log order.
        private var committed: [(start: Int, keyLength: Int, snapshotLength: Int)] = []

        var records: Int { committed.count }

        /// Appends a record's key and snapshot to the arena and returns where they start.
        mutating func append(key: UnsafeRawBufferPointer, snapshot: UnsafeRawBufferPointer) -> Int {
            let start = bytes.count
            bytes.append(contentsOf: UnsafeBufferPointer(start: key.baseAddress?.assumingMemoryBound(to: UInt8.self), count: key.count))
            bytes.append(contentsOf: UnsafeBufferPointer(start: snapshot.baseAddress?.assumingMemoryBound(to: UInt8.self), count: snapshot.count))
            return start
        }

        /// Commits the record appended at `start`.
        mutating func commit(start: Int, keyLength: Int, snapshotLength: Int) {
            committed.append((start, keyLength, snapshotLength))
        }

        /// Calls `body` with every committed record in log order, its index among them, its
        /// contact id and its snapshot (empty: a tombstone), borrowed.
        func forEachInLogOrder(_ body: (Int, UnsafeBufferPointer<UInt8>, UnsafeRawBufferPointer) throws -> Void) rethrows {
            try bytes.withUnsafeBytes { arena in
                let arenaBytes = arena.bindMemory(to: UInt8.self)
                for (i, r) in committed.enumerated() {
                    let snapshotStart = r.start + r.keyLength
                    try body(i, UnsafeBufferPointer(rebasing: arenaBytes[r.start..<snapshotStart]),
                             UnsafeRawBufferPointer(rebasing: arena[snapshotStart..<(snapshotStart + r.snapshotLength)]))
                }
            }
        }

        /// The committed record `i`: its contact id and snapshot, borrowed.
        func withRecord<R>(_ i: Int, _ body: (UnsafeBufferPointer<UInt8>, UnsafeRawBufferPointer) throws -> R) rethrows -> R {
            let r = committed[i]
            return try bytes.withUnsafeBytes { arena in
                let snapshotStart = r.start + r.keyLength
                return try body(UnsafeBufferPointer(rebasing: arena.bindMemory(to: UInt8.self)[r.start..<snapshotStart]),
                                UnsafeRawBufferPointer(rebasing: arena[snapshotStart..<(snapshotStart + r.snapshotLength)]))
            }
        }
    }

    /// One partition's committed contact records, one `CommittedRecords` per checkpoint, in log
    /// order. Nothing is hashed while reading: the latest record of each contact is found when
    /// the engine is built (`forEachLatest`), on the build threads.
    struct RestoredContacts {
        private(set) var checkpoints: [CommittedRecords] = []

        /// Committed contact records (a contact may have several: the latest counts).
        var records: Int { checkpoints.reduce(0) { $0 + $1.records } }

        mutating func append(_ committed: CommittedRecords) { checkpoints.append(committed) }

        /// Calls `body` with each contact that has state and its latest snapshot (borrowed), in
        /// the order the contacts first appear. A contact whose latest record is a tombstone (an
        /// empty snapshot) has no state.
        func forEachLatest(_ body: (UnsafeBufferPointer<UInt8>, UnsafeRawBufferPointer) throws -> Void) rethrows {
            var ids = ContactTable(capacity: records)
            // Per contact (by its index in `ids`): its latest record, as (checkpoint, record).
            var latest: [(checkpoint: Int32, record: Int32)] = []
            for (c, records) in checkpoints.enumerated() {
                records.forEachInLogOrder { i, id, _ in
                    let (index, inserted) = ids.findOrInsert(id)
                    if inserted { latest.append((Int32(c), Int32(i))) } else { latest[index] = (Int32(c), Int32(i)) }
                }
            }
            for (c, i) in latest {
                try checkpoints[Int(c)].withRecord(Int(i)) { id, snapshot in
                    if !snapshot.isEmpty { try body(id, snapshot) }
                }
            }
        }

        /// How many contacts have state.
        var withState: Int {
            var n = 0
            forEachLatest { _, _ in n += 1 }
            return n
        }

        /// The ids of the contacts that have state.
        var ids: [[UInt8]] {
            var ids: [[UInt8]] = []
            forEachLatest { id, _ in ids.append(Array(id)) }
            return ids
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

    /// Reads changelog partitions to their end, all at once through one reader (records
    /// decoded from librdkafka's buffers, each copied once into its partition's arena), and
    /// returns each partition's state to restore.
    /// `upTo`: a partition's checkpoints past its position are skipped with the snapshots
    /// before them (they belong to a transaction known to have aborted).
    /// `committed` is called at each checkpoint taken with the contact records it commits, as
    /// they are read (so an engine can be built while its partition is still being read);
    /// `ready` with each partition's state as soon as that partition has been read.
    @discardableResult
    static func read(config: KafkaConfig, topic: String, partitions: [Int32], upTo: [Int32: Position] = [:],
                     committed: ((Int32, Checkpoint, CommittedRecords) -> Void)? = nil,
                     ready: (Int32, Restored) throws -> Void = { _, _ in }) throws -> [Int32: Restored] {
        var cfg = config
        for (k, v) in bulkReadProperties where cfg[k] == nil { cfg[k] = v }
        let reader = try TopicReader(config: cfg, topic: topic)
        // By partition number: one array index per record, no hashing.
        var states = [PartitionRead?](repeating: nil, count: Int(partitions.max() ?? -1) + 1)
        for p in partitions {
            let state = PartitionRead(upTo: upTo[p])
            if let committed { state.onCommit = { committed(p, $0, $1) } }
            states[Int(p)] = state
        }
        var out: [Int32: Restored] = [:]
        func finish(_ p: Int32) throws {
            guard out[p] == nil, let state = states[Int(p)] else { return }
            let restored = state.restored
            out[p] = restored
            try ready(p, restored)
        }
        try reader.readAllViews(partitions: partitions, timeoutMs: 300_000, ended: finish) { v in
            let p = Int(v.partition)
            if p < states.count { states[p]?.add(v) }
        }
        // Partitions with nothing to read.
        for p in partitions { try finish(p) }
        return out
    }

    /// One partition's state as its changelog records are read in order.
    final class PartitionRead {
        let upTo: Position?
        var contacts = RestoredContacts()
        /// Called at each checkpoint taken, with the contact records it commits.
        var onCommit: ((Checkpoint, CommittedRecords) -> Void)?
        /// The contact records read since the last checkpoint.
        var current = CommittedRecords()
        /// Contact records since the last checkpoint (in `current`'s arena), with the position
        /// each reflects: the next checkpoint decides which of them count.
        var pending: [(start: Int, keyLength: Int, snapshotLength: Int, position: Position)] = []
        var checkpoint: Checkpoint?
        var models: [String: String] = [:]
        var n = 0

        init(upTo: Position?) { self.upTo = upTo }

        static let contactKind = Array("contact".utf8), checkpointKind = Array("checkpoint".utf8), modelKind = Array("model".utf8)

        func add(_ v: KafkaMessageView) {
            n += 1
            let value = v.value
            // A contact record: a compact snapshot tagged with its position (no headers).
            if let tag = SegmentEngine.snapshotTag(of: value) {
                guard let key = v.key, let position = Changelog.position(tag: tag) else { return }
                addPending(key: key, snapshot: value, position: position)
                return
            }
            guard let kind = v.header(kindHeader) else { return }
            if kind.elementsEqual(PartitionRead.contactKind) {
                // Written before contact records carried their position (or a tombstone).
                guard let key = v.key else { return }
                let position = Position(input: v.header(offsetHeader).flatMap(PartitionRead.int) ?? -1,
                                        repartition: v.header(repartitionOffsetHeader).flatMap(PartitionRead.int))
                addPending(key: key, snapshot: value, position: position)
            } else if kind.elementsEqual(PartitionRead.checkpointKind) {
                guard let c = Checkpoint.decode(value) else { return }
                if let upTo, !upTo.covers(c.position) {
                    pending.removeAll(keepingCapacity: true)
                    current = CommittedRecords()
                    return
                }
                checkpoint = c
                // Snapshots of a transaction whose checkpoint never landed reflect offsets past it.
                // An empty value is a tombstone (`segmentd bootstrap --force` deletes the
                // contacts of the state it replaces so): the contact has no state.
                for p in pending where c.position.covers(p.position) {
                    current.commit(start: p.start, keyLength: p.keyLength, snapshotLength: p.snapshotLength)
                }
                pending.removeAll(keepingCapacity: true)
                // Handed over as it is (never written again): the next records go to a new arena.
                if current.records > 0 {
                    contacts.append(current)
                    onCommit?(c, current)
                }
                current = CommittedRecords()
            } else if kind.elementsEqual(PartitionRead.modelKind) {
                if let fp = v.header(modelHeader) {
                    models[String(decoding: fp, as: UTF8.self)] = String(decoding: value, as: UTF8.self)
                }
            }
        }

        private func addPending(key: UnsafeRawBufferPointer, snapshot: UnsafeRawBufferPointer, position: Position) {
            let start = current.append(key: key, snapshot: snapshot)
            pending.append((start, key.count, snapshot.count, position))
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
            Restored(checkpoint: checkpoint, contacts: contacts, recordsRead: n, models: models)
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif

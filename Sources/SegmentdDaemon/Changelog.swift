import SegmentdEngine
import SegmentdKafka

/// The changelog topic: each input partition's state, written in the same transaction as that
/// partition's transitions and input offsets, and read back when the partition is assigned.
///
/// Records, on the changelog partition with the input partition's number:
/// - `segmentd.kind: contact`: key = contact id, value = the engine's snapshot of that contact,
///   `segmentd.offset` = the input offset the snapshot reflects (the next one to read);
/// - `segmentd.kind: checkpoint`: key `segmentd.checkpoint`, value = JSON with the next input
///   offset, stream time and watermark; written last in each transaction.
///
/// - `segmentd.kind: model`: key `segmentd.model`, value = the model's YAML, header
///   `segmentd.model` = its fingerprint; written before the first checkpoint under a model, so
///   a restart under a changed model can read the old state and move it to the new model.
///
/// Restore takes the last checkpoint and every contact snapshot reflecting an offset at or
/// before it (the latest per contact). On a real cluster (read_committed, compaction) that is
/// exactly the committed state; on the mock broker, which shows the records of transactions
/// that never committed, it also skips the tail of a transaction killed before its checkpoint.
enum Changelog {
    static let kindHeader = "segmentd.kind"
    static let offsetHeader = "segmentd.offset"
    static let checkpointKey = Array("segmentd.checkpoint".utf8)
    static let modelKey = Array("segmentd.model".utf8)
    static let modelHeader = "segmentd.model"

    struct Checkpoint: Equatable {
        var offset: Int64
        var streamTime: Millis
        var watermark: Millis
        var modelVersion: String
        var modelFingerprint: String

        func encode() -> [UInt8] {
            var s = #"{"offset":\#(offset),"stream_time":\#(streamTime),"watermark":\#(watermark),"model_version":"#
            var v: [UInt8] = []
            JSONWriter.string(modelVersion, to: &v)
            s += String(decoding: v, as: UTF8.self) + #","model_fingerprint":"\#(modelFingerprint)"}"#
            return Array(s.utf8)
        }

        static func decode(_ b: [UInt8]) -> Checkpoint? {
            // Our own fixed format: four fields, written by `encode`.
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
            return Checkpoint(offset: o, streamTime: st, watermark: w, modelVersion: str("model_version"), modelFingerprint: str("model_fingerprint"))
        }
    }

    /// The headers of a contact snapshot (key = contact id, value = snapshot).
    static func contactHeaders(reflects offset: Int64) -> [KafkaHeader] {
        [KafkaHeader(kindHeader, Array("contact".utf8)), KafkaHeader(offsetHeader, Array(String(offset).utf8))]
    }

    static func checkpointRecord(_ c: Checkpoint) -> (key: [UInt8], value: [UInt8], headers: [KafkaHeader]) {
        (checkpointKey, c.encode(), [KafkaHeader(kindHeader, Array("checkpoint".utf8)), KafkaHeader(offsetHeader, Array(String(c.offset).utf8))])
    }

    static func modelRecord(_ m: Model) -> (key: [UInt8], value: [UInt8], headers: [KafkaHeader]) {
        (modelKey, Array(m.source.utf8), [KafkaHeader(kindHeader, Array("model".utf8)), KafkaHeader(modelHeader, Array(m.fingerprint.utf8))])
    }

    struct Restored {
        var checkpoint: Checkpoint?
        var contacts: [([UInt8], [UInt8])]
        var recordsRead: Int
        /// Model sources seen in the changelog, by fingerprint.
        var models: [String: String]
    }

    /// Reads one changelog partition to its end and returns the state to restore.
    /// `upTo`: checkpoints past this input offset are skipped with the snapshots before them
    /// (they belong to a transaction known to have aborted).
    static func read(config: KafkaConfig, topic: String, partition: Int32, upTo: Int64? = nil) throws -> Restored {
        let reader = try TopicReader(config: config, topic: topic)
        var committed: [[UInt8]: [UInt8]] = [:]
        var pending: [(key: [UInt8], offset: Int64, snapshot: [UInt8])] = []
        var checkpoint: Checkpoint?
        var models: [String: String] = [:]
        var n = 0
        try reader.readAll(partitions: [partition], timeoutMs: 120_000) { r in
            n += 1
            let kind = r.headers.first { $0.key == kindHeader }.map { String(decoding: $0.value, as: UTF8.self) }
            let offset = r.headers.first { $0.key == offsetHeader }.flatMap { Int64(String(decoding: $0.value, as: UTF8.self)) } ?? -1
            switch kind {
            case "checkpoint":
                guard let c = Checkpoint.decode(r.value) else { break }
                if let upTo, c.offset > upTo {
                    pending.removeAll()
                    break
                }
                checkpoint = c
                // Snapshots of a transaction whose checkpoint never landed reflect offsets past it.
                for p in pending where p.offset <= c.offset { committed[p.key] = p.snapshot }
                pending.removeAll()
            case "contact":
                if let key = r.key { pending.append((key, offset, r.value)) }
            case "model":
                if let fp = r.headers.first(where: { $0.key == modelHeader }) {
                    models[String(decoding: fp.value, as: UTF8.self)] = String(decoding: r.value, as: UTF8.self)
                }
            default:
                break
            }
        }
        return Restored(checkpoint: checkpoint, contacts: committed.map { ($0.key, $0.value) }, recordsRead: n, models: models)
    }
}

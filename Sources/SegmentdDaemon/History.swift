import SegmentdEngine

/// History for `segmentd bootstrap`: records from NDJSON files and CSV exports, kept in one
/// byte arena and listed per input partition (murmur2 of the contact id over the input's
/// partition count, as the daemon assigns contacts), to be applied in order of time.
///
/// Order: each partition's records are applied by event time (`ts`, or `timestamp`), oldest
/// first; records with the same time keep the order in which they were added (sources in the
/// order given, lines in file order). A contact's events are therefore applied in time order
/// whatever the order of the files, and none of them is late within history.
///
/// Hand-off: only records stamped before `until` are kept; a record stamped at or after it is
/// counted (`afterHandOff`) and left to the input topic, which the daemon reads from the first
/// record stamped at or after `until`.
public final class HistoryStore {
    public let partitions: Int32
    public let until: Millis
    let model: Model
    var decoder: EventDecoder
    /// Every kept record's bytes, back to back.
    var arena: [UInt8] = []
    struct Entry {
        var ts: Millis
        var seq: Int
        var start: Int
        var count: Int
    }
    var byPartition: [[Entry]]
    var seq = 0

    public struct Counts: Sendable, Equatable {
        /// Lines or CSV rows read (empty lines are not records).
        public var lines = 0
        /// Records (NDJSON lines, or events made from CSV rows) offered.
        public var records = 0
        /// Records kept for the engines.
        public var kept = 0
        /// Records stamped at or after the hand-off instant: left to the input topic.
        public var afterHandOff = 0
        public var bad: [String: Int] = [:]
        public var ignored: [String: Int] = [:]
        public var badTotal: Int { bad.values.reduce(0, +) }
        public var ignoredTotal: Int { ignored.values.reduce(0, +) }
    }
    public private(set) var counts = Counts()
    /// The oldest event time of the records kept (nil: none).
    public private(set) var oldestKept: Millis?

    public init(model: Model, partitions: Int32, until: Millis, maxRecordBytes: Int = 1 << 20) {
        precondition(partitions > 0)
        self.model = model
        self.partitions = partitions
        self.until = until
        decoder = EventDecoder(model: model, maxRecordBytes: maxRecordBytes)
        byPartition = Array(repeating: [], count: Int(partitions))
    }

    /// What became of one offered record.
    public enum Outcome: Equatable {
        case kept(partition: Int32)
        case afterHandOff
        case ignored(IgnoreReason)
        case bad(DecodeError)
    }

    /// Offers one NDJSON line (either input shape). A bad line is counted and returned, so
    /// the caller reports it with its place; nothing is dropped silently.
    @discardableResult
    public func add(line: UnsafeBufferPointer<UInt8>) -> Outcome {
        counts.lines += 1
        return add(record: line)
    }

    /// Offers one record (an NDJSON line's bytes) without counting a line. `beforeHandOff`:
    /// the record is known to precede the hand-off (a record of the input topic before its
    /// offset at T), so it is kept whatever its time.
    @discardableResult
    func add(record: UnsafeBufferPointer<UInt8>, beforeHandOff: Bool = false) -> Outcome {
        counts.records += 1
        switch decoder.decode(record) {
        case let .events(first, _, _):
            if first.ts >= until && !beforeHandOff {
                counts.afterHandOff += 1
                return .afterHandOff
            }
            let p = Murmur2.partition(Array(first.contactId), count: partitions)
            byPartition[Int(p)].append(Entry(ts: first.ts, seq: seq, start: arena.count, count: record.count))
            seq += 1
            arena.append(contentsOf: record)
            counts.kept += 1
            oldestKept = min(oldestKept ?? first.ts, first.ts)
            return .kept(partition: p)
        case .ignored(let r):
            counts.ignored[r.rawValue, default: 0] += 1
            return .ignored(r)
        case .bad(let e):
            counts.bad[e.reason.rawValue, default: 0] += 1
            return .bad(e)
        }
    }

    /// Counts a problem found before decoding (a CSV cell that cannot be read).
    func countBad(_ reason: String) { counts.bad[reason, default: 0] += 1 }
    func countLine() { counts.lines += 1 }

    /// Records kept for partition `p`.
    public func recordCount(partition p: Int32) -> Int { byPartition[Int(p)].count }

    /// Hands partition `p`'s records to `body` in application order (time, then arrival).
    func forEachRecord(partition p: Int32, _ body: (UnsafeBufferPointer<UInt8>) -> Void) {
        byPartition[Int(p)].sort { $0.ts != $1.ts ? $0.ts < $1.ts : $0.seq < $1.seq }
        arena.withUnsafeBufferPointer { a in
            for e in byPartition[Int(p)] { body(UnsafeBufferPointer(rebasing: a[e.start..<(e.start + e.count)])) }
        }
    }

    /// Forgets partition `p`'s records (after its engine was built).
    func release(partition p: Int32) { byPartition[Int(p)] = [] }
}

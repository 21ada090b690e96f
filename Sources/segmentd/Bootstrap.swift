import ArgumentParser
import SegmentdDaemon
import SegmentdEngine
import SegmentdKafka

#if canImport(Glibc)
import Glibc
#endif

struct BootstrapCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bootstrap",
        abstract: "Build day-one state from history and write it to the changelog, for run to start from.",
        discussion: """
        Reads history (NDJSON files in either input shape, and CSV exports of email tools through \
        a column mapping), applies each partition's records up to --until T in order of time, and \
        writes every contact's state and each partition's checkpoint (the input topic's offset at \
        T) to the changelog, as run writes its own. run then restores it and reads the input topic \
        from T on. Nothing goes to the output topic unless --emit-initial. Refuses a changelog that \
        already holds state unless --force. See docs/bootstrap.md.
        """
    )

    @Argument(help: "NDJSON history files (either input shape), or - for standard input.")
    var files: [String] = []

    @Option(help: "A CSV export of an email tool (repeatable); its columns are read through --mapping.")
    var csv: [String] = []

    @Option(help: "The column mapping (YAML) of the --csv files.")
    var mapping: String?

    @Option(name: .customLong("topic-from"), help: "Also read history from the input topic itself, from this point up to its offset at T: earliest, an RFC 3339 time, or PARTITION:OFFSET[,…] (unlisted partitions from their earliest record).")
    var topicFrom: String?

    @Option(help: "The hand-off instant T (RFC 3339): history before T becomes the state; run reads the input topic from the first record stamped at or after T.")
    var until: String

    @Flag(name: .customLong("emit-initial"), help: "Also write one segment.snapshot record per contact and group (its membership at the hand-off) to the output topic, in the changelog's transactions.")
    var emitInitial = false

    @Flag(help: "Replace the state the changelog already holds (its contacts that history does not have are deleted).")
    var force = false

    @OptionGroup var output: HistoryOutputOptions

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var state: StateOptions

    func validate() throws {
        if files.isEmpty && csv.isEmpty && topicFrom == nil { throw ValidationError("no history: give NDJSON files, --csv FILE with --mapping, or --topic-from") }
        if let topicFrom, BootstrapCommand.parseTopicStart(topicFrom) == nil {
            throw ValidationError("--topic-from '\(topicFrom)' is not earliest, an RFC 3339 time or PARTITION:OFFSET[,…]")
        }
        if !csv.isEmpty && mapping == nil { throw ValidationError("--csv needs --mapping (the column mapping of the export)") }
        if mapping != nil && csv.isEmpty { throw ValidationError("--mapping without --csv: nothing to map") }
    }

    func run() throws {
        let c = try state.settings(connection)
        try c.requireCluster(for: "bootstrap")
        guard let t = EventTime.parseRFC3339(until), EventTime.isInRange(t) else {
            throw ValidationError("--until '\(until)' is not an RFC 3339 date-time in the years 0000 to 9999")
        }
        let m = try loadModel(c.modelPath)
        var csvMapping: CSVMapping? = nil
        if let mapping {
            do { csvMapping = try CSVMapping.load(yaml: try readFile(mapping), file: mapping) } catch let e as CSVMapping.Error {
                throw CommandFailure(.dataError, "invalid mapping: \(e)")
            }
        }
        let (meter, log) = try startHistoryCommand("bootstrap", files: files + csv, quiet: output.quiet, config: c)
        // The topics exist and the cluster answers (69 and 65 with what to check).
        let partitions = try c.partitionCount(of: c.inputTopic)
        _ = try c.partitionCount(of: c.changelogTopic)
        if emitInitial { _ = try c.partitionCount(of: c.outputTopic) }

        let bootstrap = Bootstrap(config: c, model: m, until: t, log: log)
        bootstrap.emitInitial = emitInitial
        bootstrap.force = force
        let target: Bootstrap.Target
        do { target = try bootstrap.prepare() } catch let e as Bootstrap.Refusal {
            throw CommandFailure(.dataError, e.description)
        } catch let e as DaemonError {
            throw CommandFailure(.dataError, e.description)
        }
        if force && target.existingCheckpoints > 0 {
            log("--force: replacing the state the changelog holds (\(target.existingContacts.values.map(\.count).reduce(0, +)) contacts)")
        }

        let started = Bootstrap.monotonicSeconds()
        let history = HistoryStore(model: m, partitions: partitions, until: t, maxRecordBytes: c.maxRecordBytes)
        let badOut: OutputBuffer = try output.badLines.map { try OutputBuffer(path: $0) } ?? OutputBuffer(fd: 2)
        let totalBytes = (files + csv).reduce(0) { $0 + BootstrapCommand.fileSize($1) }
        var bytesRead = try readHistoryFiles(files, into: history, model: m, badOut: badOut, meter: meter, totalBytes: totalBytes)
        if let csvMapping {
            for f in csv {
                let bytes = try readBytes(f)
                do {
                    try history.addCSV(bytes, mapping: csvMapping, source: f) { problem in
                        badOut.buffer.append(contentsOf: "\(f): \(problem)\n".utf8)
                        badOut.flushIfFull()
                    }
                } catch {
                    throw CommandFailure(.dataError, "\(error)")
                }
                bytesRead += bytes.count
            }
        }
        if let topicFrom, let start = BootstrapCommand.parseTopicStart(topicFrom) {
            let n = try bootstrap.readTopic(into: history, target: target, from: start, report: { p, o, e in
                badOut.buffer.append(contentsOf: "\(c.inputTopic)[\(p)] offset \(o): \(e.reason.rawValue): \(e.detail)\n".utf8)
                badOut.flushIfFull()
            }, progress: { n in meter.show("reading \(c.inputTopic)", done: n, total: 0, unit: "records", extra: "\(history.counts.kept) kept") })
            log("read \(n) records of \(c.inputTopic) before the hand-off")
        }
        try badOut.flush()
        meter.finish()
        let readSeconds = Bootstrap.monotonicSeconds() - started

        let summary = try bootstrap.run(history: history, target: target) { p in
            meter.show(p.phase, done: p.done, total: p.total, unit: "records", extra: "\(p.contacts) contacts")
        }
        meter.finish()
        let seconds = Bootstrap.monotonicSeconds() - started
        if !output.quiet { printErr(report(history.counts, summary, target, m, t, readSeconds: readSeconds, seconds: seconds)) }
    }

    /// `earliest`, an RFC 3339 time, or `PARTITION:OFFSET[,…]`.
    static func parseTopicStart(_ s: String) -> Bootstrap.TopicStart? {
        if s == "earliest" { return .earliest }
        if let t = EventTime.parseRFC3339(s), EventTime.isInRange(t) { return .time(t) }
        var offsets: [Int32: Int64] = [:]
        for part in s.split(separator: ",") {
            let pieces = part.split(separator: ":")
            guard pieces.count == 2, let p = Int32(pieces[0]), let o = Int64(pieces[1]), p >= 0, o >= 0 else { return nil }
            offsets[p] = o
        }
        return offsets.isEmpty ? nil : .offsets(offsets)
    }

    static func fileSize(_ path: String) -> Int {
        var st = stat()
        guard path != "-", stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return 0 }
        return Int(st.st_size)
    }

    func readBytes(_ path: String) throws -> [UInt8] {
        var out: [UInt8] = []
        let input = try LineReader(path: path)
        try input.forEachLine { line in
            out.append(contentsOf: line)
            out.append(10)
        }
        return out
    }

    func report(_ counts: HistoryStore.Counts, _ s: Bootstrap.Summary, _ target: Bootstrap.Target, _ m: Model, _ t: Millis,
                readSeconds: Double, seconds: Double) -> String {
        func list(_ d: [String: Int]) -> String { d.isEmpty ? "" : " (" + d.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + ")" }
        var out = "segmentd bootstrap: hand-off at \(EventTime.format(t)); \(counts.lines) lines or rows, \(counts.records) records\n"
        out += "  kept (before the hand-off): \(counts.kept), at or after it (left to the input topic): \(counts.afterHandOff)\n"
        out += "  bad records: \(counts.badTotal)\(list(counts.bad))\n"
        out += "  ignored records: \(counts.ignoredTotal)\(list(counts.ignored))\n"
        out += "  applied: \(s.recordsApplied) records (\(s.eventsApplied) events), duplicates: \(s.duplicates); history's transitions (not emitted): \(s.transitionsSuppressed)\n"
        out += "  state: \(s.contacts) contacts on \(s.partitions) partitions; changelog records written: \(s.changelogRecords)\(s.tombstones > 0 ? " (\(s.tombstones) deletions of replaced contacts)" : "")\n"
        if emitInitial { out += "  segment.snapshot records written: \(s.snapshotsEmitted)\n" }
        let offsets = target.handOff.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: " ")
        out += "  input offsets at the hand-off (partition:offset): \(offsets)\n"
        for (g, group) in m.groups.enumerated() {
            out += "  \(group.name): " + group.segments.enumerated().map { "\($1.name) \(s.segmentSizes[g][$0])" }.joined(separator: ", ") + "\n"
        }
        let rate = { (n: Int, secs: Double) in secs > 0 ? Int(Double(n) / secs) : 0 }
        out += String(format: "  time: %.2f s (reading %.2f s, building %.2f s, writing %.2f s): ", seconds, readSeconds, s.buildSeconds, s.writeSeconds)
        out += "\(rate(counts.records, seconds)) records/s, \(rate(s.contacts, seconds)) contacts/s\n"
        return out
    }
}

/// Where a command that reads history (bootstrap, rebuild) reports bad lines, and whether it
/// prints progress and a summary.
struct HistoryOutputOptions: ParsableArguments {
    @Option(name: .customLong("bad-lines"), help: "Write bad-line reports to this file instead of stderr.")
    var badLines: String?

    @Flag(help: "No summary and no progress on stderr.")
    var quiet = false
}

/// The settings of `run` that matter to the state a command writes to the changelog
/// (bootstrap, rebuild): give it the same configuration as `run`.
struct StateOptions: ParsableArguments {
    @Option(name: .customLong("group-id"), help: Run.setting("group_id")) var groupId: String?
    @Option(name: .customLong("input-topic"), help: Run.setting("input_topic")) var inputTopic: String?
    @Option(name: .customLong("output-topic"), help: Run.setting("output_topic")) var outputTopic: String?
    @Option(name: .customLong("changelog-topic"), help: Run.setting("changelog_topic")) var changelogTopic: String?
    @Option(help: Run.setting("model")) var model: String?
    @Option(help: Run.setting("lateness")) var lateness: String?
    @Option(name: .customLong("max-record-bytes"), help: Run.setting("max_record_bytes")) var maxRecordBytes: String?
    @Option(name: .customLong("transactional-id"), help: Run.setting("transactional_id")) var transactionalId: String?
    @Option(help: Run.setting("repartition")) var repartition: String?
    @Option(name: .customLong("repartition-topic"), help: Run.setting("repartition_topic")) var repartitionTopic: String?
    @Option(name: .customLong("output-mode"), help: Run.setting("output_mode")) var outputMode: String?
    @Option(name: .customLong("producer"), help: "A librdkafka property for the producer only, as name=value (repeatable).")
    var producer: [String] = []

    /// The settings: the connection's (file, environment), then these flags and `more`.
    func settings(_ connection: ConnectionOptions, _ more: [(String, String?)] = []) throws -> DaemonConfig {
        try connection.settings(more + [
            ("group_id", groupId), ("input_topic", inputTopic), ("output_topic", outputTopic), ("changelog_topic", changelogTopic),
            ("model", model), ("lateness", lateness), ("max_record_bytes", maxRecordBytes), ("transactional_id", transactionalId),
            ("repartition", repartition), ("repartition_topic", repartitionTopic), ("output_mode", outputMode),
        ], clients: [("producer", producer)])
    }
}

/// The start of a command that reads history files (bootstrap, rebuild): every file can be
/// read (66 otherwise), logging is set up, and its progress meter (on a terminal, unless
/// `quiet`) and log lines (`segmentd NAME: …` on stderr, unless `quiet`) are made.
func startHistoryCommand(_ name: String, files: [String], quiet: Bool, config c: DaemonConfig) throws -> (ProgressMeter, LogSink) {
    for f in files where f != "-" {
        if access(f, R_OK) != 0 { throw CommandFailure(.noInput, "cannot open \(f): \(String(cString: strerror(errno)))") }
    }
    signal(SIGPIPE, SIG_IGN)
    _ = setUpLogging(json: c.logJSON, debug: false)
    let meter = ProgressMeter(enabled: !quiet && isatty(2) != 0)
    let log: LogSink = { line in
        guard !quiet else { return }
        meter.clear()
        printErr("segmentd \(name): \(line)\n")
    }
    return (meter, log)
}

/// Reads NDJSON history files (either input shape, `-` for standard input) into `history`,
/// each bad line reported to `badOut` with its file, line and reason. Returns the bytes read.
func readHistoryFiles(_ files: [String], into history: HistoryStore, model m: Model, badOut: OutputBuffer, meter: ProgressMeter,
                      totalBytes: Int) throws -> Int {
    var bytesRead = 0
    var typeHints = NameHints.TypeHints(eventTypes: m.eventTypes)
    for f in files {
        let input = try LineReader(path: f)
        var lineNo = 0
        try input.forEachLine { line in
            lineNo += 1
            bytesRead += line.count + 1
            if line.isEmpty { return }
            if case .bad(let e) = history.add(line: line) {
                let detail = e.reason == .unknownType ? e.detail + typeHints.hint(e.detail) : e.detail
                badOut.buffer.append(contentsOf: "\(f): line \(lineNo): \(e.reason.rawValue): \(detail)\n".utf8)
                badOut.flushIfFull()
                try badOut.check()
            }
            if lineNo & 0xffff == 0 {
                meter.show("reading", done: bytesRead, total: totalBytes, unit: "bytes",
                           extra: "\(history.counts.records) records")
            }
        }
    }
    return bytesRead
}

/// One progress line on a terminal, redrawn at most four times a second: the phase, how far,
/// the rate and the time left.
final class ProgressMeter: @unchecked Sendable {
    let enabled: Bool
    var start = 0.0
    var doneAtStart = 0
    var phase = ""
    var last = 0.0
    var shown = false

    init(enabled: Bool) { self.enabled = enabled }

    /// `unit` "bytes" is shown in MiB.
    func show(_ phase: String, done: Int, total: Int, unit: String, extra: String) {
        guard enabled else { return }
        let now = Bootstrap.monotonicSeconds()
        if phase != self.phase {
            self.phase = phase
            start = now
            doneAtStart = done
            return
        }
        guard now - last >= 0.25, now - start >= 0.5 else { return }
        last = now
        let rate = Double(done - doneAtStart) / (now - start)
        let mib = unit == "bytes"
        func amount(_ n: Double) -> String { mib ? String(format: "%.0f MiB", n / 1_048_576) : String(Int(n)) }
        var line = "\r\(phase): \(amount(Double(done)))\(mib ? "" : " " + unit)"
        if total > 0 { line += String(format: " of %@ (%.0f%%)", amount(Double(total)), 100 * Double(done) / Double(total)) }
        line += ", \(extra), \(amount(rate))\(mib ? "" : " " + unit)/s"
        if total > done, rate > 0 { line += String(format: ", ETA %.0f s", Double(total - done) / rate) }
        printErr(line + "\u{1b}[K")
        shown = true
    }

    /// Clears the progress line (before a log line, which the next `show` is drawn after).
    func clear() {
        if shown { printErr("\r\u{1b}[K") }
        shown = false
    }

    func finish() {
        clear()
        phase = ""
    }
}

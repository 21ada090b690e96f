import ArgumentParser
import SegmentdEngine

#if canImport(Glibc)
import Glibc
#endif

struct Replay: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Replay an NDJSON file of events through the engine; transitions go to stdout.",
        discussion: """
        Reads one record per line (both input shapes), writes one CloudEvents transition per \
        line to stdout, reports bad lines with their reasons on stderr (or --bad-lines FILE), \
        and ends with a summary on stderr. The watermark moves only with the input, so the \
        same input always gives byte-identical output; --until T finally moves it to T.
        """
    )

    @Argument(help: "The NDJSON input file, or - for standard input.")
    var file: String = "-"

    @Option(help: "A model file (YAML). Default: the built-in default model.")
    var model: String?

    @Option(help: "Move the watermark to this RFC 3339 instant at the end: every change at or before it is emitted.")
    var until: String?

    @Option(help: "Refuse events more than --max-future ahead of this RFC 3339 instant (invalid_time), as the daemon does against its wall clock. Without it, no such check: replay stays deterministic.")
    var now: String?

    @Option(name: .customLong("max-future"), help: "With --now: how far ahead of it an event may be (e.g. 1h).")
    var maxFuture: String = "1h"

    @Option(help: "Allowed lateness (e.g. 0s, 1h).")
    var lateness: String = "0s"

    @Option(name: .customLong("duplicate-horizon"), help: "How long after a contact's newest event an event id is still caught as a duplicate: 24h to 24d.")
    var duplicateHorizon: String = "7d"

    @Option(name: .customLong("bad-lines"), help: "Write bad-line reports to this file instead of stderr.")
    var badLines: String?

    @Option(name: .customLong("max-record-bytes"), help: "Records larger than this are bad (too_large).")
    var maxRecordBytes: Int = 1 << 20

    @Option(help: "Webhook shapes also accepted, comma-separated: sendgrid, mailgun, postmark.")
    var adapters: String = ""

    @Flag(help: "No summary and no progress on stderr.")
    var quiet = false

    func run() throws {
        let m = try loadModel(model)
        guard let late = DurationSpec(parsing: lateness) else {
            throw ValidationError("--lateness '\(lateness)' is not a duration like 0s, 500ms, 15m, 1h")
        }
        guard let horizon = DurationSpec(parsing: duplicateHorizon), SegmentEngine.duplicateHorizons.contains(horizon.millis) else {
            throw ValidationError("--duplicate-horizon '\(duplicateHorizon)' is not a duration from 24h to 24d (e.g. 24h, 7d)")
        }
        var untilMs: Millis? = nil
        if let until {
            guard let t = EventTime.parseRFC3339(until), EventTime.isInRange(t) else { throw ValidationError("--until '\(until)' is not an RFC 3339 date-time in the years 0000 to 9999") }
            untilMs = t
        }
        var futureGuard: FutureGuard? = nil
        if let now {
            guard let t = EventTime.parseRFC3339(now) else { throw ValidationError("--now '\(now)' is not an RFC 3339 date-time") }
            guard let allowance = DurationSpec(parsing: maxFuture) else {
                throw ValidationError("--max-future '\(maxFuture)' is not a duration like 30s, 15m, 1h")
            }
            futureGuard = FutureGuard(now: t, allowance: allowance.millis)
        }
        // A closed stdout is an EPIPE error (ended quietly), not a SIGPIPE death.
        signal(SIGPIPE, SIG_IGN)
        let input = try LineReader(path: file)
        let out = OutputBuffer(fd: 1)
        let badOut: OutputBuffer = try badLines.map { try OutputBuffer(path: $0) } ?? OutputBuffer(fd: 2)
        let pipeline = Pipeline(model: m, lateness: late.millis, duplicateHorizon: horizon.millis, maxRecordBytes: maxRecordBytes)
        var providers: Set<WebhookAdapters.Provider> = []
        for name in adapters.split(separator: ",") {
            guard let p = WebhookAdapters.Provider(rawValue: String(name)) else { throw ValidationError("--adapters: '\(name)' is not sendgrid, mailgun or postmark") }
            providers.insert(p)
        }
        pipeline.adapters = WebhookAdapters(providers)
        pipeline.futureGuard = futureGuard
        let progress = !quiet && isatty(2) != 0
        var lineNo = 0
        var lastProgress = 0
        // Replay never changes the model: read the engine and encoder once (reading
        // `pipeline.encoder` per transition would copy the struct and retain its arrays).
        let engine = pipeline.engine
        let encoder = pipeline.encoder
        // Transitions are written in place at the end of `lines` and handed to `out` in runs of
        // about 64 KiB. Behind a pointer: a local variable captured by the closure below would be
        // checked for exclusive access at run time, once per transition.
        let lines = UnsafeMutablePointer<OutputBytes>.allocate(capacity: 1)
        lines.initialize(to: OutputBytes(capacity: 1 << 17))
        defer {
            lines.pointee.deallocate()
            lines.deallocate()
        }
        func flushTransitions() {
            engine.drainTransitions { t in
                encoder.encodeLine(t, to: &lines.pointee)
                if lines.pointee.count >= 1 << 16 {
                    out.write(lines.pointee.bytes)
                    lines.pointee.removeAll()
                }
            }
            out.write(lines.pointee.bytes)
            lines.pointee.removeAll()
        }
        var typeHints = NameHints.TypeHints(eventTypes: m.eventTypes)
        // The records of a batch of lines (empty lines are skipped) and their line numbers.
        var records: [UnsafeBufferPointer<UInt8>] = []
        var recordLines: [Int] = []
        try input.forEachBatch { lines in
            for line in lines {
                lineNo += 1
                if line.isEmpty { continue }
                records.append(line)
                recordLines.append(lineNo)
            }
            records.withUnsafeBufferPointer { batch in
                pipeline.process(batch: batch) { index, outcome in
                    guard case .bad(let e) = outcome else { return }
                    let detail = e.reason == .unknownType ? e.detail + typeHints.hint(e.detail) : e.detail
                    badOut.buffer.append(contentsOf: "line \(recordLines[index]): \(e.reason.rawValue): \(detail)\n".utf8)
                    badOut.flushIfFull()
                }
            }
            records.removeAll(keepingCapacity: true)
            recordLines.removeAll(keepingCapacity: true)
            // Transitions wait in the engine, in order, and are encoded a batch at a time: the
            // per-record path then touches no output at all.
            flushTransitions()
            try out.check()
            try badOut.check()
            if progress && lineNo - lastProgress >= 200_000 {
                lastProgress = lineNo
                printErr("\r\(lineNo) lines, \(pipeline.engine.contactCount) contacts, \(pipeline.engine.stats.transitions) transitions")
            }
        }
        if progress && lastProgress > 0 { printErr("\n") }
        if let untilMs { engine.advanceWatermark(to: untilMs) }
        flushTransitions()
        try out.flush()
        try badOut.flush()
        if !quiet { printErr(summary(pipeline, m, lines: lineNo)) }
    }

    func summary(_ p: Pipeline, _ m: Model, lines: Int) -> String {
        let c = p.counters
        let s = p.engine.stats
        var out = "segmentd replay: \(lines) lines, \(c.records) records, \(s.eventsApplied) events applied, \(p.engine.contactCount) contacts\n"
        out += "  transitions: \(s.transitions)"
        let byGroup = m.groups.enumerated().map { "\($1.name) \(s.transitionsByGroup[$0])" }
        out += " (" + byGroup.joined(separator: ", ") + ")\n"
        out += "  shapes: " + c.byShape.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + "\n"
        out += "  late events: \(s.lateEvents), duplicates: \(c.duplicates)\n"
        out += "  bad records: \(c.badTotal)"
        if !c.bad.isEmpty { out += " (" + c.bad.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + ")" }
        out += "\n  ignored records: \(c.ignoredTotal)"
        if !c.ignored.isEmpty { out += " (" + c.ignored.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + ")" }
        out += "\n  watermark: \(p.engine.watermark == .min ? "none" : EventTime.format(p.engine.watermark))\n"
        return out
    }
}

/// Loads a model file, or the built-in default; a bad model stops the command with file,
/// line, column and reason (and a "did you mean" for a misspelt name), exit status 65.
func loadModel(_ path: String?) throws -> Model {
    guard let path else { return Model.defaultModel() }
    let text = try readFile(path)
    do {
        return try Model.load(yaml: text, file: path)
    } catch {
        throw CommandFailure(.dataError, "invalid model: \(NameHints.withHint(error, modelText: text))")
    }
}

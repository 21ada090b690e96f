import ArgumentParser
import Foundation
import SegmentdDaemon
import SegmentdEngine
import SegmentdReport

struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A segment health report from transitions: one self-contained HTML page, or JSON.",
        discussion: """
        Reads transitions as `replay` writes them (CloudEvents NDJSON, one per line; the bare \
        `data` object is accepted too), or with --brokers or --config the daemon's output \
        topic on a cluster (the connection settings of `run`; read_committed; from the \
        beginning to the end that exists when the read starts), and writes, per group: sizes now and per day, entries \
        and exits per week, the flows between segments, median and 90th-percentile time in \
        each segment, flagged segments (below --min-size, nobody entered), the overlap of \
        groups at the end, the model versions seen and the period. A line that is not a \
        transition is reported on stderr with its line number, skipped and counted in the \
        report. The HTML opens offline: inline CSS and SVG, no script, nothing fetched. \
        docs/report.md describes the figures and the JSON.
        """
    )

    @Argument(help: "The transitions (NDJSON), or - for standard input (the default without --brokers or --config).")
    var file: String?

    @Option(help: "Read the transitions from the output topic of this cluster (bootstrap servers) instead of a file.")
    var brokers: String?

    @Option(help: "A configuration file as for run: its brokers, output_topic and kafka/consumer properties; reads the topic.")
    var config: String?

    @Option(name: .customLong("output-topic"), help: "The topic of transitions (default: output_topic of the configuration, segment-transitions).")
    var outputTopic: String?

    @Option(name: .customLong("kafka"), help: "A librdkafka property for reading the topic, as name=value (repeatable).")
    var kafka: [String] = []

    @Option(name: .customLong("topic-timeout"), help: "How long reading the topic to its end may take.")
    var topicTimeout = "2m"

    @Option(help: "The first instant of the period (RFC 3339). Default: the earliest transition. Earlier transitions only set the starting sizes.")
    var since: String?

    @Option(name: .customLong("read-from"), help: "With --brokers or --config and --since: where each partition of the topic is read from. beginning (default): every transition, so sizes are exact; since: from the records written at --since (less max_future), found by offsets for times: faster on a long topic, but sizes count only the contacts with a transition read.")
    var readFrom: ReadFrom = .beginning

    enum ReadFrom: String, ExpressibleByArgument, CaseIterable {
        case beginning, since
    }

    @Option(help: "The last instant of the period (RFC 3339, inclusive). Default: the latest transition. Later transitions are ignored.")
    var until: String?

    @Option(name: .customLong("min-size"), help: "Flag segments with fewer contacts than this at the end.")
    var minSize: Int = 100

    @Option(help: "html or json.")
    var format: OutputFormat = .html

    @Option(help: "Write the report to this file instead of standard output.")
    var out: String?

    @Option(help: "The input events (NDJSON, as replay reads them): adds opens, clicks and conversions per contact per week by segment.")
    var events: String?

    @Option(help: "The model (YAML) whose group and segment order and names the report uses. Default: the built-in default model, when the transitions carry its version.")
    var model: String?

    @Option(help: "Two groups to cross at the end, as ROWS,COLUMNS (repeatable). Default: the first group with each other group of several segments.")
    var overlap: [String] = []

    @Flag(help: "No summary on stderr.")
    var quiet = false

    enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
        case html, json
    }

    private var readsTopic: Bool { brokers != nil || config != nil }

    func validate() throws {
        if readsTopic && file != nil { throw ValidationError("give a FILE or --brokers/--config (the output topic), not both") }
        if minSize < 0 { throw ValidationError("--min-size must be 0 or more") }
        if readFrom == .since && since == nil { throw ValidationError("--read-from since needs --since (the instant to read from)") }
        if readFrom == .since && !readsTopic { throw ValidationError("--read-from since reads a topic from a time: give --brokers or --config (a file is read whole)") }
        for pair in overlap where pair.split(separator: ",").count != 2 {
            throw ValidationError("--overlap '\(pair)' is not ROWS,COLUMNS (two group names)")
        }
        if let sinceMs = try instant(since, "--since"), let untilMs = try instant(until, "--until"), sinceMs > untilMs {
            throw ValidationError("--since is after --until")
        }
    }

    private func instant(_ text: String?, _ flag: String) throws -> Millis? {
        guard let text else { return nil }
        guard let t = EventTime.parseRFC3339(text), EventTime.isInRange(t) else {
            throw ValidationError("\(flag) '\(text)' is not an RFC 3339 date-time in the years 0000 to 9999")
        }
        return t
    }

    func run() throws {
        let m = try loadModel(model)
        let groupNames = m.groups.map(\.name)
        for name in overlap.flatMap({ $0.split(separator: ",").map(String.init) }) where !groupNames.contains(name) {
            throw ValidationError("--overlap: '\(name)' is not a group of the model\(Suggestions.hint(for: name, among: groupNames)) (groups: \(groupNames.joined(separator: ", ")))")
        }
        let catalog = SegmentCatalog(
            model: m, origin: model.map { "model \(m.version) from \($0)" } ?? "the built-in default model (\(m.version))")
        if readsTopic { _ = setUpLogging(json: false, debug: false) }
        let topic = readsTopic
            ? try ReportTopicSource(configFile: config, brokers: brokers, outputTopic: outputTopic, kafka: kafka, timeout: topicTimeout)
            : nil
        let path = file ?? "-"
        let options = ReportOptions(
            since: try instant(since, "--since"), until: try instant(until, "--until"), minSize: minSize,
            catalog: catalog, catalogIsAssumed: model == nil,
            overlapPairs: overlap.isEmpty ? nil : overlap.map { pair in
                let names = pair.split(separator: ",").map(String.init)
                return (rows: names[0], columns: names[1])
            },
            engagement: events == nil ? nil : EngagementMeasure.standard,
            source: topic.map { "topic \($0.description)" + (readFrom == .since ? " from \(since!) (offsets for times)" : "") }
                ?? (path == "-" ? "standard input" : path))
        // A closed stdout is an EPIPE error (ended quietly), not a SIGPIPE death.
        signal(SIGPIPE, SIG_IGN)
        // Opened first: an unwritable --out fails before the reading, not after.
        let output = try out.map { try OutputBuffer(path: $0) } ?? OutputBuffer(fd: 1)
        let builder = ReportBuilder(options: options)
        let badOut = OutputBuffer(fd: 2)
        func add(_ line: UnsafeBufferPointer<UInt8>, _ lineNumber: Int, _ position: String) {
            if line.isEmpty { return }
            if let error = builder.add(line: Data(buffer: line), lineNumber: lineNumber) {
                badOut.buffer.append(contentsOf: "\(position): \(error.message)\n".utf8)
                badOut.flushIfFull()
            }
        }
        var lineNumber = 0
        if let topic {
            try topic.forEachRecord(seekTo: readFrom == .since ? try instant(since, "--since") : nil) { value, position in
                lineNumber += 1
                value.withUnsafeBufferPointer { add($0, lineNumber, position) }
            }
        } else {
            try LineReader(path: path).forEachLine { line in
                lineNumber += 1
                add(line, lineNumber, "\(path == "-" ? "stdin" : path): line \(lineNumber)")
            }
        }
        try badOut.flush()
        if let events { try readEvents(events, model: m, into: builder) }
        let report = builder.finish()
        let bytes: [UInt8] = switch format {
        case .html: Array(HTMLReport.render(report).utf8)
        case .json: Array(try JSONReport.render(report))
        }
        output.buffer = bytes
        try output.flush()
        if !quiet { printErr(summary(report)) }
    }

    /// Events of both input shapes, decoded as replay decodes them.
    private func readEvents(_ path: String, model: Model, into builder: ReportBuilder) throws {
        var decoder = EventDecoder(model: model)
        let typeNames = model.eventTypes
        try LineReader(path: path).forEachLine { line in
            if line.isEmpty { return }
            switch decoder.decode(line) {
            case let .events(first, second, _):
                for e in [first, second].compactMap({ $0 }) {
                    builder.addEvent(contactId: String(decoding: e.contactId, as: UTF8.self), type: typeNames[Int(e.type)], at: e.ts)
                }
            case .bad, .ignored:
                builder.addUnusableEvent()
            }
        }
    }

    private func summary(_ r: SegmentReport) -> String {
        var s = "segmentd report: \(r.input.transitions) transitions"
        if r.input.badLines > 0 { s += ", \(r.input.badLines) bad lines skipped" }
        if let p = r.period { s += ", \(p.since) to \(p.until)" } else { s += ", nothing to report" }
        s += ", \(r.groups.count) groups, \(Set(r.flags.map { $0.group + "/" + $0.segment }).count) segments flagged"
        if let out { s += " -> \(out)" }
        return s + "\n"
    }
}

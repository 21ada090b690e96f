import ArgumentParser
import SegmentdEngine
import SegmentdReport

/// `segmentd preview`: what a model change would do, before it is deployed. The events run
/// through the base model and the new one side by side; at the end (or at `--at`) every
/// contact's segment under each is compared, group by group (groups matched by name, segments
/// by name), with sample contacts of every move and the new model's reasons for them.
struct Preview: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "What a model change would do: segment sizes under both models, who moves where, and why.",
        discussion: """
        Replays EVENTS (NDJSON, either shape) under the base model (--base, default the built-in
        model) and under --model, then compares every contact's segments group by group (by
        name) at the end of the events, or at --at T. Prints per group the sizes under each
        model, the matrix of moves (from the base segment to the new one, `none` outside every
        segment) and up to --samples contacts per move with the new model's reasons. --html FILE
        also writes the same as one self-contained page. Nothing is sent anywhere.
        """
    )

    @Argument(help: "NDJSON events (either shape); - reads standard input.")
    var events: String
    @Option(help: "The new model file (YAML).")
    var model: String
    @Option(help: "The model in use (YAML). Default: the built-in default model.")
    var base: String?
    @Option(help: "Compare at this instant (RFC 3339): every boundary up to it fires first. Default: the end of the events.")
    var at: String?
    @Option(help: "Sample contacts shown per move.")
    var samples: Int = 3
    @Option(help: "Also write the preview as a self-contained HTML page to this file.")
    var html: String?

    func run() throws {
        guard samples >= 0 else { throw ValidationError("--samples must be 0 or more") }
        var until: Millis?
        if let at {
            guard let t = EventTime.parseRFC3339(at), EventTime.isInRange(t) else { throw ValidationError("--at '\(at)' is not an RFC 3339 date-time in the years 0000 to 9999") }
            until = t
        }
        let baseModel = try loadModel(base), newModel = try loadModel(model)
        let before = Pipeline(model: baseModel), after = Pipeline(model: newModel)
        let input = try LineReader(path: events)
        var lines = 0
        try input.forEachLine { line in
            lines += 1
            if line.isEmpty { return }
            _ = before.process(line)
            _ = after.process(line)
            if lines % 4096 == 0 {
                before.engine.drainTransitions { _ in }
                after.engine.drainTransitions { _ in }
            }
        }
        if let until {
            before.engine.advanceWatermark(to: until)
            after.engine.advanceWatermark(to: until)
        }
        before.engine.drainTransitions { _ in }
        after.engine.drainTransitions { _ in }
        let preview = ModelPreview.compare(base: before.engine, new: after.engine, samples: samples)
        let out = OutputBuffer(fd: 1)
        out.buffer.append(contentsOf: Preview.text(preview, base: baseModel, new: newModel, at: until).utf8)
        try out.flush()
        if let html {
            let page = try OutputBuffer(path: html)
            page.buffer.append(contentsOf: Preview.page(preview, base: baseModel, new: newModel, at: until).utf8)
            try page.flush()
        }
    }

    static func text(_ preview: ModelPreview, base: Model, new: Model, at: Millis?) -> String {
        var s = "preview: model '\(base.version)' -> '\(new.version)', \(preview.contacts) contacts, \(at.map { "at " + EventTime.format($0) } ?? "at the end of the events")\n"
        for p in preview.groups {
            s += "\ngroup \(p.name)\(p.inBase ? "" : " (new: every contact starts from none)"): \(p.moved) contacts move\n"
            s += "  segment: base -> new\n"
            for name in p.segments + ["none"] {
                s += "  \(name): \(p.baseSizes[name, default: 0]) -> \(p.newSizes[name, default: 0])\n"
            }
            for move in p.moves.keys.sorted() {
                s += "  move \(move.from) -> \(move.to): \(p.moves[move]!)\n"
                for sample in p.samples[move] ?? [] {
                    s += "    \(sample.contact): \(sample.reasons.joined(separator: "; "))\n"
                }
            }
        }
        return s
    }

    /// Text for HTML, as the report and the console escape it.
    static func escape(_ s: String) -> String { ConsoleCharts.escape(s) }

    /// One self-contained page: per group, the sizes and the matrix of moves (rows: base
    /// segments, columns: new ones), then the samples.
    static func page(_ preview: ModelPreview, base: Model, new: Model, at: Millis?) -> String {
        var h = """
        <!doctype html><html lang="en"><head><meta charset="utf-8"><title>segmentd preview: \(escape(base.version)) → \(escape(new.version))</title>
        <style>body{font:14px system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}th{background:#f4f4f4}td.same{color:#999}td.move{background:#fff3cd;font-weight:600}li{margin:.2em 0}code{font-size:12px}</style>
        </head><body><h1>Preview: \(escape(base.version)) → \(escape(new.version))</h1>
        <p>\(at.map { "At " + EventTime.format($0) } ?? "At the end of the events"). Rows: the segment under the base model; columns: under the new one.</p>
        """
        for p in preview.groups {
            let columns = p.segments + ["none"]
            h += "<h2 data-group=\"\(escape(p.name))\">\(escape(p.name))\(p.inBase ? "" : " (new group)")</h2><table><tr><th>base \\ new</th>"
            for c in columns { h += "<th>\(escape(c))<br><small>\(p.newSizes[c, default: 0])</small></th>" }
            h += "</tr>"
            for r in columns {
                h += "<tr><th>\(escape(r)) <small>\(p.baseSizes[r, default: 0])</small></th>"
                for c in columns {
                    if r == c {
                        h += "<td class=\"same\">·</td>"
                    } else {
                        let n = p.moves[ModelPreview.Move(from: r, to: c)] ?? 0
                        h += n == 0 ? "<td></td>" : "<td class=\"move\" data-from=\"\(escape(r))\" data-to=\"\(escape(c))\">\(n)</td>"
                    }
                }
                h += "</tr>"
            }
            h += "</table>"
            for move in p.moves.keys.sorted() {
                h += "<h3>\(escape(move.from)) → \(escape(move.to)): \(p.moves[move]!)</h3><ul>"
                for sample in p.samples[move] ?? [] {
                    h += "<li><b>\(escape(sample.contact))</b><br><code>\(sample.reasons.map(escape).joined(separator: "<br>"))</code></li>"
                }
                h += "</ul>"
            }
        }
        return h + "</body></html>\n"
    }
}

import ArgumentParser
import SegmentdDaemon
import SegmentdEngine

struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a model file and print what it compiles to."
    )

    @Argument(help: "The model file (YAML). Omit to check the built-in default.")
    var model: String?

    func run() throws {
        let m = try loadModel(model)
        print(ModelSummary.describe(m))
    }
}

struct Explain: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a contact's memberships at an instant and why, after replaying EVENTS."
    )

    @Option(help: "A model file (YAML). Default: the built-in default model.")
    var model: String?

    @Argument(help: "The NDJSON events file, or -.")
    var events: String

    @Argument(help: "The contact id.")
    var contactId: String

    @Option(help: "The instant (RFC 3339). Default: the contact's clock. Only records with a time at or before it are replayed.")
    var at: String?

    @Option(help: "Allowed lateness (e.g. 0s, 1h).")
    var lateness: String = "0s"

    func run() throws {
        let m = try loadModel(model)
        var atMs: Millis? = nil
        if let at {
            guard let t = EventTime.parseRFC3339(at) else { throw ValidationError("--at '\(at)' is not an RFC 3339 date-time") }
            atMs = t
        }
        guard let late = DurationSpec(parsing: lateness) else { throw ValidationError("--lateness '\(lateness)' is not a duration") }
        let pipeline = Pipeline(model: m, lateness: late.millis)
        var probe = EventDecoder(model: m)
        // The contact ids seen, for a "did you mean" when the asked one is not among them.
        var seen: Set<String> = []
        try LineReader(path: events).forEachLine { line in
            if case let .events(e, _, _) = probe.decode(line) {
                if seen.count < 100_000 { seen.insert(String(decoding: e.contactId, as: UTF8.self)) }
                if let atMs, e.ts > atMs { return }
            }
            _ = pipeline.process(line)
            _ = pipeline.engine.takeTransitions()
        }
        if let atMs { pipeline.engine.advanceWatermark(to: atMs) }
        guard let x = pipeline.engine.explain(Array(contactId.utf8), at: atMs) else {
            throw CommandFailure(.dataError, "contact '\(contactId)' does not appear in \(events)\(Suggestions.hint(for: contactId, among: seen))")
        }
        print("contact \(x.contactId) at \(EventTime.format(x.at)) (clock \(EventTime.format(x.clock)), first seen \(EventTime.format(x.firstSeen)))")
        for g in x.groups {
            print("\(g.name): \(g.segment ?? "(none)")")
            for r in g.reasons { print("  \(r)") }
        }
        print("next change by time alone: \(x.nextChange.map(EventTime.format) ?? "none")")
    }
}

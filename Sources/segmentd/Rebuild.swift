import ArgumentParser
import SegmentdDaemon
import SegmentdEngine
import SegmentdKafka

#if canImport(Glibc)
import Glibc
#endif

struct RebuildCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rebuild",
        abstract: "Backfill for a changed model: rebuild the state under a new model from history, then take over emitting only the differences.",
        discussion: """
        Reads the changelog (the running instance's state and position), rebuilds every \
        partition's state under --model from the input topic's oldest retained record (and any \
        NDJSON history files given) up to that position, emitting nothing while the instance \
        keeps serving. Then it fences the instance (its transactional ids), catches up on what \
        the instance applied meanwhile, and writes each partition in one transaction: the \
        rebuilt state, a transition with cause model for each membership that differs from \
        what the output topic last said, and the checkpoint. run with the new model then \
        starts from it. See docs/rebuild.md.
        """
    )

    @Argument(help: "NDJSON history files (either input shape) older than the topic's retention, or - for standard input.")
    var files: [String] = []

    @Option(name: .customLong("topic-from"), help: "Where the input topic is read from: earliest (the default: the oldest retained record), an RFC 3339 time, or PARTITION:OFFSET[,…].")
    var topicFrom = "earliest"

    @OptionGroup var output: HistoryOutputOptions

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var state: StateOptions
    @Option(help: Run.setting("threads")) var threads: String?

    func validate() throws {
        if BootstrapCommand.parseTopicStart(topicFrom) == nil {
            throw ValidationError("--topic-from '\(topicFrom)' is not earliest, an RFC 3339 time or PARTITION:OFFSET[,…]")
        }
    }

    func run() throws {
        let c = try state.settings(connection, [("threads", threads)])
        try c.requireCluster(for: "rebuild")
        let m = try loadModel(c.modelPath)
        let (meter, log) = try startHistoryCommand("rebuild", files: files, quiet: output.quiet, config: c)
        // The topics exist and the cluster answers (69 and 65 with what to check).
        _ = try c.partitionCount(of: c.inputTopic)
        _ = try c.partitionCount(of: c.changelogTopic)
        _ = try c.partitionCount(of: c.outputTopic)

        let started = Bootstrap.monotonicSeconds()
        let rebuild = Rebuild(config: c, model: m, log: log)
        let live: Rebuild.Live
        do { live = try rebuild.readLive() } catch let e as DaemonError {
            throw CommandFailure(.dataError, e.description)
        }
        log("the changelog holds \(live.contacts) contacts under \(live.modelVersions.sorted().map { "'\($0)'" }.joined(separator: ", ")); rebuilding under '\(m.version)' in a shadow (nothing is written until the take-over)")

        let history = rebuild.history(live)
        let badOut: OutputBuffer = try output.badLines.map { try OutputBuffer(path: $0) } ?? OutputBuffer(fd: 2)
        let totalBytes = files.reduce(0) { $0 + BootstrapCommand.fileSize($1) }
        _ = try readHistoryFiles(files, into: history, model: m, badOut: badOut, meter: meter, totalBytes: totalBytes)
        let fromFiles = history.counts.kept
        let topicRecords = try rebuild.readTopic(into: history, live: live, from: BootstrapCommand.parseTopicStart(topicFrom)!, report: { p, o, e in
            badOut.buffer.append(contentsOf: "\(c.inputTopic)[\(p)] offset \(o): \(e.reason.rawValue): \(e.detail)\n".utf8)
            badOut.flushIfFull()
        }, progress: { n in meter.show("reading \(c.inputTopic)", done: n, total: 0, unit: "records", extra: "\(history.counts.kept) kept") })
        try badOut.flush()
        meter.finish()
        let counts = history.counts
        let total = counts.kept
        let shadow = rebuild.build(history: history, live: live) { done, contacts in
            meter.show("building", done: done, total: total, unit: "records", extra: "\(contacts) contacts")
        }
        meter.finish()
        let shadowSeconds = Bootstrap.monotonicSeconds() - started
        log("shadow built: \(shadow.recordsApplied) records applied; following the instance")
        // History shorter than the model's look-back: say so before the take-over.
        var reach = ""
        if let oldest = shadow.oldestEvent, let newest = live.newestStreamTime {
            reach = " (\(DurationText.approximate(max(0, newest - oldest))) before the instance's stream time; the model looks back \(DurationSpec(millis: m.horizon)))"
            if newest - oldest < m.horizon {
                log("warning: the history read reaches back \(DurationText.approximate(max(0, newest - oldest))) from the instance's stream time and the model looks back \(DurationSpec(millis: m.horizon)): a new rule (or one counted differently) over a longer window sees only that much (give older history as files)")
            }
        }
        let followed: Int
        do {
            followed = try rebuild.follow(shadow) { n in meter.show("following the instance", done: n, total: 0, unit: "records", extra: "\(shadow.recordsApplied) applied") }
        } catch let e as DaemonError {
            throw CommandFailure(.dataError, e.description)
        }
        meter.finish()
        log("caught up on \(followed) records the instance applied meanwhile; taking over")

        let summary: Rebuild.Summary
        do {
            summary = try rebuild.takeOver(shadow) { step in log(step) }
        } catch let e as DaemonError {
            throw CommandFailure(.dataError, e.description)
        }
        meter.finish()
        let seconds = Bootstrap.monotonicSeconds() - started
        guard !output.quiet else { return }
        func list(_ d: [String: Int]) -> String { d.isEmpty ? "" : " (" + d.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + ")" }
        var out = "segmentd rebuild: '\(summary.previousVersions.sorted().joined(separator: "', '"))' → '\(m.version)' on \(summary.partitions) partitions\n"
        out += "  history: \(topicRecords) records of \(c.inputTopic) (from \(topicFrom)) and \(fromFiles) of files\(counts.afterHandOff > 0 ? " (and \(counts.afterHandOff) stamped after the instance's stream time, left to the topic)" : ""), up to the instance's position; \(followed) more caught up while it ran, \(summary.catchUpRecords) after the fence\n"
        if let oldest = shadow.oldestEvent { out += "  oldest event applied: \(EventTime.format(oldest))\(reach)\n" }
        out += "  bad records: \(counts.badTotal)\(list(counts.bad)), ignored: \(counts.ignoredTotal)\(list(counts.ignored))\n"
        out += "  applied: \(shadow.recordsApplied) records, duplicates: \(shadow.duplicates); history's transitions (not emitted): \(shadow.historyTransitions)\n"
        out += "  contacts: \(summary.counts.rebuilt) rebuilt, \(summary.counts.onlyRebuilt) new to the state, \(summary.counts.onlyOld) without history (moved to the new model by meaning)\n"
        out += "  switch: \(summary.transitions) transitions (cause model) for \(summary.counts.changedContacts) contacts; changelog records written: \(summary.changelogRecords)\n"
        for (g, group) in m.groups.enumerated() {
            out += "  \(group.name): " + group.segments.enumerated().map { s, seg in
                let before = summary.sizesBefore[g][s], after = summary.sizesAfter[g][s]
                return before == after ? "\(seg.name) \(after)" : "\(seg.name) \(before) → \(after)"
            }.joined(separator: ", ") + " (\(summary.transitionsByGroup[g]) transitions)\n"
        }
        let offsets = summary.checkpoints.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: " ")
        out += "  input offsets at the switch (partition:offset): \(offsets)\n"
        out += String(format: "  time: %.2f s (shadow %.2f s, take-over %.2f s, of which writing %.2f s)\n", seconds, shadowSeconds, seconds - shadowSeconds, summary.writeSeconds)
        printErr(out)
    }
}

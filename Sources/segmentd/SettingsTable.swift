import ArgumentParser
import SegmentdDaemon

/// `segmentd settings`: the table of `run`'s settings, from their one declaration
/// (`DaemonConfig.settings`), as the README shows it.
struct SettingsTable: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "settings",
        abstract: "Print the settings of run (name, default, meaning) as the README's Markdown table.",
        discussion: "Each setting is a key of the configuration file, a SEGMENTD_KEY environment variable and a --key flag of run; the README's table is this output (a test checks that it is current)."
    )

    func run() throws {
        print(DaemonConfig.settingsTable, terminator: "")
    }
}

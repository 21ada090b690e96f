import ArgumentParser
import SegmentdDaemon
import SegmentdEngine
import SegmentdKafka

#if canImport(Glibc)
import Glibc
#endif

/// segmentd's exit statuses (the BSD `sysexits.h` values; README, *Exit statuses*).
enum ExitStatus: Int32 {
    /// A wrong command line: unknown option, missing argument, a flag value of the wrong form.
    /// The only status that prints the usage.
    case usage = 64
    /// Wrong data: a model, a configuration (file, environment or flag value of a setting), an
    /// unknown contact, input the command cannot use.
    case dataError = 65
    /// An input file that cannot be opened or read.
    case noInput = 66
    /// The Kafka cluster cannot be reached (no broker answered).
    case unavailable = 69
    /// An internal error, or a fatal error of the Kafka client.
    case software = 70
    /// Output could not be written (disk full, a closed pipe for a file, no permission).
    case ioError = 74
    /// A temporary failure: the cluster answered but the operation timed out or failed in a
    /// way a retry may fix.
    case temporaryFailure = 75
}

/// A failure that ends a command with its message alone (no usage) and its own exit status.
struct CommandFailure: Error, CustomStringConvertible {
    var status: ExitStatus
    var description: String

    init(_ status: ExitStatus, _ description: String) {
        self.status = status
        self.description = description
    }

    /// The failure `error` means for an operator: its status and a message that says what to
    /// check. Errors of the command line (ArgumentParser's) give nil: they print the usage.
    static func from(_ error: any Error) -> CommandFailure? {
        switch error {
        case let f as CommandFailure: return f
        case let e as ConfigError: return CommandFailure(.dataError, "invalid configuration: \(e)")
        case let e as IOError: return CommandFailure(e.writing ? .ioError : .noInput, e.description)
        case let e as KafkaError: return CommandFailure(kafka: e)
        case let e as DaemonFailure:
            guard let cause = e.cause as? KafkaError else { return CommandFailure(.software, e.description) }
            let failure = CommandFailure(kafka: cause)
            // A refused configuration is said as such; anything else stopped a running daemon.
            return failure.status == .dataError ? failure : CommandFailure(failure.status, e.description)
        case is DaemonError: return CommandFailure(.software, "fatal: \(error)")
        default: return nil
        }
    }

    /// A Kafka client error: a refused configuration is data (65), fatal ones are internal
    /// (70), a transport failure to every broker is unavailability (69), timeouts and retriable
    /// ones temporary (75).
    init(kafka e: KafkaError) {
        if e.isConfigurationError {
            self.init(.dataError, "the Kafka client refused its configuration: \(e.message)")
        } else if e.isFatal {
            self.init(.software, "fatal Kafka client error: \(e)")
        } else if e.isBrokerUnreachable {
            self.init(.unavailable, "\(e)")
        } else if e.isRetriable || e.isTimeout {
            self.init(.temporaryFailure, "\(e)")
        } else {
            self.init(.software, "\(e)")
        }
    }
}

extension Segmentd {
    /// Parses and runs the command. A command-line error prints ArgumentParser's message and
    /// the usage (64); every other failure prints `Error: ` and its message alone, and exits
    /// with its status (see `ExitStatus`).
    static func main() {
        var command: any ParsableCommand
        do {
            command = try parseAsRoot()
        } catch {
            // A misspelt command: say which one was meant (ArgumentParser does it for options).
            let names = configuration.subcommands.map { $0._commandName }
            if let first = CommandLine.arguments.dropFirst().first, !first.hasPrefix("-"), !names.contains(first),
               let meant = Suggestions.closest(to: first, among: names) {
                printErr("Error: unknown command '\(first)' (did you mean '\(meant)'?)\nUsage: \(usageString())\n")
                Glibc.exit(ExitStatus.usage.rawValue)
            }
            exit(withError: error)
        }
        do {
            try command.run()
        } catch {
            if let e = error as? IOError, e.brokenPipe { Glibc.exit(0) }
            if let failure = CommandFailure.from(error) {
                printErr("Error: \(failure.description)\n")
                Glibc.exit(failure.status.rawValue)
            }
            // ArgumentParser's own outcomes (help, usage errors, ExitCode) keep its handling;
            // anything else is unexpected: an internal error.
            if exitCode(for: error) != .failure { exit(withError: error) }
            printErr("Error: internal error: \(error)\n")
            Glibc.exit(ExitStatus.software.rawValue)
        }
    }
}

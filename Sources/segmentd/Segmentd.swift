import ArgumentParser
import Dispatch
import Synchronization
import SegmentdEngine

#if canImport(Glibc)
import Glibc
#endif

@main
struct Segmentd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "segmentd",
        abstract: "Real-time segmentation: engagement events in, segment transitions out.",
        version: SegmentdVersion.description,
        subcommands: [Run.self, BootstrapCommand.self, RebuildCommand.self, Demo.self, Produce.self, Tail.self, Replay.self, Preview.self, Validate.self, Explain.self, LoadGen.self, Report.self, SettingsTable.self]
    )
}

/// Runs `body` on the concurrency runtime's threads and waits for it on this one (the main
/// thread, which runs no executor here: nothing in `body` needs it).
func runBlocking(_ body: @escaping @Sendable () async throws -> Void) throws {
    let outcome = Mutex<Result<Void, any Error>?>(nil)
    let done = DispatchSemaphore(value: 0)
    Task.detached {
        do { try await body(); outcome.withLock { $0 = .success(()) } } catch { outcome.withLock { $0 = .failure(error) } }
        done.signal()
    }
    done.wait()
    try outcome.withLock { $0! }.get()
}

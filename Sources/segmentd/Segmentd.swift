import ArgumentParser
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
        subcommands: [Run.self, Demo.self, Replay.self, Validate.self, Explain.self, LoadGen.self]
    )
}

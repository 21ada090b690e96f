// swift-tools-version:6.1
// libFuzzer targets for segmentd. A separate package so that a normal `swift build` /
// `swift test` of the main package never builds them: they link only with
// `-sanitize=fuzzer`. Build and run them with `scripts/fuzz.sh` (README.md, "Fuzzing"):
//
//   swift build -c release --package-path Fuzz --scratch-path .build-fuzz \
//     -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library \
//     -Xswiftc -Xclang-linker -Xswiftc -fuse-ld=lld
//
// Each executable defines `<module>_main` (SwiftPM links executables with
// `main=<module>_main`) and hands libFuzzer its callback through `LLVMFuzzerRunDriver`.
import PackageDescription

let engine = Target.Dependency.product(name: "SegmentdEngine", package: "segmentd")

let package = Package(
    name: "segmentd-fuzz",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "segmentd", path: ".."),
    ],
    targets: [
        // The libFuzzer driver entry and the invariant checks the targets share.
        .target(name: "FuzzSupport", dependencies: [engine]),
        // records: NDJSON bytes -> Pipeline.process (default model, webhook adapters on) ->
        // every transition encoded and checked; then the watermark moves to the end.
        .executableTarget(name: "FuzzRecords", dependencies: ["FuzzSupport", engine]),
        // model: YAML bytes -> Model.load; a model that compiles runs fixed records.
        .executableTarget(name: "FuzzModel", dependencies: ["FuzzSupport", engine]),
        // config: YAML bytes -> DaemonConfig.apply(yaml:), NAME=VALUE lines -> apply(environment:).
        .executableTarget(
            name: "FuzzConfig",
            dependencies: ["FuzzSupport", .product(name: "SegmentdDaemon", package: "segmentd")]
        ),
        // snapshot: bytes -> SegmentEngine.restore (the changelog); an accepted state then runs.
        .executableTarget(name: "FuzzSnapshot", dependencies: ["FuzzSupport", engine]),
        // webhooks: bytes -> WebhookAdapters.translate -> every record re-parsed and decoded.
        .executableTarget(name: "FuzzWebhooks", dependencies: ["FuzzSupport", engine]),
    ]
)

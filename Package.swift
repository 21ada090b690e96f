// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "segmentd",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "segmentd", targets: ["segmentd"]),
        .library(name: "SegmentdEngine", targets: ["SegmentdEngine"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        // The pure segmentation engine: decoding, model, per-contact state, time, transitions.
        // No Kafka, no network, no file I/O.
        .target(
            name: "SegmentdEngine",
            dependencies: [.product(name: "Yams", package: "Yams")],
            swiftSettings: [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]
        ),
        .executableTarget(
            name: "segmentd",
            dependencies: [
                "SegmentdEngine",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "segmentd-bench",
            dependencies: ["SegmentdEngine"],
            swiftSettings: [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]
        ),
        .testTarget(
            name: "SegmentdEngineTests",
            dependencies: ["SegmentdEngine"]
        ),
    ]
)

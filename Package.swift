// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "segmentd",
    products: [
        .executable(name: "segmentd", targets: ["segmentd"]),
        .library(name: "SegmentdEngine", targets: ["SegmentdEngine"]),
        .library(name: "SegmentdKafka", targets: ["SegmentdKafka"]),
        // For the fuzz package (Fuzz/Package.swift), which depends on this one by path.
        .library(name: "SegmentdDaemon", targets: ["SegmentdDaemon"]),
        .executable(name: "kafka-read-bench", targets: ["kafka-read-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // Hummingbird's own networking; the HTTP server forwards contact queries with it.
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.0"),
    ],
    targets: [
        // System librdkafka (Debian: librdkafka-dev, 2.0.2). The shim header pulls in the
        // client API and the in-process mock cluster API used by the embedded broker and tests.
        .systemLibrary(
            name: "CRdKafka",
            path: "Sources/CRdKafka",
            pkgConfig: "rdkafka",
            providers: [.apt(["librdkafka-dev"])]
        ),
        // Our thin, safe Swift layer over librdkafka.
        .target(name: "SegmentdKafka", dependencies: ["CRdKafka"]),
        .executableTarget(name: "kafka-read-bench", dependencies: ["SegmentdKafka"]),
        .testTarget(name: "SegmentdKafkaTests", dependencies: ["SegmentdKafka"]),
        // Cache prefetch hints (two static inline C functions): Swift has no prefetch intrinsic.
        .target(name: "CPrefetch"),
        // The pure segmentation engine: decoding, model, per-contact state, time, transitions.
        // No Kafka, no network, no file I/O.
        .target(
            name: "SegmentdEngine",
            dependencies: ["CPrefetch", .product(name: "Yams", package: "Yams")]
        ),
        // The daemon: configuration, the processing loop, changelog, embedded broker.
        .target(
            name: "SegmentdDaemon",
            dependencies: [
                "SegmentdEngine", "SegmentdKafka",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        // Operations over HTTP: metrics, health, contact queries, admin.
        .target(
            name: "SegmentdHTTP",
            dependencies: [
                "SegmentdDaemon", "SegmentdEngine", "SegmentdReport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),

        .testTarget(
            name: "SegmentdDaemonTests",
            dependencies: [
                "SegmentdDaemon", "SegmentdKafka", "SegmentdEngine", "SegmentdHTTP",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Segment health report: transitions in, figures (JSON) and a self-contained HTML page
        // out. Pure: no Kafka, no network; reads nothing but what it is handed.
        .target(name: "SegmentdReport", dependencies: ["SegmentdEngine"]),
        .testTarget(name: "SegmentdReportTests", dependencies: ["SegmentdReport", "SegmentdEngine", "SegmentdKafka"]),
        .executableTarget(
            name: "segmentd",
            dependencies: [
                "SegmentdEngine",
                "SegmentdReport",
                "SegmentdDaemon",
                "SegmentdHTTP",
                "SegmentdKafka",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "daemon-bench",
            dependencies: ["SegmentdDaemon", "SegmentdKafka", "SegmentdEngine"]
        ),
        .executableTarget(
            name: "segmentd-bench",
            dependencies: ["SegmentdEngine"]
        ),
        .testTarget(
            name: "SegmentdEngineTests",
            dependencies: ["SegmentdEngine"],
            // Input and expected NDJSON of the fixture cases, read at test time.
            exclude: ["Fixtures"]
        ),
    ]
)

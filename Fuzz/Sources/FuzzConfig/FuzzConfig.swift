// The configuration loader: bytes -> DaemonConfig.apply(yaml:file:) as `--config FILE` does,
// then the same bytes as environment variables: every line `NAME=VALUE` becomes
// `SEGMENTD_NAME=VALUE` (NAME upper-cased, dots to underscores, unless it already starts with
// SEGMENTD_) -> apply(environment:), on the file's result as `segmentd run` layers them, and on
// a fresh configuration. A refused value must name where it came from; an accepted
// configuration must give librdkafka properties.
import FuzzSupport
import SegmentdDaemon
import SegmentdEngine

func environment(_ text: String) -> [String: String] {
    var env: [String: String] = [:]
    for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
        guard let eq = line.firstIndex(of: "=") else { continue }
        var name = String(line[..<eq])
        if !name.hasPrefix("SEGMENTD_") {
            name = "SEGMENTD_" + String(name.uppercased().map { $0 == "." ? "_" : $0 })
        }
        env[name] = String(line[line.index(after: eq)...])
    }
    return env
}

func use(_ c: DaemonConfig) {
    let consumer = c.consumerProperties()
    let producer = c.producerProperties()
    guard consumer["group.id"] == c.groupId, producer["bootstrap.servers"] == c.brokers else {
        violated("librdkafka properties disagree with the configuration")
    }
    guard c.batchSize > 0, c.maxRecordBytes > 0, c.embeddedPartitions > 0, c.lateness >= 0 else {
        violated("accepted configuration with batch_size \(c.batchSize), max_record_bytes \(c.maxRecordBytes), embedded_partitions \(c.embeddedPartitions), lateness \(c.lateness)")
    }
    if let idle = c.idleAdvance, idle < 0 { violated("negative idle_advance \(idle)") }
}

func fuzzOne(_ data: UnsafeBufferPointer<UInt8>) {
    let text = String(decoding: data, as: UTF8.self)
    var file = DaemonConfig()
    do {
        try file.apply(yaml: text, file: "fuzz.yaml")
        use(file)
    } catch {
        guard error.origin.hasPrefix("fuzz.yaml"), !error.message.isEmpty else { violated("file error without its origin: \(error)") }
    }
    let env = environment(text)
    guard !env.isEmpty else { return }
    for var c in [file, DaemonConfig()] {
        do {
            try c.apply(environment: env)
            use(c)
        } catch {
            guard error.origin.hasPrefix("environment SEGMENTD_"), !error.message.isEmpty else { violated("environment error without its origin: \(error)") }
        }
    }
}

@_cdecl("FuzzConfig_main")
func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runFuzzer(argc, argv) { data, size in
        withExactCopy(data, size) { fuzzOne($0) }
        return 0
    }
}

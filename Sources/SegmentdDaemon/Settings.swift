import SegmentdEngine
import SegmentdKafka

/// One setting of `segmentd run`, declared once: its name (the key in the configuration file;
/// `SEGMENTD_<NAME>` in the environment; `--<name-with-dashes>` on the command line), its
/// default and meaning as the README's table and `--help` say them, and how a value is
/// checked and applied. `DaemonConfig.set` (file, environment, flags), the did-you-mean for a
/// misspelt name, `segmentd run --help` and the README's table (`segmentd settings`) all come
/// from `DaemonConfig.settings`.
public struct Setting: Sendable {
    public let name: String
    /// The default, in Markdown (as the README's table shows it).
    public let defaultText: String
    /// What it does, in Markdown (the README's table); `help` is the same as plain text.
    public let meaning: String
    let apply: @Sendable (inout DaemonConfig, SettingValue) throws(ConfigError) -> Void

    init(_ name: String, _ defaultText: String, _ meaning: String,
         _ apply: @escaping @Sendable (inout DaemonConfig, SettingValue) throws(ConfigError) -> Void) {
        self.name = name
        self.defaultText = defaultText
        self.meaning = meaning
        self.apply = apply
    }

    public var flag: String { "--" + name.replacingOccurrences(of: "_", with: "-") }
    public var environmentVariable: String { "SEGMENTD_" + name.uppercased() }

    /// `meaning` without code marks, and the default, for `--help`.
    public var help: String {
        let plain = meaning.replacingOccurrences(of: "`", with: "")
        return defaultText.isEmpty ? plain : "\(plain) (default: \(defaultText.replacingOccurrences(of: "`", with: "")))"
    }
}

/// A value being applied: the text and where it came from, with the checks settings share.
struct SettingValue {
    let text: String
    let origin: String

    func fail(_ message: String) -> ConfigError { ConfigError(origin: origin, message: message) }

    func positive(_ name: String) throws(ConfigError) -> Int {
        guard let v = Int(text), v > 0 else { throw fail("\(name) '\(text)' must be a positive whole number") }
        return v
    }

    func topic() throws(ConfigError) -> String {
        let ok = !text.isEmpty && text.count <= 249 && text != "." && text != ".."
            && text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "_" || $0 == "-") }
        guard ok else { throw fail("'\(text)' is not a valid Kafka topic name (letters, digits, '.', '_', '-', at most 249)") }
        return text
    }

    func oneOf(_ name: String, _ choices: [String]) throws(ConfigError) -> String {
        guard choices.contains(text) else { throw fail("\(name) '\(text)' must be \(choices.dropLast().joined(separator: ", ")) or \(choices.last!)") }
        return text
    }

    func duration(_ name: String, _ example: String) throws(ConfigError) -> Millis {
        guard let d = DurationSpec(parsing: text) else { throw fail("\(name) '\(text)' is not a duration like \(example)") }
        return d.millis
    }
}

extension DaemonConfig {
    /// Every setting, in the order `--help` and the README list them.
    public static let settings: [Setting] = [
        Setting("brokers", "required", "bootstrap servers (`host:port,…`); `embedded` starts the in-memory embedded broker (to try segmentd, never for production)") { c, v in
            c.brokers = v.text
        },
        Setting("group_id", "`segmentd`", "consumer group") { c, v throws(ConfigError) in
            guard !v.text.isEmpty else { throw v.fail("group_id must not be empty") }
            c.groupId = v.text
        },
        Setting("input_topic", "`engagement-events`", "engagement events") { c, v throws(ConfigError) in c.inputTopic = try v.topic() },
        Setting("output_topic", "`segment-transitions`", "segment transitions, CloudEvents JSON keyed by contact") { c, v throws(ConfigError) in c.outputTopic = try v.topic() },
        Setting("dead_letter_topic", "`segmentd-dead-letters`", "bad records, unchanged, with `error.*` headers") { c, v throws(ConfigError) in c.deadLetterTopic = try v.topic() },
        Setting("changelog_topic", "`segmentd-changelog`", "per-contact state, co-partitioned with the input") { c, v throws(ConfigError) in c.changelogTopic = try v.topic() },
        Setting("repartition", "`auto`", "`auto`: a record whose contact belongs to another partition is forwarded through the repartition topic (see *Any input keying*); `off`: trust the keys") { c, v throws(ConfigError) in
            guard let m = RepartitionMode(rawValue: v.text) else { throw v.fail("repartition '\(v.text)' must be auto or off") }
            c.repartition = m
        },
        Setting("repartition_topic", "`GROUP_ID-INPUT_TOPIC-repartition`", "internal topic for forwarded records, with the input's partition count") { c, v throws(ConfigError) in
            c.repartitionTopicSetting = v.text.isEmpty ? nil : try v.topic()
        },
        Setting("model", "built-in default", "model file (YAML)") { c, v in c.modelPath = v.text.isEmpty ? nil : v.text },
        Setting("processing_guarantee", "`exactly_once`", "`exactly_once`, or `at_least_once` (flush, then commit offsets)") { c, v throws(ConfigError) in
            guard let g = ProcessingGuarantee(rawValue: v.text) else {
                throw v.fail("processing_guarantee '\(v.text)' must be exactly_once or at_least_once")
            }
            c.guarantee = g
        },
        Setting("lateness", "`0s`", "allowed lateness, e.g. `30s`, `1h`") { c, v throws(ConfigError) in c.lateness = try v.duration("lateness", "0s, 500ms, 30s, 1h") },
        Setting("duplicate_horizon", "`7d`", "how long an applied event id is remembered, in its contact's event time: `24h` (the least the contract allows) to `24d`; shorter holds less memory (see *Duplicates*)") { c, v throws(ConfigError) in
            let d = try v.duration("duplicate_horizon", "24h, 3d, 7d")
            guard SegmentEngine.duplicateHorizons.contains(d) else {
                throw v.fail("duplicate_horizon '\(v.text)' is outside 24h to 24d: at least the contract's 24 hours, at most the 2^31 ms a remembered id's 32-bit stamp counts")
            }
            c.duplicateHorizon = d
        },
        Setting("idle_advance", "`10s`", "idle time before a partition's watermark follows the wall clock; `off` disables") { c, v throws(ConfigError) in
            if v.text == "off" || v.text == "false" { c.idleAdvance = nil; return }
            guard let d = DurationSpec(parsing: v.text) else { throw v.fail("idle_advance '\(v.text)' is not a duration (e.g. 10s) or off") }
            c.idleAdvance = d.millis
        },
        Setting("max_record_bytes", "`1048576`", "larger records are dead-lettered as `too_large` (at most 64 MiB; sizes the producer, see *Dead letters*)") { c, v throws(ConfigError) in
            let n = try v.positive("max_record_bytes")
            guard n <= DaemonConfig.maxRecordBytesLimit else {
                throw v.fail("max_record_bytes \(n) is above \(DaemonConfig.maxRecordBytesLimit), the largest record the clients are set up to fetch and write back as a dead letter")
            }
            c.maxRecordBytes = n
        },
        Setting("batch_size", "`10000`", "records per poll") { c, v throws(ConfigError) in c.batchSize = try v.positive("batch_size") },
        Setting("threads", "number of cores (at most the cgroup's CPU limit, rounded up)", "processing threads, each with its own consumer in the group and its own transactional producer `<transactional_id>-<i>` (see *Processing threads*); 1 to 256") { c, v throws(ConfigError) in
            let n = try v.positive("threads")
            guard n <= DaemonConfig.maxThreads else {
                throw v.fail("threads \(n) is above \(DaemonConfig.maxThreads); more threads than cores only adds consumers, producers and rebalances")
            }
            c.threads = n
        },
        Setting("commit_interval", "`100ms`", "a transaction commits this long after its first record (0ms to 1m; see *Transactions*)") { c, v throws(ConfigError) in
            guard let d = DurationSpec(parsing: v.text), d.millis <= 60_000 else {
                throw v.fail("commit_interval '\(v.text)' is not a duration from 0ms to 1m (e.g. 100ms); transactions must commit well within transaction.timeout.ms")
            }
            c.commitInterval = d.millis
        },
        Setting("commit_max_records", "`100000`", "a transaction commits early once it holds this many input records") { c, v throws(ConfigError) in
            c.commitMaxRecords = try v.positive("commit_max_records")
        },
        Setting("max_future", "`1h`", "events further ahead of the wall clock are dead-lettered as `invalid_time` (see *Future times*)") { c, v throws(ConfigError) in
            guard let d = DurationSpec(parsing: v.text), d.millis > 0 else { throw v.fail("max_future '\(v.text)' is not a positive duration like 1h, 15m") }
            c.maxFuture = d.millis
        },
        Setting("stall_timeout", "`2m`", "`/healthz` fails when nothing committed for this long while input waits") { c, v throws(ConfigError) in
            guard let d = DurationSpec(parsing: v.text), d.millis >= 1000 else { throw v.fail("stall_timeout '\(v.text)' is not a duration of at least 1s (e.g. 2m)") }
            c.stallTimeout = d.millis
        },
        Setting("on_offset_reset", "`log`", "a checkpointed input position gone from the broker: `log` (count, log an error, continue) or `fail` (stop)") { c, v throws(ConfigError) in
            c.failOnOffsetReset = try v.oneOf("on_offset_reset", ["log", "fail"]) == "fail"
        },
        Setting("transactional_id", "`segmentd-HOSTNAME`", "stable per instance, unique across instances; the producer's `transaction.timeout.ms` defaults to 10 s (see *Restarts and fencing*)") { c, v throws(ConfigError) in
            guard !v.text.isEmpty else { throw v.fail("transactional_id must not be empty") }
            c.transactionalId = v.text
        },
        Setting("group_instance_id", "`off`", "static group membership: `auto` (the `transactional_id`) or an id stable per instance; a restart within `session.timeout.ms` gets its partitions back without a rebalance, but SIGTERM does not leave the group (see *Restarts and fencing*)") { c, v throws(ConfigError) in
            switch v.text {
            case "", "off": c.groupInstanceIdSetting = nil
            default:
                guard v.text.count <= 249, v.text.allSatisfy({ $0.isASCII && !$0.isWhitespace }) else {
                    throw v.fail("group_instance_id '\(v.text)' must be off, auto, or an id of at most 249 printable ASCII characters")
                }
                c.groupInstanceIdSetting = v.text
            }
        },
        Setting("embedded_partitions", "`8`", "partitions per topic on the embedded broker") { c, v throws(ConfigError) in
            let n = try v.positive("embedded_partitions")
            guard n <= 1024 else { throw v.fail("embedded_partitions must be at most 1024") }
            c.embeddedPartitions = Int32(n)
        },
        Setting("output_mode", "`structured`", "CloudEvents `structured` (the document is the value) or `binary` (`data` is the value, attributes in `ce_` headers)") { c, v throws(ConfigError) in
            c.binaryMode = try v.oneOf("output_mode", ["structured", "binary"]) == "binary"
        },
        Setting("segment_mirror_topic", "off", "also write each transition there as Segment Spec `Audience Exited` / `Audience Entered` track calls") { c, v throws(ConfigError) in
            c.segmentMirrorTopic = v.text.isEmpty || v.text == "off" ? nil : try v.topic()
        },
        Setting("input_adapters", "none", "also accept `sendgrid`, `mailgun`, `postmark` webhook payloads (comma list)") { c, v throws(ConfigError) in
            var set: Set<WebhookAdapters.Provider> = []
            for name in v.text.split(separator: ",").map({ $0.trimmingSpaces() }) where !name.isEmpty && name != "none" {
                guard let p = WebhookAdapters.Provider(rawValue: name) else {
                    throw v.fail("input_adapters: '\(name)' is not one of \(WebhookAdapters.Provider.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                set.insert(p)
            }
            c.adapters = set
        },
        Setting("http_address", "`127.0.0.1:9464`", "operations HTTP server: the live console at `/`, `/metrics`, `/healthz`, `/readyz`, `/contacts`, `/segments`, `/admin/reload` (`off` disables); binding elsewhere is explicit") { c, v throws(ConfigError) in
            if v.text == "off" || v.text.isEmpty { c.httpAddress = nil; return }
            guard let colon = v.text.lastIndex(of: ":"), let port = Int(v.text[v.text.index(after: colon)...]), port >= 0, port < 65536,
                  !v.text[..<colon].isEmpty
            else { throw v.fail("http_address '\(v.text)' is not host:port (e.g. 127.0.0.1:9464) or off") }
            c.httpAddress = v.text
        },
        Setting("http_advertised_address", "`http_address`, with this host's name when it binds all interfaces", "the `host:port` other instances of the group use to reach this one's HTTP server (a `/contacts/{id}` asked of an instance that does not own the contact is forwarded there; see *Queries across instances*); published in the instances topic") { c, v throws(ConfigError) in
            if v.text.isEmpty { c.httpAdvertisedAddressSetting = nil; return }
            guard let colon = v.text.lastIndex(of: ":"), let port = Int(v.text[v.text.index(after: colon)...]), port > 0, port < 65536,
                  !v.text[..<colon].isEmpty, !v.text.contains("/")
            else { throw v.fail("http_advertised_address '\(v.text)' is not host:port (e.g. segmentd-0.segmentd:9464)") }
            c.httpAdvertisedAddressSetting = v.text
        },
        Setting("instances_topic", "`GROUP_ID-instances`", "internal compacted topic where each instance publishes the partitions it owns and its `http_advertised_address` (one partition; see *Queries across instances*)") { c, v throws(ConfigError) in
            c.instancesTopicSetting = v.text.isEmpty ? nil : try v.topic()
        },
        Setting("http_token", "none", "bearer token every HTTP request but the probes must carry (a browser gives it as the password of the console's login prompt)") { c, v in
            c.httpToken = v.text.isEmpty ? nil : v.text
        },
        Setting("http_contact_ids", "`off`", "`on`: the console's latest transitions and `/segments/{group}/{segment}` member listings show contact ids; `off`: no page or listing names a contact it was not asked about") { c, v throws(ConfigError) in
            c.httpContactIds = try v.oneOf("http_contact_ids", ["on", "off"]) == "on"
        },
        Setting("log_format", "`text`", "`text`, or `json` (one object per line)") { c, v throws(ConfigError) in
            c.logJSON = try v.oneOf("log_format", ["text", "json"]) == "json"
        },
        Setting("log_level", "`info`", "`debug` adds per-contact transition lines (contact ids appear only at debug)") { c, v throws(ConfigError) in
            c.logDebug = try v.oneOf("log_level", ["info", "debug"]) == "debug"
        },
    ]

    /// The README's table of settings (`segmentd settings` prints it).
    public static var settingsTable: String {
        var out = "| key (file / `SEGMENTD_KEY` / `--key`) | default | meaning |\n|---|---|---|\n"
        for s in settings { out += "| `\(s.name)` | \(s.defaultText) | \(s.meaning) |\n" }
        out += "| `kafka.PROP`, `consumer.PROP`, `producer.PROP` | | any librdkafka property (`SEGMENTD_KAFKA_SASL_MECHANISM=…`, `--kafka sasl.mechanism=…`, `--consumer …`, `--producer …`), checked by librdkafka at start (a misspelt name gets a \"did you mean\"), except those segmentd sets itself (below) |\n"
        return out
    }

    /// Setting names and meanings, plain text (`segmentd run --help`).
    public static var keys: [(String, String)] {
        settings.map { ($0.name, $0.help) } + [
            ("kafka.PROPERTY", "any librdkafka property for all clients (e.g. kafka.security.protocol)"),
            ("consumer.PROPERTY / producer.PROPERTY", "a librdkafka property for one client"),
        ]
    }

    static let settingsByName: [String: Setting] = Dictionary(uniqueKeysWithValues: settings.map { ($0.name, $0) })
}

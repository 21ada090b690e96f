import SegmentdEngine
import SegmentdKafka
import Yams

/// A configuration value that cannot be used: where it came from and why.
public struct ConfigError: Error, CustomStringConvertible, Sendable {
    /// `file:line:column`, `environment SEGMENTD_X` or `flag --x`.
    public var origin: String
    public var message: String
    public var description: String { "\(origin): \(message)" }

    public init(origin: String, message: String) {
        self.origin = origin
        self.message = message
    }
}

/// How input offsets, outputs and state commit.
public enum ProcessingGuarantee: String, Sendable, CaseIterable {
    /// One Kafka transaction per batch covers transitions, dead letters, changelog records and
    /// the input offsets (send-offsets-to-transaction with the group metadata).
    case exactlyOnce = "exactly_once"
    /// Outputs are flushed, then offsets committed: after a crash a batch may be emitted twice
    /// (with the same deterministic transition ids, so downstream can de-duplicate).
    case atLeastOnce = "at_least_once"
}

/// What the daemon does with an input record whose contact belongs to another partition.
public enum RepartitionMode: String, Sendable, CaseIterable {
    /// Forward it, in the same transaction, to the repartition topic's partition of its
    /// contact (murmur2 of the contact id), where that partition's engine reads it.
    case auto
    /// Trust the producers' keys: process every record on the partition where it arrives.
    case off
}

/// Everything `segmentd run` needs. Built from defaults, then a YAML file, then `SEGMENTD_*`
/// environment variables, then flags: later sources win. Every value is checked where it is
/// read, so a bad one is refused at start with its origin.
public struct DaemonConfig: Sendable {
    /// `bootstrap.servers`; `embedded` (`DaemonConfig.embeddedBrokers`): start the embedded
    /// broker (librdkafka's mock cluster); empty: not configured, refused at start.
    public var brokers = ""
    public var groupId = "segmentd"
    public var inputTopic = "engagement-events"
    public var outputTopic = "segment-transitions"
    public var deadLetterTopic = "segmentd-dead-letters"
    public var changelogTopic = "segmentd-changelog"
    public var repartition = RepartitionMode.auto
    /// The internal topic records are forwarded to (`repartition_topic`); nil: the default name.
    public var repartitionTopicSetting: String?
    /// `<group_id>-<input_topic>-repartition` unless set: one per group and input, like Kafka
    /// Streams' `<application.id>-…-repartition`, so two groups reading one input never share it.
    public var repartitionTopic: String { repartitionTopicSetting ?? "\(groupId)-\(inputTopic)-repartition" }
    /// Model file; nil: the built-in default model.
    public var modelPath: String?
    public var guarantee = ProcessingGuarantee.exactlyOnce
    public var lateness: Millis = 0
    /// How long after a contact's newest event an event id it applied is still caught as a
    /// duplicate (`SegmentEngine.duplicateHorizons`).
    public var duplicateHorizon: Millis = SegmentEngine.defaultDuplicateHorizon
    /// How long a partition must be idle before its watermark follows the wall clock; nil: never.
    public var idleAdvance: Millis? = 10_000
    public var maxRecordBytes = 1 << 20
    /// An event more than this ahead of the wall clock is bad (`invalid_time`) and moves
    /// nothing: one producer with a wrong clock cannot move a partition's time.
    public var maxFuture: Millis = 3_600_000
    /// `/healthz` fails when no transaction committed for this long while input is waiting
    /// (records fetched and not committed, or fetched again after an abort and rewind).
    public var stallTimeout: Millis = 120_000
    /// What an offset reset of a partition with a committed position does: `log` (count it,
    /// log an error, continue from where librdkafka reset to) or `fail` (stop the daemon).
    public var failOnOffsetReset = false
    /// Records per poll.
    public var batchSize = 10_000
    /// Processing threads of the instance, each with its own consumer in the group, its own
    /// transactional producer and the engines of its partitions (`forThread`); default: the
    /// number of cores.
    public var threads = DaemonConfig.cores()
    /// How long a transaction stays open after its first record before it commits (Kafka
    /// Streams' `commit.interval.ms` under exactly-once is 100 ms too).
    public var commitInterval: Millis = 100
    /// A transaction commits early once it holds this many input records.
    public var commitMaxRecords = 100_000
    public var transactionalId = "segmentd-\(DaemonConfig.hostname())"
    /// `group_instance_id` as set: nil (off), `auto` or an id.
    public var groupInstanceIdSetting: String?
    /// Static group membership (`group.instance.id`): nil, dynamic membership; `auto` is the
    /// transactional id (stable per instance, unique across instances, as this must be).
    public var groupInstanceId: String? { groupInstanceIdSetting == "auto" ? transactionalId : groupInstanceIdSetting }
    /// Partitions of each topic the embedded broker creates.
    public var embeddedPartitions: Int32 = 8
    /// CloudEvents structured mode (the document is the value) or binary mode (`data` is the
    /// value, the attributes are `ce_` headers).
    public var binaryMode = false
    /// When set, every transition is also written there as Segment Spec track calls
    /// (`Audience Entered` / `Audience Exited`).
    public var segmentMirrorTopic: String?
    /// Email providers' webhook shapes accepted on the input besides the contract's two.
    public var adapters: Set<WebhookAdapters.Provider> = []
    /// Log lines as text (default) or JSON lines; `debug` adds per-contact lines.
    public var logJSON = false
    public var logDebug = false
    /// The HTTP server (metrics, health, queries, admin): `host:port`, nil: off.
    public var httpAddress: String? = "127.0.0.1:9464"
    /// `http_advertised_address` as set; nil: derived from `httpAddress` (`advertisedHTTPAddress`).
    public var httpAdvertisedAddressSetting: String?
    /// `instances_topic` as set; nil: the default name.
    public var instancesTopicSetting: String?
    /// Where each instance of the group publishes the partitions it owns and its advertised HTTP
    /// address (`InstanceDirectory`): `<group_id>-instances` unless set.
    public var instancesTopic: String { instancesTopicSetting ?? "\(groupId)-instances" }
    /// When set, every HTTP request but the probes needs `Authorization: Bearer <token>`.
    public var httpToken: String?
    /// Whether the HTTP server may show contact ids it was not asked about: the console's
    /// latest transitions, `/segments/{group}/{segment}` member listings. Off by default.
    public var httpContactIds = false
    /// librdkafka properties for every client (SASL, TLS, …).
    public var kafka: [String: String] = [:]
    /// librdkafka properties for the consumer only / the producer only (win over `kafka`).
    public var consumer: [String: String] = [:]
    public var producer: [String: String] = [:]

    public init() {}

    /// Sets one key from a string, checking it. `origin` says where the value came from.
    public mutating func set(_ key: String, _ value: String, origin: String) throws(ConfigError) {
        func fail(_ m: String) -> ConfigError { ConfigError(origin: origin, message: m) }
        if key.hasPrefix("kafka.") || key.hasPrefix("consumer.") || key.hasPrefix("producer.") {
            let dot = key.firstIndex(of: ".")!
            let prop = String(key[key.index(after: dot)...])
            guard !prop.isEmpty else { throw fail("'\(key)' names no librdkafka property") }
            if let instead = DaemonConfig.ownedProperties[prop] { throw fail("'\(key)' cannot be set as a librdkafka property: \(instead)") }
            if let refusal = KafkaConfig.refusal(of: prop, value: value) {
                throw fail("'\(key)': \(refusal.reason)" + (refusal.isUnknown ? Suggestions.hint(for: prop, among: KafkaConfig.propertyNames) : ""))
            }
            switch key[..<dot] {
            case "kafka": kafka[prop] = value
            case "consumer": consumer[prop] = value
            default: producer[prop] = value
            }
            return
        }
        guard let setting = DaemonConfig.settingsByName[key] else {
            let known = DaemonConfig.settings.map(\.name)
            let hint = Suggestions.hint(for: key, among: known)
            throw fail("unknown setting '\(key)'" + (hint.isEmpty ? " (known: \(known.joined(separator: ", ")), kafka.*, consumer.*, producer.*)" : hint))
        }
        try setting.apply(&self, SettingValue(text: value, origin: origin))
    }

    /// The `brokers` value that starts the embedded broker.
    public static let embeddedBrokers = "embedded"

    /// Whether `brokers` asks for the embedded broker.
    public var usesEmbeddedBroker: Bool { brokers == DaemonConfig.embeddedBrokers }

    /// "use the setting NAME (--flag, SEGMENTD_NAME)", from the setting's declaration.
    static func useSetting(_ name: String) -> String {
        let s = settingsByName[name]!
        return "use the setting \(name) (\(s.flag), \(s.environmentVariable))"
    }

    /// librdkafka properties segmentd sets itself, refused as pass-through properties (a value
    /// given there would otherwise be overwritten without a word), with what to use instead.
    public static let ownedProperties: [String: String] = [
        "bootstrap.servers": useSetting("brokers"),
        "metadata.broker.list": useSetting("brokers"),
        "group.id": useSetting("group_id"),
        "transactional.id": useSetting("transactional_id"),
        "enable.idempotence": "segmentd's producer is always idempotent; processing_guarantee chooses transactions or not",
        "acks": "segmentd's producer always uses acks=all (idempotence and transactions need it)",
    ]

    /// Applies a YAML configuration file: a mapping of the keys above; `kafka`, `consumer`
    /// and `producer` are nested mappings of librdkafka properties.
    public mutating func apply(yaml: String, file: String) throws(ConfigError) {
        let root: Node
        do {
            guard let n = try Yams.compose(yaml: yaml) else { return }
            root = n
        } catch let e as YamlError {
            let m = ModelError.fromYamsError(e, file: file)
            throw ConfigError(origin: "\(file):\(m.line):\(m.column)", message: m.message)
        } catch {
            throw ConfigError(origin: file, message: "\(error)")
        }
        func origin(_ n: Node) -> String { "\(file):\(n.mark?.line ?? 1):\(n.mark?.column ?? 1)" }
        guard case let .mapping(m) = root else { throw ConfigError(origin: origin(root), message: "the configuration must be a mapping of settings") }
        for (k, v) in m {
            guard let key = k.string else { throw ConfigError(origin: origin(k), message: "a setting name must be a string") }
            if key == "kafka" || key == "consumer" || key == "producer" {
                guard case let .mapping(props) = v else { throw ConfigError(origin: origin(v), message: "'\(key)' must be a mapping of librdkafka properties") }
                for (pk, pv) in props {
                    guard let p = pk.string, case .scalar = pv, let s = pv.string else {
                        throw ConfigError(origin: origin(pv), message: "'\(key)' properties must be name: value")
                    }
                    try set("\(key).\(p)", s, origin: origin(pv))
                }
                continue
            }
            guard case .scalar = v, let s = v.string else { throw ConfigError(origin: origin(v), message: "'\(key)' must be a single value") }
            try set(key, s, origin: origin(v))
        }
    }

    /// Applies `SEGMENTD_<KEY>` variables; `SEGMENTD_KAFKA_SASL_MECHANISM=PLAIN` sets the
    /// librdkafka property `sasl.mechanism` (underscores become dots after the prefix).
    public mutating func apply(environment env: [String: String]) throws(ConfigError) {
        for (name, value) in env.sorted(by: { $0.key < $1.key }) where name.hasPrefix("SEGMENTD_") {
            let rest = String(name.dropFirst("SEGMENTD_".count)).lowercased()
            var key = rest
            for prefix in ["kafka_", "consumer_", "producer_"] where rest.hasPrefix(prefix) {
                key = String(prefix.dropLast()) + "." + String(rest.dropFirst(prefix.count).map { $0 == "_" ? "." : $0 })
            }
            if ["conformance_dir", "conformance_out"].contains(rest) { continue }
            try set(key, value, origin: "environment \(name)")
        }
    }

    /// librdkafka properties for the group consumer.
    public func consumerProperties() -> [String: String] {
        var p = kafka.merging(consumer) { $1 }
        p["bootstrap.servers"] = brokers
        p["group.id"] = groupId
        p["isolation.level"] = p["isolation.level"] ?? "read_committed"
        p["auto.offset.reset"] = p["auto.offset.reset"] ?? "earliest"
        if let groupInstanceId { p["group.instance.id"] = groupInstanceId }
        return p
    }

    /// librdkafka properties for the repartition topic's reader: a consumer that is assigned
    /// partitions by the daemon (never joins the group, never commits), read_committed so a
    /// forwarded record counts only once its transaction committed.
    public func repartitionReaderProperties() -> [String: String] {
        var p = kafka.merging(consumer) { $1 }
        p["bootstrap.servers"] = brokers
        p["group.id"] = "\(groupId)-repartition-reader"
        p["isolation.level"] = p["isolation.level"] ?? "read_committed"
        p["auto.offset.reset"] = "earliest"
        return p
    }

    /// The largest `max_record_bytes`: librdkafka's consumer refuses responses above
    /// `receive.message.max.bytes` (100 MB by default), and dead letters must fit the producer.
    public static let maxRecordBytesLimit = 64 << 20

    /// Room a dead letter needs beyond the record's value: its key (Kafka keys are usually
    /// small; a larger one is truncated with the value, see `Daemon`), the `error.*` headers
    /// and the record batch framing.
    public static let deadLetterHeadroom = 64 << 10

    /// The producer's `message.max.bytes`: large enough for a dead letter of the largest record
    /// the daemon accepts (`max_record_bytes` plus headroom), never below librdkafka's default.
    public var producerMessageMaxBytes: Int { max(1_000_000, maxRecordBytes + DaemonConfig.deadLetterHeadroom) }

    /// Checks that settings which depend on each other agree (called at start, after every
    /// source was applied): a producer limit set by hand below what a dead letter of
    /// `max_record_bytes` needs would make such records unwritable.
    public func checkConsistency() throws(ConfigError) {
        if brokers.isEmpty {
            throw ConfigError(origin: "brokers", message: "no brokers configured: set brokers (--brokers host:port,…, SEGMENTD_BROKERS or brokers: in --config), or brokers: embedded to try segmentd on an in-memory broker")
        }
        let props = kafka.merging(producer) { $1 }
        for key in ["message.max.bytes", "batch.size"] {
            if let v = props[key] {
                let origin = producer[key] != nil ? "producer.\(key)" : "kafka.\(key)"
                guard let n = Int(v) else { throw ConfigError(origin: origin, message: "'\(v)' is not a whole number") }
                if n < producerMessageMaxBytes {
                    throw ConfigError(origin: origin, message: "\(n) is below \(producerMessageMaxBytes) bytes, what a dead letter of a max_record_bytes (\(maxRecordBytes)) record needs with its key and headers; raise it or lower max_record_bytes")
                }
            }
        }
        if let v = props["batch.num.messages"], let n = Int(v), n < 1 {
            throw ConfigError(origin: "producer.batch.num.messages", message: "must be at least 1")
        }
        if guarantee == .exactlyOnce && commitInterval * 2 > Millis(transactionTimeoutMs) {
            throw ConfigError(origin: "commit_interval", message: "\(DurationSpec(millis: commitInterval)) is more than half of transaction.timeout.ms (\(transactionTimeoutMs) ms): a transaction must commit well before the broker aborts it")
        }
    }

    public static let defaultTransactionTimeoutMs = 10_000

    /// The producer's `transaction.timeout.ms`.
    public var transactionTimeoutMs: Int {
        Int(kafka.merging(producer) { $1 }["transaction.timeout.ms"] ?? "") ?? DaemonConfig.defaultTransactionTimeoutMs
    }

    /// librdkafka properties for the producer (transactional under exactly_once).
    public func producerProperties() -> [String: String] {
        var p = kafka.merging(producer) { $1 }
        // A dead letter carries the record unchanged: the producer must accept the largest one.
        p["message.max.bytes"] = p["message.max.bytes"] ?? String(producerMessageMaxBytes)
        p["batch.size"] = p["batch.size"] ?? String(producerMessageMaxBytes)
        p["bootstrap.servers"] = brokers
        p["enable.idempotence"] = "true"
        p["acks"] = "all"
        p["compression.type"] = p["compression.type"] ?? "lz4"
        p["linger.ms"] = p["linger.ms"] ?? "5"
        // As Java clients do (TCP_NODELAY): a commit's few small requests go out at once.
        p["socket.nagle.disable"] = p["socket.nagle.disable"] ?? "true"
        // Java-compatible key hashing, so transitions land where Kafka Streams would put them.
        p["partitioner"] = p["partitioner"] ?? "murmur2_random"
        if guarantee == .exactlyOnce {
            p["transactional.id"] = transactionalId
            // As Kafka Streams: a killed instance's open transaction (which holds back its
            // changelog partitions' last stable offset) is aborted by the broker within 10 s,
            // not the 60 s default (see the README's *Restarts and fencing*).
            p["transaction.timeout.ms"] = p["transaction.timeout.ms"] ?? String(DaemonConfig.defaultTransactionTimeoutMs)
        }
        return p
    }

    /// The most processing threads an instance runs.
    public static let maxThreads = 256

    /// Online cores, at most the CPU quota of the process's cgroup (a container's CPU limit,
    /// rounded up): the default `threads`.
    public static func cores() -> Int {
        let online = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        return min(online, cgroupCPUQuota() ?? online)
    }

    /// The CPU quota of this process's cgroup in whole CPUs (rounded up), nil when unlimited
    /// or unknown: cgroup v2 `cpu.max` ("quota period" or "max period"), else cgroup v1
    /// `cpu.cfs_quota_us` / `cpu.cfs_period_us` (-1: unlimited).
    static func cgroupCPUQuota() -> Int? {
        func numbers(_ path: String) -> [Double]? {
            guard let text = try? readTextFile(path, limit: 4096) else { return nil }
            return text.split(whereSeparator: { $0 == " " || $0 == "\n" }).map { Double($0) ?? -1 }
        }
        var quota = -1.0, period = 0.0
        if let v2 = numbers("/sys/fs/cgroup/cpu.max"), v2.count == 2 {
            (quota, period) = (v2[0], v2[1])
        } else if let q = numbers("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")?.first, let p = numbers("/sys/fs/cgroup/cpu/cpu.cfs_period_us")?.first {
            (quota, period) = (q, p)
        }
        guard quota > 0, period > 0 else { return nil }
        return max(1, Int((quota / period).rounded(.up)))
    }

    /// The settings of processing thread `i`: its producer's `transactional.id` is
    /// `<transactional_id>-<i>` and, with static membership, its consumer's `group.instance.id`
    /// is `<group_instance_id>-<i>` (`auto`: the thread's transactional id). Both are stable per
    /// instance and thread, so a restarted instance fences its own zombies thread by thread and
    /// gets its members' partitions back.
    public func forThread(_ i: Int) -> DaemonConfig {
        var c = self
        c.transactionalId = "\(transactionalId)-\(i)"
        if let g = groupInstanceIdSetting, g != "auto" { c.groupInstanceIdSetting = "\(g)-\(i)" }
        return c
    }

    /// The address other instances reach this one's HTTP server at: `http_advertised_address`
    /// when set; else `http_address` with this host's name when it binds every interface
    /// (`0.0.0.0`, `::`) and with `boundPort` (the port the server got) when it asks for port 0.
    /// nil when the server is off, or its port is not known yet.
    public func advertisedHTTPAddress(boundPort: Int? = nil) -> String? {
        if let httpAdvertisedAddressSetting { return httpAdvertisedAddressSetting }
        guard let httpAddress, let colon = httpAddress.lastIndex(of: ":"), let configured = Int(httpAddress[httpAddress.index(after: colon)...])
        else { return nil }
        let port = boundPort ?? configured
        guard port > 0 else { return nil }
        var host = String(httpAddress[..<colon])
        if ["0.0.0.0", "::", "[::]", "*"].contains(host) { host = DaemonConfig.hostname() }
        return "\(host):\(port)"
    }

    static func hostname() -> String {
        var buf = [CChar](repeating: 0, count: 256)
        guard gethostname(&buf, 255) == 0 else { return "local" }
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

extension Substring {
    func trimmingSpaces() -> String { String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed()) }
}

#if canImport(Glibc)
import Glibc
#endif

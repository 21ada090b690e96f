import CRdKafka

/// librdkafka configuration properties (`bootstrap.servers`, `group.id`, ...), as plain strings.
///
/// Why a value type over `[String: String]` rather than typed fields: librdkafka has hundreds of
/// properties and validates them itself; duplicating them in Swift would drift. What we add is
/// early, precise failure: `makeConf()` reports the offending property by name.
public struct KafkaConfig: Sendable, Equatable, ExpressibleByDictionaryLiteral {
    public var properties: [String: String]

    public init(_ properties: [String: String] = [:]) { self.properties = properties }

    public init(dictionaryLiteral elements: (String, String)...) {
        self.properties = Dictionary(elements, uniquingKeysWith: { _, last in last })
    }

    public subscript(key: String) -> String? {
        get { properties[key] }
        set { properties[key] = newValue }
    }

    /// Returns a copy where `defaults` fill in any property not set explicitly.
    public func withDefaults(_ defaults: [String: String]) -> KafkaConfig {
        KafkaConfig(properties.merging(defaults, uniquingKeysWith: { mine, _ in mine }))
    }

    /// Builds a fresh `rd_kafka_conf_t`. The caller owns it: pass it to `rd_kafka_new` (which
    /// takes ownership on success) or destroy it. Properties are applied in sorted order so a
    /// failure is deterministic.
    func makeConf() throws -> OpaquePointer {
        guard let conf = rd_kafka_conf_new() else {
            throw KafkaError(RD_KAFKA_RESP_ERR__FAIL, context: "rd_kafka_conf_new")
        }
        KafkaLog.install(on: conf)
        var errstr = [CChar](repeating: 0, count: 512)
        for key in properties.keys.sorted() {
            let value = properties[key]!
            let res = rd_kafka_conf_set(conf, key, value, &errstr, errstr.count)
            if res != RD_KAFKA_CONF_OK {
                rd_kafka_conf_destroy(conf)
                let kind = res == RD_KAFKA_CONF_UNKNOWN ? "unknown property" : "invalid value"
                throw KafkaError(code: RD_KAFKA_RESP_ERR__INVALID_ARG.rawValue,
                                 name: "_INVALID_ARG",
                                 message: "\(kind) '\(key)'=\"\(value)\": \(errstrString(errstr))",
                                 context: "config property '\(key)'")
            }
        }
        return conf
    }
}

extension KafkaConfig {
    /// Why librdkafka refuses one property, checked alone (as `makeConf` sets it): nil when it
    /// accepts it. `isUnknown`: librdkafka has no property of that name.
    public static func refusal(of name: String, value: String) -> (isUnknown: Bool, reason: String)? {
        guard let conf = rd_kafka_conf_new() else { return nil }
        defer { rd_kafka_conf_destroy(conf) }
        var errstr = [CChar](repeating: 0, count: 512)
        switch rd_kafka_conf_set(conf, name, value, &errstr, errstr.count) {
        case RD_KAFKA_CONF_OK: return nil
        case RD_KAFKA_CONF_UNKNOWN: return (true, "librdkafka has no property '\(name)'")
        default: return (false, errstrString(errstr))
        }
    }

    /// The names of every librdkafka property (client and topic level), for "did you mean".
    public static var propertyNames: [String] {
        var names: [String] = []
        func collect(_ pairs: UnsafeMutablePointer<UnsafePointer<CChar>?>?, _ count: Int) {
            guard let pairs else { return }
            for i in stride(from: 0, to: count, by: 2) { if let n = pairs[i] { names.append(String(cString: n)) } }
            rd_kafka_conf_dump_free(pairs, count)
        }
        var count = 0
        if let conf = rd_kafka_conf_new() {
            collect(rd_kafka_conf_dump(conf, &count), count)
            rd_kafka_conf_destroy(conf)
        }
        if let topicConf = rd_kafka_topic_conf_new() {
            collect(rd_kafka_topic_conf_dump(topicConf, &count), count)
            rd_kafka_topic_conf_destroy(topicConf)
        }
        return names
    }
}

/// Creates an `rd_kafka_t` from a conf; on failure destroys the conf (librdkafka only takes
/// ownership on success) and throws with librdkafka's errstr.
func makeHandle(_ type: rd_kafka_type_t, conf: OpaquePointer, context: String) throws -> OpaquePointer {
    var errstr = [CChar](repeating: 0, count: 512)
    guard let rk = rd_kafka_new(type, conf, &errstr, errstr.count) else {
        rd_kafka_conf_destroy(conf)
        throw KafkaError(code: RD_KAFKA_RESP_ERR__INVALID_ARG.rawValue, name: "_INVALID_ARG",
                         message: errstrString(errstr), context: context)
    }
    return rk
}

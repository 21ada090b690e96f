import SegmentdKafka

/// segmentd's own version, printed by `segmentd --version` with librdkafka's.
enum SegmentdVersion {
    static let number = "0.3.0"
    static var description: String { "segmentd \(number) (librdkafka \(Librdkafka.version))" }
}

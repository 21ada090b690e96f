/// Kafka's default key partitioner (Java `Utils.murmur2`, librdkafka `murmur2`): where a
/// record keyed by a contact id lands, so a query can say which partition owns a contact.
public enum Murmur2 {
    static func hash(_ data: UnsafeBufferPointer<UInt8>) -> UInt32 {
        let m: UInt32 = 0x5bd1_e995
        let r: UInt32 = 24
        var h: UInt32 = 0x9747_b28c ^ UInt32(truncatingIfNeeded: data.count)
        var i = 0
        while i + 4 <= data.count {
            var k = UInt32(data[i]) | UInt32(data[i + 1]) << 8 | UInt32(data[i + 2]) << 16 | UInt32(data[i + 3]) << 24
            k = k &* m
            k ^= k >> r
            k = k &* m
            h = h &* m
            h ^= k
            i += 4
        }
        let rest = data.count - i
        if rest == 3 { h ^= UInt32(data[i + 2]) << 16 }
        if rest >= 2 { h ^= UInt32(data[i + 1]) << 8 }
        if rest >= 1 { h ^= UInt32(data[i]); h = h &* m }
        h ^= h >> 13
        h = h &* m
        h ^= h >> 15
        return h
    }

    static func hash(_ data: [UInt8]) -> UInt32 { data.withUnsafeBufferPointer { hash($0) } }

    /// The partition of `count` a record keyed `key` lands on.
    public static func partition(_ key: UnsafeBufferPointer<UInt8>, count: Int32) -> Int32 {
        Int32((hash(key) & 0x7fff_ffff) % UInt32(count))
    }

    public static func partition(_ key: [UInt8], count: Int32) -> Int32 {
        key.withUnsafeBufferPointer { partition($0, count: count) }
    }
}

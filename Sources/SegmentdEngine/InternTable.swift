/// Strings as dense ids, compared byte for byte (attribute values and model literals).
struct InternTable {
    private var ids: [[UInt8]: Int64] = [:]
    private var values: [[UInt8]] = []

    mutating func id(_ s: String) -> Int64 { id(bytes: Array(s.utf8)) }

    mutating func id(bytes: [UInt8]) -> Int64 {
        if let i = ids[bytes] { return i }
        let i = Int64(values.count)
        values.append(bytes)
        ids[bytes] = i
        return i
    }

    func existingId(_ s: String) -> Int64? { ids[Array(s.utf8)] }

    func string(_ id: Int64) -> String { String(decoding: values[Int(id)], as: UTF8.self) }

    func bytes(_ id: Int64) -> [UInt8] { values[Int(id)] }
}

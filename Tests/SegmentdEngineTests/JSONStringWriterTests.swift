import Testing
@testable import SegmentdEngine

/// `RawWriter.jsonString` copies eight bytes at a time while none may need escaping: it must
/// write exactly what the one escaper (`JSONWriter.string`) writes, whatever byte sits wherever.
@Suite("JSON strings written eight bytes at a time: the same as the escaper")
struct JSONStringWriterTests {
    static func written(_ bytes: [UInt8]) -> [UInt8] {
        let out = UnsafeMutablePointer<UInt8>.allocate(capacity: 6 * bytes.count + 2)
        defer { out.deallocate() }
        let table: [UInt8] = []
        let starts: [Int32] = [0]
        return table.withUnsafeBufferPointer { t in
            starts.withUnsafeBufferPointer { s in
                var writer = RawWriter(start: out, table: t, starts: s)
                bytes.withUnsafeBufferPointer { writer.jsonString($0) }
                return Array(UnsafeBufferPointer(start: out, count: writer.count))
            }
        }
    }

    static func reference(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        JSONWriter.string(bytes, to: &out)
        return out
    }

    @Test("every byte value at every position of strings of 1 to 24 bytes")
    func everyByteEverywhere() {
        var mismatches = 0
        for length in 1...24 {
            for position in 0..<length {
                for value in 0...255 {
                    var bytes = [UInt8](repeating: UInt8(ascii: "a"), count: length)
                    bytes[position] = UInt8(value)
                    if JSONStringWriterTests.written(bytes) != JSONStringWriterTests.reference(bytes) { mismatches += 1 }
                }
            }
        }
        #expect(mismatches == 0)
    }

    @Test("plain ids, empty and long ones, and non-ASCII ones")
    func ids() {
        for id in ["", "c-1", "c-118264", "contact-0000000001", "ünïcödé-ïd", "a\"b\\c\u{7F}d\u{1}e-0123456789"] {
            let bytes = Array(id.utf8)
            #expect(JSONStringWriterTests.written(bytes) == JSONStringWriterTests.reference(bytes), "\(id)")
        }
    }
}

import Testing
@testable import SegmentdEngine

/// The transition id is part of the output format: the hasher's word-at-a-time digit and hex
/// writing must give exactly the ids of the plain definition (FNV-1a variant fed one byte at a
/// time, `String(v)` digits, then 32 lower-case hex digits).
@Suite struct TransitionIdTests {
    /// The definition, written the plain way.
    struct ReferenceHasher {
        var h1: UInt64 = 0xcbf2_9ce4_8422_2325
        var h2: UInt64 = 0x6c62_272e_07bb_0142

        mutating func feed(_ bytes: [UInt8]) {
            for c in bytes {
                h1 = (h1 ^ UInt64(c)) &* 0x0000_0100_0000_01B3
                h2 = (h2 ^ UInt64(c)) &* 0x0000_0100_0000_01B3 &+ 0x9e37_79b9
            }
            h1 = (h1 ^ UInt64(bytes.count) ^ 0xff) &* 0x0000_0100_0000_01B3
            h2 = (h2 ^ UInt64(bytes.count) ^ 0xfe) &* 0x0000_0100_0000_01B3
        }

        func hex() -> String {
            func mix(_ x0: UInt64) -> UInt64 {
                var x = x0
                x ^= x >> 30; x = x &* 0xbf58_476d_1ce4_e5b9
                x ^= x >> 27; x = x &* 0x94d0_49bb_1331_11eb
                x ^= x >> 31
                return x
            }
            let a = mix(h1), b = mix(h2 ^ a)
            func padded(_ v: UInt64) -> String {
                let digits = String(v, radix: 16)
                return String(repeating: "0", count: 16 - digits.count) + digits
            }
            return padded(a) + padded(b)
        }
    }

    static let numbers: [Int64] = {
        var values: [Int64] = [0, 1, 9, 10, 11, 99, 100, 101, 12_345, 99_999_999, 100_000_000, 100_000_001,
                               1_767_225_635_413, 253_402_300_799_999, 9_999_999_999_999_999, 10_000_000_000_000_000,
                               -1, -10, -1_767_225_635_413, .max, .min]
        var power: Int64 = 1
        for _ in 0..<18 {
            values += [power - 1, power, power + 1, power * 7 + 3]
            power *= 10
        }
        var seed: UInt64 = 0x1234_5678
        for _ in 0..<2000 {
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            values.append(Int64(bitPattern: seed) >> Int64(seed % 50))
        }
        return values
    }()

    @Test func decimalFeedMatchesStringDigits() {
        for v in Self.numbers {
            var fast = CloudEventIdHasher()
            fast.feed(decimal: v)
            var reference = ReferenceHasher()
            reference.feed(Array(String(v).utf8))
            #expect(fast.hex() == reference.hex(), "\(v)")
        }
    }

    @Test func byteFeedMatchesForEveryLength() {
        let bytes: [UInt8] = (0..<40).map { UInt8(($0 * 37 + 11) % 256) }
        for length in 0...bytes.count {
            var fast = CloudEventIdHasher()
            fast.feed(Array(bytes[0..<length]))
            fast.feed([])
            fast.feed(CloudEventIdHasher.noSegment)
            var reference = ReferenceHasher()
            reference.feed(Array(bytes[0..<length]))
            reference.feed([])
            reference.feed([0])
            #expect(fast.hex() == reference.hex(), "\(length)")
        }
    }

    @Test func transitionIdsMatchTheDefinition() {
        let model = Model.defaultModel()
        let encoder = TransitionEncoder(model: model)
        for (k, at) in Self.numbers.filter({ EventTime.isInRange($0) }).prefix(200).enumerated() {
            let group = k % model.groups.count
            let segments = model.groups[group].segments.count
            let from: Int? = k % 3 == 0 ? nil : k % segments
            let to: Int? = k % 5 == 0 ? nil : (k + 1) % segments
            let contact = Array("c-\(k * 7919)".utf8)
            let t = Transition(contactId: contact, group: group, from: from, to: to, at: at, n: k % 4, cause: .time)
            var reference = ReferenceHasher()
            reference.feed(contact)
            reference.feed(Array(model.groups[group].name.utf8))
            reference.feed(from.map { Array(model.groups[group].segments[$0].name.utf8) } ?? [0])
            reference.feed(to.map { Array(model.groups[group].segments[$0].name.utf8) } ?? [0])
            reference.feed(Array(String(at).utf8))
            reference.feed(Array(String(k % 4).utf8))
            #expect(encoder.id(of: t) == reference.hex())
            let document = String(decoding: encoder.encode(t), as: UTF8.self)
            #expect(document.contains(#""id":"\#(reference.hex())""#))
        }
    }
}

/// Lines written in place (`encodeLine` into `OutputBytes`) copy the instant of the line before
/// when theirs is the same: they must be exactly the documents `encode` writes, and nothing may
/// be copied from bytes that were removed.
@Suite struct InPlaceLinesTests {
    @Test("same-instant lines copy the instant; lines after removeAll and across growth are the documents encode writes")
    func sameInstant() {
        let encoder = TransitionEncoder(model: .defaultModel())
        let t: Millis = 1_767_225_635_413, later = t + 86_400_000 + 1
        let transitions = [
            Transition(contactId: Array("c-1".utf8), group: 0, from: nil, to: 2, at: t, n: 0, cause: .event(eventId: "e-1", type: 1)),
            Transition(contactId: Array("c-1".utf8), group: 1, from: nil, to: 2, at: t, n: 0, cause: .event(eventId: "e-1", type: 1)),
            Transition(contactId: Array("c-22".utf8), group: 2, from: 3, to: nil, at: later, n: 0, cause: .time),
            Transition(contactId: Array("c-22".utf8), group: 3, from: nil, to: 0, at: later, n: 1, cause: .time),
            Transition(contactId: Array("c-1".utf8), group: 0, from: 2, to: 1, at: t, n: 1, cause: .time),
        ]
        var expected: [UInt8] = []
        for x in transitions { encoder.encode(x, to: &expected); expected.append(10) }
        var out = OutputBytes(capacity: 64)  // small: it grows between lines
        defer { out.deallocate() }
        for x in transitions { x.withView { encoder.encodeLine($0, to: &out) } }
        #expect(Array(out.bytes) == expected)
        #expect(out.lastInstant.at == t && out.lastInstant.offset >= 0)
        out.removeAll()
        #expect(out.lastInstant.offset == -1, "removed bytes are never copied from")
        for x in transitions.suffix(2) { x.withView { encoder.encodeLine($0, to: &out) } }
        var tail: [UInt8] = []
        for x in transitions.suffix(2) { encoder.encode(x, to: &tail); tail.append(10) }
        #expect(Array(out.bytes) == tail)
    }
}

import Testing
@testable import SegmentdEngine

/// The contact table: every id found at the index it was given, unknown ids not found, probes
/// that run off the table's end continue at its start, and the load stays between a half and
/// three quarters as it grows.
@Suite("Contact table: ids to indices")
struct ContactTableTests {
    static func id(_ n: Int) -> [UInt8] { Array("contact-\(n)".utf8) }

    @Test("every id keeps its index through growth; unknown ids are not found; the load stays in [1/2, 3/4] after a growth")
    func growth() {
        var table = ContactTable(capacity: 4)
        var sizes: Set<Int> = []
        for n in 0..<50_000 {
            let (index, inserted) = table.findOrInsert(ContactTableTests.id(n))
            #expect(index == n && inserted)
            sizes.insert(table.slotCount)
            #expect(ContactTable.holds(table.count, size: table.slotCount))
        }
        #expect(sizes.count > 8)
        for size in sizes { #expect(size % 8 == 0) }
        // Right after each growth the table was twice its count (rounded to a line).
        for n in stride(from: 0, to: 50_000, by: 7) {
            #expect(table.find(ContactTableTests.id(n)) == n)
            #expect(table.findOrInsert(ContactTableTests.id(n)) == (n, false))
        }
        for n in 50_000..<50_500 { #expect(table.find(ContactTableTests.id(n)) == nil) }
        #expect(table.find([]) == nil)
        #expect(table.findOrInsert([]) == (50_000, true))
        #expect(table.find([]) == 50_000)
        #expect(table.idString(12_345) == "contact-12345")
        // Half to three quarters full: 4/3 to 2 slots an id, 8 bytes each.
        let slotsPerId = Double(table.slotCount) / Double(table.count)
        #expect(slotsPerId >= 4.0 / 3.0 && slotsPerId <= 2.0 + 8.0 / Double(table.count))
    }

    /// The hash reads ids a word at a time (two overlapping halves for 4 to 7 bytes, bytes
    /// below that): ids of every length and shape that differ anywhere must get different
    /// hashes, and different tags (the high 32 bits, where a probe starts) but for about the
    /// birthday bound's few.
    @Test("ids of every length and shape get distinct hashes and nearly distinct tags")
    func hashSpread() {
        var ids: Set<[UInt8]> = []
        for n in 0..<60_000 {
            ids.insert(Array("c-\(n)".utf8))          // 3 to 7 bytes
            ids.insert(Array("contact-\(n)".utf8))    // 9 to 13 bytes
            ids.insert(Array(String(n, radix: 36).utf8))  // 1 to 4 bytes
        }
        for n in 0..<20_000 {
            // Ids that differ only in a byte the words overlap on, or only in their length.
            ids.insert(Array("user-0000-\(n)-tail".utf8))
            ids.insert(Array(repeating: UInt8(n % 251), count: n % 40))
        }
        var hashes: Set<UInt64> = []
        var tags: Set<UInt64> = []
        for id in ids {
            let h = id.withUnsafeBufferPointer { ContactTable.hash($0) }
            hashes.insert(h)
            tags.insert(h >> 32)
        }
        #expect(hashes.count == ids.count)
        // About 200k ids over 2^32 tags: a handful of shared tags expected, not hundreds.
        #expect(ids.count - tags.count < 40, "\(ids.count - tags.count) shared tags among \(ids.count) ids")
    }

    @Test("ids whose probe starts in the table's last slots wrap around to its start")
    func wrapAround() {
        var table = ContactTable(capacity: 64)
        let size = table.slotCount
        // Ids whose home is one of the last two slots: more of them than fit there.
        var tail: [[UInt8]] = []
        var n = 0
        while tail.count < 6 {
            let id = ContactTableTests.id(n)
            let home = id.withUnsafeBufferPointer { ContactTable.home(ContactTable.hash($0), size: size) }
            if home >= size - 2 { tail.append(id) }
            n += 1
        }
        for (k, id) in tail.enumerated() { #expect(table.findOrInsert(id) == (k, true)) }
        #expect(table.slotCount == size)
        for (k, id) in tail.enumerated() { #expect(table.find(id) == k) }
        // A lookup of an absent id that also starts there ends at the first free slot.
        var absent = n
        while true {
            let id = ContactTableTests.id(absent)
            if id.withUnsafeBufferPointer({ ContactTable.home(ContactTable.hash($0), size: size) }) == size - 1 {
                #expect(table.find(id) == nil)
                break
            }
            absent += 1
        }
        // reserve grows the table once, and every id is still found.
        table.reserve(10_000)
        #expect(ContactTable.holds(10_001, size: table.slotCount))
        let reserved = table.slotCount
        for (k, id) in tail.enumerated() { #expect(table.find(id) == k) }
        for m in 0..<9_000 { _ = table.findOrInsert(ContactTableTests.id(1_000_000 + m)) }
        #expect(table.slotCount == reserved)
    }

    @Test("the probe's start covers the whole table for any size, in order of the hash's high bits (the tag)")
    func homeCoversTheTable() {
        for size in [8, 24, 1000, 1_416_896] {
            #expect(ContactTable.home(0, size: size) == 0)
            #expect(ContactTable.home(0xFFFF_FFFF_0000_0000, size: size) == size - 1)
            #expect(ContactTable.home(0xFFFF_FFFF, size: size) == 0)
            // The smallest tag that starts at slot s, for every s of the small sizes.
            if size <= 1000 {
                for slot in 0..<size {
                    let tag = ((UInt64(slot) << 32) + UInt64(size) - 1) / UInt64(size)
                    #expect(ContactTable.home(tag << 32, size: size) == slot)
                    #expect(ContactTable.home(tag: UInt32(tag), size: size) == slot)
                    if tag > 0 { #expect(ContactTable.home((tag - 1) << 32, size: size) == slot - 1) }
                }
            }
        }
    }
}

import Testing
@testable import SegmentdEngine

/// The timer wheel against the plainest model of what it must do: a dictionary of timers,
/// whose earliest (instant, then contact) at or before a limit is the one due. The dictionary is
/// also the timers' owner, as the engine's rows are: the wheel is told what a timer was when it
/// moves, and asks what a contact's timer is.
@Suite("Timer wheel: the earliest due timer, in (instant, contact) order")
struct TimerWheelTests {
    static let day: Int64 = 86_400_000

    /// The reference: the earliest timer at or before `limit`.
    static func due(_ timers: [Int32: Int64], atOrBefore limit: Int64) -> TimerWheel.Entry? {
        var best: TimerWheel.Entry? = nil
        for (contact, time) in timers where time <= limit {
            if let b = best, b.time < time || (b.time == time && b.contact < contact) { continue }
            best = TimerWheel.Entry(time: time, contact: contact)
        }
        return best
    }

    /// Runs `steps` random operations with timers drawn by `draw(now)`, where `now` is a
    /// watermark moving forward as a stream's would; after each, the wheel and the reference
    /// must agree on the due timer, and firing moves it on as the engine does.
    func run(seed: UInt64, contacts: Int, steps: Int, draw: (inout SplitMix, Int64) -> Int64) {
        var gen = SplitMix(state: seed)
        var wheel = TimerWheel()
        defer { wheel.deallocate() }
        var reference: [Int32: Int64] = [:]
        for _ in 0..<contacts { wheel.addContact() }
        var now: Int64 = 1_767_225_600_000
        for _ in 0..<steps {
            let contact = Int32(gen.below(contacts))
            switch gen.below(10) {
            case 0:
                if let old = reference[contact] { wheel.remove(contact: contact, from: old) }
                reference[contact] = nil
            case 1:
                now += Int64(gen.below(Int(2 * TimerWheelTests.day)))
            default:
                let time = draw(&gen, now)
                if reference[contact] != time { wheel.set(contact: contact, from: reference[contact], to: time) }
                reference[contact] = time
            }
            #expect(wheel.count == reference.count)
            // Fire what is due, as `advanceWatermark` does: the due contact's timer moves
            // later, or goes.
            var fired = 0
            while true {
                let expected = TimerWheelTests.due(reference, atOrBefore: now)
                let got = wheel.first(atOrBefore: now) { reference[$0] }
                #expect(got?.time == expected?.time && got?.contact == expected?.contact,
                        "seed \(seed): due \(String(describing: got)) where \(String(describing: expected)) is")
                guard let expected else { break }
                guard got?.contact == expected.contact else { return }
                if gen.below(4) == 0 {
                    wheel.remove(contact: expected.contact, from: expected.time)
                    reference[expected.contact] = nil
                } else {
                    let later = now + 1 + Int64(gen.below(Int(90 * TimerWheelTests.day)))
                    wheel.set(contact: expected.contact, from: expected.time, to: later)
                    reference[expected.contact] = later
                }
                fired += 1
                if fired > 10_000 { Issue.record("firing does not end"); return }
            }
        }
    }

    @Test("timers of a stream's windows: days to months ahead, some already due", arguments: [1, 2, 3] as [UInt64])
    func windows(seed: UInt64) {
        run(seed: seed, contacts: 200, steps: 20_000) { gen, now in
            switch gen.below(4) {
            case 0: return now - Int64(gen.below(Int(3 * TimerWheelTests.day)))  // already due
            case 1: return now + Int64(gen.below(1_000_000))                      // within a bucket or two
            default: return now + Int64(gen.below(Int(60 * TimerWheelTests.day)))
            }
        }
    }

    @Test("timers beyond the wheel (years ahead), at equal instants, and far in the past", arguments: [4, 5] as [UInt64])
    func farAndTied(seed: UInt64) {
        run(seed: seed, contacts: 50, steps: 20_000) { gen, now in
            switch gen.below(5) {
            case 0: return now + Int64(gen.below(3)) * 400 * TimerWheelTests.day        // beyond the wheel's 199 days
            case 1: return now + 7 * TimerWheelTests.day                                // many timers at one instant
            case 2: return -62_135_596_800_000 + Int64(gen.below(1000))                 // the year 0001
            case 3: return 253_402_300_799_999 - Int64(gen.below(1000))                 // the end of the year 9999
            default: return now + Int64(gen.below(Int(TimerWheelTests.day)))
            }
        }
    }

    @Test("far timers come due while the wheel holds nearer ones", arguments: [6, 7] as [UInt64])
    func farComeDue(seed: UInt64) {
        // Many contacts, each touched a few times: a timer set hundreds of days ahead
        // survives until the watermark reaches it.
        run(seed: seed, contacts: 3_000, steps: 30_000) { gen, now in
            gen.below(2) == 0 ? now + Int64(200 + gen.below(300)) * TimerWheelTests.day : now + Int64(gen.below(Int(30 * TimerWheelTests.day)))
        }
    }

    @Test("a timer moved within its bucket, into the past, and out to the far heap and back")
    func moves() {
        var wheel = TimerWheel()
        defer { wheel.deallocate() }
        var timers: [Int32: Int64] = [:]
        func set(_ contact: Int32, _ time: Int64) {
            wheel.set(contact: contact, from: timers[contact], to: time)
            timers[contact] = time
        }
        func remove(_ contact: Int32) {
            wheel.remove(contact: contact, from: timers[contact]!)
            timers[contact] = nil
        }
        func first(atOrBefore limit: Int64) -> TimerWheel.Entry? { wheel.first(atOrBefore: limit) { timers[$0] } }
        for _ in 0..<3 { wheel.addContact() }
        let t: Int64 = 1_767_225_600_000
        set(0, t + 10)
        set(1, t + 5)
        set(1, t + 20)        // same bucket
        set(2, t + 1_000 * TimerWheelTests.day)
        #expect(first(atOrBefore: t)?.contact == nil)
        #expect(first(atOrBefore: t + 10)?.contact == 0)
        set(0, t - TimerWheelTests.day)  // into the past
        #expect(first(atOrBefore: t)?.contact == 0)
        set(0, t + 2_000 * TimerWheelTests.day)
        set(2, t + 15)        // back from far
        #expect(first(atOrBefore: t + 1_000_000)?.contact == 2)
        remove(2)
        #expect(first(atOrBefore: t + 1_000_000)?.contact == 1)
        remove(1)
        #expect(first(atOrBefore: t + 1_999 * TimerWheelTests.day) == nil)
        #expect(first(atOrBefore: t + 2_000 * TimerWheelTests.day)?.contact == 0)
        #expect(wheel.count == 1)
    }

    @Test("a timer that leaves a due instant and comes back fires once")
    func returnsToDueInstant() {
        var wheel = TimerWheel()
        defer { wheel.deallocate() }
        var timers: [Int32: Int64] = [:]
        for _ in 0..<2 { wheel.addContact() }
        let t: Int64 = 1_767_225_600_000
        wheel.set(contact: 0, from: nil, to: t); timers[0] = t
        wheel.set(contact: 1, from: nil, to: t + 1); timers[1] = t + 1
        // The bucket is reached: both are near now.
        #expect(wheel.first(atOrBefore: t) { timers[$0] }?.contact == 0)
        // Away into the wheel and back to the same instant, which is before the horizon: two
        // entries for one timer.
        wheel.set(contact: 0, from: t, to: t + 30 * TimerWheelTests.day); timers[0] = t + 30 * TimerWheelTests.day
        wheel.set(contact: 0, from: timers[0], to: t); timers[0] = t
        var fired: [Int32] = []
        while let due = wheel.first(atOrBefore: t + 1, current: { timers[$0] }) {
            fired.append(due.contact)
            wheel.remove(contact: due.contact, from: due.time)
            timers[due.contact] = nil
        }
        #expect(fired == [0, 1])
        #expect(wheel.count == 0)
    }
}

/// The rows the wheel's owner keeps timers in: they never move while the store grows, and a
/// copy of the store (as the engine hands the wheel) reads the same rows.
@Suite("Row store: rows stay where they are as chunks are added")
struct RowStoreTests {
    @Test("40,000 rows over 20 chunks, through more than one growth of the chunk table")
    func rowsStayPut() {
        var store = RowStore(stride: 3)
        defer { store.deallocate() }
        var first: [Row] = []
        for n in 0..<40_000 {
            let index = store.append([Int64(n), -Int64(n), 7])
            #expect(index == n)
            if n % 2048 == 0 { first.append(store.row(n)) }
        }
        let copy = store
        for n in stride(from: 0, to: 40_000, by: 997) {
            #expect(copy.row(n)[0] == Int64(n) && copy.row(n)[1] == -Int64(n) && copy.row(n)[2] == 7)
        }
        for (k, row) in first.enumerated() { #expect(store.row(k * 2048) == row) }
        #expect(store.count == 40_000)
    }
}

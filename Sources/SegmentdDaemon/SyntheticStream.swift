import SegmentdEngine

/// A synthetic B2B engagement stream for the demo and the end-to-end tests: subscribes, opens
/// (some machine opens), clicks (some on case studies), pricing and docs visits, downloads,
/// demo forms, meetings, unsubscribes, bounces, CRM stage and trait changes, in both input
/// shapes, with a few late, duplicate and malformed records. Deterministic for a seed.
public struct SyntheticStream: Sendable {
    public var contacts: Int
    public var start: Millis
    /// Mean event-time step between consecutive records.
    public var step: Millis
    public var badFraction: Double
    private var state: UInt64
    private var i = 0
    private var lastId = ""

    public init(contacts: Int, start: Millis, step: Millis, seed: UInt64 = 7, badFraction: Double = 0.01) {
        self.contacts = contacts
        self.start = start
        self.step = step
        self.state = seed
        self.badFraction = badFraction
    }

    private mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    private mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }

    /// The next record: its key (the contact id, or nil for a malformed one) and value.
    public mutating func nextRecord() -> (key: [UInt8]?, value: [UInt8]) {
        i += 1
        var ts = start + Millis(i) * step + Millis(below(Int(max(step, 1))))
        if below(100) < 3 { ts -= Millis(below(3 * 86_400_000)) }  // late
        let c = below(100) < 70 ? below(max(1, contacts / 4)) : below(contacts)
        let contact = "c-\(c)"
        if Double(below(10_000)) < badFraction * 10_000 {
            let bad = [#"{"contact_id": "\#(contact)", "type": "page_viewed", "ts": \#(ts)}"#,
                       #"{"contact_id": "\#(contact)", "type": "email_open", "ts": "yesterday"}"#,
                       #"{"contact_id": "\#(contact)", "type": "email_open""#]
            return (nil, Array(bad[below(bad.count)].utf8))
        }
        let id = below(100) < 2 && !lastId.isEmpty ? lastId : "e-\(i)"
        lastId = id
        let r = below(1000)
        let t = EventTime.format(ts)
        let line: String
        switch r {
        case 0..<380: line = #"{"event_id":"\#(id)","contact_id":"\#(contact)","type":"email_open","ts":\#(ts)\#(r < 40 ? #","props":{"machine_open":true}"# : "")}"#
        case 380..<470: line = #"{"event_id":"\#(id)","contact_id":"\#(contact)","type":"email_click","ts":\#(ts),"props":{"url":"https://example.com/\#(r < 410 ? "case-studies/acme" : "blog")"}}"#
        case 470..<490: line = #"{"event_id":"\#(id)","contact_id":"\#(contact)","type":"email_reply","ts":\#(ts)}"#
        case 490..<700: line = #"{"type":"page","userId":"\#(contact)","messageId":"\#(id)","timestamp":"\#(t)","properties":{"url":"https://example.com/\#(r < 560 ? "pricing" : "docs")?utm=x"}}"#
        case 700..<760: line = #"{"event_id":"\#(id)","contact_id":"\#(contact)","type":"resource_download","ts":\#(ts)}"#
        case 760..<790: line = #"{"type":"track","event":"Form Submitted","userId":"\#(contact)","messageId":"\#(id)","timestamp":"\#(t)","properties":{"form_id":"\#(r < 770 ? "demo" : "newsletter")"}}"#
        case 790..<800: line = #"{"event_id":"\#(id)","contact_id":"\#(contact)","type":"meeting_booked","ts":\#(ts)}"#
        case 800..<900: line = #"{"type":"track","event":"Signed Up","userId":"\#(contact)","messageId":"\#(id)","timestamp":"\#(t)"}"#
        case 900..<915: line = #"{"event_id":"\#(id)","contact_id":"\#(contact)","type":"unsubscribed","ts":\#(ts)}"#
        case 915..<925: line = #"{"event_id":"\#(id)","contact_id":"\#(contact)","type":"bounced","ts":\#(ts),"props":{"kind":"\#(r < 920 ? "hard" : "soft")"}}"#
        case 925..<960: line = #"{"event_id":"\#(id)","contact_id":"\#(contact)","type":"crm_stage","ts":\#(ts),"props":{"stage":"\#(["lead", "prospect", "opportunity", "customer"][r % 4])"}}"#
        case 960..<970: line = #"{"type":"track","event":"Email Delivered","userId":"\#(contact)","messageId":"\#(id)","timestamp":"\#(t)"}"#
        default: line = #"{"type":"identify","userId":"\#(contact)","messageId":"\#(id)","timestamp":"\#(t)","traits":{"industry":"\#(["SaaS", "Retail", "software"][r % 3])","employees":\#(r % 7 * 150),"country":"\#(["us", "de", "br"][r % 3])"}}"#
        }
        return (Array(contact.utf8), Array(line.utf8))
    }
}

import Testing
@testable import SegmentdEngine

/// Sample payloads as the providers' webhook documentation shows them.
@Suite("Webhook adapters: SendGrid, Mailgun, Postmark")
struct WebhookAdapterTests {
    static let sendgrid = #"[{"email":"example@test.com","timestamp":1513299569,"smtp-id":"<14c5d75ce93.dfd.64b469@ismtpd-555>","event":"open","sg_event_id":"sg_event_id","sg_message_id":"sg_message_id","useragent":"Mozilla/4.0","ip":"255.255.255.255","sg_machine_open":true},{"email":"example@test.com","timestamp":1513299570,"event":"click","sg_event_id":"c1","sg_message_id":"m","url":"https://example.com/case-study"},{"email":"example@test.com","timestamp":1513299571,"event":"delivered","sg_event_id":"d1","sg_message_id":"m","response":"250 OK"},{"email":"example@test.com","timestamp":1513299572,"event":"bounce","sg_event_id":"b1","sg_message_id":"m","reason":"500 unknown recipient","status":"5.0.0","type":"bounce"}]"#
    static let mailgun = #"{"signature":{"timestamp":"1529006854","token":"a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0","signature":"d2271d12299f6592d9d44cd9d250f0704e4674c30d79d07c47a66f95ce71cf55"},"event-data":{"event":"failed","severity":"temporary","timestamp":1529006854.329574,"id":"DACSsAdVSeGpLid7TN03WA","recipient":"alice@example.com","user-variables":{"contact_id":"c-77"}}}"#
    static let postmarkOpen = #"{"RecordType":"Open","MessageStream":"outbound","FirstOpen":true,"Client":{"Name":"Chrome"},"OS":{"Name":"OS X"},"Platform":"WebMail","UserAgent":"Mozilla/5.0","ReadSeconds":5,"Geo":{},"MessageID":"00000000-0000-0000-0000-000000000000","Metadata":{"a_key":"a_value"},"ReceivedAt":"2019-11-05T16:33:54.9070259Z","Tag":"welcome-email","Recipient":"john@example.com"}"#
    static let postmarkBounce = #"{"RecordType":"Bounce","ID":4323372036854775807,"Type":"HardBounce","TypeCode":1,"Name":"Hard bounce","MessageID":"883953f4-6105-42a2-a16a-77a8eac79483","Email":"jane@example.com","BouncedAt":"2019-11-05T16:33:54.9070259Z"}"#

    let all = WebhookAdapters(Set(WebhookAdapters.Provider.allCases))

    func translate(_ s: String) -> [String] {
        let b = Array(s.utf8)
        guard case let .records(rs, _) = b.withUnsafeBufferPointer({ all.translate($0) }) else { return ["pass"] }
        return rs.map { String(decoding: $0, as: UTF8.self) }
    }

    @Test("SendGrid: a batch array is many events; machine opens, clicks, bounces map; delivered is dropped")
    func sendgridBatch() {
        #expect(translate(Self.sendgrid) == [
            #"{"type":"email_open","contact_id":"example@test.com","event_id":"sg_event_id","ts":1513299569000,"props":{"machine_open":true}}"#,
            #"{"type":"email_click","contact_id":"example@test.com","event_id":"c1","ts":1513299570000,"props":{"url":"https://example.com/case-study"}}"#,
            #"{"type":"bounced","contact_id":"example@test.com","event_id":"b1","ts":1513299572000,"props":{"kind":"hard"}}"#,
        ])
    }

    @Test("Mailgun: event-data with user variables; a temporary failure is a soft bounce")
    func mailgun() {
        #expect(translate(Self.mailgun) == [#"{"type":"bounced","contact_id":"c-77","event_id":"DACSsAdVSeGpLid7TN03WA","ts":1529006854329,"props":{"kind":"soft"}}"#])
    }

    @Test("Postmark: opens and hard bounces, with RFC 3339 times")
    func postmark() {
        #expect(translate(Self.postmarkOpen) == [#"{"type":"email_open","contact_id":"john@example.com","event_id":"00000000-0000-0000-0000-000000000000:Open:2019-11-05T16:33:54.9070259Z","ts":1572971634907}"#])
        #expect(translate(Self.postmarkBounce) == [#"{"type":"bounced","contact_id":"jane@example.com","event_id":"883953f4-6105-42a2-a16a-77a8eac79483:Bounce:2019-11-05T16:33:54.9070259Z","ts":1572971634907,"props":{"kind":"hard"}}"#])
    }

    @Test("through the pipeline: applied with adapters on; without them a batch array is a bad record")
    func pipeline() {
        let on = Pipeline(model: .defaultModel())
        on.adapters = all
        #expect(on.process(Array(Self.sendgrid.utf8)) == .applied)
        let ts = on.engine.takeTransitions()
        #expect(ts.contains { $0.group == 0 && $0.to == 0 })  // the hard bounce suppresses
        #expect(on.engine.stats.eventsApplied == 3)
        let off = Pipeline(model: .defaultModel())
        guard case .bad(let e) = off.process(Array(Self.sendgrid.utf8)) else { Issue.record("expected bad"); return }
        #expect(e.reason == .notAnObject)
        // Native records pass through the adapters untouched.
        #expect(on.process(Array(#"{"contact_id":"c","type":"email_open","ts":1}"#.utf8)) == .applied)
    }

    @Test("a provider time beyond Int64 milliseconds is invalid_time, never a trap (fuzz regressions)")
    func hugeTimestamps() {
        #expect(translate(#"[{"timestamp":9233720854775807,"event":"","sg_event_id":""}]"#) == [])
        #expect(translate(#"[{"email":"a","timestamp":1e308,"event":"open","sg_event_id":"1"}]"#) == [
            #"{"type":"email_open","contact_id":"a","event_id":"1","ts":9223372036854775807}"#,
        ])
        #expect(translate(#"{"event-data":{"event":"opened","recipient":"a","timestamp":-1e300}}"#) == [
            #"{"type":"email_open","contact_id":"a","ts":-9223372036854775808}"#,
        ])
        let p = Pipeline(model: .defaultModel())
        p.adapters = all
        for payload in [#"[{"email":"a","timestamp":1e400,"event":"click","sg_event_id":"1"}]"#,
                        #"{"event-data":{"event":"opened","recipient":"a","timestamp":1e300}}"#] {
            guard case .bad(let e) = p.process(Array(payload.utf8)) else { Issue.record("expected bad: \(payload)"); continue }
            #expect(e.reason == .invalidTime)
        }
    }
}

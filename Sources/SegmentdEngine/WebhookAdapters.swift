/// Email providers' event webhooks, as they land on Kafka, turned into native records.
///
/// Many teams pipe SendGrid, Mailgun or Postmark webhooks straight into a topic. With the
/// adapters on, a record in one of those shapes becomes one or more native-shape records (a
/// SendGrid batch array becomes one per event), which then go through the normal decoder, so
/// validation, duplicates and bad-record handling are exactly those of the native shape.
/// Field names follow the providers' webhook documentation. The contact id is the
/// `contact_id` custom argument / user variable / metadata when present, else the recipient's
/// email address. Provider events that carry nothing for the model (delivered, processed,
/// deferred, dropped, accepted, delivery) become no record and are counted as ignored.
public struct WebhookAdapters: Sendable {
    public enum Provider: String, Sendable, CaseIterable { case sendgrid, mailgun, postmark }

    public let enabled: Set<Provider>
    public init(_ enabled: Set<Provider>) { self.enabled = enabled }

    /// The translation of one record.
    public enum Translation: Sendable, Equatable {
        /// Not a webhook payload of an enabled provider: decode the record as it is.
        case passThrough
        /// Native-shape records to decode in its place (possibly none: all ignored).
        case records([[UInt8]], provider: Provider)
    }

    public func translate(_ bytes: UnsafeBufferPointer<UInt8>) -> Translation {
        guard !enabled.isEmpty else { return .passThrough }
        var tape = JSONTape()
        guard tape.parse(bytes) == nil else { return .passThrough }
        let root = tape.node(0)
        if root.kind == .array, enabled.contains(.sendgrid) {
            var out: [[UInt8]] = []
            var i = 1
            var any = false
            while i < Int(root.next) {
                guard tape.node(i).kind == .object, tape.lookup(i, "sg_event_id") != nil || tape.lookup(i, "sg_message_id") != nil else {
                    return .passThrough
                }
                any = true
                if let r = sendgrid(tape, i) { out.append(r) }
                i = Int(tape.node(i).next)
            }
            return any ? .records(out, provider: .sendgrid) : .passThrough
        }
        guard root.kind == .object else { return .passThrough }
        if enabled.contains(.sendgrid), tape.lookup(0, "sg_event_id") != nil {
            return .records(sendgrid(tape, 0).map { [$0] } ?? [], provider: .sendgrid)
        }
        if enabled.contains(.mailgun), let ed = tape.lookup(0, "event-data"), tape.node(ed).kind == .object {
            return .records(mailgun(tape, ed).map { [$0] } ?? [], provider: .mailgun)
        }
        if enabled.contains(.postmark), let rt = tape.lookup(0, "RecordType"), tape.node(rt).kind == .string {
            return .records(postmark(tape, 0).map { [$0] } ?? [], provider: .postmark)
        }
        return .passThrough
    }

    // MARK: providers

    private func str(_ t: JSONTape, _ o: Int, _ k: [UInt8]) -> String? {
        guard let i = t.lookup(o, k), t.node(i).kind == .string else { return nil }
        return t.string(i)
    }

    private func contact(_ t: JSONTape, _ o: Int, custom: [UInt8]?, email: [UInt8]) -> String? {
        if let custom, let c = t.lookup(o, custom), t.node(c).kind == .object, let id = str(t, c, Array("contact_id".utf8)) { return id }
        return str(t, o, Array("contact_id".utf8)) ?? str(t, o, email)
    }

    /// SendGrid: `{"email", "timestamp" (s), "event", "sg_event_id", "url", "sg_machine_open", "type"}`.
    private func sendgrid(_ t: JSONTape, _ o: Int) -> [UInt8]? {
        guard let event = str(t, o, Array("event".utf8)) else { return native(nil, "unknown", nil, nil, [:]) }
        let who = contact(t, o, custom: nil, email: Array("email".utf8))
        let id = str(t, o, Array("sg_event_id".utf8))
        let ts = t.lookup(o, "timestamp").flatMap { t.double($0) }.map(WebhookAdapters.millis)
        var props: [String: Any] = [:]
        let type: String
        switch event {
        case "open":
            type = "email_open"
            if let m = t.lookup(o, "sg_machine_open"), t.node(m).kind == .bool { props["machine_open"] = t.node(m).boolValue }
        case "click":
            type = "email_click"
            if let u = str(t, o, Array("url".utf8)) { props["url"] = u }
        case "bounce":
            type = "bounced"
            props["kind"] = str(t, o, Array("type".utf8)) == "blocked" ? "soft" : "hard"
        case "spamreport": type = "spam_complaint"
        case "unsubscribe", "group_unsubscribe": type = "unsubscribed"
        case "group_resubscribe": type = "subscribed"
        default: return nil  // processed, delivered, deferred, dropped: nothing for the model
        }
        return native(who, type, id, ts, props)
    }

    /// Mailgun: `{"event-data": {"event", "timestamp" (s), "id", "recipient", "url",
    /// "severity", "user-variables"}}`.
    private func mailgun(_ t: JSONTape, _ o: Int) -> [UInt8]? {
        guard let event = str(t, o, Array("event".utf8)) else { return native(nil, "unknown", nil, nil, [:]) }
        let who = contact(t, o, custom: Array("user-variables".utf8), email: Array("recipient".utf8))
        let id = str(t, o, Array("id".utf8))
        let ts = t.lookup(o, "timestamp").flatMap { t.double($0) }.map(WebhookAdapters.millis)
        var props: [String: Any] = [:]
        let type: String
        switch event {
        case "opened": type = "email_open"
        case "clicked":
            type = "email_click"
            if let u = str(t, o, Array("url".utf8)) { props["url"] = u }
        case "failed":
            type = "bounced"
            props["kind"] = str(t, o, Array("severity".utf8)) == "temporary" ? "soft" : "hard"
        case "unsubscribed": type = "unsubscribed"
        case "complained": type = "spam_complaint"
        default: return nil  // accepted, delivered, stored
        }
        return native(who, type, id, ts, props)
    }

    /// Postmark: `{"RecordType", "MessageID", "Recipient" | "Email", "ReceivedAt" |
    /// "BouncedAt" | "ChangedAt", "OriginalLink", "Type", "SuppressSending", "Metadata"}`.
    private func postmark(_ t: JSONTape, _ o: Int) -> [UInt8]? {
        let record = str(t, o, Array("RecordType".utf8)) ?? ""
        let who = contact(t, o, custom: Array("Metadata".utf8), email: Array("Recipient".utf8))
            ?? str(t, o, Array("Email".utf8))
        let message = str(t, o, Array("MessageID".utf8)) ?? ""
        var timeText: String? = nil
        for k in ["ReceivedAt", "BouncedAt", "ChangedAt", "DeliveredAt"] where timeText == nil { timeText = str(t, o, Array(k.utf8)) }
        let ts = timeText.flatMap { EventTime.parseRFC3339($0) }
        var props: [String: Any] = [:]
        let type: String
        switch record {
        case "Open": type = "email_open"
        case "Click":
            type = "email_click"
            if let u = str(t, o, Array("OriginalLink".utf8)) { props["url"] = u }
        case "Bounce":
            type = "bounced"
            props["kind"] = str(t, o, Array("Type".utf8)) == "HardBounce" ? "hard" : "soft"
        case "SpamComplaint": type = "spam_complaint"
        case "SubscriptionChange":
            guard let s = t.lookup(o, "SuppressSending"), t.node(s).kind == .bool else { return nil }
            type = t.node(s).boolValue ? "unsubscribed" : "subscribed"
        default: return nil  // Delivery
        }
        // Opens and clicks carry no event id of their own: the message, the kind and the time.
        let id = message.isEmpty ? nil : "\(message):\(record):\(timeText ?? "")"
        return native(who, type, id, ts, props)
    }

    /// Epoch seconds (with a fraction) as epoch milliseconds, floored. A value beyond Int64's
    /// milliseconds (or not finite) becomes Int64.max or .min: a time outside the years
    /// 0000-9999, so the decoder refuses the record as `invalid_time` (it must never trap).
    static func millis(_ seconds: Double) -> Int64 {
        let ms = (seconds * 1000).rounded(.down)
        guard ms.isFinite, ms > -9.2e18, ms < 9.2e18 else { return ms < 0 ? .min : .max }
        return Int64(ms)
    }

    /// A native-shape record. Missing pieces stay missing, so the decoder reports them as it
    /// would for any native record (missing contact id, missing time).
    private func native(_ contact: String?, _ type: String, _ id: String?, _ ts: Int64?, _ props: [String: Any]) -> [UInt8] {
        var b: [UInt8] = Array("{".utf8)
        JSONWriter.string("type", to: &b)
        b.append(58)
        JSONWriter.string(type, to: &b)
        if let contact { b.append(contentsOf: Array(#","contact_id":"#.utf8)); JSONWriter.string(contact, to: &b) }
        if let id { b.append(contentsOf: Array(#","event_id":"#.utf8)); JSONWriter.string(id, to: &b) }
        if let ts { b.append(contentsOf: Array(#","ts":\#(ts)"#.utf8)) }
        if !props.isEmpty {
            b.append(contentsOf: Array(#","props":{"#.utf8))
            for (n, (k, v)) in props.sorted(by: { $0.key < $1.key }).enumerated() {
                if n > 0 { b.append(44) }
                JSONWriter.string(k, to: &b)
                b.append(58)
                if let s = v as? String { JSONWriter.string(s, to: &b) } else if let x = v as? Bool { b.append(contentsOf: Array((x ? "true" : "false").utf8)) }
            }
            b.append(125)
        }
        b.append(125)
        return b
    }
}

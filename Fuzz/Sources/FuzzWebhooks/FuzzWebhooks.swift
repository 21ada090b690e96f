// The webhook adapters: bytes -> WebhookAdapters([.sendgrid, .mailgun, .postmark]).translate;
// every record it produces must be a JSON object Foundation parses, with a string `type`, that
// the engine's own parser accepts as an object, and decodes (default model) without crashing.
import FuzzSupport
import SegmentdEngine

let adapters = WebhookAdapters([.sendgrid, .mailgun, .postmark])
nonisolated(unsafe) var decoder = EventDecoder(model: .defaultModel())

func fuzzOne(_ data: UnsafeBufferPointer<UInt8>) {
    guard case let .records(records, provider) = adapters.translate(data) else { return }
    for r in records {
        guard let o = foundationObject(r), o["type"] is String else {
            violated("\(provider) record is not a JSON object with a type for Foundation: \(text(r))")
        }
        // Exactly sized, so a read past the end shows.
        let exact = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: r.count)
        _ = exact.initialize(from: r)
        defer { exact.deallocate() }
        switch decoder.decode(UnsafeBufferPointer(exact)) {
        case let .bad(e) where e.reason == .invalidJSON || e.reason == .notAnObject:
            violated("\(provider) record refused by the engine's parser (\(e)): \(text(r))")
        default: break
        }
    }
}

@_cdecl("FuzzWebhooks_main")
func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runFuzzer(argc, argv) { data, size in
        withExactCopy(data, size) { fuzzOne($0) }
        return 0
    }
}

import Foundation
import SegmentdEngine

/// Why a line is not a transition.
public struct TransitionLineError: Error, Equatable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// Reads one line of transition NDJSON: a CloudEvents structured document (what `replay` and
/// the daemon write), or the bare `data` object (the record value in binary mode).
public struct TransitionLineParser {
    private let decoder = JSONDecoder()

    public init() {}

    public func parse(_ line: Data) -> Result<TransitionRecord, TransitionLineError> {
        let doc: Document
        do {
            doc = try decoder.decode(Document.self, from: line)
        } catch let error as DecodingError {
            return .failure(TransitionLineError(message: Self.describe(error)))
        } catch {
            return .failure(TransitionLineError(message: "invalid JSON"))
        }
        let d = doc.data
        guard !d.contactId.isEmpty else { return .failure(TransitionLineError(message: "empty contact_id")) }
        guard !d.group.isEmpty else { return .failure(TransitionLineError(message: "empty group")) }
        guard let at = EventTime.parseRFC3339(d.at), EventTime.isInRange(at) else {
            return .failure(TransitionLineError(message: "'at' is not an RFC 3339 date-time: \(d.at.prefix(40))"))
        }
        guard d.from != d.to else {
            return .failure(TransitionLineError(message: "'from' and 'to' are the same (\(d.from ?? "null"))"))
        }
        return .success(TransitionRecord(
            id: doc.id, contactId: d.contactId, group: d.group, from: d.from, to: d.to, at: at,
            causeKind: d.cause?.kind, modelVersion: d.modelVersion))
    }

    public func parse(_ line: String) -> Result<TransitionRecord, TransitionLineError> { parse(Data(line.utf8)) }

    private static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context, _ last: CodingKey? = nil) -> String {
            let keys = context.codingPath + (last.map { [$0] } ?? [])
            return keys.map(\.stringValue).joined(separator: ".")
        }
        switch error {
        case let .keyNotFound(key, context): return "missing field '\(path(context, key))'"
        case let .valueNotFound(_, context): return "'\(path(context))' is null"
        case let .typeMismatch(_, context): return "'\(path(context))' has the wrong type"
        case let .dataCorrupted(context):
            return context.codingPath.isEmpty ? "invalid JSON" : "'\(path(context))' is invalid"
        @unknown default: return "invalid JSON"
        }
    }

    private struct Cause: Decodable { var kind: String }

    private struct Payload: Decodable {
        var contactId: String
        var group: String
        var from: String?
        var to: String?
        var at: String
        var cause: Cause?
        var modelVersion: String?

        enum CodingKeys: String, CodingKey {
            case contactId = "contact_id", group, from, to, at, cause, modelVersion = "model_version"
        }
    }

    private struct Document: Decodable {
        var id: String?
        var data: Payload

        enum CodingKeys: String, CodingKey { case id, data }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            if c.contains(.data) {
                data = try c.decode(Payload.self, forKey: .data)
                id = try c.decodeIfPresent(String.self, forKey: .id)
            } else {
                data = try Payload(from: decoder)
                id = nil
            }
        }
    }
}

import Foundation
import Hummingbird
import NIOCore
import NIOHTTP1
import SegmentdDaemon

/// `GET /contacts/{id}` for a contact on a partition another instance of the group owns: the
/// owner (by the instances topic, `Daemon.owner(of:)`) is asked the same request with the same
/// `Authorization`, and its answer is relayed. A forwarded request carries
/// `Segmentd-Forwarded-By: <instance>` and is answered by the instance that receives it alone,
/// never forwarded again (no loops, even while partitions move). Every contact answer carries
/// `Segmentd-Answered-By: <instance>`; a relayed one also `Segmentd-Forwarded-By`: the instance
/// that relayed it.
enum ContactRouting {
    static let forwardedBy = HTTPFields.Element.Name("Segmentd-Forwarded-By")!
    static let answeredBy = HTTPFields.Element.Name("Segmentd-Answered-By")!
    /// How long the owner has to answer (a query waits at most one batch there).
    static let timeout = TimeAmount.seconds(15)

    /// Whether `request` was forwarded by another instance (answer it here, whatever happens).
    static func wasForwarded(_ request: Request) -> Bool { request.headers[forwardedBy] != nil }

    /// `response` marked as answered by this instance.
    static func answered(_ response: Response, by instance: String) -> Response {
        var r = response
        r.headers[answeredBy] = instance
        return r
    }

    /// The answer for contact `id` on `partition`, which this instance does not own.
    static func answer(_ request: Request, id: String, partition: Int32, daemon: Daemon) async -> Response {
        let me = daemon.instanceId
        var document = ContactDocument.elsewhere(id: id, partition: partition, instance: me)
        if let from = request.headers[forwardedBy] {
            document["error"] = "instance \(me) does not own partition \(partition) (the request was forwarded to it by \(from), so the partition moved since): ask again"
            return unavailableDocument(document, instance: me)
        }
        guard let owner = daemon.owner(of: partition) else {
            document["error"] = "no instance is known to own partition \(partition): the group may be rebalancing, or the owner does not publish in \(daemon.config.instancesTopic); ask again"
            return unavailableDocument(document, instance: me)
        }
        document["owner"] = owner.instance
        guard let address = owner.httpAddress else {
            document["error"] = "instance \(owner.instance) owns partition \(partition), but its HTTP server is off"
            return unavailableDocument(document, instance: me)
        }
        document["owner_address"] = address
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]) else {
            document["error"] = "instance \(owner.instance) owns partition \(partition), but advertises '\(address)', which is not host:port"
            return unavailableDocument(document, instance: me)
        }
        var host = String(address[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        var headers = [(forwardedBy.rawName, me)]
        if let authorization = request.headers[.authorization] { headers.append(("Authorization", authorization)) }
        let path = request.uri.path
        do {
            let answer = try await HTTPGet.get(host: host, port: port, path: path, headers: headers, timeout: timeout)
            var fields = HTTPFields()
            for name in ["Content-Type", "Retry-After", "WWW-Authenticate", answeredBy.rawName] {
                if let value = answer.headers.first(name: name), let field = HTTPFields.Element.Name(name) { fields[field] = value }
            }
            fields[forwardedBy] = me
            return Response(status: .init(code: answer.status), headers: fields, body: .init(byteBuffer: answer.body))
        } catch {
            document["error"] = "instance \(owner.instance) owns partition \(partition), but did not answer at \(address): \(error)"
            return unavailableDocument(document, instance: me)
        }
    }

    /// 503 with `document` as JSON and `Retry-After: 1`.
    private static func unavailableDocument(_ document: [String: Any], instance: String) -> Response {
        var r = answered(json((.serviceUnavailable, document)), by: instance)
        r.headers[.retryAfter] = "1"
        return r
    }
}

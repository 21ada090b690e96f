import Foundation
import Hummingbird
import ServiceLifecycle
import SegmentdDaemon
import SegmentdEngine

/// The operations endpoint of a running daemon:
/// - `GET /metrics`: Prometheus text format;
/// - `GET /healthz`: 200 while the processing loop runs (liveness);
/// - `GET /readyz`: 200 when partitions are assigned, restored and consumed (readiness);
/// - `GET /contacts/{id}`: memberships, the reason per group, the next instant time alone can
///   change them; for a contact another instance of the group owns, that instance's answer
///   (`ContactRouting`);
/// - `GET /segments/{group}/{segment}/count`: contacts in a segment on this instance;
/// - `POST /admin/reload`: reload the model file (see `Daemon.reloadModel`);
/// - `POST /admin/preview`: a model in the body; what it would do to this instance's contacts
///   now (each thread's engines adopted by it on a copy: nothing changes), as JSON;
/// - `GET /` (the live console), `/segments`, `/segments/{group}`, `/segments/{group}/{segment}`,
///   `/transitions/recent`: see `ConsoleRoutes`.
///
/// Engines are single-threaded, so a query is handed to the processing thread that holds the
/// contact's partition (`Daemon.lookup`) and answered between its batches.
public struct OperationsServer: Sendable {
    public let daemon: Daemon
    public let host: String
    public let port: Int
    public let token: String?

    public init(daemon: Daemon, address: String, token: String?) throws {
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]) else {
            throw HTTPError(.internalServerError, message: "bad address \(address)")
        }
        self.daemon = daemon
        self.host = String(address[..<colon])
        self.port = port
        self.token = token
    }

    public func makeRouter() -> Router<BasicRequestContext> {
        let router = Router()
        let daemon = self.daemon
        let token = self.token
        router.add(middleware: BearerTokenMiddleware(token: token, open: ["/healthz", "/readyz"]))
        router.get("/healthz") { _, _ -> Response in
            if let problem = daemon.livenessProblem { return text(.serviceUnavailable, problem + "\n") }
            return text(.ok, "ok\n")
        }
        router.get("/readyz") { _, _ -> Response in
            if daemon.isReady { return text(.ok, "ready\n") }
            if let problem = daemon.livenessProblem { return text(.serviceUnavailable, "not ready: \(problem)\n") }
            let phase = daemon.phase
            return text(.serviceUnavailable, "not ready: \(phase == .running || phase == .waitingForAssignment ? "no partition assigned and restored yet" : phase.description)\n")
        }
        router.get("/metrics") { _, _ -> Response in
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: daemon.metrics.exposition())))
        }
        router.get("/contacts/:id") { request, context -> Response in
            guard let id = context.parameters.get("id") else { return text(.badRequest, "missing id\n") }
            let me = daemon.instanceId
            switch await daemon.lookup(Array(id.utf8)) {
            case .success(.elsewhere(let partition)):
                // Another instance owns the contact: it answers (see `ContactRouting`).
                return await ContactRouting.answer(request, id: id, partition: partition, daemon: daemon)
            case .success(let answer):
                return ContactRouting.answered(json(ContactDocument.make(answer, id: id, model: daemon.model, instance: me)), by: me)
            case .failure(let why):
                return ContactRouting.answered(unavailable(why), by: me)
            }
        }
        router.get("/segments/:group/:segment/count") { _, context -> Response in
            let g = context.parameters.get("group") ?? "", s = context.parameters.get("segment") ?? ""
            guard let gi = daemon.model.groups.firstIndex(where: { $0.name == g }),
                  let si = daemon.model.groups[gi].segments.firstIndex(where: { $0.name == s })
            else {
                let known = daemon.model.groups.flatMap { group in group.segments.map { "\(group.name)/\($0.name)" } }
                return text(.notFound, "no segment \(g)/\(s) in model \(daemon.model.version)\(Suggestions.hint(for: "\(g)/\(s)", among: known))\n")
            }
            let n = daemon.segmentContacts[gi][si]
            return json((.ok, ["group": g, "segment": s, "count": n, "scope": "partitions owned by this instance"] as [String: Any]))
        }
        ConsoleRoutes.add(to: router, daemon: daemon)
        router.post("/admin/preview") { request, _ -> Response in
            // The body: a model file (YAML, at most 1 MiB).
            let buffer = try await request.body.collect(upTo: 1 << 20)
            let yaml = String(buffer: buffer)
            let new: Model
            do { new = try Model.load(yaml: yaml, file: "request body") } catch {
                return text(.unprocessableContent, "model refused: \(error)\n")
            }
            let samples = daemon.config.httpContactIds ? 3 : 0
            let lateness = daemon.config.lateness
            let answers = await daemon.askEachThread(timeoutMs: 120_000) { engines -> ModelPreview? in
                var preview: ModelPreview?
                for (_, engine) in engines {
                    let next = SegmentEngine(model: new, lateness: lateness, duplicateHorizon: engine.duplicateHorizon)
                    next.adopt(from: engine)
                    let part = ModelPreview.compare(base: engine, new: next, samples: samples)
                    if preview == nil { preview = part } else { preview!.merge(part) }
                }
                return preview
            }
            switch answers {
            case .failure(let why): return unavailable(why)
            case .success(let parts):
                var preview: ModelPreview?
                for case let part? in parts { if preview == nil { preview = part } else { preview!.merge(part) } }
                let groups: [[String: Any]] = (preview?.groups ?? []).map { g in
                    [
                        "group": g.name, "new_group": !g.inBase, "moved": g.moved,
                        "sizes": Dictionary(uniqueKeysWithValues: (g.segments + ["none"]).map { ($0, ["base": g.baseSizes[$0, default: 0], "new": g.newSizes[$0, default: 0]]) }),
                        "moves": g.moves.keys.sorted().map { m -> [String: Any] in
                            var d: [String: Any] = ["from": m.from, "to": m.to, "contacts": g.moves[m]!]
                            if samples > 0 { d["samples"] = (g.samples[m] ?? []).map { ["contact_id": $0.contact, "reasons": $0.reasons] } }
                            return d
                        },
                    ]
                }
                return json((.ok, [
                    "scope": "contacts of the partitions owned by this instance, now; nothing was changed",
                    "base_model": daemon.model.version, "new_model": new.version, "contacts": preview?.contacts ?? 0,
                    "groups": groups,
                ] as [String: Any]))
            }
        }
        router.post("/admin/reload") { _, _ -> Response in
            switch await daemon.reloadModel(timeoutMs: 60_000) {
            case .success(.success(let m)): return text(.ok, m + "\n")
            case .success(.failure(let e)): return text(.unprocessableContent, "model refused, the old one keeps running: \(e)\n")
            case .failure(let why): return unavailable(why)
            }
        }
        return router
    }

    /// The server as a `Service` for the process's `ServiceGroup` (which owns the signals):
    /// on graceful shutdown it stops accepting and answers every request in flight.
    /// Once it listens, the daemon's advertised address takes the port it got (`http_address`
    /// with port 0).
    public func makeApplication(onServerRunning: (@Sendable (Int) async -> Void)? = nil) -> some ApplicationProtocol {
        let daemon = self.daemon, port = self.port
        return Application(router: makeRouter(), configuration: .init(address: .hostname(host, port: port)),
                           onServerRunning: { channel in
                               let bound = channel.localAddress?.port ?? port
                               daemon.httpListening(port: bound)
                               await onServerRunning?(bound)
                           })
    }
}

/// A question the daemon cannot answer now (not consuming yet, restoring, shutting down):
/// 503 with the reason and a hint to retry, never a dropped connection.
func unavailable(_ why: Unavailable) -> Response {
    var headers = HTTPFields()
    headers[.contentType] = "text/plain; charset=utf-8"
    headers[.retryAfter] = "1"
    return Response(status: .serviceUnavailable, headers: headers, body: .init(byteBuffer: ByteBuffer(string: "unavailable: \(why)\n")))
}

func text(_ status: HTTPResponse.Status, _ body: String) -> Response {
    var headers = HTTPFields()
    headers[.contentType] = "text/plain; charset=utf-8"
    return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
}

func json(_ x: (HTTPResponse.Status, Any)) -> Response {
    let data = (try? JSONSerialization.data(withJSONObject: x.1, options: [.sortedKeys])) ?? Data("{}".utf8)
    var headers = HTTPFields()
    headers[.contentType] = "application/json"
    return Response(status: x.0, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
}

/// The JSON answer of `GET /contacts/{id}`.
enum ContactDocument {
    static func make(_ a: Daemon.ContactLookup, id: String, model: Model, instance: String) -> (HTTPResponse.Status, Any) {
        switch a {
        case let .found(partition, x, memberships):
            var groups: [[String: Any]] = []
            for (g, spec) in model.groups.enumerated() {
                let seg: Any = memberships[g].map { spec.segments[$0].name } ?? NSNull()
                groups.append(["group": spec.name, "segment": seg, "reason": x.groups[g].reasons])
            }
            return (.ok, [
                "contact_id": id, "partition": Int(partition), "instance": instance,
                "clock": EventTime.format(x.clock), "first_seen": EventTime.format(x.firstSeen),
                "next_change": x.nextChange.map(EventTime.format) ?? NSNull(),
                "groups": groups, "model_version": model.version,
            ] as [String: Any])
        case let .elsewhere(partition):
            return (.serviceUnavailable, elsewhere(id: id, partition: partition, instance: instance))
        case let .unknown(partition):
            return (.notFound, ["contact_id": id, "error": "no state for this contact", "partition": Int(partition), "instance": instance] as [String: Any])
        }
    }
}

extension ContactDocument {
    /// The answer's fields for a contact on a partition this instance does not own (the
    /// instance that owns it answers; `ContactRouting` adds why it could not be asked).
    static func elsewhere(id: String, partition: Int32, instance: String) -> [String: Any] {
        ["contact_id": id, "partition": Int(partition), "instance": instance, "error": "owned by another instance of the group"]
    }
}

/// Refuses requests without the token when one is configured: `Authorization: Bearer <token>`,
/// or HTTP Basic with the token as the password (any user name), which is how a browser
/// carries it: the console (`GET /`) answers 401 with a Basic challenge, the browser asks for
/// the password once and sends it with the page's own requests too.
struct BearerTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: String?
    let open: Set<String>

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let token, !open.contains(request.uri.path) else { return try await next(request, context) }
        guard BearerTokenMiddleware.carries(token, request.headers[.authorization]) else {
            var headers = HTTPFields()
            headers[.wwwAuthenticate] = request.uri.path == "/" ? "Basic realm=\"segmentd\", charset=\"UTF-8\"" : "Bearer"
            return Response(status: .unauthorized, headers: headers, body: .init(byteBuffer: ByteBuffer(string: "a bearer token is required\n")))
        }
        return try await next(request, context)
    }

    /// Whether an `Authorization` value carries `token`: as a bearer token, or as the password
    /// of HTTP Basic credentials.
    static func carries(_ token: String, _ authorization: String?) -> Bool {
        guard let authorization else { return false }
        if authorization == "Bearer \(token)" { return true }
        guard authorization.hasPrefix("Basic "), let data = Data(base64Encoded: String(authorization.dropFirst(6))),
              let pair = String(data: data, encoding: .utf8), let colon = pair.firstIndex(of: ":")
        else { return false }
        return pair[pair.index(after: colon)...] == token
    }
}

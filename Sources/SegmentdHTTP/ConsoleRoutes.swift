import Foundation
import Hummingbird
import SegmentdDaemon
import SegmentdEngine

/// The console and the listings it reads:
/// - `GET /`: the live console (`Console`);
/// - `GET /console/panel`: the console's refreshed part, an HTML fragment;
/// - `GET /segments`: every group's segments with their sizes on this instance;
/// - `GET /segments/{group}`: one group's;
/// - `GET /segments/{group}/{segment}`: the segment's members on this instance, paged
///   (`limit`, `after`), only when `http_contact_ids` is on;
/// - `GET /transitions/recent`: the console's per-minute counts and latest transitions as JSON.
enum ConsoleRoutes {
    /// Members per page: default and largest.
    static let defaultLimit = 100, maxLimit = 1000
    /// Contacts examined per member request at most, so one request holds the processing
    /// thread briefly however rare the segment: the answer's `next` continues the scan.
    static let maxScan = 100_000

    static func add(to router: Router<BasicRequestContext>, daemon: Daemon) {
        router.get("/") { _, _ -> Response in
            html(Console.page(await Console.gather(daemon)))
        }
        router.get("/console/panel") { _, _ -> Response in
            html(Console.panel(await Console.gather(daemon)))
        }
        router.get("/segments") { _, _ -> Response in
            let model = daemon.model
            return json((.ok, listing(daemon, model: model, groups: Array(model.groups.indices))))
        }
        router.get("/segments/:group") { _, context -> Response in
            let model = daemon.model
            let g = context.parameters.get("group") ?? ""
            guard let gi = model.groups.firstIndex(where: { $0.name == g }) else {
                let known = model.groups.map(\.name)
                return text(.notFound, "no group \(g) in model \(model.version)\(Suggestions.hint(for: g, among: known)) (groups: \(known.joined(separator: ", ")))\n")
            }
            return json((.ok, listing(daemon, model: model, groups: [gi])))
        }
        router.get("/segments/:group/:segment") { request, context -> Response in
            let model = daemon.model
            let g = context.parameters.get("group") ?? "", s = context.parameters.get("segment") ?? ""
            guard let gi = model.groups.firstIndex(where: { $0.name == g }),
                  let si = model.groups[gi].segments.firstIndex(where: { $0.name == s })
            else {
                let known = model.groups.flatMap { group in group.segments.map { "\(group.name)/\($0.name)" } }
                return text(.notFound, "no segment \(g)/\(s) in model \(model.version)\(Suggestions.hint(for: "\(g)/\(s)", among: known))\n")
            }
            guard daemon.config.httpContactIds else {
                return text(.forbidden, "member listings show contact ids, which this instance does not show: the operator enables them with http_contact_ids: on (--http-contact-ids on, SEGMENTD_HTTP_CONTACT_IDS=on); the size is at /segments/\(g)\n")
            }
            let query = request.uri.queryParameters
            var limit = defaultLimit
            if let l = query.get("limit") {
                guard let n = Int(l), n >= 1, n <= maxLimit else { return text(.badRequest, "limit '\(l)' must be a whole number from 1 to \(maxLimit)\n") }
                limit = n
            }
            var start = MemberCursor(partition: 0, index: 0)
            if let a = query.get("after") {
                guard let c = MemberCursor(a) else { return text(.badRequest, "after '\(a)' is not a cursor from a previous answer's next (PARTITION:INDEX)\n") }
                start = c
            }
            let version = model.version
            let (from, pageSize) = (start, limit)
            switch await members(daemon, group: gi, segment: si, modelVersion: version, from: from, limit: pageSize, maxScan: maxScan) {
            case .success(let page):
                guard let page else {
                    var r = text(.serviceUnavailable, "unavailable: the model changed during the request; ask again\n")
                    r.headers[.retryAfter] = "1"
                    return r
                }
                var doc: [String: Any] = [
                    "group": g, "segment": s, "scope": "partitions owned by this instance", "instance": daemon.config.transactionalId,
                    "model_version": version, "members": page.members, "scanned": page.scanned,
                    "next": page.next.map(\.description) ?? NSNull(),
                ]
                doc["count"] = daemon.segmentContacts.indices.contains(gi) && daemon.segmentContacts[gi].indices.contains(si) ? daemon.segmentContacts[gi][si] : NSNull()
                return json((.ok, doc))
            case .failure(let why):
                return unavailable(why)
            }
        }
        router.get("/transitions/recent") { _, _ -> Response in
            let snap = daemon.recent.snapshot(nowMs: Daemon.wallMs())
            let latest: [[String: Any]] = snap.latest.map { e in
                var d: [String: Any] = ["group": e.group, "from": e.from ?? NSNull(), "to": e.to ?? NSNull(), "at": EventTime.format(e.at),
                                        "committed_at": EventTime.format(e.committedAt), "cause": e.cause]
                if let c = e.contactId { d["contact_id"] = c }
                return d
            }
            return json((.ok, [
                "scope": "transitions committed by this instance since it started",
                "instance": daemon.config.transactionalId,
                "contact_ids": snap.keepsContactIds,
                "committed_total": snap.committedTotal,
                "per_minute": snap.minutes.map { ["start": EventTime.format($0.start), "counts": $0.counts] as [String: Any] },
                "latest": latest,
            ] as [String: Any]))
        }
    }

    static func listing(_ daemon: Daemon, model: Model, groups: [Int]) -> [String: Any] {
        let sizes = daemon.segmentContacts
        let shaped = sizes.count == model.groups.count && zip(sizes, model.groups).allSatisfy { $0.count == $1.segments.count }
        let list: [[String: Any]] = groups.map { gi in
            let group = model.groups[gi]
            let counts = group.segments.indices.map { shaped ? sizes[gi][$0] : 0 }
            return [
                "group": group.name,
                "segments": group.segments.enumerated().map { ["segment": $1.name, "count": counts[$0]] as [String: Any] },
                "in_a_segment": counts.reduce(0, +),
            ]
        }
        return [
            "scope": "partitions owned by this instance", "instance": daemon.config.transactionalId,
            "partitions": daemon.status.assigned.sorted().map(Int.init), "input_partitions": Int(daemon.inputPartitions),
            "model_version": model.version, "groups": list,
        ]
    }

    /// Where a member listing continues: a partition and a contact index in its engine.
    struct MemberCursor: CustomStringConvertible, Sendable {
        var partition: Int32
        var index: Int

        init(partition: Int32, index: Int) {
            self.partition = partition
            self.index = index
        }

        init?(_ text: String) {
            let parts = text.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2, let p = Int32(parts[0]), let i = Int(parts[1]), p >= 0, i >= 0 else { return nil }
            partition = p
            index = i
        }

        var description: String { "\(partition):\(index)" }

        static func < (a: MemberCursor, b: MemberCursor) -> Bool {
            a.partition < b.partition || (a.partition == b.partition && a.index < b.index)
        }
    }

    struct MemberPage: Sendable {
        var members: [String]
        var scanned: Int
        /// nil: every local contact was examined.
        var next: MemberCursor?
    }

    /// What one processing thread found: members of its partitions from the cursor on, where
    /// it stopped (nil: it examined all its contacts), how many it examined.
    struct ThreadPage: Sendable {
        var members: [(cursor: MemberCursor, id: String)]
        var scanned: Int
        var next: MemberCursor?
        var sameModel: Bool
    }

    /// The members of segment `segment` of group `group`, from `start` on, in partition then
    /// engine order: at most `limit`, each thread examining at most `maxScan` contacts. Every
    /// processing thread lists its own partitions (on its thread); the page ends where the
    /// first thread stopped, so no member before the returned cursor is ever skipped. nil when
    /// the model is not `modelVersion` any more.
    static func members(_ daemon: Daemon, group: Int, segment: Int, modelVersion: String, from start: MemberCursor,
                        limit: Int, maxScan: Int) async -> Result<MemberPage?, Unavailable> {
        let answers = await daemon.askEachThread { engines -> ThreadPage in
            var page = ThreadPage(members: [], scanned: 0, next: nil, sameModel: true)
            for (p, engine) in engines where p >= start.partition && page.next == nil {
                guard engine.model.version == modelVersion else { page.sameModel = false; return page }
                var i = p == start.partition ? start.index : 0
                let n = engine.contactCount
                while i < n {
                    if page.members.count == limit || page.scanned == maxScan {
                        page.next = MemberCursor(partition: p, index: i)
                        break
                    }
                    let id = engine.contactId(at: i)
                    if let m = engine.memberships(of: id), m.indices.contains(group), m[group] == segment {
                        page.members.append((MemberCursor(partition: p, index: i), String(decoding: id, as: UTF8.self)))
                    }
                    i += 1
                    page.scanned += 1
                }
            }
            return page
        }
        switch answers {
        case .failure(let why): return .failure(why)
        case .success(let pages):
            guard pages.allSatisfy(\.sameModel) else { return .success(nil) }
            // Every position before the earliest place a thread stopped was examined.
            let stop = pages.compactMap(\.next).min { $0 < $1 }
            var found = pages.flatMap(\.members).filter { stop == nil || $0.cursor < stop! }
            found.sort { $0.cursor < $1.cursor }
            var next = stop
            if found.count > limit {
                next = found[limit].cursor
                found.removeLast(found.count - limit)
            }
            return .success(MemberPage(members: found.map(\.id), scanned: pages.reduce(0) { $0 + $1.scanned }, next: next))
        }
    }
}

func html(_ body: String) -> Response {
    var headers = HTTPFields()
    headers[.contentType] = "text/html; charset=utf-8"
    headers[.cacheControl] = "no-store"
    return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
}

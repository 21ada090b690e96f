import NIOCore
import NIOHTTP1
import NIOPosix

/// One HTTP/1.1 GET over a new connection (no TLS, no redirects, no pooling): how an instance
/// forwards a contact query to the instance that owns the contact. Built on SwiftNIO, which the
/// HTTP server already runs on, on the same event loops.
enum HTTPGet {
    struct Answer: Sendable {
        var status: Int
        var headers: HTTPHeaders
        var body: ByteBuffer
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// The largest answer body accepted.
    static let maxBody = 4 << 20

    /// GETs `path` (already percent-encoded, as received) from `host:port` with `headers`;
    /// fails when the connection is refused, nothing complete arrives within `timeout`, or the
    /// answer is larger than `maxBody`.
    static func get(host: String, port: Int, path: String, headers: [(String, String)], timeout: TimeAmount) async throws -> Answer {
        let eventLoop = MultiThreadedEventLoopGroup.singleton.next()
        let promise = eventLoop.makePromise(of: Answer.self)
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: path)
        head.headers.add(name: "Host", value: "\(host):\(port)")
        head.headers.add(name: "Connection", value: "close")
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        let request = head
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(AnswerCollector(request: request, promise: promise))
                }
            }
        let timer = eventLoop.scheduleTask(in: timeout) {
            promise.fail(Failure(description: "no answer within \(timeout.nanoseconds / 1_000_000) ms"))
        }
        bootstrap.connect(host: host, port: port).whenComplete { result in
            switch result {
            case .success(let channel):
                promise.futureResult.whenComplete { _ in channel.close(promise: nil) }
            case .failure(let error):
                promise.fail(error)
            }
        }
        defer { timer.cancel() }
        return try await promise.futureResult.get()
    }
}

/// Sends the request once connected and collects the answer into the promise.
private final class AnswerCollector: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    let request: HTTPRequestHead
    let promise: EventLoopPromise<HTTPGet.Answer>
    var head: HTTPResponseHead?
    var body = ByteBuffer()

    init(request: HTTPRequestHead, promise: EventLoopPromise<HTTPGet.Answer>) {
        self.request = request
        self.promise = promise
    }

    func channelActive(context: ChannelHandlerContext) {
        context.write(wrapOutboundOut(.head(request)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
        case .body(var part):
            guard body.readableBytes + part.readableBytes <= HTTPGet.maxBody else {
                promise.fail(HTTPGet.Failure(description: "answer larger than \(HTTPGet.maxBody) bytes"))
                context.close(promise: nil)
                return
            }
            body.writeBuffer(&part)
        case .end:
            if let head {
                promise.succeed(HTTPGet.Answer(status: Int(head.status.code), headers: head.headers, body: body))
            } else {
                promise.fail(HTTPGet.Failure(description: "an answer without a status line"))
            }
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(HTTPGet.Failure(description: "the connection closed before a complete answer"))
        context.fireChannelInactive()
    }
}

import Foundation
import Logging
import SegmentdDaemon
import SegmentdHTTP
import ServiceLifecycle
import UnixSignals

/// The processing threads as a `Service`: `Daemon.run` runs on a thread of its own (librdkafka
/// calls block, and rebalance callbacks must run on each worker's polling thread, so not on the
/// cooperative pool) and starts the other workers' threads; a graceful shutdown or a
/// cancellation asks every worker to stop, and it returns once all have committed, flushed and
/// left the group (or at once if they were still connecting).
struct DaemonService: Service, CustomStringConvertible {
    let daemon: Daemon
    var description: String { "daemon" }

    func run() async throws {
        let d = daemon
        try await withTaskCancellationOrGracefulShutdownHandler {
            try await withCheckedThrowingContinuation { (cont: CheckedContinuation<Void, any Error>) in
                Thread.detachNewThread {
                    do {
                        try d.run()
                        cont.resume()
                    } catch {
                        cont.resume(throwing: DaemonFailure(cause: error))
                    }
                }
            }
        } onCancelOrGracefulShutdown: {
            d.stop()
        }
    }
}

/// SIGHUP reloads the model (like `POST /admin/reload`), through the signal sequence of
/// swift-service-lifecycle; it ends with the group's graceful shutdown.
struct ReloadOnHangup: Service, CustomStringConvertible {
    let daemon: Daemon
    let log: LogSink
    var description: String { "model reload on SIGHUP" }

    func run() async throws {
        for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
            log("SIGHUP: reloading the model")
            if case .failure(let why) = await daemon.reloadModel() { log("model reload not done: \(why)") }
        }
    }
}

/// The HTTP server with a drain period: on graceful shutdown it keeps accepting and answering
/// for `drain` (the daemon still runs), then stops accepting and answers every request in
/// flight. Without it, a connection accepted just before the stop whose request was not read
/// yet counts as idle and is closed unanswered; the drain is also the time a load balancer or
/// Kubernetes needs to stop sending new requests.
struct DrainingHTTP: Service, CustomStringConvertible {
    let app: any Service
    let drain: Duration
    var description: String { "HTTP server" }

    func run() async throws {
        var logger = Logger(label: "segmentd.http")
        logger.logLevel = .warning
        let inner = ServiceGroup(configuration: .init(services: [.init(service: app)], logger: logger))
        let drain = self.drain
        // Detached: a ServiceGroup run inside another one follows the parent's graceful
        // shutdown at once; this one must hear it only after the drain.
        let task = Task.detached { try await inner.run() }
        try await withTaskCancellationHandler {
            try await withGracefulShutdownHandler {
                try await task.value
            } onGracefulShutdown: {
                Task {
                    try? await Task.sleep(for: drain)
                    await inner.triggerGracefulShutdown()
                }
            }
        } onCancel: {
            task.cancel()
        }
    }
}

/// Runs the daemon, the HTTP server (when configured) and the SIGHUP reloader in one
/// `ServiceGroup`. SIGTERM/SIGINT shut the group down gracefully, in reverse order: the
/// reloader, then the HTTP server (after a 1 s drain it stops accepting and answers every
/// request in flight, with the daemon still running), then the daemon (finishes its batch, commits, leaves the
/// group). A fatal daemon error cancels the group and is thrown.
func runServices(_ daemon: Daemon, log: @escaping LogSink) async throws {
    let c = daemon.config
    var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
        .init(service: DaemonService(daemon: daemon), successTerminationBehavior: .gracefullyShutdownGroup,
              failureTerminationBehavior: .cancelGroup),
    ]
    if let address = c.httpAddress {
        let server = try OperationsServer(daemon: daemon, address: address, token: c.httpToken)
        let app = server.makeApplication(onServerRunning: { port in
            log("HTTP on http://\(server.host):\(port): /metrics /healthz /readyz /contacts/{id} /segments/{group}/{segment}/count, POST /admin/reload\(c.httpToken == nil ? "" : " (bearer token required)"); advertised to the group's other instances as \(daemon.advertisedHTTPAddress ?? "nothing") in \(c.instancesTopic)")
        })
        services.append(.init(service: DrainingHTTP(app: app, drain: .seconds(1)), successTerminationBehavior: .gracefullyShutdownGroup,
                              failureTerminationBehavior: .gracefullyShutdownGroup))
    }
    services.append(.init(service: ReloadOnHangup(daemon: daemon, log: log), successTerminationBehavior: .ignore,
                          failureTerminationBehavior: .ignore))
    var logger = Logger(label: "segmentd.lifecycle")
    logger.logLevel = .warning
    let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint],
                                                  cancellationSignals: [], logger: logger))
    do {
        try await group.run()
    } catch let e as DaemonFailure {
        throw e
    } catch {
        throw DaemonFailure(cause: error)
    }
}

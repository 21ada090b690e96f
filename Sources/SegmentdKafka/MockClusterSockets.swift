#if canImport(Glibc)
import Glibc
#endif

/// Turns off Nagle's algorithm on the mock cluster's listening sockets, so every connection it
/// accepts sends its responses at once.
///
/// librdkafka 2.0.2's mock broker leaves Nagle on. A response written while the previous one on
/// the connection is still unacknowledged then waits until the client acknowledges it, and
/// the client delays its acknowledgement (40 ms on Linux). Every flush and transaction commit
/// against the embedded broker paid that wait once or twice: measured with daemon-bench at a
/// steady 2,000 events/s, a commit took 89 ms at the median and 8 ms with Nagle off
/// (BENCHMARKS.md). Real brokers set TCP_NODELAY on their sockets.
///
/// The mock does not expose its sockets, so they are found by address: the process's socket
/// descriptors that listen on 127.0.0.1 at one of the cluster's ports. Linux copies
/// TCP_NODELAY from a listening socket to the connections it accepts.
enum MockClusterSockets {
    /// Sets TCP_NODELAY on every listening socket of this process bound to one of `ports`;
    /// returns how many it set. Best effort: a socket that cannot be read or set is skipped.
    @discardableResult
    static func disableNagle(listeningOn ports: Set<UInt16>) -> Int {
        #if canImport(Glibc)
        var changed = 0
        for socket in sockets(boundTo: ports) where socket.listening {
            var on: Int32 = 1
            if setsockopt(socket.fd, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size)) == 0 { changed += 1 }
        }
        return changed
        #else
        return 0
        #endif
    }

    /// This process's TCP sockets bound to 127.0.0.1 at one of `ports`: the listeners and the
    /// connections they accepted.
    static func sockets(boundTo ports: Set<UInt16>) -> [(fd: Int32, listening: Bool)] {
        #if canImport(Glibc)
        guard let dir = opendir("/proc/self/fd") else { return [] }
        defer { closedir(dir) }
        var descriptors: [Int32] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if let fd = Int32(name) { descriptors.append(fd) }
        }
        return descriptors.compactMap { fd in
            guard let port = localPort(fd), ports.contains(port), let listening = isListener(fd) else { return nil }
            return (fd, listening)
        }
        #else
        return []
        #endif
    }

    /// The ports of a `host:port,host:port` bootstrap list.
    static func ports(of bootstrapServers: String) -> Set<UInt16> {
        Set(bootstrapServers.split(separator: ",").compactMap { server in
            server.split(separator: ":").last.flatMap { UInt16($0) }
        })
    }

    #if canImport(Glibc)
    /// Whether a socket listens (nil: not a socket).
    private static func isListener(_ fd: Int32) -> Bool? {
        var accepting: Int32 = 0
        var size = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &size) == 0 else { return nil }
        return accepting == 1
    }

    /// The local port of an IPv4 socket bound to 127.0.0.1 (nil for anything else).
    private static func localPort(_ fd: Int32) -> UInt16? {
        var address = sockaddr_in()
        var size = socklen_t(MemoryLayout<sockaddr_in>.size)
        let read = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &size) }
        }
        guard read == 0, address.sin_family == sa_family_t(AF_INET),
              address.sin_addr.s_addr == in_addr_t(0x7f00_0001).bigEndian else { return nil }
        return UInt16(bigEndian: address.sin_port)
    }
    #endif
}

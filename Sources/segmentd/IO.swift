import ArgumentParser
import SegmentdDaemon
import SegmentdEngine

#if canImport(Glibc)
import Glibc
#endif

/// A file that cannot be read (`writing` false) or written.
struct IOError: Error, CustomStringConvertible {
    var description: String
    var writing = false
    /// The reader of a pipe went away (EPIPE): like other Unix tools, the command then ends
    /// quietly with status 0 (`segmentd replay … | head`).
    var brokenPipe = false
}

/// Reads a configuration or model file (with the size limit of `readTextFile`).
func readFile(_ path: String) throws -> String {
    do { return try readTextFile(path) } catch { throw IOError(description: "\(error)") }
}

/// Reads a file (or stdin) in large chunks and hands out lines as byte buffers, without
/// copying a line unless it straddles two chunks.
final class LineReader {
    let fd: Int32
    let path: String

    init(path: String) throws {
        self.path = path
        if path == "-" {
            fd = 0
        } else {
            fd = open(path, O_RDONLY)
            if fd < 0 { throw IOError(description: "cannot open \(path): \(String(cString: strerror(errno)))") }
        }
    }

    deinit { if fd > 0 { close(fd) } }

    /// Calls `body` with each line. With `stop`, waits for input at most 200 ms at a time and
    /// ends (dropping an unfinished last line) as soon as `stop()` is true: a command reading a
    /// terminal or an idle pipe still honours SIGTERM/SIGINT.
    func forEachLine(stop: (() -> Bool)? = nil, _ body: (UnsafeBufferPointer<UInt8>) throws -> Void) throws {
        try forEachBatch(stop: stop) { lines in
            for line in lines { try body(line) }
        }
    }

    /// Calls `body` with the lines read so far, in order, a batch at a time (every complete
    /// line of a chunk of input): the lines stay valid until `body` returns, so a batch can be
    /// processed as a whole (`Pipeline.process(batch:)`). `stop` as in `forEachLine`.
    func forEachBatch(stop: (() -> Bool)? = nil, _ body: (UnsafeBufferPointer<UnsafeBufferPointer<UInt8>>) throws -> Void) throws {
        let chunk = 1 << 20
        var buf = [UInt8](repeating: 0, count: chunk)
        // A line begun in an earlier chunk: completed by a later read, it is a batch of its own.
        var partial: [UInt8] = []
        var lines: [UnsafeBufferPointer<UInt8>] = []
        func handOut(_ line: [UInt8]) throws {
            try line.withUnsafeBufferPointer { bytes in try [bytes].withUnsafeBufferPointer { try body($0) } }
        }
        reading: while true {
            if let stop {
                var waiting = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                while true {
                    if stop() { partial.removeAll(); break reading }
                    let ready = poll(&waiting, 1, 200)
                    if ready > 0 || (ready < 0 && errno != EINTR) { break }
                }
            }
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw IOError(description: "cannot read \(path): \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            try buf.withUnsafeBufferPointer { b in
                let base = b.baseAddress!
                var start = 0
                // memchr finds each newline (word-at-a-time in libc), not a byte loop.
                if !partial.isEmpty {
                    guard let hit = memchr(base, 10, n) else {
                        partial.append(contentsOf: b[0..<n])
                        return
                    }
                    let i = base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
                    partial.append(contentsOf: b[0..<i])
                    try handOut(partial)
                    partial.removeAll(keepingCapacity: true)
                    start = i + 1
                }
                while start < n, let hit = memchr(base + start, 10, n - start) {
                    let i = base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
                    lines.append(UnsafeBufferPointer(rebasing: b[start..<i]))
                    start = i + 1
                }
                if !lines.isEmpty { try lines.withUnsafeBufferPointer { try body($0) } }
                lines.removeAll(keepingCapacity: true)
                if start < n { partial.append(contentsOf: b[start..<n]) }
            }
        }
        if !partial.isEmpty { try handOut(partial) }
    }
}

/// A write buffer over a file descriptor. A write that fails (disk full, a closed pipe, an I/O
/// error) is kept: nothing more is written, and `flush` throws it, so a command never ends
/// as if its output were complete when it is not.
final class OutputBuffer {
    var buffer: [UInt8] = []
    let fd: Int32
    let owned: Bool
    /// What the output is, for error messages: `standard output` or the path.
    let name: String
    /// The first write failure.
    private(set) var failure: IOError?

    init(fd: Int32) {
        self.fd = fd
        owned = false
        name = fd == 1 ? "standard output" : fd == 2 ? "standard error" : "file descriptor \(fd)"
        buffer.reserveCapacity(1 << 17)
    }

    init(path: String) throws {
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        if fd < 0 { throw IOError(description: "cannot write \(path): \(String(cString: strerror(errno)))", writing: true) }
        owned = true
        name = path
    }

    deinit {
        writeBuffered()
        if owned { close(fd) }
    }

    func flushIfFull() { if buffer.count >= 1 << 16 { writeBuffered() } }

    /// Writes `bytes` after what is buffered: copied into the buffer when they are few, else
    /// written at once (the buffer first).
    func write(_ bytes: UnsafeRawBufferPointer) {
        if bytes.count < 1 << 12 {
            buffer.append(contentsOf: bytes)
            flushIfFull()
            return
        }
        writeBuffered()
        writeAll(bytes)
    }

    /// Throws the first write failure so far (to stop early, before all input is read).
    func check() throws { if let failure { throw failure } }

    /// Writes everything buffered; throws the first write failure (now or earlier).
    func flush() throws {
        writeBuffered()
        if let failure { throw failure }
    }

    private func writeBuffered() {
        defer { buffer.removeAll(keepingCapacity: true) }
        buffer.withUnsafeBytes { writeAll($0) }
    }

    /// Writes every byte (after the first failure, none).
    private func writeAll(_ bytes: UnsafeRawBufferPointer) {
        guard failure == nil else { return }
        var off = 0
        while off < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + off, bytes.count - off)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 {
                let code = n < 0 ? errno : EIO
                failure = IOError(description: "cannot write \(name): \(String(cString: strerror(code)))", writing: true,
                                  brokenPipe: code == EPIPE)
                return
            }
            off += n
        }
    }
}

/// Writes a message to standard error (unbuffered, so progress and summaries appear at once).
func printErr(_ s: String) {
    var b = Array(s.utf8)
    b.withUnsafeMutableBytes { p in _ = write(2, p.baseAddress, p.count) }
}

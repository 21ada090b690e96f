import ArgumentParser
import SegmentdDaemon
import SegmentdEngine

#if canImport(Glibc)
import Glibc
#endif

struct IOError: Error, CustomStringConvertible {
    var description: String
}

func readFile(_ path: String) throws -> String { try readTextFile(path) }

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

    func forEachLine(_ body: (UnsafeBufferPointer<UInt8>) throws -> Void) throws {
        let chunk = 1 << 20
        var buf = [UInt8](repeating: 0, count: chunk)
        var carry: [UInt8] = []
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 { throw IOError(description: "cannot read \(path): \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            try buf.withUnsafeBufferPointer { b in
                let base = b.baseAddress!
                var start = 0
                // memchr finds each newline (word-at-a-time in libc), not a byte loop.
                while start < n, let hit = memchr(base + start, 10, n - start) {
                    let i = base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
                    if carry.isEmpty {
                        try body(UnsafeBufferPointer(rebasing: b[start..<i]))
                    } else {
                        carry.append(contentsOf: b[start..<i])
                        try carry.withUnsafeBufferPointer { try body($0) }
                        carry.removeAll(keepingCapacity: true)
                    }
                    start = i + 1
                }
                if start < n { carry.append(contentsOf: b[start..<n]) }
            }
        }
        if !carry.isEmpty { try carry.withUnsafeBufferPointer { try body($0) } }
    }
}

/// A write buffer over a file descriptor.
final class OutputBuffer {
    var buffer: [UInt8] = []
    let fd: Int32
    let owned: Bool

    init(fd: Int32) {
        self.fd = fd
        owned = false
        buffer.reserveCapacity(1 << 17)
    }

    init(path: String) throws {
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        if fd < 0 { throw IOError(description: "cannot write \(path): \(String(cString: strerror(errno)))") }
        owned = true
    }

    deinit {
        flush()
        if owned { close(fd) }
    }

    func flushIfFull() { if buffer.count >= 1 << 16 { flush() } }

    func flush() {
        var off = 0
        buffer.withUnsafeBytes { b in
            while off < b.count {
                let n = write(fd, b.baseAddress! + off, b.count - off)
                if n <= 0 { break }
                off += n
            }
        }
        buffer.removeAll(keepingCapacity: true)
    }
}

/// Writes a message to standard error (unbuffered, so progress and summaries appear at once).
func printErr(_ s: String) {
    var b = Array(s.utf8)
    b.withUnsafeMutableBytes { p in _ = write(2, p.baseAddress, p.count) }
}

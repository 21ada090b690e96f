#if canImport(Glibc)
import Glibc
#endif

/// The most `readTextFile` reads by default: configuration and model files are small (the
/// default model is a few KiB); anything larger is a mistake (`model: /dev/zero`, a log file)
/// and must be refused at once rather than read forever.
public let maxTextFileBytes = 1 << 20

/// Reads a whole text file (model and configuration files), with the OS's reason on failure.
/// Reads at most `limit` bytes: a longer file (or an endless one such as `/dev/zero`) is
/// refused with the limit, after reading one byte past it.
public func readTextFile(_ path: String, limit: Int = maxTextFileBytes) throws -> String {
    guard let f = fopen(path, "rb") else {
        throw DaemonError(description: "cannot open \(path): \(String(cString: strerror(errno)))")
    }
    defer { fclose(f) }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 65_536)
    while true {
        // Never ask for more than one byte past the limit.
        let want = min(buf.count, limit + 1 - out.count)
        let n = fread(&buf, 1, want, f)
        if n > 0 { out.append(contentsOf: buf[0..<n]) }
        if out.count > limit {
            throw DaemonError(description: "\(path) is larger than \(limit) bytes, the limit for configuration and model files")
        }
        if n < want {
            if ferror(f) != 0 { throw DaemonError(description: "cannot read \(path): \(String(cString: strerror(errno)))") }
            break
        }
    }
    return String(decoding: out, as: UTF8.self)
}

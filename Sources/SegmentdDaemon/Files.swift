#if canImport(Glibc)
import Glibc
#endif

/// Reads a whole text file (model and configuration files), with the OS's reason on failure.
public func readTextFile(_ path: String) throws -> String {
    guard let f = fopen(path, "rb") else {
        throw DaemonError(description: "cannot open \(path): \(String(cString: strerror(errno)))")
    }
    defer { fclose(f) }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 65_536)
    while true {
        let n = fread(&buf, 1, buf.count, f)
        if n > 0 { out.append(contentsOf: buf[0..<n]) }
        if n < buf.count {
            if ferror(f) != 0 { throw DaemonError(description: "cannot read \(path): \(String(cString: strerror(errno)))") }
            break
        }
    }
    return String(decoding: out, as: UTF8.self)
}

import SegmentdEngine

/// libFuzzer's entry for programs that keep their own `main` (compiler-rt's
/// `FuzzerInterface.h`): parses the libFuzzer flags in `argv` and runs `callback` on every input.
@_silgen_name("LLVMFuzzerRunDriver")
private func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
) -> Int32

/// Runs libFuzzer with `body` as the fuzz callback. Call it from the target's `<module>_main`.
public func runFuzzer(
    _ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
) -> Int32 {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv, callback)
}

/// A broken invariant: crash with the reason, so libFuzzer records the input.
public func violated(_ reason: @autoclosure () -> String) -> Never {
    fatalError("fuzz invariant violated: \(reason())")
}

/// Calls `body` with each non-empty line of `data` (split on `\n`), each in its own
/// allocation of exactly its size, so AddressSanitizer sees a read past the end of a record.
public func forEachLine(_ data: UnsafeBufferPointer<UInt8>, _ body: (UnsafeBufferPointer<UInt8>) -> Void) {
    var start = 0
    while start <= data.count {
        var end = start
        while end < data.count && data[end] != 10 { end += 1 }
        if end > start {
            let line = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: end - start)
            _ = line.initialize(from: data[start..<end])
            body(UnsafeBufferPointer(line))
            line.deallocate()
        }
        start = end + 1
    }
}

/// The input as one exactly-sized buffer (libFuzzer's own is exact too, but may be empty/nil).
public func withExactCopy<R>(_ data: UnsafePointer<UInt8>?, _ size: Int, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
    let copy = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: size)
    defer { copy.deallocate() }
    if size > 0, let data { _ = copy.initialize(from: UnsafeBufferPointer(start: data, count: size)) }
    return body(UnsafeBufferPointer(copy))
}

/// Text form of bytes for messages.
public func text(_ b: [UInt8]) -> String {
    String(decoding: b, as: UTF8.self).debugDescription
}

#if canImport(Glibc)
import Glibc
#endif

/// `FUZZ_DEBUG=1`: targets say on stderr what became of each input (refused models, …),
/// for checking seeds by hand.
public let fuzzDebug = getenv("FUZZ_DEBUG") != nil

public func debugLog(_ s: @autoclosure () -> String) {
    guard fuzzDebug else { return }
    let line = Array((s() + "\n").utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}

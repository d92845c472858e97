#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Thin wrappers over the POSIX calls the `.lmmbin` writer and reader (and datagen's output
/// files) use, retrying short transfers and interrupted calls, and turning failures into errors naming the file:
/// ``LMMError/output(file:reason:)`` for a write, ``InputError`` for a read.
package enum FileIO {
    /// The text of the current `errno`.
    static var lastError: String { String(cString: strerror(errno)) }

    /// Writes all `count` bytes at `pointer` to `fd` at its current position.
    package static func writeAll(_ fd: Int32, _ pointer: UnsafeRawPointer, _ count: Int, file: String) throws {
        try transferAll(count, file: file) { done in write(fd, pointer + done, count - done) }
    }

    /// Writes all `count` bytes at `pointer` to `fd` at `offset`.
    static func pwriteAll(_ fd: Int32, _ pointer: UnsafeRawPointer, _ count: Int, offset: Int, file: String) throws {
        try transferAll(count, file: file) { done in pwrite(fd, pointer + done, count - done, off_t(offset + done)) }
    }

    /// Calls `step(done)` until `count` bytes are written, retrying interrupted calls.
    private static func transferAll(_ count: Int, file: String, _ step: (Int) -> Int) throws {
        var done = 0
        while done < count {
            let n = step(done)
            if n < 0 {
                if errno == EINTR { continue }
                throw LMMError.output(file: file, reason: "cannot write: \(lastError)")
            }
            done += n
        }
    }

    /// Reads exactly `count` bytes at `offset` into `pointer`; a short file is reported as
    /// truncated.
    static func preadAll(_ fd: Int32, _ pointer: UnsafeMutableRawPointer, _ count: Int, offset: Int, file: String) throws {
        var done = 0
        while done < count {
            let n = pread(fd, pointer + done, count - done, off_t(offset + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw InputError("cannot read: \(lastError)", file: file)
            }
            if n == 0 {
                throw InputError("truncated file: expected \(count) bytes at offset \(offset), found \(done)", file: file)
            }
            done += n
        }
    }

    /// Reads `count` bytes at `offset`.
    static func readBytes(_ fd: Int32, count: Int, offset: Int, file: String) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        try bytes.withUnsafeMutableBytes { buffer in
            guard let base = buffer.baseAddress else { return }
            try preadAll(fd, base, count, offset: offset, file: file)
        }
        return bytes
    }

    /// The size of the open file `fd`.
    static func size(_ fd: Int32, file: String) throws -> Int {
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw InputError("cannot stat: \(lastError)", file: file) }
        return Int(info.st_size)
    }

    /// The last path component, for messages.
    static func fileName(_ path: String) -> String {
        path.split(separator: "/", omittingEmptySubsequences: false).last.map(String.init) ?? path
    }
}

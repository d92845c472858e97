#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import MixedModels

/// A file written under a temporary name beside its destination and renamed into place by
/// ``commit()``; dropped without a commit, it removes the temporary file, so a failed run
/// leaves nothing behind.
final class OutputFile {
    let path: String
    private let temporaryPath: String
    private var fd: Int32
    private var committed = false

    init(path: String) throws {
        self.path = path
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { String(path[...$0]) } ?? ""
        let base = slash.map { String(path[path.index(after: $0)...]) } ?? path
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<100 {
            let candidate = directory + "." + base + ".tmp-" + String(generator.next() & 0xFFFF_FFFF, radix: 16)
            let fd = open(candidate, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
            if fd >= 0 {
                self.fd = fd
                temporaryPath = candidate
                return
            }
            if errno != EEXIST { break }
        }
        throw LMMError.output(file: path, reason: "cannot create the file: \(String(cString: strerror(errno)))")
    }

    deinit {
        if !committed {
            if fd >= 0 { close(fd) }
            unlink(temporaryPath)
        }
    }

    func append(_ pointer: UnsafeRawPointer, count: Int) throws {
        try FileIO.writeAll(fd, pointer, count, file: path)
    }

    func append(_ text: String) throws {
        var text = text
        try text.withUTF8 { bytes in
            if let base = bytes.baseAddress { try append(base, count: bytes.count) }
        }
    }

    /// Closes the file and renames it into place.
    func commit() throws {
        let result = close(fd)
        fd = -1
        guard result == 0 else { throw LMMError.output(file: path, reason: "cannot write: \(String(cString: strerror(errno)))") }
        guard rename(temporaryPath, path) == 0 else {
            throw LMMError.output(file: path, reason: "cannot create the file: \(String(cString: strerror(errno)))")
        }
        committed = true
    }
}

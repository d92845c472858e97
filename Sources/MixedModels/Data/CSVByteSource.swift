#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Where the CSV reader gets its bytes: a file read with `read(2)`, or an in-memory array.
///
/// The reader asks for one chunk at a time, so a file is never held in memory whole. An
/// in-memory source is served in chunks too, so that both go through the same code (and tests
/// can force rows to straddle chunk boundaries on small inputs).
final class CSVByteSource {
    private enum Storage {
        case file(descriptor: Int32)
        case memory([UInt8], offset: Int)
        case closed
    }

    private var storage: Storage
    /// Name for error messages (the file's last path component).
    let name: String
    private let path: String?

    /// Opens `path` for reading.
    init(path: String, name: String) throws {
        let descriptor = open(path, O_RDONLY)
        if descriptor < 0 {
            throw InputError("cannot open \"\(path)\": \(Self.systemError())", file: name)
        }
        storage = .file(descriptor: descriptor)
        self.name = name
        self.path = path
    }

    init(bytes: [UInt8], name: String) {
        storage = .memory(bytes, offset: 0)
        self.name = name
        self.path = nil
    }

    deinit { release() }

    /// Total size in bytes when known (a regular file, or memory): used to estimate the row
    /// count, and as the sign that the data can be read a second time (a pipe cannot).
    var size: Int? {
        switch storage {
        case .file(let descriptor):
            var info = stat()
            guard fstat(descriptor, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return nil }
            return Int(info.st_size)
        case .memory(let bytes, _): return bytes.count
        case .closed: return nil
        }
    }

    /// A new source positioned at the start of the same data (the reader's second pass).
    func reopened() throws -> CSVByteSource {
        switch storage {
        case .memory(let bytes, _): return CSVByteSource(bytes: bytes, name: name)
        case .file, .closed: return try CSVByteSource(path: path ?? name, name: name)
        }
    }

    /// Reads up to `capacity` bytes into `buffer`; returns how many were read, 0 at the end.
    func fill(_ buffer: UnsafeMutablePointer<UInt8>, capacity: Int) throws -> Int {
        switch storage {
        case .file(let descriptor):
            while true {
                let count = read(descriptor, buffer, capacity)
                if count >= 0 { return count }
                if errno == EINTR { continue }
                throw InputError("cannot read \"\(path ?? name)\": \(Self.systemError())", file: name)
            }
        case .memory(let bytes, let offset):
            let count = min(capacity, bytes.count - offset)
            if count > 0 {
                bytes.withUnsafeBufferPointer { source in
                    buffer.update(from: source.baseAddress! + offset, count: count)
                }
            }
            storage = .memory(bytes, offset: offset + count)
            return count
        case .closed:
            return 0
        }
    }

    /// Releases the file descriptor (also done on deinit).
    func release() {
        if case .file(let descriptor) = storage { _ = close(descriptor) }
        storage = .closed
    }

    private static func systemError() -> String {
        String(cString: strerror(errno))
    }
}

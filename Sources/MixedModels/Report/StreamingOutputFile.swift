#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An output file written in pieces, all-or-nothing like ``OutputFiles``: the bytes go to a
/// temporary file beside the destination through a 1 MiB buffer, and only ``commit()`` renames
/// it into place. Discarded (the temporary file removed) when not committed.
final class StreamingOutputFile {
    private let destination: String
    private let temporary: String
    private var descriptor: Int32
    private var buffer: [UInt8] = []
    private static let flushSize = 1 << 20

    /// Creates the temporary file next to `path`.
    /// - Throws: ``InputError`` naming the file when it cannot be created.
    init(path: String) throws {
        destination = path
        let directory = Self.directory(of: path)
        let name = FileIO.fileName(path)
        temporary = (directory.isEmpty ? "." : directory) + "/.\(name).tmp-\(getpid())"
        descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        if descriptor < 0 {
            throw InputError("cannot write the output file (does the directory exist and is it writable?)", file: path)
        }
        buffer.reserveCapacity(Self.flushSize + 4096)
    }

    deinit { discard() }

    /// Appends text.
    @inline(__always)
    func write(_ text: String) throws {
        buffer.append(contentsOf: text.utf8)
        if buffer.count >= Self.flushSize { try flush() }
    }

    /// Appends bytes.
    func write(bytes: [UInt8]) throws {
        buffer.append(contentsOf: bytes)
        if buffer.count >= Self.flushSize { try flush() }
    }

    private func flush() throws {
        guard !buffer.isEmpty else { return }
        try buffer.withUnsafeBytes { bytes in
            try FileIO.writeAll(descriptor, bytes.baseAddress!, bytes.count, file: destination)
        }
        buffer.removeAll(keepingCapacity: true)
    }

    /// Writes what is buffered, closes the file and renames it into place.
    func commit() throws {
        do {
            try flush()
        } catch {
            discard()
            throw error
        }
        close(descriptor)
        descriptor = -1
        if rename(temporary, destination) != 0 {
            let reason = FileIO.lastError
            unlink(temporary)
            throw InputError("cannot move the output into place: \(reason)", file: destination)
        }
    }

    /// The directory part of `path` ("" for a bare file name).
    private static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "" }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// Closes and removes the temporary file (nothing happens after ``commit()``).
    func discard() {
        guard descriptor >= 0 else { return }
        close(descriptor)
        descriptor = -1
        unlink(temporary)
    }
}

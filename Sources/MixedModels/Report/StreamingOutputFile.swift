#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An output file written in pieces, all-or-nothing like ``OutputFiles``: for a regular file
/// (symbolic links resolved, ``OutputTarget``) the bytes go to a temporary file beside the real
/// file through a 1 MiB buffer, and only ``commit()`` renames it into place with the mode and
/// owner of the file it replaces; the temporary file is removed when not committed, and on a
/// signal (``SignalCleanup``). A device, FIFO or `-` (standard output) is written directly.
package final class StreamingOutputFile {
    /// The real file renamed into place at commit; nil when writing directly.
    private let destination: String?
    private let temporary: String?
    /// The name in messages.
    private let name: String
    private var descriptor: Int32
    private var buffer: [UInt8] = []
    private static let flushSize = 1 << 20

    /// Opens `path` for writing: a temporary file beside a regular file, or the device itself.
    /// - Throws: ``LMMError/output(file:reason:)`` naming the file when it cannot be created.
    package init(path: String) throws {
        name = FileIO.fileName(path)
        switch try OutputTarget.resolve(path) {
        case .descriptor(let number):
            (destination, temporary, descriptor) = (nil, nil, dup(number))
        case .stream(let device):
            (destination, temporary) = (nil, nil)
            descriptor = open(device, O_WRONLY | O_CLOEXEC)
        case .file(let real, let existing):
            let temporary: String
            (descriptor, temporary) = try OutputTarget.temporaryFile(beside: real, file: name)
            (destination, self.temporary) = (real, temporary)
            if let existing, !OutputTarget.adopt(existing, fd: descriptor) {
                close(descriptor)
                unlink(temporary)
                SignalCleanup.unregister(temporary)
                throw LMMError.output(file: name, reason: "cannot give the new file the owner of the one it replaces")
            }
        }
        if descriptor < 0 {
            throw LMMError.output(file: name, reason: "cannot open the output file: \(FileIO.lastError)")
        }
        buffer.reserveCapacity(Self.flushSize + 4096)
    }

    deinit { discard() }

    /// Appends text.
    @inline(__always)
    package func write(_ text: String) throws {
        buffer.append(contentsOf: text.utf8)
        if buffer.count >= Self.flushSize { try flush() }
    }

    /// Appends bytes.
    package func write(bytes: [UInt8]) throws {
        buffer.append(contentsOf: bytes)
        if buffer.count >= Self.flushSize { try flush() }
    }

    private func flush() throws {
        guard !buffer.isEmpty else { return }
        try buffer.withUnsafeBytes { bytes in
            try FileIO.writeAll(descriptor, bytes.baseAddress!, bytes.count, file: name)
        }
        buffer.removeAll(keepingCapacity: true)
    }

    /// Writes what is buffered, closes the file and renames a temporary file into place.
    package func commit() throws {
        do {
            try flush()
        } catch {
            discard()
            throw error
        }
        let closed = close(descriptor)
        descriptor = -1
        guard let temporary, let destination else { return }
        defer { SignalCleanup.unregister(temporary) }
        if closed != 0 || rename(temporary, destination) != 0 {
            let reason = FileIO.lastError
            unlink(temporary)
            throw LMMError.output(file: name, reason: "cannot move the output into place: \(reason)")
        }
    }

    /// Closes and removes the temporary file (nothing happens after ``commit()``).
    package func discard() {
        guard descriptor >= 0 else { return }
        close(descriptor)
        descriptor = -1
        if let temporary {
            unlink(temporary)
            SignalCleanup.unregister(temporary)
        }
    }
}

import Foundation

/// Writes output files all-or-nothing: each regular file is written to a temporary file beside
/// its destination (beside the real file, when the path is a symbolic link), and only when every
/// one is written are they renamed into place, with the mode and owner of the file they replace.
/// A failed or interrupted run leaves no output file (and no temporary one: the temporary files
/// are registered with ``SignalCleanup``). Character devices, FIFOs (`/dev/null`, a named pipe),
/// `-` and `/dev/stdout` (standard output) are written directly, never replaced (``OutputTarget``).
package struct OutputFiles {
    private var staged: [(temporary: String, destination: String)] = []
    /// Outputs written at commit: streams, standard output, and files whose owner a rename would
    /// change (another user's file), written in place.
    private var direct: [(contents: String, target: OutputTarget, path: String)] = []

    package init() {}

    /// Writes `contents` to a temporary file next to `path` (or keeps it for ``commit()`` when
    /// `path` is a device, FIFO or `-`).
    /// - Throws: ``LMMError/output(file:reason:)`` naming the file when it cannot be written, with the reason.
    package mutating func stage(_ contents: String, at path: String) throws {
        let target: OutputTarget
        do { target = try OutputTarget.resolve(path) } catch { discard(); throw error }
        guard case .file(let destination, let existing) = target else {
            direct.append((contents, target, path))
            return
        }
        let (fd, temporary): (Int32, String)
        do {
            (fd, temporary) = try OutputTarget.temporaryFile(beside: destination, file: FileIO.fileName(path))
        } catch {
            discard()
            throw error
        }
        do {
            var bytes = Array(contents.utf8)
            if !bytes.isEmpty {
                try bytes.withUnsafeMutableBytes { try FileIO.writeAll(fd, $0.baseAddress!, $0.count, file: FileIO.fileName(path)) }
            }
            if let existing, !OutputTarget.adopt(existing, fd: fd) {
                close(fd)
                unlink(temporary)
                SignalCleanup.unregister(temporary)
                direct.append((contents, .stream(path: destination), path))
                return
            }
            guard close(fd) == 0 else { throw LMMError.output(file: FileIO.fileName(path), reason: "cannot write: \(FileIO.lastError)") }
            bytes = []
        } catch {
            close(fd)
            unlink(temporary)
            SignalCleanup.unregister(temporary)
            discard()
            throw error
        }
        staged.append((temporary, destination))
    }

    /// Throws ``LMMError/output(file:reason:)`` when an output would overwrite an input or another output: the same
    /// file by device and inode, whatever the names (``OutputTarget/checkDistinct(inputs:outputs:)``).
    package static func checkDistinct(inputs: [(path: String, role: String)], outputs: [(path: String, role: String)]) throws {
        try OutputTarget.checkDistinct(inputs: inputs, outputs: outputs)
    }

    /// Writes the direct outputs, then renames every staged file into place.
    package mutating func commit() throws {
        for output in direct {
            do {
                try Self.writeDirectly(output.contents, to: output.target, name: FileIO.fileName(output.path))
            } catch {
                discard()
                throw error
            }
        }
        direct = []
        for (index, file) in staged.enumerated() where rename(file.temporary, file.destination) != 0 {
            let reason = String(cString: strerror(errno))
            for later in staged[index...] {
                unlink(later.temporary)
                SignalCleanup.unregister(later.temporary)
            }
            staged = []
            throw LMMError.output(file: file.destination, reason: "cannot move the output into place: \(reason)")
        }
        for file in staged { SignalCleanup.unregister(file.temporary) }
        staged = []
    }

    /// Removes every staged temporary file.
    package mutating func discard() {
        for file in staged {
            unlink(file.temporary)
            SignalCleanup.unregister(file.temporary)
        }
        staged = []
        direct = []
    }

    /// Writes `contents` to standard output or opens the stream (or file) and writes it.
    private static func writeDirectly(_ contents: String, to target: OutputTarget, name: String) throws {
        var bytes = Array(contents.utf8)
        let fd: Int32
        switch target {
        case .descriptor(let number):
            fflush(nil)
            fd = number
        case .stream(let path), .file(let path, _):
            fd = open(path, O_WRONLY | O_CLOEXEC | (isRegular(path) ? O_TRUNC : 0))
            guard fd >= 0 else { throw LMMError.output(file: name, reason: "cannot open for writing: \(FileIO.lastError)") }
        }
        defer { if case .descriptor = target {} else { close(fd) } }
        guard !bytes.isEmpty else { return }
        try bytes.withUnsafeMutableBytes { try FileIO.writeAll(fd, $0.baseAddress!, $0.count, file: name) }
    }

    private static func isRegular(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFREG
    }
}

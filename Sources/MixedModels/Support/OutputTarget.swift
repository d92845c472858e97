#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// What an output path names, and so how to write it without destroying anything:
/// - a regular file or a new name: written to a temporary file beside the real file (symbolic
///   links resolved, so a link is written through, not replaced) and renamed over it, keeping an
///   existing file's mode and owner;
/// - a character device, FIFO or socket (`/dev/null`, a named pipe): written directly, never
///   replaced;
/// - `-`, `/dev/stdout`, `/dev/stderr`, `/dev/fd/N`, `/proc/self/fd/N`: this process's open
///   descriptor, written through — never resolved to the file it may be redirected to (a rename
///   there would leave the shell writing to the replaced file, and where `/dev/stdout` is not the
///   usual link it would replace the name itself).
package enum OutputTarget: Equatable {
    /// An open descriptor of this process (1: standard output).
    case descriptor(Int32)
    /// A device, FIFO or socket, opened and written in place.
    case stream(path: String)
    /// A regular file (existing or new) at `path`, symbolic links resolved: atomic replacement.
    case file(path: String, existing: ExistingFile?)

    /// The mode and owner of a regular file being replaced, to give the new one.
    package struct ExistingFile: Equatable {
        var mode: mode_t
        var owner: uid_t
        var group: gid_t
    }

    /// The target `path` names.
    /// - Throws: ``LMMError/output(file:reason:)`` when it is a directory or a link loop.
    package static func resolve(_ path: String) throws -> OutputTarget {
        if path == "-" { return .descriptor(STDOUT_FILENO) }
        let file = FileIO.fileName(path)
        if let fd = descriptorNamed(path) {
            guard fcntl(fd, F_GETFD) != -1 else {
                throw LMMError.output(file: file, reason: "names descriptor \(fd), which is not open in this process")
            }
            return .descriptor(fd)
        }
        var info = stat()
        if stat(path, &info) == 0 {
            switch info.st_mode & S_IFMT {
            case S_IFREG:
                let existing = ExistingFile(mode: info.st_mode & 0o7777, owner: info.st_uid, group: info.st_gid)
                return .file(path: try resolveLinks(path, file: file), existing: existing)
            case S_IFDIR:
                throw LMMError.output(file: file, reason: "is a directory; give a file name for the output")
            default:
                return .stream(path: path)
            }
        }
        return .file(path: try resolveLinks(path, file: file), existing: nil)
    }

    /// The descriptor a path names by convention: `/dev/stdout` 1, `/dev/stderr` 2, `/dev/fd/N`
    /// and `/proc/self/fd/N` N; nil for any other path.
    static func descriptorNamed(_ path: String) -> Int32? {
        switch path {
        case "/dev/stdout": return STDOUT_FILENO
        case "/dev/stderr": return STDERR_FILENO
        default:
            for prefix in ["/dev/fd/", "/proc/self/fd/"] where path.hasPrefix(prefix) {
                let digits = path.dropFirst(prefix.count)
                if !digits.isEmpty, digits.allSatisfy(\.isASCII), let fd = Int32(digits), fd >= 0 { return fd }
            }
            return nil
        }
    }

    /// `path` with its symbolic links followed (a dangling link to the file it would create).
    static func resolveLinks(_ path: String, file: String) throws -> String {
        var current = path
        for _ in 0..<40 {
            var info = stat()
            guard lstat(current, &info) == 0, info.st_mode & S_IFMT == S_IFLNK else { return current }
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let count = readlink(current, &buffer, buffer.count - 1)
            guard count >= 0 else { throw LMMError.output(file: file, reason: "cannot read the symbolic link: \(FileIO.lastError)") }
            let target = String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if target.hasPrefix("/") {
                current = target
            } else if let slash = current.lastIndex(of: "/") {
                current = String(current[...slash]) + target
            } else {
                current = target
            }
        }
        throw LMMError.output(file: file, reason: "too many levels of symbolic links")
    }

    /// The identity (device, inode) of the existing file at `path`, following links.
    static func identity(_ path: String) -> (dev: UInt64, ino: UInt64, regular: Bool)? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return (UInt64(info.st_dev), UInt64(info.st_ino), info.st_mode & S_IFMT == S_IFREG)
    }

    /// Throws when an output would overwrite an input or another output: the same file by device
    /// and inode (whatever its name), or two outputs with the same new name. Devices such as
    /// `/dev/null` may be named more than once.
    /// - Parameters:
    ///   - inputs: the files read, with what they are (`"the data"`, `"--variances"`).
    ///   - outputs: the files written, with the option naming each (`"--json"`).
    package static func checkDistinct(inputs: [(path: String, role: String)], outputs: [(path: String, role: String)]) throws {
        for (k, output) in outputs.enumerated() where output.path != "-" {
            let file = FileIO.fileName(output.path)
            if let id = identity(output.path) {
                for input in inputs {
                    if let other = identity(input.path), other.dev == id.dev, other.ino == id.ino, id.regular || input.path == output.path {
                        throw LMMError.output(file: file, reason: "\(output.role) would overwrite \(input.role) (the same file); choose another output file")
                    }
                }
                for earlier in outputs[..<k] {
                    if let other = identity(earlier.path), other.dev == id.dev, other.ino == id.ino, id.regular {
                        throw LMMError.output(file: file, reason: "\(output.role) and \(earlier.role) name the same file; give each its own")
                    }
                }
            } else {
                let name = canonicalNew(output.path)
                for earlier in outputs[..<k] where identity(earlier.path) == nil && canonicalNew(earlier.path) == name {
                    throw LMMError.output(file: file, reason: "\(output.role) and \(earlier.role) name the same file; give each its own")
                }
            }
        }
    }

    /// For a file that does not exist yet: its directory's identity and its name.
    private static func canonicalNew(_ path: String) -> String {
        let resolved = (try? resolveLinks(path, file: path)) ?? path
        let slash = resolved.lastIndex(of: "/")
        let directory = slash.map { String(resolved[...$0]) } ?? "."
        let name = slash.map { String(resolved[resolved.index(after: $0)...]) } ?? resolved
        guard let id = identity(directory.isEmpty ? "/" : directory) else { return resolved }
        return "\(id.dev):\(id.ino)/\(name)"
    }

    /// Creates a new temporary file beside `destination` (a resolved regular file's path),
    /// registered with ``SignalCleanup`` so an interrupted run removes it.
    /// - Throws: ``LMMError/output(file:reason:)`` for `file` when it cannot be created.
    static func temporaryFile(beside destination: String, file: String) throws -> (descriptor: Int32, path: String) {
        let slash = destination.lastIndex(of: "/")
        let directory = slash.map { String(destination[...$0]) } ?? "./"
        let name = slash.map { String(destination[destination.index(after: $0)...]) } ?? destination
        let path = directory + ".\(name).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
        guard descriptor >= 0 else {
            throw LMMError.output(file: file, reason: "cannot create the output file in its directory: \(FileIO.lastError)")
        }
        SignalCleanup.register(path)
        return (descriptor, path)
    }

    /// Gives the temporary file `fd` an existing file's mode and owner before it replaces it.
    /// Returns false when the owner cannot be kept (another user's file): the caller then writes
    /// the file in place instead.
    static func adopt(_ existing: ExistingFile, fd: Int32) -> Bool {
        if existing.owner != geteuid() || existing.group != getegid() {
            guard fchown(fd, existing.owner, existing.group) == 0 else { return false }
        }
        return fchmod(fd, existing.mode) == 0
    }
}

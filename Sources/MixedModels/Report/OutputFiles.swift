import Foundation

/// Writes output files all-or-nothing: each is written to a temporary file beside its
/// destination, and only when every one is written are they renamed into place. A failed
/// run leaves no output file (and no temporary one).
package struct OutputFiles {
    private var staged: [(temporary: String, destination: String)] = []

    package init() {}

    /// Writes `contents` to a temporary file next to `path`.
    /// - Throws: ``LMMError/output(file:reason:)`` naming the file when it cannot be written.
    package mutating func stage(_ contents: String, at path: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        let name = (path as NSString).lastPathComponent
        let temporary = (directory.isEmpty ? "." : directory) + "/.\(name).tmp-\(getpid())-\(staged.count)"
        guard FileManager.default.createFile(atPath: temporary, contents: Data(contents.utf8)) else {
            discard()
            throw LMMError.output(file: path, reason: "cannot write the output file (does the directory exist and is it writable?)")
        }
        staged.append((temporary, path))
    }

    /// Renames every staged file into place.
    /// - Throws: ``LMMError/output(file:reason:)`` naming the file that cannot be moved.
    package mutating func commit() throws {
        for (index, file) in staged.enumerated() where rename(file.temporary, file.destination) != 0 {
            let reason = String(cString: strerror(errno))
            for later in staged[index...] { unlink(later.temporary) }
            staged = []
            throw LMMError.output(file: file.destination, reason: "cannot move the output into place: \(reason)")
        }
        staged = []
    }

    /// Removes every staged temporary file.
    package mutating func discard() {
        for file in staged { unlink(file.temporary) }
        staged = []
    }
}

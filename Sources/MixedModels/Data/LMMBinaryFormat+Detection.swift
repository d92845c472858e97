import Foundation

extension LMMBinaryFormat {
    /// True when the file at `path` starts with the `.lmmbin` magic number (so a command can take
    /// either a CSV or an `.lmmbin` file, whatever its name).
    public static func isBinaryFile(path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        guard let start = try? handle.read(upToCount: magic.count) else { return false }
        return Array(start) == magic
    }
}

extension LMMBinaryReader {
    /// Opens an `.lmmbin` file for streaming; when it is cut short, says at which row.
    ///
    /// The reader rejects a truncated file when it opens it (its footer is gone), with the byte
    /// offsets; a user wants the row: this adds which row the data end in and how many are whole.
    /// - Parameter group: the processes reading the file together (see ``LMMBinaryReader/group``).
    public static func openForStreaming(path: String, group: any ProcessGroup = SingleProcess()) throws -> LMMBinaryReader {
        try LMMBinaryReader(path: path, group: group, describingTruncation: true)
    }

    /// For a file shorter than its header promises: where its data end, in rows.
    static func truncation(path: String) -> String? {
        let file = FileIO.fileName(path)
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        guard let size = try? FileIO.size(fd, file: file), size >= LMMBinaryFormat.fixedHeaderSize,
              let fixed = try? FileIO.readBytes(fd, count: LMMBinaryFormat.fixedHeaderSize, offset: 0, file: file),
              Array(fixed[0..<8]) == LMMBinaryFormat.magic,
              fixed[54] == 0 && fixed[55] == 0 else { return nil }    // a shard: its rows are parts of chunks
        var cursor = LMMBinaryCursor(fixed, file: file, part: "header")
        cursor.position = 12
        guard let columnCount = try? cursor.read(UInt32.self), let rowCount = try? cursor.read(UInt64.self),
              let rowsPerChunk = try? cursor.read(UInt64.self), let dataOffset = try? cursor.read(UInt64.self),
              rowsPerChunk >= 1, rowsPerChunk <= UInt64(Int32.max), dataOffset <= UInt64(size),
              let header = try? FileIO.readBytes(fd, count: Int(dataOffset), offset: 0, file: file) else { return nil }
        cursor = LMMBinaryCursor(header, file: file, part: "header")
        cursor.position = LMMBinaryFormat.fixedHeaderSize
        var columns: [LMMBinaryColumn] = []
        for _ in 0..<columnCount {
            guard let raw = try? cursor.read(UInt8.self), let kind = LMMBinaryColumn.Kind(rawValue: raw),
                  (try? cursor.readBytes(3)) != nil, let length = try? cursor.read(UInt32.self),
                  (try? cursor.readBytes(Int(length))) != nil else { return nil }
            columns.append(LMMBinaryColumn(name: "c\(columns.count)", kind: kind))
        }
        let layout = LMMBinaryLayout(columns: columns, rowsPerChunk: Int(rowsPerChunk), dataOffset: Int(dataOffset))
        guard rowCount <= UInt64(size) else { return nil }
        let rows = Int(rowCount)
        // An unfinished file has no row count: count the whole chunks that fit.
        guard let footer = layout.checkedFooterOffset(rowCount: rows) else { return nil }
        let expected = rows > 0 ? footer : Int.max
        guard size < expected else { return nil }
        let chunkBytes = layout.chunkByteCount(rows: Int(rowsPerChunk))
        let wholeChunks = (size - Int(dataOffset)) / max(chunkBytes, 1)
        let complete = min(wholeChunks * Int(rowsPerChunk), rows > 0 ? rows : Int.max)
        if rows > 0 {
            // Chunks are columnar: a chunk cut short leaves every one of its rows incomplete.
            return "the file ends inside chunk \(wholeChunks + 1), which holds rows \(complete + 1) to "
                + "\(min(complete + Int(rowsPerChunk), rows)): "
                + (complete == 0 ? "none of its \(rows) rows is complete" : "only rows 1 to \(complete) of \(rows) are complete")
        }
        return "the writer did not finish: \(complete) rows in whole chunks"
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

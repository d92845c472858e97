#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Splits an `.lmmbin` file into a set of K shards (``LMMBinaryShardSet``), one per rank of an
/// MPI job: shard s gets its part of every chunk of the file, rows ⌊n·s/K⌋ ..< ⌊n·(s+1)/K⌋ of a
/// chunk of n rows (``LMMBinaryShardID/rows(ofChunkRows:)``), with the same columns, rows per
/// chunk, row count and levels in its header, marking it shard s of K.
public enum LMMBinarySharding {
    /// The path of shard `index` of `count` of the output `path`: `OUT.lmmbin` →
    /// `OUT.index-of-count.lmmbin` (before the last extension, if the name has one).
    public static func shardPath(_ path: String, index: Int, count: Int) -> String {
        LMMBinaryShardSet.shardPath(path, index: index, count: count)
    }

    /// Writes the K shards of `reader`'s file beside `output` (`OUT.lmmbin` →
    /// `OUT.0-of-K.lmmbin` …), each to a temporary file; they are renamed into place together
    /// once all are complete, so a failure leaves none of them.
    /// - Returns: the shards' paths, in order.
    /// - Throws: ``InputError`` when K is not between 1 and 32,767 or exceeds the rows of the
    ///   file's first chunk (a shard would hold no row of it), for a read error;
    ///   ``LMMError/output(file:reason:)`` when a shard cannot be written.
    @discardableResult
    public static func split(_ reader: LMMBinaryReader, to output: String, shards count: Int) throws -> [String] {
        guard (1...LMMBinaryShardID.maximumCount).contains(count) else {
            throw InputError("--shards must be between 1 and \(LMMBinaryShardID.maximumCount), got \(count)")
        }
        let first = reader.chunkCount == 0 ? 0 : reader.rowCount(ofChunk: 0)
        guard first >= count else {
            throw InputError("each of the \(count) shards holds its part of every chunk, but the first chunk has only \(first) "
                             + "row\(first == 1 ? "" : "s")" + (reader.rowCount > first ? " (use --rows-per-chunk \(count) or more)" : ""),
                             file: FileIO.fileName(reader.path))
        }
        let ids = (0..<count).map { LMMBinaryShardID(index: $0, count: count) }
        let paths = (0..<count).map { LMMBinaryShardSet.shardPath(output, index: $0, count: count) }
        let writers = try zip(ids, paths).map { id, path in
            try LMMBinaryWriter(path: path, columns: reader.columns, rowsPerChunk: reader.rowsPerChunk, shard: id)
        }
        for writer in writers {
            for column in reader.columns where column.kind == .factor {
                try writer.setLevels(reader.levels(of: column.name)!, forColumn: column.name)
            }
        }
        var chunk = LMMBinaryChunk()
        for c in 0..<reader.chunkCount {
            try reader.readChunk(c, into: &chunk)
            for (id, writer) in zip(ids, writers) {
                let rows = id.rows(ofChunkRows: chunk.rowCount)
                let part = reader.columns.indices.map { j -> LMMBinaryColumnValues in
                    reader.columns[j].kind == .float64 ? .float64(Array(chunk.doubles[j][rows])) : .factor(Array(chunk.codeArrays[j][rows]))
                }
                try writer.appendPart(part, ofChunkRows: chunk.rowCount)
            }
        }
        for writer in writers { try writer.complete() }
        var published: [String] = []
        do {
            for (writer, path) in zip(writers, paths) {
                try writer.publish()
                published.append(path)
            }
        } catch {
            for path in published { unlink(path) }
            throw error
        }
        return paths
    }
}

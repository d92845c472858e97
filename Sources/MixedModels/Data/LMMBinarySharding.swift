#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Splits an `.lmmbin` file into a set of K shards (``LMMBinaryShardSet``), one per rank of an
/// MPI job: shard s gets chunks s, s + K, s + 2K, … of the file, whole, with the same columns,
/// rows per chunk and levels, its header marking it shard s of K.
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
    /// - Throws: ``InputError`` when K is not between 1 and 65,535 or exceeds the file's chunks
    ///   (a shard would be empty), for a read error; ``LMMError/output(file:reason:)`` when a
    ///   shard cannot be written.
    @discardableResult
    public static func split(_ reader: LMMBinaryReader, to output: String, shards count: Int) throws -> [String] {
        guard (1...Int(UInt16.max)).contains(count) else {
            throw InputError("--shards must be between 1 and \(UInt16.max), got \(count)")
        }
        guard reader.chunkCount >= count else {
            throw InputError("\(reader.rowCount) rows make \(reader.chunkCount) chunk\(reader.chunkCount == 1 ? "" : "s") of "
                             + "\(reader.rowsPerChunk) rows: fewer than \(count) shards, and every shard needs a chunk "
                             + "(use --rows-per-chunk \(max(1, reader.rowCount / count)) or less)", file: FileIO.fileName(reader.path))
        }
        let paths = (0..<count).map { LMMBinaryShardSet.shardPath(output, index: $0, count: count) }
        let writers = try paths.enumerated().map { s, path in
            try LMMBinaryWriter(path: path, columns: reader.columns, rowsPerChunk: reader.rowsPerChunk,
                                shard: LMMBinaryShardID(index: s, count: count))
        }
        for writer in writers {
            for column in reader.columns where column.kind == .factor {
                try writer.setLevels(reader.levels(of: column.name)!, forColumn: column.name)
            }
        }
        var chunk = LMMBinaryChunk()
        for c in 0..<reader.chunkCount {
            try reader.readChunk(c, into: &chunk)
            let batch = reader.columns.indices.map { j -> LMMBinaryColumnValues in
                reader.columns[j].kind == .float64 ? .float64(chunk.doubles[j]) : .factor(chunk.codeArrays[j])
            }
            try writers[c % count].append(batch)
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

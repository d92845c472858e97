/// The rows of an `.lmmbin` file one process of a group holds: from a whole file the chunks it
/// owns, from a shard set its shard's part of every chunk.
public struct LMMBinaryShare: Sendable {
    /// The held rows, in file order, with every column and every factor's levels
    /// (all the file's levels, in R's order, used here or not).
    public let table: DataTable
    /// The pieces held, increasing: the data in file order is pieces 0, 1, 2, …, piece g held by
    /// rank g mod K. From a whole file piece c is chunk c; from a set of K shards, piece c·K + r
    /// is shard r's part of chunk c.
    public let chunks: [Int]
    /// Rows of each held piece.
    public let rowCounts: [Int]
    /// Rows of the whole file.
    public let totalRowCount: Int
    /// What is held, for messages: `chunks 2, 5 of 6`, or `its part of each of the 6 chunks (shard 1 of 3)`.
    public let held: String
}

extension LMMBinaryReader {
    /// Reads what this process owns of the data in its ``group`` (``ownChunks``: from a whole
    /// file chunk c by rank c mod K, from a shard set every chunk's part by its shard's rank) into
    /// a ``DataTable``, from disk, without sending it anywhere. Collective: a read error on any
    /// process is thrown on every process, with its message and rank.
    /// - Throws: ``InputError`` as ``readChunk(_:into:)``.
    public func readShare() throws -> LMMBinaryShare {
        let own = ownChunks
        let sliced = readsParts
        let part = LMMBinaryShardID(index: group.rank, count: group.size)
        let rowCounts = own.map { sliced ? part.rows(ofChunkRows: rowCount(ofChunk: $0)).count : rowCount(ofChunk: $0) }
        let rows = rowCounts.reduce(0, +)
        let table = try group.agreeing { () throws -> DataTable in
            try readTable(chunks: own, rows: rows, shared: false)
        }
        let held = sliced ? "its part of each of the \(chunkCount) chunks (shard \(group.rank) of \(group.size))"
            : "chunks \(own.map { String($0 + 1) }.joined(separator: ", ")) of \(chunkCount)"
        return LMMBinaryShare(table: table, chunks: sliced ? own.map { $0 * group.size + group.rank } : own,
                              rowCounts: rowCounts, totalRowCount: rowCount, held: held)
    }
}

/// The rows of an `.lmmbin` file one process of a group holds: the chunks it owns.
public struct LMMBinaryShare: Sendable {
    /// The owned chunks' rows, in file order, with every column and every factor's levels
    /// (all the file's levels, in R's order, used here or not).
    public let table: DataTable
    /// The owned chunks (`c` with c mod K = rank), increasing.
    public let chunks: [Int]
    /// Rows of each owned chunk.
    public let rowCounts: [Int]
    /// Rows of the whole file.
    public let totalRowCount: Int
}

extension LMMBinaryReader {
    /// Reads the chunks this process owns in its ``group`` (chunk c by rank c mod K) into a
    /// ``DataTable``, from disk, without sending them anywhere. Collective: a read error on any
    /// process is thrown on every process, with its message and rank.
    /// - Throws: ``InputError`` as ``readChunk(_:into:)``.
    public func readShare() throws -> LMMBinaryShare {
        let chunks = Array(stride(from: group.rank, to: chunkCount, by: group.size))
        let rowCounts = chunks.map { rowCount(ofChunk: $0) }
        let rows = rowCounts.reduce(0, +)
        let table = try group.agreeing { () throws -> DataTable in
            try readTable(chunks: chunks, rows: rows, shared: false)
        }
        return LMMBinaryShare(table: table, chunks: chunks, rowCounts: rowCounts, totalRowCount: rowCount)
    }
}

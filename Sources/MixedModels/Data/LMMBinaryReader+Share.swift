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
            var doubles = columns.map { $0.kind == .float64 ? [Double](repeating: 0, count: rows) : [] }
            var codes = columns.map { $0.kind == .factor ? [Int32](repeating: 0, count: rows) : [] }
            var chunk = LMMBinaryChunk()
            var first = 0
            for c in chunks {
                try readChunk(c, into: &chunk, shared: false)
                let range = first..<first + chunk.rowCount
                for j in columns.indices {
                    switch columns[j].kind {
                    case .float64: doubles[j].replaceSubrange(range, with: chunk.doubles[j])
                    case .factor: codes[j].replaceSubrange(range, with: chunk.codeArrays[j])
                    }
                }
                first += chunk.rowCount
            }
            var table: [String: Column] = [:]
            for (j, column) in columns.enumerated() {
                switch column.kind {
                case .float64:
                    table[column.name] = .numeric(doubles[j])
                case .factor:
                    table[column.name] = .categorical(Self.inROrder(Factor(codes: codes[j], levels: levels(of: column.name)!)))
                }
            }
            return DataTable(source: FileIO.fileName(path), columnNames: columns.map(\.name), columns: table, rowCount: rows)
        }
        return LMMBinaryShare(table: table, chunks: chunks, rowCounts: rowCounts, totalRowCount: rowCount)
    }
}

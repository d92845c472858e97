#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads an `.lmmbin` file (``LMMBinaryFormat``): the header and footer when opened, then any
/// chunk on demand into buffers the caller reuses.
///
/// Opening checks everything that can be checked without reading the data: the magic, the
/// version, the column descriptors, that the data section and footer have exactly the sizes
/// the header implies (so a truncated or padded file is rejected), and the level labels.
/// Reading a chunk checks that every factor code is `-1` or a level. Reads use `pread`, so
/// several threads may read chunks at once (each into its own ``LMMBinaryChunk``).
///
///     let reader = try LMMBinaryReader(path: "data.lmmbin")
///     var chunk = LMMBinaryChunk()
///     for c in 0..<reader.chunkCount {
///         try reader.readChunk(c, into: &chunk)
///         let y = chunk.float64(0)        // chunk.rowCount values
///     }
public final class LMMBinaryReader: Sendable {
    /// The file read (for a shard set, the shard named on the command line).
    public let path: String
    /// The columns, in file order.
    public let columns: [LMMBinaryColumn]
    /// Number of data rows (of the whole set, for a shard set).
    public let rowCount: Int
    /// Rows in every chunk but the last.
    public let rowsPerChunk: Int

    private let layout: LMMBinaryLayout
    private let file: String
    /// The files: one for a whole file; for a set of K shards, K, shard s holding the chunks c
    /// with c mod K = s (chunk c is its chunk c / K). Nil for another rank's shard.
    private let parts: [LMMBinaryFile?]
    /// Level labels of each column in code order (empty for float64 columns).
    private let levelLabels: [[String]]
    /// The processes reading the file together: chunk c is read from disk by rank c mod K and
    /// broadcast to the others (``readChunk(_:into:)``); alone, this process reads every chunk.
    public let group: any ProcessGroup

    /// Opens the file and reads its header and footer.
    ///
    /// A name `NAME.s-of-K.lmmbin` is a shard of a set written by `lmm convert --shards K`
    /// (``LMMBinaryShardSet``): one process opens all K shards and reads them as one file; on K
    /// ranks each rank opens only its own shard (rank r, `NAME.r-of-K.lmmbin`), and the ranks
    /// check that their shards make one set (collective).
    /// - Parameter group: the processes reading the file together (every one opens it; see
    ///   ``group``); this process alone by default. Collective: a failure on any process is
    ///   thrown on every process, with its message and rank.
    /// - Throws: ``InputError`` naming the file when it cannot be read, is not an lmmbin file
    ///   (bad magic), has another version, is truncated, or its sizes are inconsistent; when a
    ///   shard set needs another number of ranks, or its shards are not of one set.
    public convenience init(path: String, group: any ProcessGroup = SingleProcess()) throws {
        try self.init(path: path, group: group, describingTruncation: false)
    }

    /// ``init(path:group:)``; with `describingTruncation` a file cut short is described in rows.
    init(path: String, group: any ProcessGroup, describingTruncation: Bool) throws {
        let set = LMMBinaryShardSet(path: path)
        let wanted: [Int]
        if let set {
            guard group.size == 1 || group.size == set.count else {
                throw InputError("this is shard \(set.index) of a set of \(set.count) (lmm convert --shards \(set.count)): "
                                 + "run it on \(set.count) ranks (mpirun -np \(set.count)), one shard each, or on one process",
                                 file: FileIO.fileName(path))
            }
            wanted = group.size == 1 ? Array(0..<set.count) : [group.rank]
        } else {
            wanted = [0]
        }
        var opened: [LMMBinaryFile] = []
        var failure: (any Error)?
        do {
            for s in wanted {
                let shardPath = set?.path(of: s) ?? path
                let part: LMMBinaryFile
                do {
                    part = try LMMBinaryFile(path: shardPath)
                } catch var error as InputError where describingTruncation {
                    if let rows = Self.truncation(path: shardPath) { error.message += "; " + rows }
                    throw error
                }
                try LMMBinaryShardSet.check(part, isShard: set.map { LMMBinaryShardID(index: s, count: $0.count) })
                opened.append(part)
            }
        } catch {
            failure = error
        }
        try group.agree(failure)
        let first = opened[0]
        if let set {
            let shards = opened.map(LMMBinaryShardSet.Summary.init)
            let all = group.size == 1 ? shards : LMMBinaryShardSet.exchange(shards[0], count: set.count, group: group)
            rowCount = try LMMBinaryShardSet.checkSet(all, names: (0..<set.count).map { FileIO.fileName(set.path(of: $0)) })
            var parts = [LMMBinaryFile?](repeating: nil, count: set.count)
            for (s, part) in zip(wanted, opened) { parts[s] = part }
            self.parts = parts
        } else {
            rowCount = first.rowCount
            parts = [first]
        }
        self.path = path
        file = FileIO.fileName(path)
        columns = first.columns
        rowsPerChunk = first.rowsPerChunk
        layout = first.layout
        levelLabels = first.levelLabels
        self.group = group
    }

    /// The number of shard files of the data: 1 for a whole file.
    public var shardCount: Int { parts.count }

    /// Number of chunks; every one but the last has ``rowsPerChunk`` rows.
    public var chunkCount: Int { layout.chunkCount(rowCount: rowCount) }

    /// Rows in chunk `index`.
    public func rowCount(ofChunk index: Int) -> Int { layout.rows(inChunk: index, rowCount: rowCount) }

    /// Index of the column called `name`.
    public func columnIndex(_ name: String) -> Int? { columns.firstIndex { $0.name == name } }

    /// Level labels of a factor column in code order, or nil for a float64 or unknown column.
    public func levels(of column: String) -> [String]? {
        guard let j = columnIndex(column), columns[j].kind == .factor else { return nil }
        return levelLabels[j]
    }

    /// Reads chunk `index` into `chunk`, reusing its arrays' storage: after a first chunk of
    /// full size, reading allocates nothing.
    ///
    /// In a ``group`` of K processes it is collective: every process calls it with the same
    /// chunks in the same order (from one thread); rank `index` mod K reads the bytes from disk,
    /// checks them and broadcasts them, so that each rank reads 1/K of the file and all get the
    /// same bytes. A read error there is thrown on every rank, with its message.
    /// - Throws: ``InputError`` for a read error or a factor code that is not a level (naming
    ///   the row, counted from 1).
    public func readChunk(_ index: Int, into chunk: inout LMMBinaryChunk) throws {
        try readChunk(index, into: &chunk, shared: true)
    }

    /// ``readChunk(_:into:)``; with `shared` false this process reads the chunk from disk
    /// itself, whatever the group (not collective: for the chunks a process owns).
    func readChunk(_ index: Int, into chunk: inout LMMBinaryChunk, shared: Bool) throws {
        guard (0..<chunkCount).contains(index) else {
            throw InputError("no chunk \(index); the file has \(chunkCount)", file: file)
        }
        let rows = rowCount(ofChunk: index)
        let firstRow = index * rowsPerChunk
        if chunk.kinds != columns.map(\.kind) {
            chunk.kinds = columns.map(\.kind)
            chunk.doubles = Array(repeating: [], count: columns.count)
            chunk.codeArrays = Array(repeating: [], count: columns.count)
        }
        let byteCount = layout.chunkByteCount(rows: rows)
        if chunk.raw.count != byteCount { chunk.raw = [UInt8](repeating: 0, count: byteCount) }
        if group.size == 1 || !shared {
            try readVerified(index, into: &chunk.raw)
        } else {
            // Rank c mod K reads and checks the bytes; a failure there is every rank's.
            let owner = index % group.size
            var failure: (any Error)?
            if group.rank == owner {
                do { try readVerified(index, into: &chunk.raw) } catch { failure = error }
            }
            var status: [UInt8] = [failure == nil ? 0 : 1]
            group.broadcast(&status, from: owner)
            if status[0] != 0 { try group.share(failure, from: owner) }
            group.broadcast(&chunk.raw, from: owner)
        }
        let raw = chunk.raw
        var offset = 0
        for j in columns.indices {
            let width = columns[j].kind.width
            switch columns[j].kind {
            case .float64:
                Self.resize(&chunk.doubles[j], to: rows)
                Self.copy(raw, at: offset, byteCount: rows * width, into: &chunk.doubles[j])
                Self.fromLittleEndian(&chunk.doubles[j])
            case .factor:
                Self.resize(&chunk.codeArrays[j], to: rows)
                Self.copy(raw, at: offset, byteCount: rows * width, into: &chunk.codeArrays[j])
                Self.fromLittleEndian(&chunk.codeArrays[j])
                try checkCodes(chunk.codeArrays[j][...], column: j, firstRow: firstRow)
            }
            offset += layout.segmentSize(j, rows: rows)
        }
        chunk.index = index
        chunk.firstRow = firstRow
        chunk.rowCount = rows
    }

    /// Chunk `index`'s bytes as stored, into `raw` (sized for them), from its file (for a shard
    /// set, shard index mod K), checked against its checksum.
    private func readVerified(_ index: Int, into raw: inout [UInt8]) throws {
        guard let part = parts[index % parts.count] else {
            throw InputError("chunk \(index + 1) is in shard \(index % parts.count) of \(parts.count), which rank \(group.rank) did not open", file: file)
        }
        let local = index / parts.count
        let byteCount = raw.count
        try raw.withUnsafeMutableBytes {
            guard byteCount > 0, let pointer = $0.baseAddress else { return }
            try FileIO.preadAll(part.fd, pointer, byteCount, offset: layout.chunkOffset(local), file: part.name)
        }
        guard raw.withUnsafeBytes({ CRC32C.checksum($0) }) == part.chunkChecksums[local] else {
            let rows = rowCount(ofChunk: index), firstRow = index * rowsPerChunk
            throw InputError("chunk \(index + 1) of \(chunkCount) (rows \(firstRow + 1) to \(firstRow + rows)) is corrupt: checksum mismatch", file: part.name)
        }
    }

    /// Copies `byteCount` bytes of `raw` from `offset` into the storage of `array`.
    private static func copy<T>(_ raw: [UInt8], at offset: Int, byteCount: Int, into array: inout [T]) {
        guard byteCount > 0 else { return }
        array.withUnsafeMutableBytes { destination in
            raw.withUnsafeBytes { source in
                destination.baseAddress!.copyMemory(from: source.baseAddress! + offset, byteCount: byteCount)
            }
        }
    }

    private static func resize<T: FixedWidthInteger>(_ array: inout [T], to count: Int) {
        if array.count > count { array.removeLast(array.count - count) }
        else if array.count < count { array.append(contentsOf: repeatElement(0, count: count - array.count)) }
    }

    private static func resize(_ array: inout [Double], to count: Int) {
        if array.count > count { array.removeLast(array.count - count) }
        else if array.count < count { array.append(contentsOf: repeatElement(0, count: count - array.count)) }
    }

    private static func fromLittleEndian(_ array: inout [Double]) {
        #if _endian(big)
        for i in array.indices { array[i] = Double(bitPattern: UInt64(littleEndian: array[i].bitPattern)) }
        #endif
    }

    private static func fromLittleEndian(_ array: inout [Int32]) {
        #if _endian(big)
        for i in array.indices { array[i] = Int32(littleEndian: array[i]) }
        #endif
    }

    /// `factor` with its levels in R's order (``LevelOrder``), its codes renumbered to match.
    static func inROrder(_ factor: Factor) -> Factor {
        if isInROrder(factor.levels) { return factor }
        let order = rOrder(factor.levels)
        var newCode = [Int32](repeating: -1, count: order.count)
        for (position, old) in order.enumerated() { newCode[old] = Int32(position) }
        return Factor(codes: factor.codes.map { $0 < 0 ? $0 : newCode[Int($0)] },
                      levels: order.map { factor.levels[$0] })
    }

    /// The indices of `labels` in R's order (``LevelOrder/sortedIndices(_:)``), without sorting
    /// when ``isInROrder(_:)`` finds them in order already.
    static func rOrder(_ labels: [String]) -> [Int] {
        isInROrder(labels) ? Array(labels.indices) : LevelOrder.sortedIndices(labels)
    }

    /// A quick sufficient test that `levels` are already in R's order, for the usual labels
    /// (`u000123`, `dept07`, `no`/`yes`): each a letter followed by ASCII letters and digits, in
    /// strictly increasing case-insensitive byte order — which R's collation agrees with, and
    /// which cannot be a column of numbers.
    static func isInROrder(_ levels: [String]) -> Bool {
        let numberWords = [Array("inf".utf8), Array("nan".utf8), Array("infinity".utf8)]
        var previous: [UInt8] = []
        var current: [UInt8] = []
        for level in levels {
            current.removeAll(keepingCapacity: true)
            for (k, byte) in level.utf8.enumerated() {
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"): current.append(byte)
                case UInt8(ascii: "A")...UInt8(ascii: "Z"): current.append(byte | 0x20)
                case UInt8(ascii: "0")...UInt8(ascii: "9") where k > 0: current.append(byte)
                default: return false
                }
            }
            // "inf", "nan", "infinity" read as numbers; leave such columns to the general rule.
            if current.isEmpty || numberWords.contains(current) { return false }
            guard previous.lexicographicallyPrecedes(current) || previous.isEmpty else { return false }
            swap(&previous, &current)
        }
        return true
    }

    /// Every code must be `-1` (missing) or a level of column `column`.
    private func checkCodes(_ codes: ArraySlice<Int32>, column: Int, firstRow: Int) throws {
        let levelCount = Int32(levelLabels[column].count)
        var bad = false
        for code in codes { bad = bad || code < -1 || code >= levelCount }
        guard bad, let i = codes.firstIndex(where: { $0 < -1 || $0 >= levelCount }) else { return }
        throw InputError("row \(firstRow + (i - codes.startIndex) + 1): code \(codes[i]) in factor column '\(columns[column].name)' is not one of its \(levelCount) levels", file: file)
    }

    /// Reads every row into a ``DataTable``: float64 columns as numeric, factor columns as
    /// ``Factor``s with their levels in R's order, as ``CSVReader`` gives them (the codes are
    /// renumbered when the file stores the levels in another order). Unused levels are kept.
    public func readAll() throws -> DataTable {
        try readTable(chunks: Array(0..<chunkCount), rows: rowCount, shared: true)
    }

    /// The rows of `chunks` (increasing), one after another, as a ``DataTable`` with every
    /// factor's levels in R's order; `shared` as in ``readChunk(_:into:shared:)``.
    func readTable(chunks: [Int], rows: Int, shared: Bool) throws -> DataTable {
        var doubles = columns.map { $0.kind == .float64 ? [Double](repeating: 0, count: rows) : [] }
        var codes = columns.map { $0.kind == .factor ? [Int32](repeating: 0, count: rows) : [] }
        var chunk = LMMBinaryChunk()
        var first = 0
        for c in chunks {
            try readChunk(c, into: &chunk, shared: shared)
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
                table[column.name] = .categorical(Self.inROrder(Factor(codes: codes[j], levels: levelLabels[j])))
            }
        }
        return DataTable(source: file, columnNames: columns.map(\.name), columns: table, rowCount: rows)
    }
}

extension LMMBinaryReader {
    /// Rows a chunk buffer needs room for: ``rowsPerChunk``, or fewer when the file has fewer rows.
    var chunkCapacity: Int { max(min(rowsPerChunk, rowCount), 1) }
}

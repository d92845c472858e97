#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

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
    /// The files: one for a whole file; for a set of K shards, K, shard s holding its part of
    /// every chunk. Nil for another rank's shard.
    private let parts: [LMMBinaryFile?]
    /// For a shard set, each shard's place (its part of a chunk); nil for a whole file.
    private let shardIDs: [LMMBinaryShardID]?
    /// Bytes of chunks this process received from others (broadcasts), and rows it read from disk.
    private let received = Atomic<Int>(0)
    private let readRows = Atomic<Int>(0)
    /// Level labels of each column in code order (empty for float64 columns).
    private let levelLabels: [[String]]
    /// The processes reading the file together: from a whole file chunk c is read from disk by
    /// rank c mod K (and broadcast to the others by ``readChunk(_:into:)``); from a shard set,
    /// rank r reads shard r's part of every chunk; alone, this process reads everything.
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
            shardIDs = (0..<set.count).map { LMMBinaryShardID(index: $0, count: set.count) }
        } else {
            rowCount = first.rowCount
            parts = [first]
            shardIDs = nil
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
    /// chunks in the same order (from one thread), and every process gets the whole chunk. From
    /// a whole file, rank `index` mod K reads the bytes from disk, checks them and broadcasts
    /// them; from a shard set, each rank reads its shard's part and broadcasts it. A read error
    /// there is thrown on every rank, with its message.
    /// - Throws: ``InputError`` for a read error or a factor code that is not a level (naming
    ///   the row, counted from 1).
    public func readChunk(_ index: Int, into chunk: inout LMMBinaryChunk) throws {
        try readChunk(index, into: &chunk, shared: true)
    }

    /// The chunks of which this process reads from disk, in a pass divided over the ``group``,
    /// what it owns (``readChunk(_:into:shared:)`` with `shared` false): from a whole file the
    /// chunks c with c mod K = rank, whole; from a shard set on K ranks every chunk, its part.
    public var ownChunks: [Int] {
        readsParts ? Array(0..<chunkCount) : Array(stride(from: group.rank, to: chunkCount, by: group.size))
    }

    /// True when this process reads from disk only its part of each chunk: a shard set on K > 1 ranks.
    public var readsParts: Bool { shardIDs != nil && group.size > 1 }

    /// Bytes of chunks this process has received from other processes (broadcasts) so far.
    public var chunkBytesReceived: Int { received.load(ordering: .relaxed) }

    /// Rows this process has read from disk so far (each read of a chunk or part counts its rows).
    public var rowsReadFromDisk: Int { readRows.load(ordering: .relaxed) }

    /// ``readChunk(_:into:)``; with `shared` false this process reads from disk itself what it
    /// owns of the chunk, whatever the group (not collective): the whole chunk (from a whole file,
    /// or from a shard set alone), or its shard's part of it (a shard set on K ranks; the
    /// chunk's ``LMMBinaryChunk/firstRow`` and ``LMMBinaryChunk/rowCount`` are then the part's).
    func readChunk(_ index: Int, into chunk: inout LMMBinaryChunk, shared: Bool) throws {
        guard (0..<chunkCount).contains(index) else {
            throw InputError("no chunk \(index); the file has \(chunkCount)", file: file)
        }
        let rows = rowCount(ofChunk: index)
        let firstRow = index * rowsPerChunk
        prepare(&chunk)
        guard let shardIDs else {
            let byteCount = layout.chunkByteCount(rows: rows)
            if chunk.raw.count != byteCount { chunk.raw = [UInt8](repeating: 0, count: byteCount) }
            if group.size == 1 || !shared {
                try readVerified(index, shard: 0, into: &chunk.raw)
            } else {
                try receive(index, from: index % group.size, into: &chunk.raw)
            }
            try decode(&chunk, index, stored: rows, taking: 0..<rows, firstRow: firstRow)
            return
        }
        if group.size > 1 && !shared {
            // This rank's part, from its own shard.
            let part = shardIDs[group.rank].rows(ofChunkRows: rows)
            try readVerified(index, shard: group.rank, into: &chunk.raw, sized: false)
            try decode(&chunk, index, stored: part.count, taking: 0..<part.count, firstRow: firstRow + part.lowerBound)
            return
        }
        // The whole chunk: the K parts one after another (read here alone, else each from its rank).
        for (j, column) in columns.enumerated() {
            if column.kind == .float64 { Self.resize(&chunk.doubles[j], to: rows) } else { Self.resize(&chunk.codeArrays[j], to: rows) }
        }
        for id in shardIDs {
            let part = id.rows(ofChunkRows: rows)
            if group.size == 1 {
                try readVerified(index, shard: id.index, into: &chunk.raw, sized: false)
            } else {
                let byteCount = layout.chunkByteCount(rows: part.count)
                if chunk.raw.count != byteCount { chunk.raw = [UInt8](repeating: 0, count: byteCount) }
                try receive(index, from: id.index, into: &chunk.raw)
            }
            try decode(&chunk, index, stored: part.count, taking: 0..<part.count, firstRow: firstRow + part.lowerBound, at: part.lowerBound)
        }
        chunk.index = index
        chunk.firstRow = firstRow
        chunk.rowCount = rows
    }

    /// In an epoch divided over the ``group``: this process's part of chunk `index` (rows
    /// ``LMMBinaryShardID/rows(ofChunkRows:)`` of the chunk, for shard `rank` of K), the whole
    /// chunk alone. Collective. From a shard set each rank reads its part from its shard and
    /// nothing is sent (one flag per chunk, for a read error); from a whole file, rank
    /// `index` mod K broadcasts the chunk's bytes (as ``readChunk(_:into:)``) and each rank
    /// decodes its part.
    public func readOwnPart(_ index: Int, into chunk: inout LMMBinaryChunk) throws {
        guard group.size > 1 else { return try readChunk(index, into: &chunk, shared: true) }
        if shardIDs != nil {
            return try group.agreeing { try readChunk(index, into: &chunk, shared: false) }
        }
        guard (0..<chunkCount).contains(index) else {
            throw InputError("no chunk \(index); the file has \(chunkCount)", file: file)
        }
        let rows = rowCount(ofChunk: index)
        prepare(&chunk)
        let byteCount = layout.chunkByteCount(rows: rows)
        if chunk.raw.count != byteCount { chunk.raw = [UInt8](repeating: 0, count: byteCount) }
        try receive(index, from: index % group.size, into: &chunk.raw)
        let part = LMMBinaryShardID(index: group.rank, count: group.size).rows(ofChunkRows: rows)
        try decode(&chunk, index, stored: rows, taking: part, firstRow: index * rowsPerChunk + part.lowerBound)
    }

    /// Sizes `chunk`'s column arrays for this file's columns.
    private func prepare(_ chunk: inout LMMBinaryChunk) {
        if chunk.kinds != columns.map(\.kind) {
            chunk.kinds = columns.map(\.kind)
            chunk.doubles = Array(repeating: [], count: columns.count)
            chunk.codeArrays = Array(repeating: [], count: columns.count)
        }
    }

    /// Collective: `owner` reads chunk `index` (from a shard set: its part of it) from disk and
    /// broadcasts the bytes into every process's `raw` (sized for them); a read error there is
    /// every process's (a status byte first).
    private func receive(_ index: Int, from owner: Int, into raw: inout [UInt8]) throws {
        var failure: (any Error)?
        if group.rank == owner {
            do { try readVerified(index, shard: shardIDs == nil ? 0 : owner, into: &raw) } catch { failure = error }
        }
        var status: [UInt8] = [failure == nil ? 0 : 1]
        group.broadcast(&status, from: owner)
        if status[0] != 0 { try group.share(failure, from: owner) }
        group.broadcast(&raw, from: owner)
        if group.rank != owner { received.add(raw.count, ordering: .relaxed) }
    }

    /// Rows `taking` of a chunk stored as `stored` rows in `raw` (its columns one after another),
    /// decoded into `chunk`'s arrays at row `at` (the rows `taking` alone, from row 0, when `at`
    /// is nil), its codes checked; `firstRow` is the file row of the first row taken.
    private func decode(_ chunk: inout LMMBinaryChunk, _ index: Int, stored: Int, taking: Range<Int>, firstRow: Int,
                        at: Int? = nil) throws {
        let raw = chunk.raw
        var offset = 0
        let destination = at ?? 0
        for j in columns.indices {
            let width = columns[j].kind.width
            let from = offset + taking.lowerBound * width, byteCount = taking.count * width
            switch columns[j].kind {
            case .float64:
                if at == nil { Self.resize(&chunk.doubles[j], to: taking.count) }
                Self.copy(raw, at: from, byteCount: byteCount, into: &chunk.doubles[j], destination: destination)
                Self.fromLittleEndian(&chunk.doubles[j], destination..<destination + taking.count)
            case .factor:
                if at == nil { Self.resize(&chunk.codeArrays[j], to: taking.count) }
                Self.copy(raw, at: from, byteCount: byteCount, into: &chunk.codeArrays[j], destination: destination)
                Self.fromLittleEndian(&chunk.codeArrays[j], destination..<destination + taking.count)
                try checkCodes(chunk.codeArrays[j][destination..<destination + taking.count], column: j, firstRow: firstRow)
            }
            offset += layout.segmentSize(j, rows: stored)
        }
        if at == nil {
            chunk.index = index
            chunk.firstRow = firstRow
            chunk.rowCount = taking.count
        }
    }

    /// Chunk `index`'s bytes as stored in shard `s` (its part of the chunk; the file, for a
    /// whole file), checked against its checksum, into `raw` (already sized for them when
    /// `sized`, else resized).
    private func readVerified(_ index: Int, shard s: Int, into raw: inout [UInt8], sized: Bool = true) throws {
        guard let part = parts[s] else {
            throw InputError("chunk \(index + 1) is in shard \(s) of \(parts.count), which rank \(group.rank) did not open", file: file)
        }
        let rows = rowCount(ofChunk: index), firstRow = index * rowsPerChunk
        let held = part.shard?.rows(ofChunkRows: rows) ?? 0..<rows
        let byteCount = part.layout.chunkByteCount(rows: held.count)
        if !sized, raw.count != byteCount { raw = [UInt8](repeating: 0, count: byteCount) }
        try raw.withUnsafeMutableBytes {
            guard byteCount > 0, let pointer = $0.baseAddress else { return }
            try FileIO.preadAll(part.fd, pointer, byteCount, offset: part.layout.chunkOffset(index), file: part.name)
        }
        guard raw.withUnsafeBytes({ CRC32C.checksum($0) }) == part.chunkChecksums[index] else {
            let whole = "rows \(firstRow + 1) to \(firstRow + rows)"
            let place = part.shard == nil ? "(\(whole))"
                : "(\(whole); this shard holds rows \(firstRow + held.lowerBound + 1) to \(firstRow + held.upperBound))"
            throw InputError("chunk \(index + 1) of \(chunkCount) \(place) is corrupt: checksum mismatch", file: part.name)
        }
        readRows.add(held.count, ordering: .relaxed)
    }

    /// Copies `byteCount` bytes of `raw` from `offset` into the storage of `array`, from element `destination`.
    private static func copy<T>(_ raw: [UInt8], at offset: Int, byteCount: Int, into array: inout [T], destination start: Int = 0) {
        guard byteCount > 0 else { return }
        array.withUnsafeMutableBytes { destination in
            raw.withUnsafeBytes { source in
                (destination.baseAddress! + start * MemoryLayout<T>.stride).copyMemory(from: source.baseAddress! + offset, byteCount: byteCount)
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

    private static func fromLittleEndian(_ array: inout [Double], _ range: Range<Int>) {
        #if _endian(big)
        for i in range { array[i] = Double(bitPattern: UInt64(littleEndian: array[i].bitPattern)) }
        #endif
    }

    private static func fromLittleEndian(_ array: inout [Int32], _ range: Range<Int>) {
        #if _endian(big)
        for i in range { array[i] = Int32(littleEndian: array[i]) }
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

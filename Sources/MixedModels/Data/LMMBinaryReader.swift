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
    /// The file read.
    public let path: String
    /// The columns, in file order.
    public let columns: [LMMBinaryColumn]
    /// Number of data rows.
    public let rowCount: Int
    /// Rows in every chunk but the last.
    public let rowsPerChunk: Int

    private let layout: LMMBinaryLayout
    private let file: String
    private let fd: Int32
    /// Level labels of each column in code order (empty for float64 columns).
    private let levelLabels: [[String]]
    /// CRC-32C of each chunk, from the footer.
    private let chunkChecksums: [UInt32]
    /// The processes reading the file together: chunk c is read from disk by rank c mod K and
    /// broadcast to the others (``readChunk(_:into:)``); alone, this process reads every chunk.
    public let group: any ProcessGroup

    /// Opens the file and reads its header and footer.
    /// - Parameter group: the processes reading the file together (every one opens it; see
    ///   ``group``); this process alone by default.
    /// - Throws: ``InputError`` naming the file when it cannot be read, is not an lmmbin file
    ///   (bad magic), has another version, is truncated, or its sizes are inconsistent.
    public init(path: String, group: any ProcessGroup = SingleProcess()) throws {
        let file = FileIO.fileName(path)
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw InputError("cannot open the file: \(FileIO.lastError)", file: file) }
        do {
            let size = try FileIO.size(fd, file: file)
            let fixed = LMMBinaryFormat.fixedHeaderSize
            guard size >= 8 else {
                throw InputError("not an lmmbin file: only \(size) bytes", file: file)
            }
            let start = try FileIO.readBytes(fd, count: min(size, fixed), offset: 0, file: file)
            guard Array(start[0..<8]) == LMMBinaryFormat.magic else {
                throw InputError("not an lmmbin file (bad magic number)", file: file)
            }
            var cursor = LMMBinaryCursor(start, file: file, part: "header")
            cursor.position = 8
            let version = try cursor.read(UInt32.self)
            guard version == LMMBinaryFormat.version else {
                if version == 1 {
                    throw InputError("this .lmmbin file has format version 1, written by an earlier lmm without checksums; "
                                     + "re-run `lmm convert` on the CSV file to rewrite it (version \(LMMBinaryFormat.version))", file: file)
                }
                throw InputError("unsupported lmmbin version \(version); this program reads version \(LMMBinaryFormat.version)", file: file)
            }
            let columnCount64 = UInt64(try cursor.read(UInt32.self))
            let rowCount64 = try cursor.read(UInt64.self)
            let rowsPerChunk64 = try cursor.read(UInt64.self)
            let dataOffset64 = try cursor.read(UInt64.self)
            let footerOffset64 = try cursor.read(UInt64.self)
            // The header's own extent first, so that its checksum can be verified before any
            // other field is believed.
            guard dataOffset64 >= UInt64(fixed), dataOffset64 <= UInt64(size), dataOffset64 % 8 == 0 else {
                throw InputError("truncated or corrupt header: data offset \(dataOffset64) is not within the file (\(size) bytes)", file: file)
            }
            let dataOffset = Int(dataOffset64)
            var header = try FileIO.readBytes(fd, count: dataOffset, offset: 0, file: file)
            let checksumAt = LMMBinaryFormat.headerChecksumOffset
            let stored = header[checksumAt..<checksumAt + 4].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            for k in checksumAt..<checksumAt + 4 { header[k] = 0 }
            guard CRC32C.checksum(header) == stored else {
                throw InputError("header checksum mismatch: the header (bytes 0 to \(dataOffset - 1)) is corrupt", file: file)
            }
            guard columnCount64 >= 1 else { throw InputError("the header declares no columns", file: file) }
            // Each descriptor takes at least 9 bytes of the header.
            guard columnCount64 <= UInt64(dataOffset / 9) else {
                throw InputError("corrupt header: \(columnCount64) columns cannot fit in a \(dataOffset)-byte header", file: file)
            }
            let columnCount = Int(columnCount64)
            guard rowsPerChunk64 >= 1, rowsPerChunk64 <= UInt64(Int32.max) else {
                throw InputError("invalid rows per chunk \(rowsPerChunk64) in the header", file: file)
            }
            guard footerOffset64 != 0 else {
                throw InputError("unfinished file: the writer did not finish (no footer)", file: file)
            }
            guard footerOffset64 <= UInt64(size), rowCount64 <= UInt64(size) else {
                throw InputError("truncated or inconsistent file: the header points past its end (\(size) bytes)", file: file)
            }

            // Column descriptors.
            cursor = LMMBinaryCursor(header, file: file, part: "header")
            cursor.position = fixed
            var columns: [LMMBinaryColumn] = []
            var names = Set<String>()
            for j in 0..<columnCount {
                let rawKind = try cursor.read(UInt8.self)
                guard let kind = LMMBinaryColumn.Kind(rawValue: rawKind) else {
                    throw InputError("column \(j + 1) has unknown kind \(rawKind)", file: file)
                }
                _ = try cursor.readBytes(3)
                let length = Int(try cursor.read(UInt32.self))
                guard length >= 1 else { throw InputError("column \(j + 1) has an empty name", file: file) }
                let name = try cursor.readString(length, what: "the name of column \(j + 1)")
                guard names.insert(name).inserted else { throw InputError("duplicate column name '\(name)'", file: file) }
                columns.append(LMMBinaryColumn(name: name, kind: kind))
            }
            guard LMMBinaryLayout.headerSize(columns: columns) == dataOffset else {
                throw InputError("inconsistent header: data offset \(dataOffset) does not follow the column descriptors", file: file)
            }
            let layout = LMMBinaryLayout(columns: columns, rowsPerChunk: Int(rowsPerChunk64), dataOffset: dataOffset)
            guard let expectedFooter = layout.checkedFooterOffset(rowCount: Int(rowCount64)), expectedFooter <= size else {
                throw InputError("inconsistent sizes: \(rowCount64) rows of these columns do not fit in the file (\(size) bytes)", file: file)
            }
            guard Int(footerOffset64) == expectedFooter else {
                throw InputError("inconsistent sizes: \(rowCount64) rows end the data at offset \(expectedFooter), but the footer is at \(footerOffset64)", file: file)
            }
            let rowCount = Int(rowCount64)
            let chunkCount = layout.chunkCount(rowCount: rowCount)

            // Footer: level labels, chunk checksums, its own checksum.
            let footer = try FileIO.readBytes(fd, count: size - expectedFooter, offset: expectedFooter, file: file)
            guard footer.count >= 20, Array(footer[0..<8]) == LMMBinaryFormat.footerMagic,
                  Array(footer[(footer.count - 8)...]) == LMMBinaryFormat.endMagic else {
                throw InputError("truncated or corrupt file: no footer at offset \(expectedFooter)", file: file)
            }
            let footerStored = footer[(footer.count - 12)..<(footer.count - 8)].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            guard CRC32C.checksum(footer[0..<(footer.count - 12)]) == footerStored else {
                throw InputError("footer checksum mismatch: the footer (level labels and chunk checksums, from offset \(expectedFooter)) is corrupt", file: file)
            }
            cursor = LMMBinaryCursor(Array(footer[0..<(footer.count - 12)]), file: file, part: "footer")
            cursor.position = 8
            var levelLabels = [[String]](repeating: [], count: columnCount)
            for j in 0..<columnCount where columns[j].kind == .factor {
                let count = Int(try cursor.read(UInt32.self))
                guard count <= footer.count else {
                    throw InputError("truncated footer: column '\(columns[j].name)' declares \(count) levels", file: file)
                }
                var labels: [String] = []
                labels.reserveCapacity(count)
                for k in 0..<count {
                    let length = Int(try cursor.read(UInt32.self))
                    labels.append(try cursor.readString(length, what: "level \(k + 1) of column '\(columns[j].name)'"))
                }
                levelLabels[j] = labels
            }
            guard cursor.bytes.count - cursor.position == 4 * chunkCount else {
                throw InputError("inconsistent footer: \(cursor.bytes.count - cursor.position) bytes of chunk checksums for \(chunkCount) chunks", file: file)
            }
            var chunkChecksums: [UInt32] = []
            chunkChecksums.reserveCapacity(chunkCount)
            for _ in 0..<chunkCount { chunkChecksums.append(try cursor.read(UInt32.self)) }

            self.path = path
            self.file = file
            self.fd = fd
            self.columns = columns
            self.rowCount = rowCount
            self.rowsPerChunk = Int(rowsPerChunk64)
            self.chunkChecksums = chunkChecksums
            self.layout = layout
            self.levelLabels = levelLabels
            self.group = group
        } catch {
            close(fd)
            throw error
        }
    }

    deinit { close(fd) }

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

    /// Chunk `index`'s bytes as stored, into `raw` (sized for them), checked against its checksum.
    private func readVerified(_ index: Int, into raw: inout [UInt8]) throws {
        let byteCount = raw.count
        try raw.withUnsafeMutableBytes { try read(into: $0.baseAddress, byteCount, offset: layout.chunkOffset(index)) }
        guard raw.withUnsafeBytes({ CRC32C.checksum($0) }) == chunkChecksums[index] else {
            let rows = rowCount(ofChunk: index), firstRow = index * rowsPerChunk
            throw InputError("chunk \(index + 1) of \(chunkCount) (rows \(firstRow + 1) to \(firstRow + rows)) is corrupt: checksum mismatch", file: file)
        }
    }

    private func read(into pointer: UnsafeMutableRawPointer?, _ count: Int, offset: Int) throws {
        guard count > 0, let pointer else { return }
        try FileIO.preadAll(fd, pointer, count, offset: offset, file: file)
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
        var doubles = columns.map { $0.kind == .float64 ? [Double](repeating: 0, count: rowCount) : [] }
        var codes = columns.map { $0.kind == .factor ? [Int32](repeating: 0, count: rowCount) : [] }
        var chunk = LMMBinaryChunk()
        for c in 0..<chunkCount {
            try readChunk(c, into: &chunk)
            for j in columns.indices {
                let range = chunk.firstRow..<chunk.firstRow + chunk.rowCount
                switch columns[j].kind {
                case .float64: doubles[j].replaceSubrange(range, with: chunk.doubles[j])
                case .factor: codes[j].replaceSubrange(range, with: chunk.codeArrays[j])
                }
            }
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
        return DataTable(source: file, columnNames: columns.map(\.name), columns: table, rowCount: rowCount)
    }
}

extension LMMBinaryReader {
    /// Rows a chunk buffer needs room for: ``rowsPerChunk``, or fewer when the file has fewer rows.
    var chunkCapacity: Int { max(min(rowsPerChunk, rowCount), 1) }
}

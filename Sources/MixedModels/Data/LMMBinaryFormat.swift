/// The `.lmmbin` file format: a compact, little-endian, chunked columnar table of `float64`
/// columns and factor columns (`Int32` codes), for fitters that stream rows in chunks with
/// bounded memory, and for `datagen`, which writes it directly.
///
/// Layout (all integers little-endian, offsets in bytes from the start of the file):
///
///     header
///       0   8  magic              89 4C 4D 4D 42 49 4E 0A   ("\x89LMMBIN\n")
///       8   4  version            UInt32 = 2 (1: before checksums)
///      12   4  columnCount        UInt32, ≥ 1
///      16   8  rowCount           UInt64  (patched when the writer finishes)
///      24   8  rowsPerChunk       UInt64, ≥ 1
///      32   8  dataOffset         UInt64: where chunk 0 starts (end of header, multiple of 8)
///      40   8  footerOffset       UInt64  (patched when the writer finishes; 0 = unfinished)
///      48   4  headerChecksum     UInt32: CRC-32C of the header up to dataOffset, this field as 0
///      52   2  shardIndex         UInt16: a shard's index in its set (lmm convert --shards), else zero
///      54   2  shardCount         UInt16: K | 0x8000 for shard shardIndex of K; zero in a whole file
///      56      column descriptors, one per column:
///                1  kind          UInt8: 1 = float64, 2 = factor (Int32 codes)
///                3  reserved      zero
///                4  nameLength    UInt32, ≥ 1
///                n  name          UTF-8, unique
///              zero padding up to dataOffset
///     data: chunk 0, chunk 1, …, chunk (chunkCount − 1)
///     footer (at footerOffset)
///       8  magic                  "LMMLVLS\0"
///          for each factor column, in column order:
///            4  levelCount        UInt32
///               levelCount × (UInt32 byte length, UTF-8 label), in code order
///          chunkCount × UInt32    CRC-32C of each chunk's bytes (padding included)
///       4  footerChecksum         CRC-32C of the footer from its magic to here
///       8  end magic              "LMMEND\0\0"; the file ends here
///
/// Chunk `c` holds rows `c·R ..< min((c+1)·R, rowCount)` where `R = rowsPerChunk`; with `r`
/// rows it stores each column in turn (columnar), column `j` taking `r·width(j)` bytes
/// (8 for float64, 4 for factor) zero-padded to a multiple of 8, so every column starts
/// 8-byte aligned. Every chunk but the last has `R` rows, so chunk `c` starts at
/// `dataOffset + c·chunkByteCount(R)`: chunks can be read in any order (shuffled epochs).
///
/// A shard (``LMMBinaryShardID``) of a set of K has the header of the whole data (rowCount and
/// rowsPerChunk the data's) and every chunk c of the data, each holding only the shard's part
/// of it, rows ⌊n·s/K⌋ ..< ⌊n·(s+1)/K⌋ of the chunk's n rows (possibly none), stored as a chunk
/// of that many rows: chunk c starts at `dataOffset + c·chunkByteCount(part of R)`.
///
/// Missing values: `NaN` in a float64 column, code `-1` in a factor column (as ``Factor``).
/// Factor labels live in the footer so that a writer can stream rows before it knows every
/// level; a reader checks that every code is `-1` or a valid level. Labels are stored in
/// code order and read back in that order: a writer that wants R's level order (the order
/// ``Factor`` documents, which makes the first level the reference level) writes them so —
/// `datagen` does, with labels like `u000123` (a letter prefix and zero-padded numbers, which
/// R's collation sorts numerically).
///
/// Integrity: the header, the footer and every chunk carry a CRC-32C (``CRC32C``); the reader
/// checks the header and footer when it opens a file and each chunk when it reads it, and names
/// the part that does not match. Every size in the header is checked before it is used, with
/// arithmetic that cannot overflow.
public enum LMMBinaryFormat {
    // The layout constants; the writer and reader live in LMMBinaryWriter.swift and
    // LMMBinaryReader.swift.
    /// The first eight bytes of every `.lmmbin` file.
    static let magic: [UInt8] = [0x89, 0x4C, 0x4D, 0x4D, 0x42, 0x49, 0x4E, 0x0A]
    /// The first eight bytes of the footer.
    static let footerMagic: [UInt8] = Array("LMMLVLS\0".utf8)
    /// The last eight bytes of the file.
    static let endMagic: [UInt8] = Array("LMMEND\0\0".utf8)
    /// The format version this code reads and writes.
    public static let version: UInt32 = 2
    /// Bytes of the fixed part of the header, before the column descriptors.
    static let fixedHeaderSize = 56
    /// Offset of the header's checksum.
    static let headerChecksumOffset = 48
    /// Offsets of the fields the writer patches when it finishes.
    static let rowCountOffset = 16
    static let footerOffsetOffset = 40
    /// Default rows per chunk: 64 Ki rows, a few hundred kilobytes to a few megabytes per chunk.
    public static let defaultRowsPerChunk = 65_536
}

/// One column of an `.lmmbin` file: its name and how its values are stored.
public struct LMMBinaryColumn: Sendable, Equatable, Hashable {
    /// How a column's values are stored.
    public enum Kind: UInt8, Sendable, Hashable {
        /// 64-bit IEEE floating point; `NaN` is missing.
        case float64 = 1
        /// A categorical variable: `Int32` codes into the column's levels; `-1` is missing.
        case factor = 2

        /// Bytes per value.
        public var width: Int { self == .float64 ? 8 : 4 }
    }

    /// The column's name (unique in a file; the CSV header's name).
    public var name: String
    /// How its values are stored.
    public var kind: Kind

    /// A column called `name` of values stored as `kind`.
    public init(name: String, kind: Kind) {
        self.name = name
        self.kind = kind
    }

    /// A float64 column.
    public static func float64(_ name: String) -> LMMBinaryColumn { LMMBinaryColumn(name: name, kind: .float64) }
    /// A factor column.
    public static func factor(_ name: String) -> LMMBinaryColumn { LMMBinaryColumn(name: name, kind: .factor) }
}

/// The values of one column for a run of rows: what a writer appends and a reader fills.
public enum LMMBinaryColumnValues: Sendable, Equatable {
    /// Values of a float64 column (`NaN` for missing).
    case float64([Double])
    /// Factor codes: indices into the column's levels, `-1` for missing.
    case factor([Int32])

    /// Number of rows.
    public var count: Int {
        switch self {
        case .float64(let values): return values.count
        case .factor(let codes): return codes.count
        }
    }

    var kind: LMMBinaryColumn.Kind {
        switch self {
        case .float64: return .float64
        case .factor: return .factor
        }
    }
}

/// One value of a row, for appending row by row.
public enum LMMBinaryValue: Sendable, Equatable {
    /// A value of a float64 column.
    case float64(Double)
    /// A factor code (`-1` for missing).
    case code(Int32)
}

/// Byte offsets within the data section, shared by the writer and the reader.
struct LMMBinaryLayout: Sendable {
    let columns: [LMMBinaryColumn]
    let rowsPerChunk: Int
    /// Where chunk 0 starts.
    let dataOffset: Int
    /// For a shard: it stores its part of each chunk (``stored(_:)``).
    var shard: LMMBinaryShardID? = nil

    /// Rows stored of a chunk of `rows` rows of the data: all, or a shard's part.
    func stored(_ rows: Int) -> Int {
        shard?.rows(ofChunkRows: rows).count ?? rows
    }

    /// Bytes one column takes in a chunk of `rows` rows: padded to a multiple of 8.
    func segmentSize(_ column: Int, rows: Int) -> Int {
        (rows * columns[column].kind.width + 7) & ~7
    }

    /// Bytes of a chunk of `rows` rows.
    func chunkByteCount(rows: Int) -> Int {
        (0..<columns.count).reduce(0) { $0 + segmentSize($1, rows: rows) }
    }

    /// Offset of column `column` within a chunk of `rows` rows.
    func segmentOffset(_ column: Int, rows: Int) -> Int {
        (0..<column).reduce(0) { $0 + segmentSize($1, rows: rows) }
    }

    func chunkCount(rowCount: Int) -> Int {
        rowCount / rowsPerChunk + (rowCount % rowsPerChunk > 0 ? 1 : 0)    // no overflow near Int.max
    }

    /// Rows in chunk `index` of a file of `rowCount` rows.
    func rows(inChunk index: Int, rowCount: Int) -> Int {
        min(rowsPerChunk, rowCount - index * rowsPerChunk)
    }

    /// File offset of chunk `index`.
    func chunkOffset(_ index: Int) -> Int {
        dataOffset + index * chunkByteCount(rows: stored(rowsPerChunk))
    }

    /// Where the footer starts in a file of `rowCount` rows (a shard: of a set of `rowCount` rows).
    func footerOffset(rowCount: Int) -> Int {
        let full = rowCount / rowsPerChunk
        let rest = rowCount % rowsPerChunk
        return dataOffset + full * chunkByteCount(rows: stored(rowsPerChunk)) + (rest > 0 ? chunkByteCount(rows: stored(rest)) : 0)
    }

    /// ``footerOffset(rowCount:)`` for sizes read from a file: nil when the computation would
    /// overflow (a corrupt or crafted header).
    func checkedFooterOffset(rowCount: Int) -> Int? {
        guard rowCount >= 0, rowsPerChunk >= 1 else { return nil }
        var perRow = 0
        for column in columns {
            let (sum, overflow) = perRow.addingReportingOverflow(column.kind.width)
            guard !overflow else { return nil }
            perRow = sum
        }
        // Padding adds at most 8 bytes per column per chunk; bound the result before computing it.
        let chunks = chunkCount(rowCount: rowCount)
        let (data, o1) = rowCount.multipliedReportingOverflow(by: perRow)
        let (padding, o2) = chunks.multipliedReportingOverflow(by: 8 * columns.count)
        guard !o1, !o2, dataOffset >= 0 else { return nil }
        let (bound, o3) = data.addingReportingOverflow(padding)
        guard !o3, !bound.addingReportingOverflow(dataOffset).overflow else { return nil }
        return footerOffset(rowCount: rowCount)
    }

    /// The header bytes for these columns, with `rowCount` and `footerOffset` as given.
    static func header(columns: [LMMBinaryColumn], rowsPerChunk: Int, rowCount: Int, footerOffset: Int,
                       shard: LMMBinaryShardID? = nil) -> [UInt8] {
        var bytes = LMMBinaryFormat.magic
        bytes.appendLittleEndian(LMMBinaryFormat.version)
        bytes.appendLittleEndian(UInt32(columns.count))
        bytes.appendLittleEndian(UInt64(rowCount))
        bytes.appendLittleEndian(UInt64(rowsPerChunk))
        let dataOffset = headerSize(columns: columns)
        bytes.appendLittleEndian(UInt64(dataOffset))
        bytes.appendLittleEndian(UInt64(footerOffset))
        bytes += [UInt8](repeating: 0, count: 4)    // checksum
        bytes.appendLittleEndian(UInt16(shard?.index ?? 0))
        bytes.appendLittleEndian(UInt16(shard.map { $0.count | LMMBinaryShardID.partsMark } ?? 0))
        for column in columns {
            bytes.append(column.kind.rawValue)
            bytes += [0, 0, 0]
            let name = Array(column.name.utf8)
            bytes.appendLittleEndian(UInt32(name.count))
            bytes += name
        }
        bytes += [UInt8](repeating: 0, count: dataOffset - bytes.count)
        let checksum = CRC32C.checksum(bytes)
        withUnsafeBytes(of: checksum.littleEndian) { field in
            for k in 0..<4 { bytes[LMMBinaryFormat.headerChecksumOffset + k] = field[k] }
        }
        return bytes
    }

    /// Bytes of the header, padded to a multiple of 8.
    static func headerSize(columns: [LMMBinaryColumn]) -> Int {
        let size = columns.reduce(LMMBinaryFormat.fixedHeaderSize) { $0 + 8 + $1.name.utf8.count }
        return (size + 7) & ~7
    }
}

extension Array where Element == UInt8 {
    mutating func appendLittleEndian<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }
}

/// Reads little-endian fields from a byte buffer, throwing ``InputError`` past its end.
struct LMMBinaryCursor {
    let bytes: [UInt8]
    var position = 0
    /// The file name and what is being read, for errors.
    let file: String
    let part: String

    init(_ bytes: [UInt8], file: String, part: String) {
        self.bytes = bytes
        self.file = file
        self.part = part
    }

    mutating func read<T: FixedWidthInteger>(_: T.Type) throws -> T {
        let size = MemoryLayout<T>.size
        guard position + size <= bytes.count else {
            throw InputError("truncated \(part): expected \(size) more bytes at offset \(position)", file: file)
        }
        var value = T.zero
        withUnsafeMutableBytes(of: &value) { destination in
            bytes.withUnsafeBytes { source in
                destination.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[position..<position + size]))
            }
        }
        position += size
        return T(littleEndian: value)
    }

    mutating func readBytes(_ count: Int) throws -> ArraySlice<UInt8> {
        guard count >= 0, position + count <= bytes.count else {
            throw InputError("truncated \(part): expected \(count) more bytes at offset \(position)", file: file)
        }
        defer { position += count }
        return bytes[position..<position + count]
    }

    /// The string `bytes` encode, or nil when they are not valid UTF-8.
    static func decodeUTF8(_ bytes: ArraySlice<UInt8>) -> String? {
        if bytes.allSatisfy({ $0 < 0x80 }) { return String(decoding: bytes, as: UTF8.self) }
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        var scalars = String.UnicodeScalarView()
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar): scalars.append(scalar)
            case .emptyInput: return String(scalars)
            case .error: return nil
            }
        }
    }

    mutating func readString(_ count: Int, what: String) throws -> String {
        let slice = try readBytes(count)
        guard let string = Self.decodeUTF8(slice) else {
            throw InputError("\(what) is not valid UTF-8", file: file)
        }
        return string
    }
}

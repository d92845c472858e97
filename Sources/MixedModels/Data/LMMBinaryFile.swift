#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A shard's place in its set (`lmm convert --shards K`): shard `index` of `count` holds, for
/// every chunk of the data in order, its part of the chunk's rows: of a chunk of n rows, rows
/// ⌊n·index/count⌋ ..< ⌊n·(index + 1)/count⌋ (``rows(ofChunkRows:)``), so that the shards'
/// parts of a chunk, one after another, are the chunk.
public struct LMMBinaryShardID: Sendable, Equatable {
    /// 0-based.
    public var index: Int
    /// Shards in the set, ≥ 1.
    public var count: Int

    public init(index: Int, count: Int) {
        self.index = index
        self.count = count
    }

    /// This shard's part of a chunk of `n` rows: the rows (from 0, within the chunk) it holds.
    public func rows(ofChunkRows n: Int) -> Range<Int> {
        n * index / count..<n * (index + 1) / count
    }

    /// Most shards in a set: the header's count field keeps its top bit as the mark of this
    /// layout (parts of every chunk), which earlier sets of whole chunks did not set.
    public static let maximumCount = 0x7FFF
    /// The mark in the header's count field.
    static let partsMark = 0x8000
}

/// One open `.lmmbin` file — a whole file or one shard of a set — with its header and footer
/// read and checked; owns the file descriptor. ``LMMBinaryReader`` reads chunks through it.
final class LMMBinaryFile: Sendable {
    let path: String
    /// The file's name, for messages.
    let name: String
    let fd: Int32
    let columns: [LMMBinaryColumn]
    /// Rows of the data: of this file, or, for a shard, of the whole set (the shard holds its
    /// part of each chunk: ``LMMBinaryShardID/rows(ofChunkRows:)``).
    let rowCount: Int
    let rowsPerChunk: Int
    let layout: LMMBinaryLayout
    /// Level labels of each column in code order (empty for float64 columns).
    let levelLabels: [[String]]
    /// CRC-32C of each of this file's chunks (a shard: its part of each), from the footer.
    let chunkChecksums: [UInt32]
    /// CRC-32C of the column descriptors and the level labels: equal for the shards of one set.
    let levelFingerprint: UInt32
    /// Set when the file is a shard of a set.
    let shard: LMMBinaryShardID?

    /// Opens the file and reads and checks its header and footer.
    /// - Throws: ``InputError`` naming the file when it cannot be read, is not an lmmbin file
    ///   (bad magic), has another version, is truncated, or its sizes are inconsistent.
    init(path: String) throws {
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
            // Bytes 52–55: a shard's place in its set (index, count as UInt16, the count's top bit
            // set: the parts-of-every-chunk layout), zero in a whole file.
            let shardIndex = Int(header[52]) | Int(header[53]) << 8
            let countField = Int(header[54]) | Int(header[55]) << 8
            let shardCount = countField & LMMBinaryShardID.maximumCount
            let shard: LMMBinaryShardID?
            if countField == 0 {
                guard shardIndex == 0 else { throw InputError("corrupt header: shard \(shardIndex) of a whole file", file: file) }
                shard = nil
            } else {
                guard countField & LMMBinaryShardID.partsMark != 0 else {
                    throw InputError("this is shard \(shardIndex) of \(countField) written by an earlier lmm convert --shards (whole "
                                     + "chunks per shard), a layout this program no longer reads: convert the data again with "
                                     + "lmm convert --shards \(countField)", file: file)
                }
                guard shardCount >= 1, shardIndex < shardCount else {
                    throw InputError("corrupt header: shard index \(shardIndex) of \(shardCount) shards", file: file)
                }
                shard = LMMBinaryShardID(index: shardIndex, count: shardCount)
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
            let layout = LMMBinaryLayout(columns: columns, rowsPerChunk: Int(rowsPerChunk64), dataOffset: dataOffset, shard: shard)
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
            self.name = file
            self.fd = fd
            self.columns = columns
            self.rowCount = rowCount
            self.rowsPerChunk = Int(rowsPerChunk64)
            self.chunkChecksums = chunkChecksums
            self.layout = layout
            self.levelLabels = levelLabels
            self.levelFingerprint = CRC32C.checksum(Array(header[fixed...]) + Array(footer[0..<(footer.count - 12 - 4 * chunkCount)]))
            self.shard = shard
        } catch {
            close(fd)
            throw error
        }
    }


    deinit { close(fd) }

    /// Chunks in this file.
    var chunkCount: Int { layout.chunkCount(rowCount: rowCount) }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes an `.lmmbin` file (``LMMBinaryFormat``) row by row or in column batches, one
/// chunk buffer at a time, so memory does not grow with the number of rows.
///
/// The rows go to a temporary file beside `path`, renamed to `path` by ``finish()``: a run
/// that fails or abandons the writer (it is deinitialized without `finish()`) leaves no file.
///
///     let writer = try LMMBinaryWriter(path: "data.lmmbin",
///                                      columns: [.float64("y"), .float64("x"), .factor("g")])
///     try writer.setLevels(["g1", "g2"], forColumn: "g")
///     try writer.append([.float64(y), .float64(x), .factor(codes)])   // any number of times
///     try writer.finish()
public final class LMMBinaryWriter {
    /// The file written by ``finish()``.
    public let path: String
    /// The columns, in file order.
    public let columns: [LMMBinaryColumn]
    /// Rows per chunk: the writer buffers one chunk.
    public let rowsPerChunk: Int
    /// Rows appended so far (a shard: rows of the data whose chunks' parts were appended).
    public private(set) var rowCount = 0
    /// Set when the file is a shard of a set (its header says so).
    let shard: LMMBinaryShardID?

    private let layout: LMMBinaryLayout
    private let file: String
    private let temporaryPath: String
    /// The real file `path` names (symbolic links resolved), which the temporary file replaces.
    private let destination: String
    /// Mode and owner of the file being replaced, given to the new one.
    private let existing: OutputTarget.ExistingFile?
    private var fd: Int32
    /// The chunk being filled: column `j` at `segmentOffsets[j]`, laid out as a full chunk.
    private let buffer: UnsafeMutableRawPointer
    private let bufferSize: Int
    private let segmentOffsets: [Int]
    /// Rows in `buffer`.
    private var fill = 0
    private var levels: [[String]]
    /// Label → code, built on the first ``code(for:inColumnAt:)`` of a column.
    private var levelIndex: [[String: Int32]?]
    /// Largest code appended to each factor column, checked against its levels on finish.
    private var largestCode: [Int32]
    private var state = State.open
    /// CRC-32C of each chunk written, for the footer.
    private var chunkChecksums: [UInt32] = []

    private enum State { case open, complete, finished, failed }

    /// Creates the temporary file and writes a provisional header.
    /// - Parameters:
    ///   - path: the file to create (replaced if it exists, once the writer finishes).
    ///   - columns: the columns, with unique non-empty names.
    ///   - rowsPerChunk: rows per chunk, the unit of reading.
    /// - Throws: ``InputError`` for invalid columns, ``LMMError/output(file:reason:)`` when the file cannot be created.
    public convenience init(path: String, columns: [LMMBinaryColumn], rowsPerChunk: Int = LMMBinaryFormat.defaultRowsPerChunk) throws {
        try self.init(path: path, columns: columns, rowsPerChunk: rowsPerChunk, shard: nil)
    }

    /// ``init(path:columns:rowsPerChunk:)`` for shard `shard` of a set (``LMMBinaryShardSet``).
    init(path: String, columns: [LMMBinaryColumn], rowsPerChunk: Int, shard: LMMBinaryShardID?) throws {
        let file = FileIO.fileName(path)
        guard !columns.isEmpty else { throw InputError("an lmmbin file needs at least one column", file: file) }
        guard (1...Int(Int32.max)).contains(rowsPerChunk) else {
            throw InputError("rows per chunk must be between 1 and \(Int32.max), got \(rowsPerChunk)", file: file)
        }
        var seen = Set<String>()
        for column in columns {
            guard !column.name.isEmpty, column.name.utf8.count <= Int(UInt16.max) else {
                throw InputError("column names must have 1 to \(UInt16.max) bytes", file: file)
            }
            guard seen.insert(column.name).inserted else {
                throw InputError("duplicate column name '\(column.name)'", file: file)
            }
        }
        self.path = path
        self.columns = columns
        self.rowsPerChunk = rowsPerChunk
        self.shard = shard
        self.file = file
        let header = LMMBinaryLayout.header(columns: columns, rowsPerChunk: rowsPerChunk, rowCount: 0, footerOffset: 0, shard: shard)
        let layout = LMMBinaryLayout(columns: columns, rowsPerChunk: rowsPerChunk, dataOffset: header.count, shard: shard)
        self.layout = layout
        // A shard's part of a chunk shorter than R can be one row longer than its part of R.
        let capacity = shard == nil ? rowsPerChunk : layout.stored(rowsPerChunk) + 1
        segmentOffsets = columns.indices.map { layout.segmentOffset($0, rows: capacity) }
        bufferSize = layout.chunkByteCount(rows: capacity)
        levels = Array(repeating: [], count: columns.count)
        levelIndex = Array(repeating: nil, count: columns.count)
        largestCode = Array(repeating: -1, count: columns.count)

        guard case .file(let destination, let existing) = try OutputTarget.resolve(path) else {
            throw InputError("an .lmmbin file must be a regular file (it is written with seeks), not a device or pipe", file: file)
        }
        self.destination = destination
        self.existing = existing
        (fd, temporaryPath) = try Self.createTemporary(beside: destination, file: file)
        SignalCleanup.register(temporaryPath)
        buffer = UnsafeMutableRawPointer.allocate(byteCount: max(bufferSize, 8), alignment: 16)
        buffer.initializeMemory(as: UInt8.self, repeating: 0, count: max(bufferSize, 8))
        do {
            try header.withUnsafeBytes { try FileIO.writeAll(fd, $0.baseAddress!, $0.count, file: file) }
        } catch {
            abandon()
            throw error
        }
    }

    deinit {
        if state == .open || state == .complete { abandon() }
        buffer.deallocate()
    }

    /// A new file `.name.tmp-XXXXXXXX` in the directory of `path`, opened for writing.
    private static func createTemporary(beside path: String, file: String) throws -> (Int32, String) {
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { String(path[...$0]) } ?? ""
        let base = slash.map { String(path[path.index(after: $0)...]) } ?? path
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<100 {
            let suffix = String(generator.next() & 0xFFFF_FFFF, radix: 16)
            let candidate = directory + "." + base + ".tmp-" + suffix
            let fd = open(candidate, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
            if fd >= 0 { return (fd, candidate) }
            if errno != EEXIST { throw LMMError.output(file: file, reason: "cannot create the file: \(FileIO.lastError)") }
        }
        throw LMMError.output(file: file, reason: "cannot create a temporary file beside it")
    }

    /// Closes and removes the temporary file; the writer can no longer be used.
    private func abandon() {
        if fd >= 0 { close(fd) }
        fd = -1
        unlink(temporaryPath)
        SignalCleanup.unregister(temporaryPath)
        state = .failed
    }

    private func checkOpen() throws {
        switch state {
        case .open: return
        case .finished, .complete: throw LMMError.output(file: file, reason: "the writer has already finished")
        case .failed: throw LMMError.output(file: file, reason: "the writer failed earlier; nothing more can be written")
        }
    }

    // MARK: - Levels

    /// Sets the level labels of a factor column, in code order (code `i` is `labels[i]`).
    /// May be called at any time before ``finish()``; replaces earlier labels.
    public func setLevels(_ labels: [String], forColumn name: String) throws {
        try setLevels(labels, forColumnAt: factorIndex(name))
    }

    /// Sets the level labels of the factor column at `index`, in code order.
    public func setLevels(_ labels: [String], forColumnAt index: Int) throws {
        try checkFactor(index)
        guard labels.count <= Int(Int32.max) else { throw InputError("too many levels for column '\(columns[index].name)'", file: file) }
        levels[index] = labels
        levelIndex[index] = nil
    }

    /// The code of `label` in the factor column at `index`, adding it as a new level (the next
    /// code) the first time it is seen: for writers that discover levels as they stream rows.
    public func code(for label: String, inColumnAt index: Int) throws -> Int32 {
        try checkFactor(index)
        if levelIndex[index] == nil {
            var lookup: [String: Int32] = [:]
            for (code, level) in levels[index].enumerated() where lookup[level] == nil { lookup[level] = Int32(code) }
            levelIndex[index] = lookup
        }
        if let code = levelIndex[index]![label] { return code }
        let code = Int32(levels[index].count)
        levels[index].append(label)
        levelIndex[index]![label] = code
        return code
    }

    private func factorIndex(_ name: String) throws -> Int {
        guard let index = columns.firstIndex(where: { $0.name == name }) else {
            throw InputError("no column '\(name)'", file: file)
        }
        return index
    }

    private func checkFactor(_ index: Int) throws {
        guard columns.indices.contains(index), columns[index].kind == .factor else {
            throw InputError("column \(index) is not a factor column", file: file)
        }
    }

    // MARK: - Rows

    /// Appends one row, a value per column in column order. Reusing one `values` array for
    /// every row allocates nothing per row.
    public func append(row values: [LMMBinaryValue]) throws {
        try checkOpen()
        guard shard == nil else { throw LMMError.output(file: file, reason: "a shard is written a chunk's part at a time") }
        guard values.count == columns.count else {
            throw InputError("row \(rowCount + 1): expected \(columns.count) values, got \(values.count)", file: file)
        }
        for (j, value) in values.enumerated() {
            switch (value, columns[j].kind) {
            case (.float64, .float64): break
            case (.code(let code), .factor):
                guard code >= -1 else { throw badCode(code, column: j, row: rowCount + 1) }
            default:
                throw InputError("row \(rowCount + 1): column '\(columns[j].name)' holds \(columns[j].kind) values", file: file)
            }
        }
        for (j, value) in values.enumerated() {
            let at = buffer + segmentOffsets[j]
            switch value {
            case .float64(let x):
                at.storeBytes(of: x, toByteOffset: fill * 8, as: Double.self)
            case .code(let code):
                at.storeBytes(of: code, toByteOffset: fill * 4, as: Int32.self)
                largestCode[j] = max(largestCode[j], code)
            }
        }
        fill += 1
        rowCount += 1
        if fill == rowsPerChunk { try flushFullChunk() }
    }

    /// Appends a batch of rows given column by column: one array per column, in column order,
    /// all of the same length. The values are copied straight into the chunk buffer.
    public func append(_ batch: [LMMBinaryColumnValues]) throws {
        try checkOpen()
        guard shard == nil else { throw LMMError.output(file: file, reason: "a shard is written a chunk's part at a time") }
        try checkBatch(batch)
        let n = batch.first!.count
        var done = 0
        while done < n {
            let k = min(n - done, rowsPerChunk - fill)
            copy(batch, from: done, count: k)
            done += k
            rowCount += k
            if fill == rowsPerChunk { try flushFullChunk() }
        }
    }

    /// A shard's part of the next chunk of the data, a chunk of `chunkRows` rows: `batch` holds
    /// the shard's rows of it (``LMMBinaryShardID/rows(ofChunkRows:)``, possibly none), stored
    /// as one chunk.
    func appendPart(_ batch: [LMMBinaryColumnValues], ofChunkRows chunkRows: Int) throws {
        try checkOpen()
        guard let shard, fill == 0, chunkRows >= 1, chunkRows <= rowsPerChunk, rowCount % rowsPerChunk == 0 else {
            throw LMMError.output(file: file, reason: "internal error: a part of a chunk out of order")
        }
        try checkBatch(batch)
        guard batch.first!.count == shard.rows(ofChunkRows: chunkRows).count else {
            throw LMMError.output(file: file, reason: "internal error: \(batch.first!.count) rows for a part of a chunk of \(chunkRows) rows")
        }
        copy(batch, from: 0, count: batch.first!.count)
        rowCount += chunkRows
        do { try flushPartialChunk() } catch {
            abandon()
            throw error
        }
    }

    /// Checks a batch's columns: kinds, equal lengths, codes (and notes the largest code).
    private func checkBatch(_ batch: [LMMBinaryColumnValues]) throws {
        guard batch.count == columns.count else {
            throw InputError("expected \(columns.count) columns in a batch, got \(batch.count)", file: file)
        }
        let n = batch.first!.count
        for (j, values) in batch.enumerated() {
            guard values.kind == columns[j].kind else {
                throw InputError("column '\(columns[j].name)' holds \(columns[j].kind) values, not \(values.kind)", file: file)
            }
            guard values.count == n else {
                throw InputError("columns of a batch differ in length: '\(columns[0].name)' has \(n) rows, '\(columns[j].name)' \(values.count)", file: file)
            }
            if case .factor(let codes) = values {
                var smallest: Int32 = 0, largest: Int32 = -1
                for code in codes {
                    smallest = min(smallest, code)
                    largest = max(largest, code)
                }
                if smallest < -1, let i = codes.firstIndex(where: { $0 < -1 }) {
                    throw badCode(codes[i], column: j, row: rowCount + i + 1)
                }
                largestCode[j] = max(largestCode[j], largest)
            }
        }
    }

    /// Copies rows `done ..< done + k` of `batch` into the chunk buffer after its `fill` rows.
    private func copy(_ batch: [LMMBinaryColumnValues], from done: Int, count k: Int) {
        guard k > 0 else { return }
        for (j, values) in batch.enumerated() {
            let width = columns[j].kind.width
            let destination = buffer + segmentOffsets[j] + fill * width
            switch values {
            case .float64(let array):
                array.withUnsafeBytes { destination.copyMemory(from: $0.baseAddress! + done * width, byteCount: k * width) }
            case .factor(let array):
                array.withUnsafeBytes { destination.copyMemory(from: $0.baseAddress! + done * width, byteCount: k * width) }
            }
        }
        fill += k
    }

    private func badCode(_ code: Int32, column: Int, row: Int) -> InputError {
        InputError("row \(row): code \(code) in factor column '\(columns[column].name)' is negative (only -1, missing, is allowed)", file: file)
    }

    private func flushFullChunk() throws {
        do {
            swapToLittleEndian(rows: fill)
            chunkChecksums.append(CRC32C.checksum(UnsafeRawBufferPointer(start: buffer, count: bufferSize)))
            try FileIO.writeAll(fd, buffer, bufferSize, file: file)
            fill = 0
        } catch {
            abandon()
            throw error
        }
    }

    /// The last, partial chunk: each column's first `fill` values, zero-padded to 8 bytes.
    private func flushPartialChunk() throws {
        swapToLittleEndian(rows: fill)
        var crc = CRC32C.initial
        for j in columns.indices {
            let used = fill * columns[j].kind.width
            let size = layout.segmentSize(j, rows: fill)
            let segment = buffer + segmentOffsets[j]
            (segment + used).initializeMemory(as: UInt8.self, repeating: 0, count: size - used)
            crc = CRC32C.update(crc, UnsafeRawBufferPointer(start: segment, count: size))
            try FileIO.writeAll(fd, segment, size, file: file)
        }
        chunkChecksums.append(CRC32C.finish(crc))
        fill = 0
    }

    /// Values are stored little-endian: a no-op except on big-endian machines.
    private func swapToLittleEndian(rows: Int) {
        #if _endian(big)
        for j in columns.indices {
            let segment = buffer + segmentOffsets[j]
            if columns[j].kind == .float64 {
                let values = segment.assumingMemoryBound(to: UInt64.self)
                for i in 0..<rows { values[i] = values[i].littleEndian }
            } else {
                let values = segment.assumingMemoryBound(to: UInt32.self)
                for i in 0..<rows { values[i] = values[i].littleEndian }
            }
        }
        #endif
    }

    // MARK: - Finishing

    /// Writes the last chunk and the footer of level labels and checksums, rewrites the header
    /// with the row count, footer offset and checksum, and renames the temporary file to ``path``.
    /// - Throws: ``InputError`` when a factor column has a code without a level, or on an
    ///   I/O error; the temporary file is removed and no file is left at `path`.
    public func finish() throws {
        try complete()
        try publish()
    }

    /// The first half of ``finish()``: the temporary file complete and closed, not yet renamed
    /// (for a set of files that appear together or not at all).
    func complete() throws {
        try checkOpen()
        do {
            for j in columns.indices where columns[j].kind == .factor && Int(largestCode[j]) >= levels[j].count {
                throw InputError("factor column '\(columns[j].name)' has code \(largestCode[j]) but only \(levels[j].count) levels", file: file)
            }
            if fill > 0 { try flushPartialChunk() }
            var footer = LMMBinaryFormat.footerMagic
            for j in columns.indices where columns[j].kind == .factor {
                footer.appendLittleEndian(UInt32(levels[j].count))
                for label in levels[j] {
                    footer.appendLittleEndian(UInt32(label.utf8.count))
                    footer.append(contentsOf: label.utf8)
                }
            }
            for checksum in chunkChecksums { footer.appendLittleEndian(checksum) }
            footer.appendLittleEndian(CRC32C.checksum(footer))
            footer += LMMBinaryFormat.endMagic
            try footer.withUnsafeBytes { try FileIO.writeAll(fd, $0.baseAddress!, $0.count, file: file) }
            let footerOffset = layout.footerOffset(rowCount: rowCount)
            let header = LMMBinaryLayout.header(columns: columns, rowsPerChunk: rowsPerChunk,
                                                rowCount: rowCount, footerOffset: footerOffset, shard: shard)
            try header.withUnsafeBytes { try FileIO.pwriteAll(fd, $0.baseAddress!, $0.count, offset: 0, file: file) }
            if let existing, !OutputTarget.adopt(existing, fd: fd) {
                throw InputError("cannot give the new file the owner and mode of the one it replaces; remove it or choose another name", file: file)
            }
            let result = close(fd)
            fd = -1
            guard result == 0 else { throw LMMError.output(file: file, reason: "cannot write: \(FileIO.lastError)") }
            state = .complete
        } catch {
            abandon()
            throw error
        }
    }

    /// The second half of ``finish()``: renames the complete temporary file to ``path``.
    func publish() throws {
        guard state == .complete else { throw LMMError.output(file: file, reason: "the file is not complete") }
        do {
            guard rename(temporaryPath, destination) == 0 else {
                throw LMMError.output(file: file, reason: "cannot create the file: \(FileIO.lastError)")
            }
            SignalCleanup.unregister(temporaryPath)
            state = .finished
        } catch {
            abandon()
            throw error
        }
    }
}

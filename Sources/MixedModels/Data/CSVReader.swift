/// Reads CSV files into a ``DataTable``, as R's `read.csv` would for a model's variables.
///
/// The file needs a header row of distinct, non-empty column names. Fields follow RFC 4180:
/// separated by commas, optionally enclosed in double quotes (then they may hold commas, line
/// breaks, and quotes written twice), rows ending in LF or CRLF, the last one with or without a
/// line break. A UTF-8 byte order mark is skipped; blank lines are ignored (as R does). Unquoted
/// header names are trimmed of blanks.
///
/// Types: a column named in `categorical` is a ``Factor`` even when its values look numeric
/// (subject ids 308, 309, …, whose levels then sort numerically). Any other column is numeric
/// when every non-missing field is a number (blanks around it allowed; `Inf`, `-Inf`
/// accepted), otherwise a factor. Missing values are empty fields and `NA` (quoted or not),
/// plus `NaN` in numeric columns: `Double.nan` in a numeric column, code `-1` in a factor.
/// Factor levels are in R's order: numeric when every level is a number, else R's default
/// collation (see `LevelOrder`).
///
/// The file is read in chunks and parsed byte by byte; memory is proportional to the loaded
/// columns, not to the file. Problems are reported as ``InputError`` with the file name, the
/// physical line (the header is line 1) and the field number.
public enum CSVReader {
    /// Bytes read from the file at a time.
    static let defaultChunkSize = 4 << 20

    /// The column names in the header of the CSV file at `path`.
    ///
    /// - Throws: ``InputError`` if the file cannot be read, is empty, or its header has an
    ///   empty or duplicate name.
    public static func readHeader(path: String) throws -> [String] {
        try readHeader(path: path, chunkSize: defaultChunkSize)
    }

    /// Reads the CSV file at `path`.
    ///
    /// - Parameters:
    ///   - select: the columns to load (all when `nil`); the others are only checked for the
    ///     right number of fields. ``DataTable/columnNames`` still lists every header name.
    ///   - categorical: columns to read as factors whatever their values look like.
    /// - Returns: a table whose ``DataTable/source`` is the file's last path component.
    /// - Throws: ``InputError`` when the file cannot be read, has no header, a bad or
    ///   duplicate header name, a row with the wrong number of fields or an unterminated quoted
    ///   field, or when a column in `select` is not in the header. (Names in `categorical`
    ///   that the header lacks are ignored.)
    public static func read(path: String, select: [String]? = nil,
                            categorical: Set<String> = []) throws -> DataTable {
        try read(path: path, select: select, categorical: categorical, chunkSize: defaultChunkSize)
    }

    /// Reads CSV data held in memory, exactly as ``read(path:select:categorical:)`` reads a
    /// file; `source` names the data in the table and in error messages.
    public static func read(bytes: [UInt8], source: String, select: [String]? = nil,
                            categorical: Set<String> = []) throws -> DataTable {
        try read(bytes: bytes, source: source, select: select, categorical: categorical,
                 chunkSize: defaultChunkSize)
    }

    // MARK: Internal entry points (a small chunk size lets tests make rows straddle chunks)

    static func readHeader(path: String, chunkSize: Int) throws -> [String] {
        let scanner = CSVScanner(source: try CSVByteSource(path: path, name: fileName(path)), chunkSize: chunkSize)
        return try header(scanner)
    }

    static func read(path: String, select: [String]?, categorical: Set<String>,
                     chunkSize: Int) throws -> DataTable {
        try read(try CSVByteSource(path: path, name: fileName(path)), select: select,
                 categorical: categorical, chunkSize: chunkSize)
    }

    static func read(bytes: [UInt8], source: String, select: [String]?, categorical: Set<String>,
                     chunkSize: Int) throws -> DataTable {
        try read(CSVByteSource(bytes: bytes, name: source), select: select, categorical: categorical,
                 chunkSize: chunkSize)
    }

    // MARK: Reading

    private static func read(_ source: CSVByteSource, select: [String]?, categorical: Set<String>,
                             chunkSize: Int) throws -> DataTable {
        let scanner = CSVScanner(source: source, chunkSize: chunkSize)
        let names = try header(scanner)
        let headerLine = scanner.lines[0]
        let fieldIndex = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) })

        let loaded = try selectedColumns(select, names: names, file: source.name, line: headerLine)
        // Names in `categorical` that the header lacks are ignored: callers pass a formula's
        // grouping columns and report missing ones against the formula.
        var builders = ContiguousArray(loaded.map { name in
            CSVColumnBuilder(name: name, fieldIndex: fieldIndex[name]!, categorical: categorical.contains(name))
        })

        let rowCount = try readRows(scanner, fieldCount: names.count, totalBytes: source.size, into: &builders)
        if builders.contains(where: { $0.pendingRows > 0 }) {
            try fillPendingRows(source, chunkSize: chunkSize, fieldCount: names.count, into: &builders)
        }
        source.release()

        var columns: [String: Column] = [:]
        var infiniteFields: [String: [CellLocation]] = [:]
        var firstTextFields: [String: CellLocation] = [:]
        for k in builders.indices {
            if let pair = builders[k].equivalentLabels {
                throw UTF8Validation.equivalentLabelsError(column: builders[k].name, pair, file: source.name)
            }
            columns[builders[k].name] = builders[k].finish()
            if !builders[k].infiniteFields.isEmpty { infiniteFields[builders[k].name] = builders[k].infiniteFields }
            if let text = builders[k].firstText { firstTextFields[builders[k].name] = text }
        }
        return DataTable(source: source.name, columnNames: names, columns: columns, rowCount: rowCount,
                         infiniteFields: infiniteFields, firstTextFields: firstTextFields)
    }

    /// Rows scanned per batch; the batch is then converted column by column.
    static let batchSize = 128

    /// The hot loop: batches of rows, each loaded column converted as soon as its rows are whole.
    private static func readRows(_ scanner: CSVScanner, fieldCount: Int, totalBytes: Int?,
                                 into builders: inout ContiguousArray<CSVColumnBuilder>) throws -> Int {
        var rows = 0
        let headerBytes = scanner.scannedBytes
        var reserved = false
        // Unsafe access: no uniqueness checks or retains per batch.
        try builders.withUnsafeMutableBufferPointer { builders in
            while true {
                let count = try scanner.nextRows(limit: batchSize)
                if count == 0 { break }
                for r in 0..<count where scanner.fieldCounts[r] != fieldCount {
                    throw wrongFieldCount(scanner, row: r, expected: fieldCount)
                }
                for k in builders.indices {
                    let failed = builders[k].append(rows: count, fields: scanner.fields, stride: scanner.stride,
                                                    buffer: scanner.buffer, lines: scanner.lines)
                    if failed >= 0 { throw levelError(scanner, row: failed, builders[k]) }
                }
                rows += count
                // Once the first rows tell the average row length, size the columns for the
                // whole file: growing them by doubling would copy (and fault in) twice the memory.
                if !reserved, rows >= 8192, let totalBytes {
                    reserved = true
                    let bytesPerRow = Double(scanner.scannedBytes - headerBytes) / Double(rows)
                    let estimate = Double(totalBytes - headerBytes) / max(bytesPerRow, 1) * 1.02
                    if estimate < 1e10 {
                        for k in builders.indices { builders[k].reserve(rows: Int(estimate) + batchSize) }
                    }
                }
            }
        }
        return rows
    }

    /// Second pass for columns that turned categorical after their first row: codes for the
    /// rows read while they still looked numeric.
    private static func fillPendingRows(_ source: CSVByteSource, chunkSize: Int, fieldCount: Int,
                                        into builders: inout ContiguousArray<CSVColumnBuilder>) throws {
        guard source.size != nil else {
            // A pipe cannot be read twice.
            let name = builders.first { $0.pendingRows > 0 }!.name
            throw InputError("column \"\(name)\" looked numeric at first but has text further down; reading "
                             + "it as categorical needs a second pass, which is impossible for a pipe: read from a "
                             + "regular file or declare the column categorical", file: source.name)
        }
        let scanner = CSVScanner(source: try source.reopened(), chunkSize: chunkSize)
        let changed = InputError("the file changed while it was being read", file: source.name)
        guard try scanner.nextRows(limit: 1) == 1 else { throw changed }
        scanner.fixStride(fieldCount)
        let pending = builders.indices.filter { builders[$0].pendingRows > 0 }
        let rowLimit = pending.map { builders[$0].pendingRows }.max() ?? 0
        var row = 0
        while row < rowLimit {
            let count = try scanner.nextRows(limit: min(batchSize, rowLimit - row))
            guard count > 0 else { throw changed }
            for r in 0..<count {
                guard scanner.fieldCounts[r] == fieldCount else { throw changed }
                for k in pending where row < builders[k].pendingRows {
                    let field = scanner.fields[r * scanner.stride + builders[k].fieldIndex]
                    if !builders[k].setPendingCode(row: row, scanner.buffer + field.start, count: field.count) {
                        throw levelError(scanner, row: r, builders[k])
                    }
                }
                row += 1
            }
        }
    }

    /// The column names from the first non-blank row.
    private static func header(_ scanner: CSVScanner) throws -> [String] {
        guard try scanner.nextRows(limit: 1) == 1 else {
            throw InputError("empty file: expected a header row with the column names",
                             file: scanner.sourceName, line: 1)
        }
        let line = scanner.lines[0]
        var names: [String] = []
        var seen: [String: Int] = [:]
        for k in 0..<scanner.fieldCounts[0] {
            let field = scanner.fields[k]
            var start = field.start
            var end = field.end
            if !field.quoted {
                while start < end, NumberParser.isBlank(scanner.buffer[start]) { start += 1 }
                while end > start, NumberParser.isBlank(scanner.buffer[end - 1]) { end -= 1 }
            }
            if let offset = UTF8Validation.firstInvalidByte(scanner.buffer + start, count: end - start) {
                throw InputError("column name \(k + 1) in the header is not valid UTF-8 (byte \(UTF8Validation.hex(scanner.buffer[start + offset]))); "
                                 + "convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8)",
                                 file: scanner.sourceName, line: line, column: k + 1)
            }
            let name = String(decoding: UnsafeBufferPointer(start: scanner.buffer + start, count: end - start),
                              as: UTF8.self)
            if name.isEmpty {
                throw InputError("empty column name in the header: expected a name for every column",
                                 file: scanner.sourceName, line: line, column: k + 1)
            }
            if let first = seen[name] {
                throw InputError("duplicate column name \"\(name)\" in the header (also column \(first + 1)): expected distinct names",
                                 file: scanner.sourceName, line: line, column: k + 1)
            }
            seen[name] = k
            names.append(name)
        }
        scanner.fixStride(names.count)
        return names
    }

    /// The columns to load: `select` without repeats (every header name when nil).
    /// - Throws: ``InputError`` at the header's `line` for a selected name the header lacks.
    static func selectedColumns(_ select: [String]?, names: [String], file: String, line: Int) throws -> [String] {
        guard let select else { return names }
        for name in select where !names.contains(name) {
            throw InputError("selected column \"\(name)\" is not in the header; the columns are: "
                             + names.map { "\"\($0)\"" }.joined(separator: ", "), file: file, line: line)
        }
        var seen = Set<String>()
        return select.filter { seen.insert($0).inserted }
    }

    /// A row of the current batch with a number of fields other than the header's; `dataRow`
    /// (1-based, header not counted) is named in the message when given.
    static func wrongFieldCount(_ scanner: CSVScanner, row: Int, expected: Int, dataRow: Int? = nil) -> InputError {
        let found = scanner.fieldCounts[row]
        return InputError((dataRow.map { "row \($0): " } ?? "")
                          + "expected \(expected) field\(expected == 1 ? "" : "s"), found \(found)"
                          + (dataRow != nil && found < expected ? " (the row ends early)" : ""),
                          file: scanner.sourceName, line: scanner.lines[row], column: min(expected, found) + 1)
    }

    /// Why `builder` refused a field of row `row` of the current batch: a new level that is not
    /// UTF-8, or one level too many.
    private static func levelError(_ scanner: CSVScanner, row: Int, _ builder: CSVColumnBuilder) -> InputError {
        guard let (_, offset) = builder.invalidUTF8 else { return tooManyLevels(scanner, row: row, builder) }
        let field = scanner.fields[row * scanner.stride + builder.fieldIndex]
        return UTF8Validation.error(byte: scanner.buffer[field.start + offset], offset: offset, column: builder.name,
                                    number: builder.fieldIndex + 1, file: scanner.sourceName, line: scanner.lines[row])
    }

    private static func tooManyLevels(_ scanner: CSVScanner, row: Int, _ builder: CSVColumnBuilder) -> InputError {
        InputError("column \"\(builder.name)\" has more than \(LevelDictionary.maximumCount) distinct values",
                   file: scanner.sourceName, line: scanner.lines[row], column: builder.fieldIndex + 1)
    }

    /// The last path component, as `DataTable.source` and in error messages.
    static func fileName(_ path: String) -> String {
        let component = path.split(separator: "/", omittingEmptySubsequences: true).last.map(String.init)
        return component ?? path
    }
}

/// Converts a CSV file into an `.lmmbin` file (``LMMBinaryFormat``) without holding its rows:
/// the streaming fitter reads `.lmmbin` chunks, and `lmm convert` and `lmm fit --method adam`
/// on a CSV file go through here.
///
/// Two passes over the file, each with the CSV reader's scanner (one 4 MiB buffer):
/// 1. column types: a column is numeric while every non-missing field is a number, as
///    ``CSVReader`` decides; a column named in `categorical`, or whose first non-missing field is
///    text, collects its levels in this pass. (A column that looks numeric for a while and then
///    holds text needs one more pass for its levels: rare, and still bounded.)
/// 2. values: numbers as float64 (missing: `NaN`), factor fields as codes of the levels sorted in
///    R's order (``LevelOrder``), appended to an ``LMMBinaryWriter`` a batch at a time.
///
/// Memory is the scanner's buffer, one chunk of the writer and the level dictionaries:
/// proportional to the number of distinct levels, not of rows. The output is written to a
/// temporary file and renamed when complete, so a failure leaves no file.
public enum CSVConversion {
    /// What a conversion wrote.
    public struct Summary: Sendable {
        public var rowCount: Int
        public var columns: [LMMBinaryColumn]
        /// Number of levels of each factor column, by name.
        public var levelCounts: [String: Int]
    }

    /// Converts `csv` to an `.lmmbin` file at `output`.
    /// - Parameters:
    ///   - select: the columns to keep, in this order (all when nil).
    ///   - categorical: columns to store as factors whatever their values look like.
    ///   - rowsPerChunk: rows per chunk of the output.
    /// - Throws: ``InputError`` with the file, line and field for a row with the wrong number of
    ///   fields, an unterminated quote, a selected column missing from the header, or a file
    ///   that changes between the passes; no output file is left behind.
    @discardableResult
    public static func convert(csv path: String, to output: String, select: [String]? = nil,
                               categorical: Set<String> = [], numeric: Set<String> = [],
                               rowsPerChunk: Int = LMMBinaryFormat.defaultRowsPerChunk) throws -> Summary {
        try convert(csv: path, to: output, select: select, categorical: categorical, numeric: numeric,
                    rowsPerChunk: rowsPerChunk, chunkSize: CSVReader.defaultChunkSize)
    }

    /// With a chosen scanner chunk size (tests make rows straddle chunks).
    static func convert(csv path: String, to output: String, select: [String]?, categorical: Set<String>,
                        numeric: Set<String> = [], rowsPerChunk: Int, chunkSize: Int) throws -> Summary {
        let file = CSVReader.fileName(path)
        let names = try CSVReader.readHeader(path: path, chunkSize: chunkSize)
        let fieldIndex = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) })
        let wanted = try CSVReader.selectedColumns(select, names: names, file: file, line: 1)
        var columns = wanted.map { ConvertedColumn(name: $0, field: fieldIndex[$0]!, categorical: categorical.contains($0)) }

        // Pass 1: types, and the levels of columns that are text from their first value.
        var row = 0
        let rowCount = try scan(path, file: file, fieldCount: names.count, chunkSize: chunkSize) { scanner, r in
            for k in columns.indices { columns[k].inspect(scanner, row: r, dataRow: row) }
            row += 1
        }
        // An infinite number in a numeric column (R reads `Inf`, `1e400` as infinities, and a
        // model stops on them), text in a column that must be numeric: errors at their field.
        for column in columns {
            if !column.isFactor, let (cell, value) = column.firstInfinite {
                throw DataChecks.infinite(cell, value: value, column: column.name, number: column.field + 1, file: file,
                                          role: "", advice: "an .lmmbin file holds finite numbers only, as a model "
                                          + "cannot use an infinite one (R stops with \"NA/NaN/Inf in 'x'\"); correct it, "
                                          + "write NA to drop the row, or leave the column out (--columns)")
            }
            if column.isFactor, numeric.contains(column.name), let cell = column.firstText {
                throw InputError("column \"\(column.name)\" must be numeric (it is the response), but \"\(cell.text)\" is not a number",
                                 file: file, line: cell.line, column: column.field + 1)
            }
        }
        try checkUTF8(columns, file: file)
        // Columns that turned to text after numbers: collect their levels from the start.
        let late = columns.indices.filter { columns[$0].needsLevelPass }
        if !late.isEmpty {
            for k in late { columns[k].restartLevels() }
            _ = try scan(path, file: file, fieldCount: names.count, chunkSize: chunkSize) { scanner, r in
                for k in late { columns[k].collectLevel(scanner, row: r) }
            }
        }
        try checkUTF8(columns, file: file)
        for k in columns.indices {
            if let pair = columns[k].equivalentLabels {
                throw UTF8Validation.equivalentLabelsError(column: columns[k].name, pair, file: file)
            }
            columns[k].sortLevels()
        }

        // Pass 2: values.
        let writer = try LMMBinaryWriter(path: output, columns: columns.map(\.binaryColumn), rowsPerChunk: rowsPerChunk)
        for (k, column) in columns.enumerated() where column.isFactor {
            try writer.setLevels(column.sortedLabels, forColumnAt: k)
        }
        var batch = ConversionBatch(columns: columns, capacity: 8_192)
        var written = 0
        _ = try scan(path, file: file, fieldCount: names.count, chunkSize: chunkSize) { scanner, r in
            for k in columns.indices {
                guard columns[k].store(scanner, row: r, into: &batch, column: k) else {
                    throw InputError("the file changed while it was being converted (row \(written + batch.count + 1): "
                                     + "a value of column \"\(columns[k].name)\" was not seen in the first pass)",
                                     file: file, line: scanner.lines[r], column: columns[k].field + 1)
                }
            }
            batch.count += 1
            if batch.count == batch.capacity {
                try writer.append(batch.values(columns))
                written += batch.count
                batch.count = 0
            }
        }
        if batch.count > 0 { try writer.append(batch.values(columns)) }
        guard writer.rowCount == rowCount else {
            throw InputError("the file changed while it was being converted: \(rowCount) rows in the first pass, "
                             + "\(writer.rowCount) in the second", file: file)
        }
        try writer.finish()
        var levelCounts: [String: Int] = [:]
        for column in columns where column.isFactor { levelCounts[column.name] = column.sortedLabels.count }
        return Summary(rowCount: rowCount, columns: columns.map(\.binaryColumn), levelCounts: levelCounts)
    }

    /// A level collected so far that is not UTF-8 is an error at its field.
    private static func checkUTF8(_ columns: [ConvertedColumn], file: String) throws {
        for column in columns {
            if let bad = column.invalidUTF8 {
                throw UTF8Validation.error(byte: bad.byte, offset: bad.offset, column: column.name, number: column.field + 1,
                                           file: file, line: bad.line)
            }
        }
    }

    /// Calls `body(scanner, r)` for every data row `r` of each scanned batch (the header skipped),
    /// after checking its number of fields; returns the number of rows.
    private static func scan(_ path: String, file: String, fieldCount: Int, chunkSize: Int,
                             _ body: (CSVScanner, Int) throws -> Void) throws -> Int {
        let scanner = CSVScanner(source: try CSVByteSource(path: path, name: file), chunkSize: chunkSize)
        guard try scanner.nextRows(limit: 1) == 1 else {
            throw InputError("empty file: expected a header row with the column names", file: file, line: 1)
        }
        scanner.fixStride(fieldCount)
        var rows = 0
        while true {
            let count = try scanner.nextRows(limit: CSVReader.batchSize)
            if count == 0 { break }
            for r in 0..<count {
                guard scanner.fieldCounts[r] == fieldCount else {
                    throw CSVReader.wrongFieldCount(scanner, row: r, expected: fieldCount, dataRow: rows + r + 1)
                }
                try body(scanner, r)
            }
            rows += count
        }
        return rows
    }
}

/// One column being converted: its type so far, and its levels when it is a factor.
private struct ConvertedColumn {
    let name: String
    /// Index of the column's field in each row.
    let field: Int
    private(set) var isFactor: Bool
    /// Turned to text after rows that looked numeric: its levels need a pass of their own.
    private(set) var needsLevelPass = false
    private var seenValue = false
    private var levels = LevelDictionary()
    /// Provisional (dictionary) code → code in R's order; and the labels in that order.
    private var rank: [Int32] = []
    private(set) var sortedLabels: [String] = []

    init(name: String, field: Int, categorical: Bool) {
        self.name = name
        self.field = field
        isFactor = categorical
    }

    var binaryColumn: LMMBinaryColumn { isFactor ? .factor(name) : .float64(name) }

    private func bytes(_ scanner: CSVScanner, _ r: Int) -> (UnsafePointer<UInt8>, Int) {
        let span = scanner.fields[r * scanner.stride + field]
        return (UnsafePointer(scanner.buffer + span.start), span.count)
    }

    /// The first field holding an infinite number, while the column looks numeric.
    private(set) var firstInfinite: (CellLocation, Double)?
    /// The first field that is not a number (what made an undeclared column a factor).
    private(set) var firstText: CellLocation?

    /// Pass 1: keep deciding the type; collect levels while a factor. `dataRow` is the row's
    /// number among the data rows (0-based).
    mutating func inspect(_ scanner: CSVScanner, row r: Int, dataRow: Int) {
        let (start, count) = bytes(scanner, r)
        if !isFactor {
            if let value = NumberParser.parse(start, count: count) {
                seenValue = true
                if value.isInfinite, firstInfinite == nil {
                    firstInfinite = (CellLocation(row: dataRow, line: scanner.lines[r], bytes: start, count: count), value)
                }
                return
            }
            if MissingValues.isMissingNumber(start, count: count) { return }
            firstText = CellLocation(row: dataRow, line: scanner.lines[r], bytes: start, count: count)
            isFactor = true
            needsLevelPass = seenValue
        }
        if !needsLevelPass && !MissingValues.isMissingLevel(start, count: count) { addLevel(start, count, line: scanner.lines[r]) }
    }

    /// The first new level that is not UTF-8: its line, the bad byte and its offset in the field.
    private(set) var invalidUTF8: (line: Int, byte: UInt8, offset: Int)?

    /// Adds a level (when new), noting the first that is not UTF-8.
    private mutating func addLevel(_ start: UnsafePointer<UInt8>, _ count: Int, line: Int) {
        let before = levels.count
        _ = levels.code(for: start, length: count)
        if levels.count != before, invalidUTF8 == nil, let offset = UTF8Validation.firstInvalidByte(start, count: count) {
            invalidUTF8 = (line, start[offset], offset)
        }
    }

    mutating func restartLevels() { levels = LevelDictionary() }

    /// The extra pass for a column that turned to text late.
    mutating func collectLevel(_ scanner: CSVScanner, row r: Int) {
        let (start, count) = bytes(scanner, r)
        if !MissingValues.isMissingLevel(start, count: count) { addLevel(start, count, line: scanner.lines[r]) }
    }

    /// Two labels equal as text but not as bytes: see ``LevelDictionary/equivalentLabels()``.
    var equivalentLabels: (first: [UInt8], second: [UInt8])? {
        isFactor ? levels.equivalentLabels() : nil
    }

    /// Puts the levels in R's order, as the CSV reader does (``LevelDictionary/sortedLevels()``).
    mutating func sortLevels() {
        guard isFactor else { return }
        (rank, sortedLabels) = levels.sortedLevels()
    }

    /// Pass 2: the value of row `r` into the batch; false when it cannot be converted as pass 1
    /// decided (the file changed).
    func store(_ scanner: CSVScanner, row r: Int, into batch: inout ConversionBatch, column k: Int) -> Bool {
        let (start, count) = bytes(scanner, r)
        if isFactor {
            if MissingValues.isMissingLevel(start, count: count) {
                batch.codes[k][batch.count] = -1
                return true
            }
            let before = levels.count
            guard let code = levels.code(for: start, length: count), levels.count == before else { return false }
            batch.codes[k][batch.count] = rank[Int(code)]
            return true
        }
        guard let value = MissingValues.number(start, count: count) else { return false }
        batch.doubles[k][batch.count] = value
        return true
    }
}

/// Rows converted but not yet appended to the writer, column by column.
private struct ConversionBatch {
    var doubles: [[Double]]
    var codes: [[Int32]]
    var count = 0
    let capacity: Int

    init(columns: [ConvertedColumn], capacity: Int) {
        self.capacity = capacity
        doubles = columns.map { $0.isFactor ? [] : [Double](repeating: 0, count: capacity) }
        codes = columns.map { $0.isFactor ? [Int32](repeating: 0, count: capacity) : [] }
    }

    /// The first `count` rows of every column, as the writer takes them.
    func values(_ columns: [ConvertedColumn]) -> [LMMBinaryColumnValues] {
        columns.indices.map { k in
            columns[k].isFactor ? .factor(Array(codes[k][0..<count])) : .float64(Array(doubles[k][0..<count]))
        }
    }
}

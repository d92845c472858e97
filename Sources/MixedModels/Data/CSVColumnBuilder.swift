/// Accumulates one CSV column while the file is read, and decides its type.
///
/// A column named as categorical is a factor from the start. Any other column starts numeric
/// and stays so while every field is a number or missing; the first other field makes it a
/// factor from that row on. The rows before it were only kept as numbers, so their codes are
/// filled in by a second pass over the file (``pendingRows``) rather than by keeping every
/// field's text: memory stays proportional to the parsed columns.
struct CSVColumnBuilder {
    let name: String
    /// Index of the column's field in each row.
    let fieldIndex: Int
    private(set) var isNumeric: Bool
    private var values: [Double] = []
    private var codes: [Int32] = []
    private let levels = LevelDictionary()
    /// Rows `0 ..< pendingRows` were read before the column turned out to be categorical;
    /// their codes are placeholders until ``setPendingCode(row:_:count:)`` fills them.
    private(set) var pendingRows = 0
    /// The fields holding an infinite number, while the column is numeric.
    private(set) var infiniteFields: [CellLocation] = []
    /// The field that made a numeric column categorical.
    private(set) var firstText: CellLocation?
    /// A new level that is not valid UTF-8: the batch row (or data row, in the second pass)
    /// where ``append(rows:fields:stride:buffer:lines:)`` stopped, and the bad byte's offset.
    private(set) var invalidUTF8: (row: Int, offset: Int)?

    init(name: String, fieldIndex: Int, categorical: Bool) {
        self.name = name
        self.fieldIndex = fieldIndex
        isNumeric = !categorical
    }

    /// Makes room for `rows` rows in all, so the column does not grow by repeated copying.
    mutating func reserve(rows: Int) {
        if isNumeric { values.reserveCapacity(rows) } else { codes.reserveCapacity(rows) }
    }

    /// Adds this column's field of each of `rows` scanned rows (field `k` of row `r` is
    /// `fields[r * stride + k]`, on physical line `lines[r]`). Returns -1, or the batch row at
    /// which a factor would get more levels than `Int32` codes can number or a new level is
    /// not valid UTF-8 (then ``invalidUTF8`` is set).
    mutating func append(rows: Int, fields: UnsafePointer<CSVFieldSpan>, stride: Int,
                         buffer: UnsafePointer<UInt8>, lines: UnsafePointer<Int>) -> Int {
        var r = 0
        if isNumeric {
            while r < rows {
                let field = fields[r * stride + fieldIndex]
                if !appendNumber(buffer + field.start, count: field.count) { break }
                if values[values.count - 1].isInfinite {
                    infiniteFields.append(CellLocation(row: values.count - 1, line: lines[r],
                                                       bytes: buffer + field.start, count: field.count))
                }
                r += 1
            }
            if r == rows { return -1 }
            let field = fields[r * stride + fieldIndex]
            firstText = CellLocation(row: values.count, line: lines[r], bytes: buffer + field.start, count: field.count)
            becomeCategorical()
        }
        // Two passes over the batch. The first hashes every field and loads its table slot:
        // independent loads in a tight loop, so their cache misses (a large dictionary is far
        // bigger than L2) overlap instead of stalling one row at a time. The second pass then
        // finds the slots in cache.
        let first = r
        let hashes = levels.hashBuffer(capacity: rows)
        var touched: UInt64 = 0
        while r < rows {
            let field = fields[r * stride + fieldIndex]
            if !MissingValues.isMissingLevel(buffer + field.start, count: field.count) {
                let (hash, slot) = levels.hashAndTouch(buffer + field.start, length: field.count)
                hashes[r] = hash
                touched &+= slot
            }
            r += 1
        }
        levels.keepAlive(touched)
        r = first
        while r < rows {
            let field = fields[r * stride + fieldIndex]
            if MissingValues.isMissingLevel(buffer + field.start, count: field.count) {
                codes.append(-1)
            } else {
                let before = levels.count
                guard let code = levels.code(for: buffer + field.start, length: field.count, hash: hashes[r]) else {
                    return r
                }
                if levels.count != before, let offset = UTF8Validation.firstInvalidByte(buffer + field.start, count: field.count) {
                    invalidUTF8 = (r, offset)
                    return r
                }
                codes.append(code)
            }
            r += 1
        }
        return -1
    }

    /// Adds a number or a missing value; `false` (nothing added) for any other text.
    @inline(__always)
    private mutating func appendNumber(_ bytes: UnsafePointer<UInt8>, count: Int) -> Bool {
        guard let value = MissingValues.number(bytes, count: count) else { return false }
        values.append(value)   // NaN for a missing value
        return true
    }

    /// Fills in the code of a row read before the column became categorical (second pass).
    mutating func setPendingCode(row: Int, _ bytes: UnsafePointer<UInt8>, count: Int) -> Bool {
        let before = levels.count
        guard let code = code(bytes, count: count) else { return false }
        if levels.count != before, let offset = UTF8Validation.firstInvalidByte(bytes, count: count) {
            invalidUTF8 = (row, offset)
            return false
        }
        codes[row] = code
        return true
    }

    /// Two labels equal as text but not as bytes (nil for a numeric column): see
    /// ``LevelDictionary/equivalentLabels()``.
    var equivalentLabels: (first: [UInt8], second: [UInt8])? {
        isNumeric ? nil : levels.equivalentLabels()
    }

    /// The finished column: numbers, or a factor with its levels in R's order.
    mutating func finish() -> Column {
        if isNumeric { return .numeric(values) }
        let (remap, sortedLabels) = levels.sortedLevels()
        var codes: [Int32] = []
        swap(&codes, &self.codes)   // so the remapping below writes in place, without a copy
        remap.withUnsafeBufferPointer { remap in
            codes.withUnsafeMutableBufferPointer { codes in
                for i in codes.indices where codes[i] >= 0 { codes[i] = remap[Int(codes[i])] }
            }
        }
        return .categorical(Factor(codes: codes, levels: sortedLabels))
    }

    // MARK: Private

    /// A factor code: -1 for a missing value, else the level's provisional code.
    @inline(__always)
    private func code(_ bytes: UnsafePointer<UInt8>, count: Int) -> Int32? {
        if MissingValues.isMissingLevel(bytes, count: count) { return -1 }
        return levels.code(for: bytes, length: count)
    }

    /// Switches to categorical at the current row; earlier rows await the second pass.
    @inline(never)
    private mutating func becomeCategorical() {
        pendingRows = values.count
        codes = [Int32](repeating: -1, count: values.count)
        codes.reserveCapacity(values.capacity)
        values = []
        infiniteFields = []
        isNumeric = false
    }
}

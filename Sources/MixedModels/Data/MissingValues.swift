/// R's missing values in a CSV field (`read.csv` with its default `na.strings = "NA"`), the one
/// definition that ``CSVReader`` and ``CSVConversion`` both apply.
///
/// - In a numeric column: an empty field, `NA`, or `NaN` (blanks around each allowed) —
///   stored as `Double.nan`.
/// - In a factor: an empty field or exactly `NA` — stored as code `-1`. Blanks are part of a
///   level's label, so `" NA"` is a level.
enum MissingValues {
    /// The value of a field in a numeric column: the number, `Double.nan` for a missing value
    /// (``NumberParser`` already gives `NaN` for the text `NaN`), `nil` for any other text.
    @inline(__always)
    static func number(_ bytes: UnsafePointer<UInt8>, count: Int) -> Double? {
        if let value = NumberParser.parse(bytes, count: count) { return value }
        return isMissingNumber(bytes, count: count) ? .nan : nil
    }

    /// An empty field or `NA`, blanks around it allowed: a missing value in a numeric column.
    static func isMissingNumber(_ bytes: UnsafePointer<UInt8>, count: Int) -> Bool {
        var start = 0
        var end = count
        while start < end, NumberParser.isBlank(bytes[start]) { start += 1 }
        while end > start, NumberParser.isBlank(bytes[end - 1]) { end -= 1 }
        return start == end
            || (end - start == 2 && bytes[start] == UInt8(ascii: "N") && bytes[start + 1] == UInt8(ascii: "A"))
    }

    /// An empty field or `NA`: a missing value in a factor.
    @inline(__always)
    static func isMissingLevel(_ bytes: UnsafePointer<UInt8>, count: Int) -> Bool {
        count == 0 || (count == 2 && bytes[0] == UInt8(ascii: "N") && bytes[1] == UInt8(ascii: "A"))
    }
}

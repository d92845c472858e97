/// Non-finite numbers in the columns a model uses. R reads `Inf`, `-Inf` and numbers beyond
/// the double range (`1e400`) as infinities, not as missing values, and `lm`/`lmer` then stop
/// with "NA/NaN/Inf in 'x'" (or 'y'); only `NA`, an empty field and `NaN` are dropped by
/// na.omit. So an infinity in a used column is an error, with the file, line and column.
extension DataChecks {
    /// Every numeric column of `names` in `data` is finite in the rows not marked `missing`.
    /// - Throws: ``InputError`` at the first such field (lowest row over the columns): its file,
    ///   line and column when the data came from a CSV file, else its data row.
    func finite(columns names: [String], of data: DataTable, skipping missing: [Bool]) throws {
        var first: (row: Int, name: String)?
        var seen = Set<String>()
        for name in names where seen.insert(name).inserted {
            guard case .numeric(let values)? = data.columns[name] else { continue }
            let limit = first?.row ?? values.count
            if let row = (0..<limit).first(where: { values[$0].isInfinite && !missing[$0] }) {
                first = (row, name)
            }
        }
        guard let (row, name) = first, case .numeric(let values)? = data.columns[name] else { return }
        throw Self.infinite(values[row], row: row, column: name, in: data,
                            advice: Self.advice(response: name == formula.response))
    }

    /// The error for the infinite value `value` in data row `row` (0-based) of column `name`.
    static func infinite(_ value: Double, row: Int, column name: String, in data: DataTable,
                         advice: String = advice()) -> InputError {
        let number = (data.columnNames.firstIndex(of: name) ?? -1) + 1
        if let cell = data.infiniteFields[name]?.first(where: { $0.row == row }) {
            return infinite(cell, value: value, column: name, number: number, file: data.source, advice: advice)
        }
        return InputError("\(value > 0 ? "Inf" : "-Inf") in data row \(row + 1), \(describe(name, number)), which the model uses: \(advice)",
                          file: data.source)
    }

    /// The error for the infinite number `value` read from the field `cell` of column `name`
    /// (field number `number`, 1-based) of `file`.
    static func infinite(_ cell: CellLocation, value: Double, column name: String, number: Int, file: String,
                         role: String = ", which the model uses", advice: String = advice()) -> InputError {
        let shown = cell.text.trimmingBlanks
        let lowered = shown.lowercased()
        let reading = lowered.hasSuffix("inf") || lowered.hasSuffix("infinity")
            ? "\"\(shown)\"" : "\"\(shown)\" (beyond the range of a double: \(value > 0 ? "Inf" : "-Inf"))"
        return InputError("\(reading) in \(describe(name, number))\(role): \(advice)",
                          file: file, line: cell.line, column: number > 0 ? number : nil)
    }

    /// What to do about it; R's message names 'y' for the response and 'x' for the rest.
    static func advice(response: Bool = false) -> String {
        "a model cannot use an infinite number (R stops with \"NA/NaN/Inf in '\(response ? "y" : "x")'\"); correct it, or write NA to drop the row"
    }

    private static func describe(_ name: String, _ number: Int) -> String {
        number > 0 ? "column '\(name)' (column \(number))" : "column '\(name)'"
    }
}

private extension String {
    /// Without the blanks (spaces, tabs) that a CSV field may have around a number.
    var trimmingBlanks: String {
        var s = Substring(self)
        while let c = s.first, c == " " || c == "\t" { s.removeFirst() }
        while let c = s.last, c == " " || c == "\t" { s.removeLast() }
        return String(s)
    }
}

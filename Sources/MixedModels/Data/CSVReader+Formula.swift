/// Loading exactly the columns a formula needs.
extension CSVReader {
    /// Reads the columns `formula` (and `options`: weights, offset) uses from a CSV file, columns used only as grouping
    /// factors as categorical (``Formula/factorColumns``).
    /// Columns the header lacks are left out, so that ``ModelFrame`` can report them against
    /// the formula (with a caret) rather than against the file.
    public static func read(path: String, for formula: Formula, options: ModelOptions = ModelOptions()) throws -> DataTable {
        let header = Set(try readHeader(path: path))
        let wanted = (formula.columnsUsed + options.columns).filter { header.contains($0) }
        return try read(path: path, select: wanted, categorical: formula.factorColumns)
    }
}

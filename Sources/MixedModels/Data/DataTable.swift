/// A table of named columns read from a CSV file (or built in memory).
public struct DataTable: Sendable {
    /// Where the data came from (a file name), used in error messages.
    public var source: String
    /// Every column name in the file's header, in order (also those not loaded).
    public var columnNames: [String]
    /// The loaded columns by name.
    public var columns: [String: Column]
    /// Number of data rows.
    public var rowCount: Int
    /// Per numeric column read from a CSV file, the fields holding an infinite number (`Inf`,
    /// `-Inf`, `1e400`, …), in row order: a model that uses the column refuses them with the
    /// file, line and column, as R's `lm`/`lmer` stop on "NA/NaN/Inf in 'x'". Empty for data
    /// built in memory (the errors then name the data row).
    public var infiniteFields: [String: [CellLocation]]
    /// Per column read from a CSV file as categorical without being declared so, its first
    /// field that is not a number (what made it categorical).
    public var firstTextFields: [String: CellLocation]

    public init(source: String, columnNames: [String], columns: [String: Column], rowCount: Int,
                infiniteFields: [String: [CellLocation]] = [:], firstTextFields: [String: CellLocation] = [:]) {
        self.source = source
        self.columnNames = columnNames
        self.columns = columns
        self.rowCount = rowCount
        self.infiniteFields = infiniteFields
        self.firstTextFields = firstTextFields
    }

    /// The column called `name`, if it was loaded.
    public subscript(name: String) -> Column? { columns[name] }
}

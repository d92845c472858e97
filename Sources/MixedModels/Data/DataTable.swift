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

    public init(source: String, columnNames: [String], columns: [String: Column], rowCount: Int) {
        self.source = source
        self.columnNames = columnNames
        self.columns = columns
        self.rowCount = rowCount
    }

    /// The column called `name`, if it was loaded.
    public subscript(name: String) -> Column? { columns[name] }
}

/// A dense column-major matrix of doubles (the layout BLAS and LAPACK expect).
public struct Matrix: Sendable, Equatable {
    public var rows: Int
    public var columns: Int
    /// Entries column by column: entry (i, j) is `values[i + j * rows]`.
    public var values: [Double]

    public init(rows: Int, columns: Int, values: [Double]) {
        precondition(values.count == rows * columns, "matrix needs rows × columns values")
        self.rows = rows
        self.columns = columns
        self.values = values
    }

    /// A `rows × columns` matrix of zeros.
    public init(zeros rows: Int, _ columns: Int) {
        self.init(rows: rows, columns: columns, values: [Double](repeating: 0, count: rows * columns))
    }

    public subscript(i: Int, j: Int) -> Double {
        get { values[i + j * rows] }
        set { values[i + j * rows] = newValue }
    }

    /// Column `j` as an array.
    public func column(_ j: Int) -> [Double] {
        Array(values[(j * rows)..<((j + 1) * rows)])
    }

    /// The diagonal.
    public var diagonal: [Double] { (0..<min(rows, columns)).map { self[$0, $0] } }
}

/// The model's view of one chunk of the file: the complete rows' response `y`, the columns of
/// `X`, and each random term's level slots and effect columns, in buffers that live as long as
/// the chunk object and are reused from chunk to chunk (the fitter's hot loops read them
/// through plain pointers).
final class DesignChunk: @unchecked Sendable {
    /// Rows (complete rows of the chunk).
    private(set) var rowCount = 0
    /// Index in the file (from 0) of the chunk's first row, for messages.
    private(set) var firstRow = 0
    /// Rows each column has room for.
    let capacity: Int
    let y: UnsafeMutablePointer<Double>
    /// Columns of `X`: column t at `X + t · capacity`.
    let X: UnsafeMutablePointer<Double>
    /// Slot of each row for term j at `slots[j]`.
    let slots: [UnsafeMutablePointer<Int32>]
    /// Effect column a of term j at `Z[j] + a · capacity` (no columns for a term `(1 | g)`).
    let Z: [UnsafeMutablePointer<Double>]
    private let fixedCount: Int
    /// Index in the file chunk of each row (nil: row i is the chunk's row i).
    private(set) var sourceRows: [Int32]?

    /// The file's row (0-based) of the chunk's complete row `i`.
    func sourceRow(_ i: Int) -> Int { firstRow + (sourceRows.map { Int($0[i]) } ?? i) }

    init(design: StreamingDesign, capacity: Int) {
        self.capacity = max(capacity, 1)
        fixedCount = design.fixed.count
        y = .allocate(capacity: self.capacity)
        X = .allocate(capacity: self.capacity * max(fixedCount, 1))
        slots = design.terms.map { _ in .allocate(capacity: max(capacity, 1)) }
        Z = design.terms.map { term in .allocate(capacity: max(capacity, 1) * (term.effects.isInterceptOnly ? 1 : term.effectCount)) }
    }

    deinit {
        y.deallocate()
        X.deallocate()
        for pointer in slots { pointer.deallocate() }
        for pointer in Z { pointer.deallocate() }
    }

    /// Fills the buffers from `chunk` (at most ``capacity`` rows), skipping rows with a missing value.
    /// - Parameter complete: the chunk is known to have no missing value (the scan is skipped).
    func load(_ chunk: LMMBinaryChunk, design: StreamingDesign, kinds: [LMMBinaryColumn.Kind], complete: Bool = false) {
        precondition(chunk.rowCount <= capacity, "chunk larger than the design buffers")
        let rows = complete ? nil : StreamingDesign.completeRows(chunk, usedColumns: design.usedColumns, kinds: kinds)
        sourceRows = rows
        rowCount = rows?.count ?? chunk.rowCount
        firstRow = chunk.firstRow
        if design.response < 0 {
            // A function of the response (`log(y)`), checked over the file when the design was made.
            let values = (try? design.expressions.values(design.formula.response, chunk, rows: rows))
                ?? [Double](repeating: .nan, count: rowCount)
            y.update(from: values, count: rowCount)
        } else {
            chunk.doubles[design.response].withUnsafeBufferPointer { values in
                if let rows {
                    for (i, r) in rows.enumerated() { y[i] = values[Int(r)] }
                } else {
                    y.update(from: values.baseAddress!, count: rowCount)
                }
            }
        }
        design.fixed.evaluate(chunk, rows: rows, rowCount: rowCount, into: X, columnStride: capacity)
        for (j, term) in design.terms.enumerated() {
            term.grouping.slots(chunk, rows: rows, rowCount: rowCount, into: slots[j])
            if !term.effects.isInterceptOnly {
                term.effects.evaluate(chunk, rows: rows, rowCount: rowCount, into: Z[j], columnStride: capacity)
            }
        }
    }

    /// x_i'β of row i (summed over t in order).
    @inline(__always)
    func marginalFit(row i: Int, beta: [Double]) -> Double {
        var fitted = 0.0
        for t in 0..<beta.count { fitted += X[t * capacity + i] * beta[t] }
        return fitted
    }

    /// `marginal` + z_i'b of row i, b from the terms' level records, added term by term.
    @inline(__always)
    func conditionalFit(row i: Int, marginal: Double, views: [TermView]) -> Double {
        var fitted = marginal
        for (j, view) in views.enumerated() {
            let record = view.record(slots[j][i])
            if view.interceptOnly {
                fitted += record[0]
            } else {
                for a in 0..<view.k { fitted += Z[j][a * capacity + i] * record[a] }
            }
        }
        return fitted
    }
}

/// Finds the columns of a model matrix that are linearly independent of the columns before
/// them, keeping the original order — what lme4 keeps when it drops aliased fixed effects
/// (R's `qr(X, tol = 1e-7)` with its limited column pivoting).
enum RankDeficiency {
    /// Relative tolerance on the norm of a column after removing its projection on the
    /// kept columns (R's default `tol` for `qr`).
    static let tolerance = 1e-7

    /// Indices of the columns to keep.
    static func independentColumns(of X: Matrix) -> [Int] {
        let n = X.rows
        var basis: [[Double]] = []   // orthonormal columns spanning the kept ones
        var kept: [Int] = []
        for j in 0..<X.columns {
            var v = X.column(j)
            let norm = (v.reduce(0) { $0 + $1 * $1 }).squareRoot()
            if norm == 0 { continue }
            // Modified Gram–Schmidt, twice, for a stable residual.
            for _ in 0..<2 {
                for q in basis {
                    var dot = 0.0
                    for i in 0..<n { dot += q[i] * v[i] }
                    for i in 0..<n { v[i] -= dot * q[i] }
                }
            }
            let residual = (v.reduce(0) { $0 + $1 * $1 }).squareRoot()
            if residual > tolerance * norm {
                for i in 0..<n { v[i] /= residual }
                basis.append(v)
                kept.append(j)
            }
        }
        return kept
    }
}

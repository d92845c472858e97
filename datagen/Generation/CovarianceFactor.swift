/// A lower-triangular `L` with `L Lᵀ = Σ` for a positive semi-definite `Σ` (a zero pivot
/// gives a zero column), used to draw `b = L z`, `z ~ N(0, I)`.
struct CovarianceFactor: Equatable {
    /// Row-major k × k.
    let L: [Double]
    let k: Int

    /// Nil when `Σ` is not positive semi-definite (a pivot below −tolerance, or a zero pivot
    /// whose column is not zero).
    init?(_ sigma: [[Double]]) {
        let k = sigma.count
        let scale = max((0..<k).map { sigma[$0][$0] }.max() ?? 0, .leastNormalMagnitude)
        let tolerance = 1e-10 * scale
        var L = [Double](repeating: 0, count: k * k)
        for j in 0..<k {
            var pivot = sigma[j][j]
            for m in 0..<j { pivot -= L[j * k + m] * L[j * k + m] }
            if pivot < -tolerance { return nil }
            if pivot <= tolerance {
                // Σ's column j must then lie in the span of the earlier ones.
                for i in (j + 1)..<max(k, j + 1) {
                    var residual = sigma[i][j]
                    for m in 0..<j { residual -= L[i * k + m] * L[j * k + m] }
                    if abs(residual) > 1e-8 * scale { return nil }
                }
                continue
            }
            let d = pivot.squareRoot()
            L[j * k + j] = d
            for i in (j + 1)..<max(k, j + 1) {
                var value = sigma[i][j]
                for m in 0..<j { value -= L[i * k + m] * L[j * k + m] }
                L[i * k + j] = value / d
            }
        }
        self.L = L
        self.k = k
    }
}

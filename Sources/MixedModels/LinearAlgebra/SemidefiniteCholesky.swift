/// Cholesky factor of a small positive semi-definite matrix (a covariance matrix of random
/// effects), allowing zero pivots where the whole remaining column is zero, as a variance
/// of zero (a boundary fit) requires.
enum SemidefiniteCholesky {
    /// Lower-triangular `L` with `L L' = scale · V`, or nil when `V` is not symmetric positive
    /// semi-definite (within a relative tolerance).
    static func factor(_ V: Matrix, scale: Double = 1) -> Matrix? {
        let k = V.rows
        guard V.columns == k, V.values.allSatisfy(\.isFinite) else { return nil }
        let magnitude = max(V.diagonal.map(abs).max() ?? 0, .leastNormalMagnitude)
        let tolerance = 1e-10 * magnitude
        for a in 0..<k { for b in 0..<a where abs(V[a, b] - V[b, a]) > tolerance { return nil } }
        var L = Matrix(zeros: k, k)
        for j in 0..<k {
            var d = V[j, j]
            for c in 0..<j { d -= L[j, c] * L[j, c] }
            if d < -tolerance { return nil }
            if d <= tolerance {
                // Zero pivot: the rest of the column must vanish too.
                for i in (j + 1)..<max(j + 1, k) {
                    var s = V[i, j]
                    for c in 0..<j { s -= L[i, c] * L[j, c] }
                    if abs(s) > tolerance { return nil }
                }
                continue
            }
            let pivot = d.squareRoot()
            L[j, j] = pivot
            for i in (j + 1)..<max(j + 1, k) {
                var s = V[i, j]
                for c in 0..<j { s -= L[i, c] * L[j, c] }
                L[i, j] = s / pivot
            }
        }
        let root = scale.squareRoot()
        for index in L.values.indices { L.values[index] *= root }
        return L
    }
}

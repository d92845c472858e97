/// Cholesky factor of a small positive semi-definite matrix (a covariance matrix of random
/// effects), allowing zero pivots where the whole remaining column is zero, as a variance
/// of zero (a boundary fit) requires.
enum SemidefiniteCholesky {
    /// Lower-triangular `L` with `L L' = scale · V`, or nil when `V` is not symmetric positive
    /// semi-definite (within a relative tolerance).
    ///
    /// - Parameter perEntry: tolerances relative to each entry's own scale — a pivot to its
    ///   diagonal entry `V[j, j]`, an off-diagonal entry to `√(V[i, i] V[j, j])` — as a covariance
    ///   matrix needs: a variance of 35 next to one of 10¹² is a variance of 35, not a zero
    ///   (issue 11, item 7). Without it, relative to the largest diagonal entry (a test of
    ///   numerical definiteness, as the Newton steps use it).
    static func factor(_ V: Matrix, scale: Double = 1, perEntry: Bool = false) -> Matrix? {
        let k = V.rows
        guard V.columns == k, V.values.allSatisfy(\.isFinite) else { return nil }
        let relative = 1e-10
        let magnitude = max(V.diagonal.map(abs).max() ?? 0, .leastNormalMagnitude)
        func tolerance(_ i: Int, _ j: Int) -> Double {
            guard perEntry else { return relative * magnitude }
            return relative * max((abs(V[i, i]) * abs(V[j, j])).squareRoot(), .leastNormalMagnitude)
        }
        for a in 0..<k { for b in 0..<a where abs(V[a, b] - V[b, a]) > tolerance(a, b) { return nil } }
        var L = Matrix(zeros: k, k)
        for j in 0..<k {
            var d = V[j, j]
            for c in 0..<j { d -= L[j, c] * L[j, c] }
            // The rounding error of d is of the order of V[j, j] times the machine precision.
            if d < -tolerance(j, j) { return nil }
            if d <= tolerance(j, j) {
                // Zero pivot: the rest of the column must vanish too.
                for i in (j + 1)..<max(j + 1, k) {
                    var s = V[i, j]
                    for c in 0..<j { s -= L[i, c] * L[j, c] }
                    if abs(s) > tolerance(i, j) { return nil }
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

/// R's orthogonal polynomials `poly(x, degree)`: the columns of the centred Vandermonde matrix
/// `[1, x−x̄, (x−x̄)², …]` made orthogonal (R takes `Q·diag(R)` of its QR decomposition, which
/// is each power minus its projection on the lower ones, whatever the signs of the QR), then
/// scaled to unit length, the constant column dropped. `alpha` and `norm2` are R's
/// `attr(, "coefs")`, from which `predict` rebuilds the basis on new x by the three-term
/// recurrence.
struct OrthogonalPolynomial {
    /// The `degree` columns, each of unit length and orthogonal to the constant and to the others.
    let columns: [[Double]]
    /// R's `alpha`: the recurrence's centres, `degree` values.
    let alpha: [Double]
    /// R's `norm2`: `1`, `n`, then the squared lengths of the unscaled columns (`degree + 2` values).
    let norm2: [Double]

    /// The number of distinct values of `x`; `poly` needs more than `degree`.
    static func distinctCount(_ x: [Double]) -> Int { Set(x).count }

    /// - Precondition: no missing value in `x`, `degree < distinctCount(x)`.
    init(_ x: [Double], degree: Int) {
        let n = x.count
        let mean = x.reduce(0, +) / Double(n)
        let centred = x.map { $0 - mean }
        var basis: [[Double]] = [[Double](repeating: 1, count: n)]
        var squaredNorms: [Double] = [Double(n)]
        for power in 1...degree {
            var v = centred.map { Self.power($0, power) }
            // Gram–Schmidt against the lower columns, twice for accuracy ("twice is enough").
            for _ in 0..<2 {
                for (k, z) in basis.enumerated() {
                    var dot = 0.0
                    for i in 0..<n { dot += z[i] * v[i] }
                    let coefficient = dot / squaredNorms[k]
                    for i in 0..<n { v[i] -= coefficient * z[i] }
                }
            }
            basis.append(v)
            squaredNorms.append(v.reduce(0) { $0 + $1 * $1 })
        }
        var alpha: [Double] = []
        for k in 0..<degree {
            var weighted = 0.0
            for i in 0..<n { weighted += centred[i] * basis[k][i] * basis[k][i] }
            alpha.append(weighted / squaredNorms[k] + mean)
        }
        self.alpha = alpha
        self.norm2 = [1] + squaredNorms
        self.columns = (1...degree).map { k in
            let length = squaredNorms[k].squareRoot()
            return basis[k].map { $0 / length }
        }
    }

    private static func power(_ x: Double, _ k: Int) -> Double {
        var result = 1.0
        for _ in 0..<k { result *= x }
        return result
    }

    /// The basis of degree `alpha.count` at new values `x` from the training data's
    /// coefficients, by R's three-term recurrence (`predict(poly(x, k), newx)`):
    /// `z₀ = 1`, `z₁ = x − α₁`, `zⱼ₊₁ = (x − αⱼ₊₁)zⱼ − (norm2ⱼ₊₂ / norm2ⱼ₊₁)zⱼ₋₁`, each `zⱼ`
    /// divided by `√norm2ⱼ₊₁`. A missing x gives missing values.
    static func evaluate(_ x: [Double], alpha: [Double], norm2: [Double]) -> [[Double]] {
        let degree = alpha.count
        var columns: [[Double]] = []
        var previous = [Double](repeating: 1, count: x.count)
        var current = x.map { $0 - alpha[0] }
        columns.append(current)
        if degree > 1 {
            for i in 1..<degree {
                let ratio = norm2[i + 1] / norm2[i]
                var next = [Double](repeating: 0, count: x.count)
                for r in x.indices { next[r] = (x[r] - alpha[i]) * current[r] - ratio * previous[r] }
                previous = current
                current = next
                columns.append(next)
            }
        }
        for k in 0..<degree {
            let length = norm2[k + 2].squareRoot()
            for r in x.indices { columns[k][r] /= length }
        }
        return columns
    }
}

/// The working coordinates of the fixed effects in which the cross-products are formed, so that
/// a constant added to the response or to a covariate cannot cancel the digits of `y'y`,
/// `X'y` and `X'X` (the penalized residual sum of squares `r² = y'y − ‖cu‖² − ‖cβ‖²` is a
/// difference of such sums).
///
/// The columns of X are orthogonalized by modified Gram–Schmidt (two passes), without
/// normalizing: `X = X̃R` with R unit upper triangular, so `det R = 1` and log det(RX'RX) — the
/// REML term — is unchanged. The response is replaced by its least-squares residual on X̃:
/// `ỹ = y − X̃g`. Both are exact reparametrizations of the same model,
///
///     ỹ = X̃β̃ + Zb + ε   with   β = R⁻¹(β̃ + g),
///
/// so θ, σ², b, the residuals and the objective are those of the user's model, and β, its
/// covariance and RX transform back through R (``userFixedEffects(_:)``,
/// ``userCovariance(_:)``, ``userRX(_:)``). The only loss is the rounding of ỹ and X̃ themselves
/// (relative to the data as given), which no method can avoid.
struct FixedEffectBasis {
    let p: Int
    /// R, p × p column-major, unit upper triangular: `X = X̃R`.
    let R: [Double]
    /// g: `ỹ = y − X̃g` (working coordinates).
    private(set) var g: [Double]

    /// Orthogonalizes the n × p column-major `X` in place into X̃ and returns the basis with
    /// g = 0 (``removeFit(from:workingX:)`` sets g).
    /// - Parameter group: the processes holding the other rows of X (a distributed fit): every
    ///   inner product is summed over them, so that each process gets the same R and X̃ is the
    ///   whole X's (its rows here).
    static func orthogonalize(_ X: inout [Double], n: Int, p: Int,
                              group: any ProcessGroup = SingleProcess()) -> FixedEffectBasis {
        let dot = { (a: UnsafePointer<Double>, b: UnsafePointer<Double>, n: Int) -> Double in
            var value = [dotProduct(a, b, n)]
            if group.size > 1 { group.sum(&value) }
            return value[0]
        }
        var R = [Double](repeating: 0, count: p * p)
        for j in 0..<p { R[j + j * p] = 1 }
        var norms = [Double](repeating: 0, count: p)
        X.withUnsafeMutableBufferPointer { x in
            for j in 0..<p {
                let xj = x.baseAddress! + j * n
                for _ in 0..<2 {
                    for i in 0..<j where norms[i] > 0 {
                        let r = dot(x.baseAddress! + i * n, xj, n) / norms[i]
                        guard r != 0, r.isFinite else { continue }
                        axpy(-r, x.baseAddress! + i * n, xj, n)
                        R[i + j * p] += r
                    }
                }
                norms[j] = dot(xj, xj, n)
            }
        }
        return FixedEffectBasis(p: p, R: R, g: [Double](repeating: 0, count: p))
    }

    /// Replaces `y` by its residual on the working columns (two passes) and records g.
    mutating func removeFit(from y: inout [Double], workingX X: [Double], n: Int,
                            group: any ProcessGroup = SingleProcess()) {
        let dot = { (a: UnsafePointer<Double>, b: UnsafePointer<Double>, n: Int) -> Double in
            var value = [dotProduct(a, b, n)]
            if group.size > 1 { group.sum(&value) }
            return value[0]
        }
        g = [Double](repeating: 0, count: p)
        X.withUnsafeBufferPointer { x in
            y.withUnsafeMutableBufferPointer { yv in
                for _ in 0..<2 {
                    for i in 0..<p {
                        let xi = x.baseAddress! + i * n
                        let norm = dot(xi, xi, n)
                        guard norm > 0 else { continue }
                        let r = dot(xi, yv.baseAddress!, n) / norm
                        guard r != 0, r.isFinite else { continue }
                        axpy(-r, xi, yv.baseAddress!, n)
                        g[i] += r
                    }
                }
            }
        }
    }

    /// R⁻¹v (back substitution with the unit upper R).
    func solveR(_ v: [Double]) -> [Double] {
        var x = v
        for j in stride(from: p - 1, through: 0, by: -1) {
            for c in (j + 1)..<max(j + 1, p) { x[j] -= R[j + c * p] * x[c] }
        }
        return x
    }

    /// β = R⁻¹(β̃ + g) from the working β̃.
    func userFixedEffects(_ working: [Double]) -> [Double] {
        solveR(zip(working, g).map { $0 + $1 })
    }

    /// The working coefficients of a response that is not shifted: β = R⁻¹β̃.
    func userCoefficients(_ working: [Double]) -> [Double] { solveR(working) }

    /// X̃'v from X'v: `X̃ = XR⁻¹`, so X̃'v = R⁻ᵀ(X'v) (forward substitution).
    func workingCrossProduct(_ Xtv: [Double]) -> [Double] {
        var x = Xtv
        for j in 0..<p {
            for c in 0..<j { x[j] -= R[c + j * p] * x[c] }
        }
        return x
    }

    /// The user's RX from the working one: `RX'RX = R'(RX̃'RX̃)R`, so RX = RX̃R (upper triangular).
    func userRX(_ working: Matrix) -> Matrix {
        var out = Matrix(zeros: p, p)
        for j in 0..<p {
            for i in 0...j {
                var s = 0.0
                for k in i...j { s += working[i, k] * R[k + j * p] }
                out[i, j] = s
            }
        }
        return out
    }

    /// The user's covariance of β from the working one: R⁻¹ C R⁻ᵀ.
    func userCovariance(_ working: Matrix) -> Matrix {
        var left = Matrix(zeros: p, p)
        for c in 0..<p {
            let column = solveR(working.column(c))
            for i in 0..<p { left[i, c] = column[i] }
        }
        var out = Matrix(zeros: p, p)
        for i in 0..<p {
            let row = solveR((0..<p).map { left[i, $0] })
            for j in 0..<p { out[i, j] = row[j] }
        }
        for j in 0..<p { for i in (j + 1)..<max(j + 1, p) { let s = (out[i, j] + out[j, i]) / 2; out[i, j] = s; out[j, i] = s } }
        return out
    }

}

private func axpy(_ alpha: Double, _ x: UnsafePointer<Double>, _ y: UnsafeMutablePointer<Double>, _ n: Int) {
    for i in 0..<n { y[i] += alpha * x[i] }
}

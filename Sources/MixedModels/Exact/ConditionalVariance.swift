/// Conditional variances of the random effects, `Var(b | y, β̂) = σ² Λ (Λ'Z'ZΛ + I)⁻¹ Λ'`,
/// from the selected inverse of the sparse Cholesky factor (lme4's `condVar`).
enum ConditionalVariance {
    /// Diagonal of `Var(b | y)` (length q). Overwrites the factor with its selected inverse
    /// (or uses the one already computed at this θ).
    static func diagonal(pls: PenalizedLeastSquares, sigmaSquared: Double) throws -> [Double] {
        let blocks = try diagonalBlocks(pls: pls, sigmaSquared: sigmaSquared)
        var out = [Double](repeating: 0, count: pls.q)
        for (j, term) in pls.design.terms.enumerated() {
            let k = term.effectCount
            for l in 0..<term.levelCount {
                let base = pls.design.layouts[j].start(level: l)
                for r in 0..<k { out[base + r] = blocks[j][l][r + r * k] }
            }
        }
        return out
    }

    /// The k × k blocks `σ² Tⱼ Σ_l Tⱼ'` for every term j and level l (column-major).
    /// Overwrites the factor with its selected inverse.
    static func diagonalBlocks(pls: PenalizedLeastSquares, sigmaSquared: Double) throws -> [[[Double]]] {
        let inverse = try pls.invert()
        var result: [[[Double]]] = []
        for (j, term) in pls.design.terms.enumerated() {
            let k = term.effectCount
            let T = pls.parameters.template(j, theta: pls.theta)
            var levels: [[Double]] = []
            levels.reserveCapacity(term.levelCount)
            var S = [Double](repeating: 0, count: k * k)
            var TS = [Double](repeating: 0, count: k * k)
            for l in 0..<term.levelCount {
                let base = pls.design.layouts[j].start(level: l)
                for r in 0..<k {
                    for s in 0...r {
                        let value = inverse.entry(base + r, base + s)
                        S[r + s * k] = value
                        S[s + r * k] = value
                    }
                }
                // T S T'
                for r in 0..<k {
                    for s in 0..<k {
                        var sum = 0.0
                        for c in 0...r { sum += T[r, c] * S[c + s * k] }
                        TS[r + s * k] = sum
                    }
                }
                var block = [Double](repeating: 0, count: k * k)
                for r in 0..<k {
                    for s in 0..<k {
                        var sum = 0.0
                        for c in 0...s { sum += TS[r + c * k] * T[s, c] }
                        block[r + s * k] = sigmaSquared * sum
                    }
                }
                levels.append(block)
            }
            result.append(levels)
        }
        return result
    }
}

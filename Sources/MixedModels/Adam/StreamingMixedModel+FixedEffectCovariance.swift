import Foundation

/// The approximate covariance of β̂ of a streaming fit, and the small dense kernels it needs.
extension StreamingMixedModel {
    /// Var(β̂) ≈ σ² [(X'X)⁻¹ + Σⱼ (Sⱼ⁻¹ − (X'X)⁻¹)], with Sⱼ = X'X − Σₗ Xₗ'Zₗ (Zₗ'Zₗ + Λ̃ⱼ)⁻¹ Zₗ'Xₗ the
    /// Schur complement of the model with term j alone. Exact for one term; for several, the
    /// terms' contributions to the variance of β̂ are added, which is exact for balanced crossed
    /// designs (Var(ȳ) = σ²/n + σ²ᵤ/qᵤ + σ²ᵢ/qᵢ) and within a fraction of a percent of the exact
    /// standard errors on the Zipf-distributed users × items data of the tests.
    func fixedEffectCovariance(sigmaSquared: Double) throws -> Matrix {
        let p = keptFixed.count, full = statistics.crossXy.count
        // A residual variance this small next to the response's: the fixed and random effects
        // reproduce y exactly (y = 3x + 1, or y a function of the groups) and nothing below is finite.
        let n = Double(max(statistics.n, 1)), mean = statistics.ySum / n
        let variance = max(statistics.yy / n - mean * mean, 0)
        if !(sigmaSquared > 1e-12 * variance) {
            throw LMMError.formula(FormulaError(
                "the model reproduces the response '\(formula.response)' exactly (residual variance \(RFormat.number(sigmaSquared)) "
                + "against the response's \(RFormat.number(variance))): there is no residual variance to estimate, and a "
                + "mixed model has no maximum likelihood then; the response needs noise",
                formula: formula.text, span: formula.responseSpan))
        }
        let G = gram
        guard let inverseGram = SmallCholesky.inverse(G, p) else {
            throw LMMError.numerical("internal error: X'X is not positive definite")
        }
        var covariance = inverseGram
        for state in states {
            let k = state.k
            var S = G
            var cross = [Double](repeating: 0, count: p * k)
            let H = UnsafeMutablePointer<Double>.allocate(capacity: 2 * k * k)
            defer { H.deallocate() }
            for l in 0..<state.slotCount {
                let record = state.record(l)
                guard state.count(record) > 0 else { continue }
                let source = state.crossXZ + l * full * k
                for a in 0..<k { for (r, t) in keptFixed.enumerated() { cross[r + a * p] = source[t + a * full] } }
                state.curvature(record, into: H)
                guard SmallCholesky.inverse(of: H, k, work: H, into: H + k * k) else {
                    throw LMMError.numerical("internal error: a posterior precision is not positive definite")
                }
                for s in 0..<p {
                    for r in s..<p {
                        var sum = 0.0
                        for a in 0..<k { for b in 0..<k { sum += cross[r + a * p] * H[k * k + a + b * k] * cross[s + b * p] } }
                        S[r + s * p] -= sum
                    }
                }
            }
            for s in 0..<p { for r in (s + 1)..<max(s + 1, p) { S[s + r * p] = S[r + s * p] } }
            guard let inverseS = SmallCholesky.inverse(S, p) else {
                throw LMMError.numerical("internal error: a Schur complement of X'X is not positive definite")
            }
            for c in 0..<(p * p) { covariance[c] += inverseS[c] - inverseGram[c] }
        }
        var result = Matrix(zeros: p, p)
        for s in 0..<p { for r in 0..<p { result[r, s] = sigmaSquared * 0.5 * (covariance[r + s * p] + covariance[s + r * p]) } }
        return result
    }

    /// log det of a small symmetric positive definite matrix (overwritten by its factor).
    static func logDeterminant(_ A: UnsafeMutablePointer<Double>, _ k: Int) -> Double {
        guard k > 0, SmallCholesky.factorInPlace(A, k) else { return 0 }
        var sum = 0.0
        for a in 0..<k { sum += 2 * log(A[a + a * k]) }
        return sum
    }
}

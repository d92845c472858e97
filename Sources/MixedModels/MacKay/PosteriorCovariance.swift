import Foundation

/// Posterior covariances of the random effects that the MacKay evidence and EM updates need:
/// the k × k blocks `Cⱼₗ = Cov(bₗ | y)` of every level and the trace `tr(W C W')`, under the
/// joint posterior of (β, b) with a flat prior on β — the one whose fixed point is REML — or,
/// for ML, under the posterior of b given β = β̂ (no β-uncertainty term: `Cov(u | y, β̂) = σ²A⁻¹`,
/// `tr(ZCZ') = σ²(q − tr A⁻¹)`), whose fixed point is ML.
///
/// In the spherical coordinates u (b = Λu) the posterior precision of (u, β) is
/// `H/σ²` with `H = [A  Λ'Z'X; X'ZΛ  X'X]`, `A = Λ'Z'ZΛ + I`, so
///
///     Cov(u | y) = σ² (A⁻¹ + M (RX'RX)⁻¹ M'),   M = A⁻¹Λ'Z'X,
///     tr(W C W') = σ² (q + p − tr(Cov(u | y))/σ²),   W = [Z X].
///
/// ``exact(pls:sigmaSquared:)`` takes the diagonal blocks of A⁻¹ from the selected inverse of
/// the factor. ``stochastic(pls:sigmaSquared:probes:seed:)`` estimates the per-term sums
/// `Σₗ Cⱼₗ` with Hutchinson's estimator (Rademacher probes, one solve each) for models whose
/// selected inverse is too expensive; see its documentation for the error.
struct PosteriorCovariance {
    /// For each term j: Σₗ Cov(bₗ | y), k × k column-major.
    var summedBlocks: [[Double]]
    /// For each term j: the per-level blocks Cov(bₗ | y) (exact only; empty for stochastic).
    var levelBlocks: [[Double]]
    /// tr(W C W') = E[‖y − Xβ − Zb‖² | y] − ‖y − Xβ̂ − Zb̂‖².
    var residualTrace: Double

    /// Exact blocks. Runs p solves, then overwrites the factor with its selected inverse.
    static func exact(pls: PenalizedLeastSquares, sigmaSquared: Double, concurrent: Bool = true) throws -> PosteriorCovariance {
        try exactInverse(pls: pls).blocks(sigmaSquared: sigmaSquared, concurrent: concurrent)
    }

    /// The sequential part of the exact blocks: p solves for M, then the selected inverse.
    /// - Parameter criterion: `.reml` for the joint posterior of (β, b), `.ml` for b given β̂.
    static func exactInverse(pls: PenalizedLeastSquares, criterion: Criterion = .reml) throws -> ExactInverse {
        let withBeta = criterion == .reml && pls.p > 0
        // Memory (issue 11, item 12): M (q × p) and every level's k × k block, twice (the
        // factorization's inverse blocks and the posterior's).
        let blockEntries = pls.design.terms.reduce(0) { $0 + $1.levelCount * $1.effectCount * $1.effectCount }
        try MemoryBudget.require(8 * (pls.q * (withBeta ? pls.p : 0) + 2 * blockEntries),
                                 for: "the posterior covariance blocks of every level",
                                 advice: "try --traces stochastic (no per-level blocks), or raise the limit (ulimit -v)")
        let M = withBeta ? try pls.solveFixedEffectColumns() : []
        return ExactInverse(pls: pls, M: M, RXtRXInverse: withBeta ? fixedEffectPrecisionInverse(pls) : [],
                            inverse: try pls.invert())
    }

    /// A's selected inverse and M, from which every term's blocks follow independently.
    struct ExactInverse {
        let pls: PenalizedLeastSquares
        let M: [Double]
        let RXtRXInverse: [Double]
        let inverse: InverseEntries

    /// The posterior blocks of every term (concurrently over the terms).
    func blocks(sigmaSquared: Double, concurrent: Bool) -> PosteriorCovariance {
        let design = pls.design
        let q = pls.q
        // p = 0 here drops the β term (ML: b given β̂).
        let p = M.isEmpty ? 0 : pls.p
        let M = self.M, RXtRXInverse = self.RXtRXInverse, inverse = self.inverse
        let count = design.terms.count
        var summed = [[Double]](repeating: [], count: count), levels = [[Double]](repeating: [], count: count)
        var traces = [Double](repeating: 0, count: count)
        let theta = pls.theta, parameters = pls.parameters
        summed.withUnsafeMutableBufferPointer { summedOut in
        levels.withUnsafeMutableBufferPointer { levelsOut in
        traces.withUnsafeMutableBufferPointer { tracesOut in
            // Each term reads the inverse and writes only its own slots.
            nonisolated(unsafe) let summedOut = summedOut, levelsOut = levelsOut, tracesOut = tracesOut
            let body = { (j: Int) in
                let term = design.terms[j]
                let k = term.effectCount
                let T = parameters.template(j, theta: theta)
                var sum = [Double](repeating: 0, count: k * k)
                var perLevel = [Double](repeating: 0, count: term.levelCount * k * k)
                var S = [Double](repeating: 0, count: k * k)
                var traceU = 0.0
                for l in 0..<term.levelCount {
                    let base = design.layouts[j].start(level: l)
                    S.withUnsafeMutableBufferPointer { inverse.block(rows: base, k, columns: base, k, into: $0.baseAddress!) }
                    // + M_l (RX'RX)⁻¹ M_l'
                    if p > 0 {
                        for s in 0..<k {
                            for r in 0..<k {
                                var add = 0.0
                                for c in 0..<p {
                                    var inner = 0.0
                                    for d in 0..<p { inner += RXtRXInverse[c + d * p] * M[base + s + d * q] }
                                    add += M[base + r + c * q] * inner
                                }
                                S[r + s * k] += add
                            }
                        }
                    }
                    for r in 0..<k { traceU += S[r + r * k] }
                    // C = σ² T S T'
                    for s in 0..<k {
                        for r in 0..<k {
                            var value = 0.0
                            for a in 0...r { for c in 0...s { value += T[r, a] * S[a + c * k] * T[s, c] } }
                            value *= sigmaSquared
                            perLevel[l * k * k + r + s * k] = value
                            sum[r + s * k] += value
                        }
                    }
                }
                summedOut[j] = sum
                levelsOut[j] = perLevel
                tracesOut[j] = traceU
            }
            Parallel.forEach(count, concurrent: concurrent, body)
        }}}
        let traceU = traces.reduce(0, +)
        let residualTrace = sigmaSquared * (Double(q + p) - traceU)
        return PosteriorCovariance(summedBlocks: summed, levelBlocks: levels, residualTrace: residualTrace)
    }
    }

    /// Hutchinson estimates of Σₗ Cov(bₗ | y) per term and of tr(W C W'), from `probes`
    /// Rademacher vectors (seeded, so reruns agree). Each probe z (±1 on every coordinate of u)
    /// costs one solve with H; `z'Cov(u|y)z` is unbiased for its trace. The standard error of
    /// the mean over N probes of a block's trace is `sqrt(2 Σ_{a≠b} C_ab² / N)` — small when the
    /// posterior correlations between levels are small (the usual case for large factors) — and
    /// is estimated from the spread of the probes (``standardErrors``). Does not overwrite the
    /// factor.
    static func stochastic(pls: PenalizedLeastSquares, sigmaSquared: Double, probes: Int, seed: UInt64,
                           criterion: Criterion = .reml) throws
        -> (covariance: PosteriorCovariance, standardErrors: [[Double]]) {
        let design = pls.design
        let q = pls.q, p = criterion == .reml ? pls.p : 0
        var generator = SplitMix64(seed: seed)
        let kmax = design.terms.map(\.effectCount).max() ?? 1
        var sums = design.terms.map { [Double](repeating: 0, count: $0.effectCount * $0.effectCount) }
        var squares = sums
        var traceU = 0.0
        // Cov(u|y)z = σ² (A⁻¹z + M (RX'RX)⁻¹ M'z): the solve of H with right-hand side (z, 0).
        for _ in 0..<probes {
            var z = [Double](repeating: 0, count: q)
            for i in 0..<q { z[i] = generator.next() & 1 == 0 ? -1 : 1 }
            let hz = try pls.solveSpherical(z, includingFixedEffects: criterion == .reml)
            var perTerm = design.terms.map { [Double](repeating: 0, count: $0.effectCount * $0.effectCount) }
            for (j, term) in design.terms.enumerated() {
                let k = term.effectCount
                let T = pls.parameters.template(j, theta: pls.theta)
                for l in 0..<term.levelCount {
                    let base = design.layouts[j].start(level: l)
                    // Components of Λ: (Λz)_l = T z_l, (Λ Hz)_l = T (Hz)_l; the probe of the
                    // block Σ C_l is (Tz_l)(T Hz_l)' in expectation.
                    for r in 0..<k {
                        var left = 0.0
                        for a in 0...r { left += T[r, a] * z[base + a] }
                        for s in 0..<k {
                            var right = 0.0
                            for c in 0...s { right += T[s, c] * hz[base + c] }
                            perTerm[j][r + s * k] += left * right
                        }
                    }
                }
            }
            for j in design.terms.indices {
                for index in perTerm[j].indices {
                    let value = sigmaSquared * perTerm[j][index]
                    sums[j][index] += value
                    squares[j][index] += value * value
                }
            }
            var zHz = 0.0
            for i in 0..<q { zHz += z[i] * hz[i] }
            traceU += zHz
        }
        _ = kmax
        let count = Double(probes)
        var errors = sums
        for j in sums.indices {
            for index in sums[j].indices {
                let mean = sums[j][index] / count
                let variance = max(squares[j][index] / count - mean * mean, 0)
                sums[j][index] = mean
                errors[j][index] = (variance / max(count - 1, 1)).squareRoot()
            }
        }
        let residualTrace = sigmaSquared * (Double(q + p) - traceU / count)
        return (PosteriorCovariance(summedBlocks: sums, levelBlocks: [], residualTrace: residualTrace), errors)
    }

    /// (RX'RX)⁻¹ of the working X̃ (as M = A⁻¹Λ'Z'X̃), p × p column-major.
    static func fixedEffectPrecisionInverse(_ pls: PenalizedLeastSquares) -> [Double] {
        let p = pls.p
        guard p > 0 else { return [] }
        let R = pls.workingRX()
        var L = [Double](repeating: 0, count: p * p)
        for j in 0..<p { for i in j..<p { L[i + j * p] = R[j, i] } }
        _ = L.withUnsafeMutableBufferPointer { BLAS.potriLower(n: p, A: $0.baseAddress!, lda: p) }
        for j in 0..<p { for i in (j + 1)..<p { L[j + i * p] = L[i + j * p] } }
        return L
    }
}

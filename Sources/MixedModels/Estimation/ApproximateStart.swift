import Foundation

/// A cheap starting θ for REML/ML: a few sweeps of empirical-Bayes EM in which each level's
/// posterior covariance is approximated by its own block, ignoring the other factors,
///
///     C_l = σ² (Z_l'Z_l + σ² Vⱼ⁻¹)⁻¹,
///
/// with the conditional modes from block Gauss–Seidel (backfitting) over the terms. Every sweep
/// is one pass over the rows — no factorization — and it lands within a few percent of the
/// optimum for crossed designs, which saves the expensive exact iterations most of their work.
/// The approximation is exact for a single grouping factor without fixed effects.
///
/// On several processes each holding some of the rows (the iterative method on MPI ranks),
/// every sum over rows goes through `combine` (this process's sums in, every process's total
/// out, the same bits on all), so that every process computes the same start.
struct ApproximateStart {
    let frame: ModelFrame
    let parameters: CovarianceParameters
    /// Sums over rows: this process's in, the total over the processes out.
    var combine: ([Double]) -> [Double] = { $0 }

    /// θ after at most `sweeps` sweeps (fewer when the variances settle to 1e-3).
    func theta(criterion: Criterion, sweeps: Int = 40) -> [Double] {
        let (covariances, sigmaSquared) = components(criterion: criterion, sweeps: sweeps)
        switch parameters.theta(covariances: covariances, sigmaSquared: sigmaSquared) {
        case .success(let theta):
            // Keep diagonal elements off zero: a start on the boundary is a stationary point.
            return theta.enumerated().map { index, value in
                parameters.isDiagonal[index] ? max(value, 1e-2) : value
            }
        case .failure:
            return parameters.initialTheta
        }
    }

    /// The covariance matrices of the terms and σ² after at most `sweeps` sweeps.
    func components(criterion: Criterion, sweeps: Int = 40) -> (covariances: [Matrix], sigmaSquared: Double) {
        let n = frame.n, p = frame.X.columns
        let total = combine([Double(n)])[0]
        let terms = frame.randomTerms
        let X = frame.X
        // Per-level Gram matrices Z_l'Z_l, k × k each.
        let grams: [[Double]] = terms.map { term in
            let k = term.effectCount
            var gram = [Double](repeating: 0, count: term.levelCount * k * k)
            let x = term.effects.values
            for i in 0..<n {
                let base = Int(term.codes[i]) * k * k
                for s in 0..<k { for r in 0..<k { gram[base + r + s * k] += x[i + r * n] * x[i + s * n] } }
            }
            return combine(gram)
        }
        // OLS start for β and the residual.
        var residual = frame.y
        let (XtXFactor, ok) = Self.choleskyOfCrossProduct(X, combine: combine)
        var beta = [Double](repeating: 0, count: p)
        if ok { beta = Self.leastSquaresStep(X, XtXFactor, residual, combine: combine) }
        for c in 0..<p where beta[c] != 0 { for i in 0..<n { residual[i] -= X.values[i + c * n] * beta[c] } }
        var sigmaSquared = max(combine([residual.reduce(0) { $0 + $1 * $1 }])[0] / max(total - Double(p), 1), 1e-12)
        var V: [[Double]] = terms.map { term in
            let k = term.effectCount
            var v = [Double](repeating: 0, count: k * k)
            for r in 0..<k { v[r + r * k] = sigmaSquared }
            return v
        }
        var b: [[Double]] = terms.map { [Double](repeating: 0, count: $0.columnCount) }
        // SQUAREM (Varadhan and Roland 2008, scheme S3) on (V, σ²): EM moves a variance that
        // the data inform weakly (a slope with ten rows per level) by a few percent of its
        // distance per sweep — on 1M users × items rows the slope's variance was still 60 %
        // high after 15 sweeps, which cost the exact fit a Newton iteration (a factorization
        // and an inversion of the 10,000-column complement). Every two sweeps extrapolate
        // along their differences; the sweep after is the scheme's stabilizing step.
        var anchor = Self.flatten(V, sigmaSquared)
        var middle: [Double]?

        for sweep in 0..<sweeps {
            var traces = 0.0
            var newV = V
            for (j, term) in terms.enumerated() {
                let k = term.effectCount
                guard let VInverse = SmallCholesky.inverse(V[j], k) else { continue }
                let levelCount = term.levelCount
                var rhs = [Double](repeating: 0, count: term.columnCount)
                var outer = [Double](repeating: 0, count: k * k)
                var M = [Double](repeating: 0, count: k * k)
                var MInverse = [Double](repeating: 0, count: k * k)
                var work = [Double](repeating: 0, count: k * k)
                term.effects.values.withUnsafeBufferPointer { xBuffer in
                term.codes.withUnsafeBufferPointer { codes in
                residual.withUnsafeMutableBufferPointer { res in
                b[j].withUnsafeMutableBufferPointer { bj in
                grams[j].withUnsafeBufferPointer { gram in
                rhs.withUnsafeMutableBufferPointer { rhs in
                    let x = xBuffer.baseAddress!
                    // Partial residual of this term, and Z_l' times it for every level.
                    for i in 0..<n {
                        let base = Int(codes[i]) * k
                        var fitted = 0.0
                        for r in 0..<k { fitted += x[i + r * n] * bj[base + r] }
                        let partial = res[i] + fitted
                        res[i] = partial
                        for r in 0..<k { rhs[base + r] += x[i + r * n] * partial }
                    }
                    let combined = combine(Array(rhs))
                    for index in combined.indices { rhs[index] = combined[index] }
                    if k == 1 {
                        // Scalar term: b_l = rhs_l / (n_l + σ²/V), C_l = σ² / (n_l + σ²/V).
                        let ratio = sigmaSquared * VInverse[0]
                        var sumOuter = 0.0
                        for l in 0..<levelCount {
                            let precision = gram[l] + ratio
                            let value = rhs[l] / precision
                            let covariance = sigmaSquared / precision
                            bj[l] = value
                            sumOuter += value * value + covariance
                            traces += gram[l] * covariance
                        }
                        outer[0] = sumOuter
                    } else {
                        M.withUnsafeMutableBufferPointer { m in
                        work.withUnsafeMutableBufferPointer { w in
                        MInverse.withUnsafeMutableBufferPointer { inverse in
                            for l in 0..<levelCount {
                                for index in 0..<(k * k) { m[index] = gram[l * k * k + index] + sigmaSquared * VInverse[index] }
                                guard SmallCholesky.inverse(of: m.baseAddress!, k, work: w.baseAddress!, into: inverse.baseAddress!) else { continue }
                                for r in 0..<k {
                                    var s = 0.0
                                    for c in 0..<k { s += inverse[r + c * k] * rhs[l * k + c] }
                                    bj[l * k + r] = s
                                }
                                for s in 0..<k {
                                    for r in 0..<k {
                                        let covariance = sigmaSquared * inverse[r + s * k]
                                        outer[r + s * k] += bj[l * k + r] * bj[l * k + s] + covariance
                                        traces += gram[l * k * k + r + s * k] * covariance
                                    }
                                }
                            }
                        }}}
                    }
                    for i in 0..<n {
                        let base = Int(codes[i]) * k
                        var fitted = 0.0
                        for r in 0..<k { fitted += x[i + r * n] * bj[base + r] }
                        res[i] -= fitted
                    }
                }}}}}}
                for index in 0..<(k * k) { newV[j][index] = outer[index] / Double(levelCount) }
            }
            if ok {
                let step = Self.leastSquaresStep(X, XtXFactor, residual, combine: combine)
                for c in 0..<p where step[c] != 0 {
                    beta[c] += step[c]
                    for i in 0..<n { residual[i] -= X.values[i + c * n] * step[c] }
                }
            }
            let dof = criterion == .ml ? total : max(total - Double(p), 1)
            let newSigmaSquared = max((combine([residual.reduce(0) { $0 + $1 * $1 }])[0] + traces) / dof, 1e-12 * sigmaSquared)
            var change = abs(newSigmaSquared - sigmaSquared) / sigmaSquared
            for j in terms.indices {
                let k = terms[j].effectCount
                let scale = (0..<k).map { max(abs(V[j][$0 + $0 * k]), 1e-12 * sigmaSquared) }.max()!
                for index in 0..<(k * k) { change = max(change, abs(newV[j][index] - V[j][index]) / scale) }
            }
            V = newV
            sigmaSquared = newSigmaSquared
            if change < Self.tolerance { PhaseLog.mark("  start sweeps: \(sweep + 1)"); break }
            let current = Self.flatten(V, sigmaSquared)
            guard let p1 = middle else { middle = current; continue }
            middle = nil
            if let extrapolated = Self.extrapolate(anchor, p1, current, terms: terms) {
                (V, sigmaSquared) = extrapolated
            }
            anchor = Self.flatten(V, sigmaSquared)
        }
        let covariances = V.enumerated().map { j, v in Matrix(rows: terms[j].effectCount, columns: terms[j].effectCount, values: v) }
        return (covariances, sigmaSquared)
    }

    /// Relative change of the components per sweep at which the sweeps stop.
    static let tolerance = 1e-3

    /// (V, σ²) as one vector: every term's k × k entries, then σ².
    private static func flatten(_ V: [[Double]], _ sigmaSquared: Double) -> [Double] {
        V.flatMap { $0 } + [sigmaSquared]
    }

    /// SQUAREM's step from p₀ and two sweeps p₁, p₂: with r = p₁ − p₀, v = p₂ − 2p₁ + p₀ and
    /// α = −‖r‖/‖v‖ (at most −1), p₀ − 2αr + α²v; α is moved halfway to −1 (which gives p₂)
    /// until every V is positive definite and σ² positive. Nil when the sweeps did not move.
    private static func extrapolate(_ p0: [Double], _ p1: [Double], _ p2: [Double],
                                    terms: [RandomEffectsTerm]) -> (V: [[Double]], sigmaSquared: Double)? {
        var rr = 0.0, vv = 0.0
        for i in p0.indices {
            let r = p1[i] - p0[i], v = p2[i] - 2 * p1[i] + p0[i]
            rr += r * r
            vv += v * v
        }
        guard rr > 0, vv > 0 else { return nil }
        var alpha = min(-(rr / vv).squareRoot(), -1)
        for _ in 0..<30 {
            let p = p0.indices.map { i -> Double in
                let r = p1[i] - p0[i], v = p2[i] - 2 * p1[i] + p0[i]
                return p0[i] - 2 * alpha * r + alpha * alpha * v
            }
            var V: [[Double]] = [], offset = 0, valid = p.last! > 0 && p.allSatisfy(\.isFinite)
            for term in terms {
                let k = term.effectCount
                let block = Array(p[offset..<(offset + k * k)])
                offset += k * k
                if valid && SmallCholesky.inverse(block, k) == nil { valid = false }
                V.append(block)
            }
            if valid { return (V, p.last!) }
            if alpha >= -1 { return nil }
            alpha = (alpha - 1) / 2
        }
        return nil
    }

    /// The lower Cholesky factor of X'X (summed over the processes), and whether it exists.
    private static func choleskyOfCrossProduct(_ X: Matrix, combine: ([Double]) -> [Double]) -> ([Double], Bool) {
        let p = X.columns, n = X.rows
        guard p > 0 else { return ([], false) }
        var XtX = [Double](repeating: 0, count: p * p)
        X.values.withUnsafeBufferPointer { A in
            XtX.withUnsafeMutableBufferPointer { C in
                BLAS.syrkTransposed(n: n, k: p, alpha: 1, A: A.baseAddress!, lda: n, beta: 0, C: C.baseAddress!, ldc: p)
            }
        }
        XtX = combine(XtX)
        let info = XtX.withUnsafeMutableBufferPointer { BLAS.potrfLower(n: p, A: $0.baseAddress!, lda: p) }
        return (XtX, info == 0)
    }

    /// (X'X)⁻¹X'r from the lower Cholesky factor of X'X.
    private static func leastSquaresStep(_ X: Matrix, _ factor: [Double], _ r: [Double],
                                         combine: ([Double]) -> [Double]) -> [Double] {
        let p = X.columns, n = X.rows
        var v = [Double](repeating: 0, count: p)
        for c in 0..<p {
            var s = 0.0
            for i in 0..<n { s += X.values[i + c * n] * r[i] }
            v[c] = s
        }
        v = combine(v)
        for i in 0..<p {
            for c in 0..<i { v[i] -= factor[i + c * p] * v[c] }
            v[i] /= factor[i + i * p]
        }
        for i in stride(from: p - 1, through: 0, by: -1) {
            for c in (i + 1)..<p { v[i] -= factor[c + i * p] * v[c] }
            v[i] /= factor[i + i * p]
        }
        return v
    }
}

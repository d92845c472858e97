import Foundation

/// The Monte Carlo standard errors of a matrix-free fit (``MonteCarloErrors``), propagated from
/// the spread of the probes:
///
/// - φ̂ (variances, covariances, σ²) solves ĝ(φ) = 0 for the probes' estimate ĝ of the score;
///   linearized at the fixed point, Cov(φ̂) = AI⁻¹ Cov(ĝ) AI⁻¹ (AI the average information).
/// - SDs, correlations, σ and θ from Cov(φ̂) by the delta method; θ's derivative is that of the
///   Cholesky factor: with S = Σⱼ/σ² = LL', dL = L Φ(L⁻¹ dS L⁻ᵀ), Φ the lower triangle with
///   the diagonal halved (σ² alone: dL = −L/(2σ²)).
/// - The criterion's from the spread of the stochastic Lanczos quadrature; the error of φ̂
///   moves it only to second order (the criterion is stationary there).
extension IterativeMixedModel {
    /// Cov(φ̂) = AI⁻¹ C AI⁻¹ (column-major, k × k), or nil when the average information is
    /// not positive definite.
    static func componentCovariance(information: [Double], scoreCovariance C: [Double], count k: Int) -> [Double]? {
        guard let inverse = DenseSolve.inverse(information) else { return nil }
        var left = [Double](repeating: 0, count: k * k), out = [Double](repeating: 0, count: k * k)
        for b in 0..<k { for c in 0..<k { for a in 0..<k { left[a + c * k] += inverse[a + b * k] * C[b + c * k] } } }
        for c in 0..<k { for d in 0..<k { for a in 0..<k { out[a + d * k] += left[a + c * k] * inverse[c + d * k] } } }
        for d in 0..<k { for a in 0..<d { let v = 0.5 * (out[a + d * k] + out[d + a * k]); out[a + d * k] = v; out[d + a * k] = v } }
        return out
    }

    /// The standard errors of the estimates, or nil when one is not finite (a covariance at
    /// the boundary, where θ's derivative does not exist).
    /// - Parameters:
    ///   - phi: φ̂ in ``VarianceParameters``' order; `covariance` its Monte Carlo covariance.
    ///   - theta: θ̂ (each Tⱼ's lower triangle column by column).
    ///   - conditionalSD: relative standard errors of the conditional SDs per term and effect.
    func monteCarloErrors(phi: [Double], covariance: [Double], theta: [Double], layout: VarianceParameters,
                          objectiveError: Double, conditionalSD: [MonteCarloErrors.ConditionalSDErrors],
                          probes: Int) -> MonteCarloErrors? {
        let count = layout.count
        func variance(_ gradient: [(Int, Double)]) -> Double {
            var sum = 0.0
            for (a, ga) in gradient { for (b, gb) in gradient { sum += ga * covariance[a + b * count] * gb } }
            return max(sum, 0)
        }
        // φ's index of entry (r, s), r ≥ s, of term j's covariance.
        var offsets: [Int] = []
        var offset = 0
        for k in layout.effectCounts {
            offsets.append(offset)
            offset += k * (k + 1) / 2
        }
        func index(_ j: Int, _ r: Int, _ s: Int) -> Int {
            let k = layout.effectCounts[j], (row, column) = r >= s ? (r, s) : (s, r)
            return offsets[j] + column * k - column * (column - 1) / 2 + (row - column)
        }
        let sigmaIndex = count - 1, sigmaSquared = phi[sigmaIndex]

        // varcorr, in the order of VarianceComponents: each term's variances, its covariances, the residual.
        var varcorr: [VarCorrEntry] = []
        for (j, term) in frame.randomTerms.enumerated() {
            let names = term.effectNames
            for r in names.indices {
                let v = phi[index(j, r, r)], se = variance([(index(j, r, r), 1)]).squareRoot()
                varcorr.append(VarCorrEntry(grp: frame.termLabels[j], var1: names[r], var2: nil, vcov: se,
                                            sdcor: se / (2 * v.squareRoot())))
            }
            for r in names.indices {
                for s in (r + 1)..<max(r + 1, names.count) {
                    let c = phi[index(j, s, r)], vr = phi[index(j, r, r)], vs = phi[index(j, s, s)]
                    let rho = c / (vr * vs).squareRoot()
                    let correlation = variance([(index(j, s, r), 1 / (vr * vs).squareRoot()),
                                                (index(j, r, r), -rho / (2 * vr)), (index(j, s, s), -rho / (2 * vs))])
                    varcorr.append(VarCorrEntry(grp: frame.termLabels[j], var1: names[r], var2: names[s],
                                                vcov: variance([(index(j, s, r), 1)]).squareRoot(), sdcor: correlation.squareRoot()))
                }
            }
        }
        let sigmaSquaredError = variance([(sigmaIndex, 1)]).squareRoot()
        let sigmaError = sigmaSquaredError / (2 * sigmaSquared.squareRoot())
        varcorr.append(VarCorrEntry(grp: "Residual", var1: nil, var2: nil, vcov: sigmaSquaredError, sdcor: sigmaError))

        // θ: per term, the derivative of L = chol(Σⱼ/σ²) along each of its parameters and σ².
        var thetaErrors: [Double] = []
        var thetaIndex = 0
        for j in layout.effectCounts.indices {
            let k = layout.effectCounts[j]
            var L = [Double](repeating: 0, count: k * k)
            for s in 0..<k { for r in s..<k { L[r + s * k] = theta[thetaIndex]; thetaIndex += 1 } }
            // Derivatives of L's lower triangle (column by column) along each parameter.
            var directions: [(parameter: Int, dL: [Double])] = []
            for s in 0..<k {
                for r in s..<k {
                    var dS = [Double](repeating: 0, count: k * k)
                    dS[r + s * k] = 1 / sigmaSquared
                    dS[s + r * k] = 1 / sigmaSquared
                    directions.append((index(j, r, s), Self.choleskyDerivative(L, dS, k)))
                }
            }
            directions.append((sigmaIndex, L.map { -$0 / (2 * sigmaSquared) }))
            for s in 0..<k {
                for r in s..<k {
                    thetaErrors.append(variance(directions.map { ($0.parameter, $0.dL[r + s * k]) }).squareRoot())
                }
            }
        }
        let errors = MonteCarloErrors(probes: probes, theta: thetaErrors, sigma: sigmaError, varcorr: varcorr,
                                      objective: objectiveError, condSD: conditionalSD)
        let numbers = errors.theta + [errors.sigma, errors.objective] + errors.varcorr.flatMap { [$0.vcov, $0.sdcor ?? 0] }
            + errors.condSD.flatMap { [$0.relativeMedian, $0.relativeMax] }
        return numbers.allSatisfy(\.isFinite) ? errors : nil
    }

    /// dL for S = LL' moved by dS (k × k column-major): L Φ(L⁻¹ dS L⁻ᵀ).
    static func choleskyDerivative(_ L: [Double], _ dS: [Double], _ k: Int) -> [Double] {
        // X = L⁻¹ dS, column by column; then Y = L⁻¹ X' (= L⁻¹ dS L⁻ᵀ, symmetric).
        func solveLower(_ b: inout [Double]) {
            for r in 0..<k {
                var sum = b[r]
                for a in 0..<r { sum -= L[r + a * k] * b[a] }
                b[r] = sum / L[r + r * k]
            }
        }
        var X = [Double](repeating: 0, count: k * k)
        for c in 0..<k {
            var column = (0..<k).map { dS[$0 + c * k] }
            solveLower(&column)
            for r in 0..<k { X[r + c * k] = column[r] }
        }
        var Y = [Double](repeating: 0, count: k * k)
        for c in 0..<k {
            var column = (0..<k).map { X[c + $0 * k] }
            solveLower(&column)
            for r in 0..<k { Y[r + c * k] = column[r] }
        }
        var phi = [Double](repeating: 0, count: k * k)
        for s in 0..<k { for r in s..<k { phi[r + s * k] = r == s ? 0.5 * Y[r + s * k] : Y[r + s * k] } }
        var dL = [Double](repeating: 0, count: k * k)
        for s in 0..<k { for r in s..<k { for a in s...r { dL[r + s * k] += L[r + a * k] * phi[a + s * k] } } }
        return dL
    }
}

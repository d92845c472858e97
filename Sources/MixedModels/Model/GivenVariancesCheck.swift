import Foundation

/// Given variance components are used exactly as given, or the fit stops with the reason
/// (issue 11, item 7): never a quietly different model.
///
/// Two things can alter them. The factor Tⱼ of a covariance matrix (θ) can lose a variance
/// that is small next to another (``SemidefiniteCholesky`` now tolerates rounding relative to
/// each variance, so the round trip below is the guard), and `Λ'Z'ZΛ + I` can be too
/// ill-conditioned for double precision to solve for β and b at all.
enum GivenVariancesCheck {
    /// Relative accuracy required of the covariances rebuilt from θ.
    static let roundTripTolerance = 1e-9
    /// Largest acceptable bound on the condition number of `Λ'Z'ZΛ + I` (about 2e-4 relative
    /// accuracy of the solution in its worst direction).
    static let conditionLimit = 1e12

    /// Throws when σ²TⱼTⱼ' from θ differs from a given covariance matrix beyond rounding.
    static func roundTrip(given: [Matrix], sigmaSquared: Double, theta: [Double], parameters: CovarianceParameters,
                          labels: [String], effectNames: [[String]], source: String) throws {
        let rebuilt = parameters.covariances(theta: theta, sigmaSquared: sigmaSquared)
        for (j, (V, W)) in zip(given, rebuilt).enumerated() {
            for b in 0..<V.columns {
                for a in b..<V.rows {
                    let scale = (V[a, a] * V[b, b]).squareRoot()
                    guard abs(W[a, b] - V[a, b]) > roundTripTolerance * scale else { continue }
                    let name = a == b ? effectNames[j][a] : "\(effectNames[j][b]),\(effectNames[j][a])"
                    throw InputError("the given \(a == b ? "variance" : "covariance") of \(labels[j]) \(name), \(V[a, b]), "
                                     + "cannot be represented next to the group's other variances (it would become \(W[a, b])): "
                                     + "the covariance matrix is too close to singular for double precision", file: source)
                }
            }
        }
    }

    /// An upper bound on the condition number of `A = Λ'Z'ZΛ + I`: its smallest eigenvalue is at
    /// least 1 and its largest at most `1 + ‖ZΛ‖²_F`, the sum over rows and terms of ‖Tⱼ'zᵢⱼ‖².
    static func conditionBound(pls: PenalizedLeastSquares) -> Double {
        let n = pls.n
        var sum = 0.0
        pls.templates.withUnsafeBufferPointer { T in
            for (term, layout) in zip(pls.design.terms, pls.design.layouts) {
                let k = term.effectCount
                let Tj = layout.template(T.baseAddress!)
                term.effects.values.withUnsafeBufferPointer { z in
                    for i in 0..<n {
                        for s in 0..<k {
                            var v = 0.0
                            for r in s..<k { v += Tj[r + s * k] * z[i + r * n] }
                            sum += v * v
                        }
                    }
                }
            }
        }
        return 1 + sum
    }

    /// Throws when `A` may be too ill-conditioned for the fixed effects and BLUPs to mean anything.
    static func conditioning(pls: PenalizedLeastSquares, source: String) throws {
        let bound = conditionBound(pls: pls)
        guard !(bound <= conditionLimit) else { return }
        throw InputError(String(format: "the given variances make Λ'Z'ZΛ + I too ill-conditioned for double precision: "
                                + "its condition number may reach %.2g (relative error of β and the BLUPs up to %.2g); "
                                + "the random-effects variances are too large relative to the residual variance",
                                bound, bound * Double.ulpOfOne), file: source)
    }
}

import Foundation

/// The variance parameters on lme4's profiling scale ("sdcor"): per term, the lower triangle of
/// the matrix with the standard deviations on its diagonal and the correlations below it,
/// column by column (lme4's `Cv_to_Sv`), then σ. Their names are lme4's `.sig01`, `.sig02`,
/// …, `.sigma` (`confint(m, oldNames = TRUE)`).
struct StandardDeviationScale {
    let parameters: CovarianceParameters

    /// Number of values: one per θ, plus σ.
    var count: Int { parameters.count + 1 }

    /// `.sig01` … in θ's order, then `.sigma`.
    var names: [String] {
        (0..<parameters.count).map { String(format: ".sig%02d", $0 + 1) } + [".sigma"]
    }

    /// True where the value is a standard deviation (bounded below by 0), false for a
    /// correlation (in [−1, 1]); σ last.
    var isStandardDeviation: [Bool] { parameters.isDiagonal + [true] }

    /// lme4's profiling bounds: [0, ∞) for a standard deviation, [−1, 1] for a correlation.
    var lowerBounds: [Double] { isStandardDeviation.map { $0 ? 0 : -1 } }
    var upperBounds: [Double] { isStandardDeviation.map { $0 ? .infinity : 1 } }

    /// Standard deviations and correlations from θ and σ (lme4's `Cv_to_Sv(θ, s = σ)`).
    func values(theta: [Double], sigma: Double) -> [Double] {
        var out: [Double] = []
        out.reserveCapacity(count)
        for (j, V) in parameters.covariances(theta: theta, sigmaSquared: sigma * sigma).enumerated() {
            let k = parameters.effectCounts[j]
            for column in 0..<k {
                for row in column..<k {
                    if row == column {
                        out.append(max(V[row, row], 0).squareRoot())
                    } else {
                        let scale = (V[row, row] * V[column, column]).squareRoot()
                        out.append(scale > 0 ? V[row, column] / scale : 0)
                    }
                }
            }
        }
        out.append(sigma)
        return out
    }

    /// θ from standard deviations, correlations and σ (the last value), lme4's `Sv_to_Cv`:
    /// `Tⱼ` is the Cholesky factor of `Vⱼ/σ²`. nil when a correlation matrix is not positive
    /// semi-definite or σ is not positive.
    func theta(values: [Double]) -> [Double]? {
        precondition(values.count == count)
        let sigma = values[count - 1]
        guard sigma > 0, sigma.isFinite else { return nil }
        var covariances: [Matrix] = []
        var index = 0
        for k in parameters.effectCounts {
            var M = Matrix(zeros: k, k)
            for column in 0..<k { for row in column..<k { M[row, column] = values[index]; index += 1 } }
            var V = Matrix(zeros: k, k)
            for a in 0..<k {
                for b in 0..<k {
                    let correlation = a == b ? 1 : M[max(a, b), min(a, b)]
                    V[a, b] = M[a, a] * M[b, b] * correlation
                }
            }
            covariances.append(V)
        }
        switch parameters.theta(covariances: covariances, sigmaSquared: sigma * sigma) {
        case .success(let theta): return theta
        case .failure: return nil
        }
    }

    /// θ for values whose correlations need not form positive semi-definite matrices: the
    /// correlations are shrunk toward zero by the least factor (1 − λ) that makes them so
    /// (bisection), and λ is returned, so that an optimizer can be given a finite, continuous
    /// penalty outside the feasible set instead of an infinite value. nil when σ ≤ 0.
    func feasibleTheta(values: [Double]) -> (theta: [Double], shrinkage: Double)? {
        if let theta = theta(values: values) { return (theta, 0) }
        guard values[count - 1] > 0 else { return nil }
        let isCorrelation = isStandardDeviation.map { !$0 }
        func shrunk(_ lambda: Double) -> [Double] {
            zip(values, isCorrelation).map { $1 ? (1 - lambda) * $0 : $0 }
        }
        guard var best = theta(values: shrunk(1)) else { return nil }
        var low = 0.0, high = 1.0
        for _ in 0..<40 {
            let middle = (low + high) / 2
            if let value = theta(values: shrunk(middle)) { best = value; high = middle } else { low = middle }
        }
        return (best, high)
    }
}

import Foundation

/// The likelihood criterion: restricted (REML, lme4's default) or full maximum likelihood.
public enum Criterion: String, Sendable, Codable {
    case reml = "REML"
    case ml = "ML"
}

/// The objective of Bates et al. (2015), eqs. (34) and (41), from the PLS quantities.
///
/// With prior weights the model is fitted on √w-scaled data and the criterion gains −Σ log wᵢ
/// (lme4's `ldW`: the residual variance of row i is σ²/wᵢ).
struct ProfiledObjective {
    let n: Int
    let p: Int
    /// Σ log wᵢ (0 without weights).
    var logWeightSum = 0.0

    /// −2 log-likelihood (ML deviance or REML criterion) profiled over σ² (and β).
    func profiled(_ criterion: Criterion, logDetL: Double, logDetRX: Double, penalizedRSS: Double) -> Double {
        switch criterion {
        case .ml:
            let nd = Double(n)
            return logDetL + nd * (1 + log(2 * Double.pi * penalizedRSS / nd)) - logWeightSum
        case .reml:
            let dof = Double(n - p)
            return logDetL + logDetRX + dof * (1 + log(2 * Double.pi * penalizedRSS / dof)) - logWeightSum
        }
    }

    /// −2 log-likelihood at a given residual variance σ² (not profiled).
    func atSigma(_ criterion: Criterion, sigmaSquared: Double, logDetL: Double, logDetRX: Double, penalizedRSS: Double) -> Double {
        switch criterion {
        case .ml:
            return logDetL + Double(n) * log(2 * Double.pi * sigmaSquared) + penalizedRSS / sigmaSquared - logWeightSum
        case .reml:
            return logDetL + logDetRX + Double(n - p) * log(2 * Double.pi * sigmaSquared) + penalizedRSS / sigmaSquared - logWeightSum
        }
    }

    /// σ̂² at the optimum over σ²: r²/n (ML) or r²/(n − p) (REML).
    func sigmaSquared(_ criterion: Criterion, penalizedRSS: Double) -> Double {
        penalizedRSS / Double(criterion == .ml ? n : n - p)
    }
}

import Foundation

/// The likelihood criterion: restricted (REML, lme4's default) or full maximum likelihood.
public enum Criterion: String, Sendable, Codable {
    case reml = "REML"
    case ml = "ML"
}

/// The objective of Bates et al. (2015), eqs. (34) and (41), from the PLS quantities.
struct ProfiledObjective {
    let n: Int
    let p: Int

    /// −2 log-likelihood (ML deviance or REML criterion) profiled over σ² (and β).
    func profiled(_ criterion: Criterion, logDetL: Double, logDetRX: Double, penalizedRSS: Double) -> Double {
        switch criterion {
        case .ml:
            let nd = Double(n)
            return logDetL + nd * (1 + log(2 * Double.pi * penalizedRSS / nd))
        case .reml:
            let dof = Double(n - p)
            return logDetL + logDetRX + dof * (1 + log(2 * Double.pi * penalizedRSS / dof))
        }
    }

    /// −2 log-likelihood at a given residual variance σ² (not profiled).
    func atSigma(_ criterion: Criterion, sigmaSquared: Double, logDetL: Double, logDetRX: Double, penalizedRSS: Double) -> Double {
        switch criterion {
        case .ml:
            return logDetL + Double(n) * log(2 * Double.pi * sigmaSquared) + penalizedRSS / sigmaSquared
        case .reml:
            return logDetL + logDetRX + Double(n - p) * log(2 * Double.pi * sigmaSquared) + penalizedRSS / sigmaSquared
        }
    }

    /// σ̂² at the optimum over σ²: r²/n (ML) or r²/(n − p) (REML).
    func sigmaSquared(_ criterion: Criterion, penalizedRSS: Double) -> Double {
        penalizedRSS / Double(criterion == .ml ? n : n - p)
    }
}

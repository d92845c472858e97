import Foundation

/// REML and ML estimation of the variance components: minimize the profiled criterion of
/// Bates et al. (2015) over θ, each evaluation one numeric refactorization and solves.
extension LinearMixedModel {
    /// Estimates θ (and σ², β, b) by REML or ML, as `lmer` does.
    /// - Parameters:
    ///   - criterion: `.reml` (default, as lmer) or `.ml`.
    ///   - start: starting θ; lme4's start (each `Tⱼ` the identity) when nil.
    public func fit(criterion: Criterion = .reml, start: [Double]? = nil) throws -> FitResult {
        let begin = DispatchTime.now()
        let objective = ProfiledObjective(n: frame.n, p: frame.X.columns)
        let settings = BOBYQA.Settings(lowerBounds: parameters.lowerBounds)
        let optimizer = BOBYQA(dimension: parameters.count, settings: settings)
        let pls = self.pls
        let outcome = try optimizer.minimize(from: start ?? parameters.initialTheta) { theta in
            try pls.update(theta: theta)
            return objective.profiled(criterion, logDetL: pls.logDetL, logDetRX: pls.logDetRX, penalizedRSS: pls.penalizedRSS)
        }
        try pls.update(theta: outcome.x)
        var messages: [String] = []
        if !outcome.converged { messages.append("optimizer (BOBYQA) did not converge: \(outcome.status)") }
        return try summarize(criterion: criterion, algorithm: "exact", sigmaSquared: nil,
                             iterations: outcome.evaluations, converged: outcome.converged,
                             start: begin, messages: messages)
    }
}

extension LinearMixedModel {
    /// The profiled criterion at θ (−2 log-likelihood, profiled over β and σ²): one numeric
    /// refactorization and the solves, nothing else — what the optimizer evaluates.
    public func objective(at theta: [Double], criterion: Criterion = .reml) throws -> Double {
        try pls.update(theta: theta)
        return ProfiledObjective(n: frame.n, p: frame.X.columns)
            .profiled(criterion, logDetL: pls.logDetL, logDetRX: pls.logDetRX, penalizedRSS: pls.penalizedRSS)
    }
}

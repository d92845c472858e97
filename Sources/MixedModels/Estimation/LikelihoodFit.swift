import Foundation

/// REML and ML estimation of the variance components: minimize the profiled criterion of
/// Bates et al. (2015) over θ, each evaluation one numeric refactorization and solves.
extension LinearMixedModel {
    /// Estimates θ (and σ², β, b) by REML or ML, as `lmer` does.
    /// - Parameters:
    ///   - criterion: `.reml` (default, as lmer) or `.ml`.
    ///   - start: starting θ; lme4's start (each `Tⱼ` the identity) when nil.
    ///   - options: optimizer settings.
    public func fit(criterion: Criterion = .reml, start: [Double]? = nil, options: OptimizerOptions = OptimizerOptions()) throws -> FitResult {
        let begin = DispatchTime.now()
        var settings = BOBYQA.Settings(lowerBounds: parameters.lowerBounds)
        settings.absoluteFTolerance = options.absoluteFTolerance
        settings.absoluteXTolerance = options.absoluteXTolerance
        settings.maxEvaluations = options.maxEvaluations
        if let step = options.initialStep {
            settings.initialStep = [Double](repeating: step, count: parameters.count)
        }
        let optimizer = BOBYQA(dimension: parameters.count, settings: settings)
        let outcome = try optimizer.minimize(from: start ?? parameters.initialTheta) { theta in
            try self.objective(at: theta, criterion: criterion)
        }
        try pls.update(theta: outcome.x)
        var messages: [String] = []
        if !outcome.converged { messages.append("optimizer (BOBYQA) did not converge: \(outcome.status)") }
        return try summarize(criterion: criterion, algorithm: "exact", sigmaSquared: nil,
                             iterations: outcome.evaluations, converged: outcome.converged,
                             start: begin, messages: messages)
    }
}

/// Settings of the REML/ML optimizer (BOBYQA), as lme4's `optCtrl`.
public struct OptimizerOptions: Sendable {
    /// Stop when an evaluation changes the objective by less than this (lme4: 1e-8).
    public var absoluteFTolerance = 1e-8
    /// Stop when a step changes every θ by less than this (lme4: 1e-8).
    public var absoluteXTolerance = 1e-8
    public var maxEvaluations = 100_000
    /// BOBYQA's initial trust-region radius in θ; nil for NLopt's default (as lme4).
    public var initialStep: Double?

    public init() {}
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

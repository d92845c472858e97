import Foundation

/// REML and ML estimation of the variance components: minimize the profiled criterion of
/// Bates et al. (2015) over θ, each evaluation one numeric refactorization and solves.
extension LinearMixedModel {
    /// Estimates θ (and σ², β, b) by REML or ML, as `lmer` does.
    /// - Parameters:
    ///   - criterion: `.reml` (default, as lmer) or `.ml`.
    ///   - start: starting θ; lme4's start (each `Tⱼ` the identity) when nil.
    ///   - options: optimizer settings.
    public func fit(criterion: Criterion = .reml, start: [Double]? = nil, options: OptimizerOptions = OptimizerOptions()) throws(LMMError) -> FitResult {
        try LMMError.wrapping { try fitLikelihood(criterion: criterion, start: start, options: options) }
    }

    /// The work of the function above (which wraps its internal errors).
    func fitLikelihood(criterion: Criterion, start: [Double]?, options: OptimizerOptions) throws -> FitResult {
        let begin = DispatchTime.now()
        let algorithm = options.algorithm ?? (pls.factorization is BlockedDenseFactorization || pls.q >= 2000 ? .newton : .bobyqa)
        var theta: [Double], evaluations: Int, converged: Bool
        var messages: [String] = []
        if algorithm == .newton {
            let theta0 = start ?? ApproximateStart(frame: frame, parameters: parameters).theta(criterion: criterion)
            PhaseLog.mark("approximate start θ = \(theta0)")
            let outcome = try fitNewton(criterion: criterion, start: theta0, skipsNegligibleLastStep: true,
                                        progress: options.progress, begin: begin)
            PhaseLog.mark("newton (\(outcome.iterations) iterations)")
            (theta, evaluations, converged) = (outcome.theta, outcome.evaluations, outcome.converged)
            if !converged {
                messages.append(outcome.iterations >= NewtonOutcome.iterationLimit
                    ? "optimizer (newton) stopped at its limit of \(NewtonOutcome.iterationLimit) iterations: not converged"
                    : "optimizer (newton) did not converge: no decrease along the Newton direction")
            }
        } else {
            var settings = NLoptMinimizer.Settings(lowerBounds: parameters.lowerBounds)
            settings.absoluteFTolerance = options.absoluteFTolerance
            settings.absoluteXTolerance = options.absoluteXTolerance
            settings.relativeFTolerance = options.relativeFTolerance
            settings.maxEvaluations = options.maxEvaluations
            if let step = options.initialStep {
                settings.initialStep = [Double](repeating: step, count: parameters.count)
            }
            let optimizer = NLoptMinimizer(algorithm: algorithm, dimension: parameters.count, settings: settings)
            let steps = options.progress.map { EvaluationProgress(method: algorithm.rawValue, tolerance: settings.absoluteFTolerance,
                                                                  begin: begin, report: $0) }
            let outcome = try optimizer.minimize(from: start ?? parameters.initialTheta) { theta, wantsGradient in
                if wantsGradient {
                    let (value, gradient) = try self.objectiveAndGradient(at: theta, criterion: criterion)
                    steps?.record(value)
                    return (value, gradient)
                }
                let value = try self.objective(at: theta, criterion: criterion)
                steps?.record(value)
                return (value, nil)
            }
            (theta, evaluations, converged) = (outcome.x, outcome.evaluations, outcome.converged)
            if outcome.reachedLimit {
                // As lme4 reports nloptwrap's code 5.
                let status = outcome.status.hasPrefix("NLOPT_") ? outcome.status : "NLOPT_" + outcome.status
                messages.append("optimizer (\(algorithm.rawValue)) convergence code: \(outcome.code) (\(status)): stopped at its limit of \(options.maxEvaluations) evaluations, not converged")
            } else if !outcome.converged {
                messages.append("optimizer (\(algorithm.rawValue)) did not converge: \(outcome.status)")
            }
            // BOBYQA stops when a step changes the objective or θ by less than its tolerances,
            // which says it slowed down, not that it arrived: certify the optimum with the
            // gradient and the curvature, and finish with Newton steps where it stopped short.
            if options.certify && !outcome.reachedLimit {
                let polished = try fitNewton(criterion: criterion, start: theta, maxIterations: 20, progress: options.progress, begin: begin)
                PhaseLog.mark("newton polish (\(polished.iterations) iterations)")
                evaluations += polished.evaluations
                if polished.converged || polished.objective < outcome.value {
                    theta = polished.theta
                }
                if !polished.converged {
                    converged = false
                    messages.append("the optimum was not certified: the Newton decrement did not fall below \(ConvergenceCertificate.tolerance)")
                }
            }
        }
        theta = try onBoundaryIfNoWorse(theta, criterion: criterion)
        // The optimizer's last evaluation need not be at its optimum: factor there unless it is.
        if !(pls.hasSolution && pls.theta == theta) { try pls.update(theta: theta) }
        PhaseLog.mark("final factorization")
        return try summarize(criterion: criterion, method: .exact, sigmaSquared: nil,
                             iterations: evaluations, converged: converged,
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
    public var relativeFTolerance = 0.0
    /// BOBYQA's initial trust-region radius in θ; nil for NLopt's default (as lme4).
    public var initialStep: Double?
    /// The optimizer; nil chooses: BOBYQA (as lme4) when an evaluation is cheap, Newton steps
    /// with the analytic gradient when the model is large.
    public var algorithm: OptimizerAlgorithm?
    /// After BOBYQA (or L-BFGS, SLSQP) stops, certify the optimum by the Newton decrement and
    /// finish with Newton steps where the optimizer stopped short (``ConvergenceCertificate``).
    /// Off: the optimizer's own stopping rule alone, as lme4.
    public var certify = true
    /// Called after each Newton iteration or optimizer evaluation (``FitStep``).
    public var progress: (@Sendable (FitStep) -> Void)?

    public init() {}
}

/// Reports each evaluation of a derivative-free optimizer as a ``FitStep``: the criterion,
/// the decrease of the best value so far (the change BOBYQA's tolerance tests), and a forecast
/// from the decreases of the improving evaluations.
final class EvaluationProgress {
    let method: String
    let begin: DispatchTime
    let report: @Sendable (FitStep) -> Void
    private var forecast: StepForecast
    private var count = 0
    private var best = Double.infinity
    private var lastDecrease = Double.infinity
    private var remaining: Double?

    init(method: String, tolerance: Double, begin: DispatchTime, report: @escaping @Sendable (FitStep) -> Void) {
        self.method = method
        self.begin = begin
        self.report = report
        forecast = StepForecast(tolerance: tolerance)
    }

    func record(_ value: Double) {
        count += 1
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - begin.uptimeNanoseconds) / 1e9
        if value < best {
            if best.isFinite {
                lastDecrease = best - value
                remaining = forecast.record(change: lastDecrease, elapsed: elapsed)
            }
            best = value
        }
        report(FitStep(method: method, step: count, criterion: value, change: lastDecrease.isFinite ? lastDecrease : 0,
                       elapsed: elapsed, secondsRemaining: remaining))
    }
}

extension LinearMixedModel {
    /// The profiled criterion at θ (−2 log-likelihood, profiled over β and σ²): one numeric
    /// refactorization and the solves, nothing else — what the optimizer evaluates.
    public func objective(at theta: [Double], criterion: Criterion = .reml) throws(LMMError) -> Double {
        try LMMError.wrapping { try profiledObjective(at: theta, criterion: criterion) }
    }

    /// The work of the function above (which wraps its internal errors).
    func profiledObjective(at theta: [Double], criterion: Criterion) throws -> Double {
        try pls.update(theta: theta)
        return ProfiledObjective(n: frame.n, p: frame.X.columns, logWeightSum: frame.logWeightSum)
            .profiled(criterion, logDetL: pls.logDetL, logDetRX: pls.logDetRX, penalizedRSS: pls.penalizedRSS)
    }
}

extension LinearMixedModel {
    /// The profiled criterion and its analytic gradient at θ (`lmm-bench evaluate --gradient`
    /// times it).
    package func objectiveAndGradient(at theta: [Double], criterion: Criterion) throws -> (Double, [Double]) {
        let value = try objective(at: theta, criterion: criterion)
        return (value, try ProfiledGradient.compute(pls, criterion: criterion))
    }
}

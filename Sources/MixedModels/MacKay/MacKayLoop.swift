import Foundation

/// Settings of a MacKay loop.
public struct MacKayOptions: Sendable {
    public var form: MacKayForm
    /// Quick form only: update the full covariance Bⱼ'Bⱼ/qⱼ instead of its diagonal (the
    /// variant that collapses; the collapse is detected and reported).
    public var fullCovariance = false
    /// Starting variance components (lme4-like default: σ² = var(y), each Vⱼ = σ²I).
    public var start: VarianceComponents?
    /// Quick form: stop when no variance component changes by more than this, relative to its
    /// scale. EM and evidence forms: check the certificate of the optimum (they stop only when it
    /// passes) once a step changes them by less than max(this, 1e-6), then at each tenfold fall.
    public var tolerance = 1e-10
    public var maxIterations = 2_000
    /// How the posterior covariances are obtained (evidence and EM forms).
    public var traces: TraceMethod = .exact
    /// The likelihood reported for each iteration and at the end.
    public var criterion: Criterion = .reml
    /// Run the per-term updates concurrently (Dispatch).
    public var concurrent = true
    /// Called after every iteration (progress on standard error in the CLI).
    public var progress: (@Sendable (MacKayProgress) -> Void)?

    public init(form: MacKayForm) { self.form = form }

    /// Exact blocks from the selected inverse, or Hutchinson estimates for very large models.
    public enum TraceMethod: Sendable, Equatable {
        case exact
        case stochastic(probes: Int, seed: UInt64)
    }
}

/// One iteration of a MacKay loop, as reported to `progress`.
public struct MacKayProgress: Sendable {
    public var iteration: Int
    /// The REML criterion (or deviance) at the variances this iteration started from.
    public var objective: Double
    public var sigmaSquared: Double
    public var varcorr: [VarCorrEntry]
    /// Wall time of the iteration, and of its parts: the numeric refactorization and solves,
    /// the selected inverse (or the stochastic probes), and the per-term work — posterior
    /// blocks and updates — which runs concurrently over the terms.
    public var seconds: Double
    public var factorizationSeconds: Double
    public var covarianceSeconds: Double
    public var updateSeconds: Double
}

extension LinearMixedModel {
    /// Fits by MacKay's loop: alternate the exact PLS solve given the variances with an update
    /// of each term's covariance and of σ² from the current predictions.
    public func fit(mackay options: MacKayOptions) throws(LMMError) -> FitResult {
        try LMMError.wrapping { try fitMacKay(options) }
    }

    /// The work of the function above (which wraps its internal errors).
    func fitMacKay(_ options: MacKayOptions) throws -> FitResult {
        let begin = DispatchTime.now()
        let terms = frame.randomTerms
        let labels = frame.termLabels
        var covariances: [Matrix]
        var sigmaSquared: Double
        if let start = options.start {
            (covariances, sigmaSquared) = try start.resolve(for: frame)
        } else {
            let mean = frame.y.reduce(0, +) / Double(frame.n)
            sigmaSquared = frame.y.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(max(frame.n - 1, 1))
            covariances = terms.map { term in
                var V = Matrix(zeros: term.effectCount, term.effectCount)
                for r in 0..<term.effectCount { V[r, r] = sigmaSquared }
                return V
            }
        }
        let objectiveFunction = ProfiledObjective(n: frame.n, p: frame.X.columns, logWeightSum: frame.logWeightSum)
        var trajectory: [TrajectoryPoint] = []
        var converged = false
        var iteration = 0
        var messages: [String] = []
        if options.form == .evidence, let j = terms.firstIndex(where: { $0.effectCount > 1 }) {
            // MacKay's γ is per variance; a correlated block has no such fixed point here, and a
            // quiet diagonal fit of a term written as correlated would be a different model.
            throw LMMError.unsupported("""
                the evidence form (--method mackay) updates variances, not covariance matrices: the term                 '\(labels[j])' has correlated effects (\(terms[j].effectNames.joined(separator: ", "))).                 Use --method em (full covariance blocks) or the exact fit, or write the term with ||                 (uncorrelated effects).
                """)
        }
        var smallestEigenvalueRatios: [[Double]] = terms.map { _ in [] }

        /// One step of the MacKay/EM map from (covariances, σ²): the new ones, and the criterion
        /// at the given ones.
        func step(_ covariances: [Matrix], _ sigmaSquared: Double) throws -> ([Matrix], Double, Double) {
            iteration += 1
            let started = DispatchTime.now()
            let theta: [Double]
            switch parameters.theta(covariances: covariances, sigmaSquared: sigmaSquared) {
            case .success(let value): theta = value
            case .failure(let failure):
                throw LMMError.fit("iteration \(iteration): the covariance of factor '\(labels[failure.term])' is not positive semi-definite")
            }
            try pls.update(theta: theta)
            let factorized = DispatchTime.now()
            let u = try pls.sphericalEffects()
            let b = pls.applyLambda(u)
            let sse = max(pls.penalizedRSS - u.reduce(0) { $0 + $1 * $1 }, 0)
            let objective = objectiveFunction.atSigma(options.criterion, sigmaSquared: sigmaSquared, logDetL: pls.logDetL,
                                                      logDetRX: pls.logDetRX, penalizedRSS: pls.penalizedRSS)
            let point = TrajectoryPoint(iteration: iteration, objective: objective, sigma: sigmaSquared.squareRoot(),
                                        varcorr: varCorr(theta: theta, sigmaSquared: sigmaSquared),
                                        fixef: pls.fixedEffects())
            trajectory.append(point)

            // Posterior covariances (evidence and EM forms): of (β, b) for REML, of b given β̂
            // for ML. The selected inverse (or the probes) is the sequential part; the per-term
            // blocks and updates run concurrently.
            var posterior: PosteriorCovariance?
            var exactInverse: PosteriorCovariance.ExactInverse?
            if options.form != .quick {
                switch options.traces {
                case .exact:
                    exactInverse = try PosteriorCovariance.exactInverse(pls: pls, criterion: options.criterion)
                case .stochastic(let probes, let seed):
                    posterior = try PosteriorCovariance.stochastic(pls: pls, sigmaSquared: sigmaSquared, probes: probes,
                                                                  seed: seed &+ UInt64(iteration),
                                                                  criterion: options.criterion).covariance
                }
            }
            let covarianceDone = DispatchTime.now()
            if let exactInverse { posterior = exactInverse.blocks(sigmaSquared: sigmaSquared, concurrent: options.concurrent) }
            var update = MacKayUpdate(form: options.form, fullCovariance: options.fullCovariance, design: pls.design,
                                      b: b, sse: sse, n: frame.n, p: frame.X.columns, sigmaSquared: sigmaSquared,
                                      covariances: covariances, posterior: posterior)
            update.criterion = options.criterion
            let (newCovariances, newSigmaSquared) = update.run(concurrent: options.concurrent)
            let updated = DispatchTime.now()
            func seconds(_ a: DispatchTime, _ b: DispatchTime) -> Double { Double(b.uptimeNanoseconds - a.uptimeNanoseconds) / 1e9 }

            // The quick form with full covariance: detect the collapse of a block.
            if options.form == .quick && options.fullCovariance {
                for (j, V) in newCovariances.enumerated() where V.rows > 1 {
                    let eigenvalues = SymmetricEigenvalues.of(V)
                    let largest = eigenvalues.max() ?? 0, smallest = eigenvalues.min() ?? 0
                    let ratio = largest > 0 ? smallest / largest : 0
                    smallestEigenvalueRatios[j].append(ratio)
                    if let reason = Self.collapse(smallestEigenvalueRatios[j]) {
                        throw LMMError.fit("""
                            the covariance of factor '\(labels[j])' collapsed at iteration \(iteration): \(reason) \
                            (smallest/largest eigenvalue \(String(format: "%.3g", ratio))). The quick update uses only \
                            the predictions, Var(E[b|y]), and drops E[Var(b|y)]; with a full covariance the block \
                            degenerates towards a single direction. Use --method em (or the diagonal quick form).
                            """)
                    }
                }
            }
            options.progress?(MacKayProgress(iteration: iteration, objective: objective, sigmaSquared: sigmaSquared,
                                             varcorr: point.varcorr, seconds: seconds(started, updated),
                                             factorizationSeconds: seconds(started, factorized),
                                             covarianceSeconds: seconds(factorized, covarianceDone),
                                             updateSeconds: seconds(covarianceDone, updated)))
            guard newSigmaSquared.isFinite, newSigmaSquared > 0 else {
                throw LMMError.fit("iteration \(iteration): the residual variance became \(newSigmaSquared)")
            }
            return (newCovariances, newSigmaSquared, objective)
        }

        var certifiedTheta: [Double]?
        if options.form == .quick {
            // The quick form's fixed point is neither REML nor ML: it stops when the variances settle.
            while iteration < options.maxIterations {
                let (newCovariances, newSigmaSquared, _) = try step(covariances, sigmaSquared)
                var change = abs(newSigmaSquared - sigmaSquared) / sigmaSquared
                for (old, new) in zip(covariances, newCovariances) {
                    let scale = max(old.diagonal.map(abs).max() ?? 0, new.diagonal.map(abs).max() ?? 0, 1e-300)
                    for (a, c) in zip(old.values, new.values) { change = max(change, abs(a - c) / scale) }
                }
                covariances = newCovariances
                sigmaSquared = newSigmaSquared
                if change < options.tolerance {
                    converged = true
                    break
                }
            }
        } else {
            // EM and evidence: their fixed point is the REML (ML) optimum. Accelerated by SQUAREM
            // in the coordinates (θ, log σ²) — any point of which is a valid covariance — and
            // stopped when the optimum is certified (Newton decrement and boundary test of the
            // exact engine), checked whenever a plain step's change has fallen tenfold.
            let count = parameters.count
            func encode(_ covariances: [Matrix], _ sigmaSquared: Double) throws -> [Double] {
                switch parameters.theta(covariances: covariances, sigmaSquared: sigmaSquared) {
                case .success(let theta): return theta + [log(sigmaSquared)]
                case .failure(let failure):
                    throw LMMError.fit("the covariance of factor '\(labels[failure.term])' is not positive semi-definite")
                }
            }
            func decode(_ x: [Double]) -> ([Matrix], Double) {
                let s = exp(x[count])
                return (parameters.covariances(theta: Array(x[0..<count]), sigmaSquared: s), s)
            }
            var x = try encode(covariances, sigmaSquared)
            var nextCheck = max(options.tolerance, 1e-6)
            // After a Newton step, the next cycle's first step is checked again at once.
            var checkNext = false
            // And when EM is slow (the change falls slowly at a face of the parameter space), at
            // least every `checkInterval` iterations, so that its Newton step is taken.
            var lastCheck = 0
            while iteration < options.maxIterations {
                let (cycle, stopped) = try SQUAREM.cycle(from: x, map: { x in
                    let (c, s) = decode(x)
                    let (newC, newS, objective) = try step(c, s)
                    return (try encode(newC, newS), objective)
                }, afterFirstStep: { x1, change in
                    guard change < nextCheck || checkNext || iteration - lastCheck >= Self.checkInterval else { return .proceed }
                    lastCheck = iteration
                    nextCheck = min(nextCheck, max(change / 10, 1e-15))
                    checkNext = false
                    let (c, s) = decode(x1)
                    guard case .success(let theta) = parameters.theta(covariances: c, sigmaSquared: s) else { return .proceed }
                    let check = try certifyOptimum(theta: theta, criterion: options.criterion,
                                                   tolerance: ConvergenceCertificate.iterativeTolerance)
                    if check.certified {
                        certifiedTheta = check.theta
                        return .stop
                    }
                    if iteration >= options.maxIterations { return .stop }
                    // EM has slowed down (near a face of the parameter space — a variance or a
                    // correlation heading to its bound — its rate tends to 1): take the
                    // certificate's Newton step when it lowers the criterion, and check again
                    // after the next EM step.
                    guard let (jump, objective) = try newtonStep(from: check, criterion: options.criterion) else {
                        return .proceed
                    }
                    // One iteration (its halvings are evaluations), in the trajectory as the
                    // point it reached.
                    iteration += 1
                    let sigmaSquared = exp(jump[count])
                    let jumpTheta = Array(jump[0..<count])
                    trajectory.append(TrajectoryPoint(iteration: iteration, objective: objective, sigma: sigmaSquared.squareRoot(),
                                                      varcorr: varCorr(theta: jumpTheta, sigmaSquared: sigmaSquared),
                                                      fixef: pls.fixedEffects()))
                    checkNext = true
                    return .jump(to: jump)
                })
                x = cycle.x
                if stopped {
                    converged = certifiedTheta != nil
                    break
                }
            }
            (covariances, sigmaSquared) = decode(x)
            if let certifiedTheta {
                // Variances the certificate set to their bound 0 (lme4's boundary fit).
                covariances = parameters.covariances(theta: certifiedTheta, sigmaSquared: sigmaSquared)
            }
        }
        if !converged {
            messages.append("\(options.form.rawValue) did not converge in \(options.maxIterations) iterations"
                + (options.form == .quick ? "" : " (the \(options.criterion.rawValue) optimum was not certified)"))
        }
        switch parameters.theta(covariances: covariances, sigmaSquared: sigmaSquared) {
        case .success(let theta): try pls.update(theta: theta)
        case .failure(let failure):
            throw LMMError.fit("the covariance of factor '\(labels[failure.term])' is not positive semi-definite")
        }
        return try summarize(criterion: options.criterion, method: .mackay(options.form), sigmaSquared: sigmaSquared,
                             iterations: iteration, converged: converged, start: begin, messages: messages,
                             trajectory: trajectory)
    }

    /// The Newton step of a failed certificate, as (θ, log σ̂²(θ)) for the EM loop with the
    /// criterion there, halved until it lowers the profiled criterion (at most 8 times; nil when
    /// none does). Diagonal θ are kept inside their bound 0 (at least a tenth of their value, as
    /// the exact engine's steps). One evaluation per length tried; leaves the factor at the point.
    func newtonStep(from check: OptimumCheck, criterion: Criterion) throws -> (x: [Double], objective: Double)? {
        guard check.decrement > 0 else { return nil }
        let bounds = parameters.lowerBounds
        var length = 1.0
        for _ in 0..<8 {
            let candidate = check.theta.indices.map { index -> Double in
                let next = check.theta[index] + length * check.step[index]
                return bounds[index] == 0 ? max(next, 0.1 * check.theta[index]) : next
            }
            let value = try profiledObjective(at: candidate, criterion: criterion)
            if value.isFinite, value < check.objective {
                let sigmaSquared = ProfiledObjective(n: frame.n, p: frame.X.columns, logWeightSum: frame.logWeightSum)
                    .sigmaSquared(criterion, penalizedRSS: pls.penalizedRSS)
                guard sigmaSquared > 0, sigmaSquared.isFinite else { return nil }
                return (candidate + [log(sigmaSquared)], value)
            }
            length /= 2
        }
        return nil
    }

    /// The most EM/evidence iterations between two checks of the certificate.
    static let checkInterval = 20

    /// A block is collapsing when its smallest/largest eigenvalue ratio is negligible, or has
    /// fallen by more than half at each of the last three iterations towards zero.
    static func collapse(_ ratios: [Double]) -> String? {
        guard let last = ratios.last else { return nil }
        if last < 1e-6 { return "it is numerically singular" }
        if ratios.count >= 4 {
            let recent = ratios.suffix(4)
            let shrinking = zip(recent, recent.dropFirst()).allSatisfy { $1 < 0.5 * $0 }
            if shrinking { return "its smallest eigenvalue is heading to zero" }
        }
        return nil
    }
}

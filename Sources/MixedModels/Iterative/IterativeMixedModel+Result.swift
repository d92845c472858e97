import Foundation

/// The report of a matrix-free fit: the same ``FitResult`` as the exact methods, with the
/// quantities that rest on probes marked in its messages with their Monte Carlo standard errors.
/// A matrix-free fit with the Monte Carlo standard errors of what rests on probes.
public struct IterativeFit: Sendable {
    public var result: FitResult
    /// Standard errors of the variance components in θ's order per term (lower triangles of
    /// the covariance blocks, column by column), then of σ².
    public var componentStandardErrors: [Double]
    /// Standard error of log det(Λ'Z'ZΛ + I), hence of the REML criterion or deviance.
    public var objectiveStandardError: Double
    /// Lanczos steps of the log determinant.
    public var lanczosSteps: Int
}

extension IterativeMixedModel {
    func result(_ evaluation: Evaluation, information: [Double], layout: VarianceParameters, state: FitState,
                options: IterativeOptions, iterations: Int, converged: Bool, start: DispatchTime) throws -> IterativeFit {
        let p = model.p, n = model.observations
        let (covariances, sigmaSquared) = layout.split(evaluation.phi)
        let theta = try self.theta(evaluation.phi, layout)
        model.setTheta(theta)
        let criterion = options.criterion
        var messages = dataMessages

        // log det A by stochastic Lanczos quadrature.
        let blocksA = LevelBlocks(model: model, includeFixed: false)
        let logDet = StochasticLogDeterminant(probes: options.probes, seed: options.seed, maxSteps: options.lanczosSteps)
            .estimate(model: model, blocks: blocksA)
        PhaseLog.mark("log det by Lanczos quadrature")

        let schurInverse = evaluation.schurInverse
        var factor = evaluation.schur
        _ = factor.withUnsafeMutableBufferPointer { BLAS.potrfLower(n: p, A: $0.baseAddress!, lda: p) }
        var logDetRX = 0.0
        for t in 0..<p { logDetRX += 2 * log(factor[t + t * p]) }

        let penalizedRSS = evaluation.sse + evaluation.u.reduce(0) { $0 + $1 * $1 }
        let objective = ProfiledObjective(n: n, p: p).atSigma(criterion, sigmaSquared: sigmaSquared, logDetL: logDet.value,
                                                              logDetRX: logDetRX, penalizedRSS: penalizedRSS)
        var covarianceOfBeta = Matrix(zeros: p, p)
        for s in 0..<p { for r in 0..<p { covarianceOfBeta[r, s] = sigmaSquared * schurInverse[r + s * p] } }
        // The operator works with X̃ and ỹ (``FixedEffectBasis``): β and its covariance go back to X.
        covarianceOfBeta = model.basis.userCovariance(covarianceOfBeta)

        // Monte Carlo standard errors of the variance components: AI⁻¹ Cov(ĝ) AI⁻¹.
        let componentCovariance = Self.componentCovariance(information: information, scoreCovariance: evaluation.score.covariance,
                                                           count: layout.count)
        let componentErrors = (0..<layout.count).map { a in
            componentCovariance.map { max($0[a + a * layout.count], 0).squareRoot() } ?? .nan
        }
        var conditionalSDErrors: [MonteCarloErrors.ConditionalSDErrors] = []
        let ranef = conditionalModes(evaluation, sigmaSquared: sigmaSquared,
                                     criterion: criterion, messages: &messages, errors: &conditionalSDErrors)
        let monteCarlo = componentCovariance.flatMap {
            monteCarloErrors(phi: evaluation.phi, covariance: $0, theta: theta, layout: layout,
                             objectiveError: logDet.standardError, conditionalSD: conditionalSDErrors, probes: options.probes)
        }

        let labels = frame.termLabels
        var errorText: [String] = []
        var index = 0
        for (j, term) in frame.randomTerms.enumerated() {
            for s in 0..<term.effectCount {
                for r in s..<term.effectCount {
                    let name = r == s ? term.effectNames[r] : "\(term.effectNames[r]),\(term.effectNames[s])"
                    errorText.append("\(labels[j]) \(name) \(String(format: "%.3g", componentErrors[index]))")
                    index += 1
                }
            }
        }
        errorText.append("Residual \(String(format: "%.3g", componentErrors[index]))")
        messages.append("iterative method (\(options.probes) Rademacher probes, seed \(options.seed)): variance components "
                        + "solve the REML score with Hutchinson traces; Monte Carlo standard errors of the variances and "
                        + "covariances: " + errorText.joined(separator: "; "))
        messages.append(String(format: "logLik, AIC, BIC and the %@ are approximate: log det(Λ'Z'ZΛ + I) by stochastic Lanczos "
                               + "quadrature (%d probes, at most %d Lanczos steps), Monte Carlo standard error %.3g (on −2 log-likelihood)",
                               criterion == .reml ? "REML criterion" : "deviance", options.probes, logDet.steps, logDet.standardError))
        if !converged { messages.append("the iterative method did not converge in \(options.maxIterations) iterations") }
        if monteCarlo == nil {
            messages.append("Monte Carlo standard errors are not available: the average information is not positive definite "
                            + "or a covariance is at the boundary")
        }
        var result = FitAssembly(
            formula: frame.formula.text, criterion: criterion, method: .iterative, nobs: n,
            theta: theta, isDiagonal: parameters.isDiagonal, sigmaSquared: sigmaSquared,
            fixedEffectNames: frame.fixedEffectNames, fixedEffects: model.basis.userFixedEffects(evaluation.beta), fixedEffectCovariance: covarianceOfBeta,
            varianceComponents: varCorr(covariances, sigmaSquared), objective: objective,
            groupingNames: frame.randomTerms.map(\.groupingName), levelCounts: frame.randomTerms.map(\.levelCount),
            randomEffects: ranef, residuals: gatheredResiduals(model.inFrameOrder(evaluation.residuals)), iterations: iterations, converged: converged,
            messages: messages,
            elapsedSeconds: Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        ).result
        result.monteCarloErrors = monteCarlo
        return IterativeFit(result: result, componentStandardErrors: componentErrors,
                            objectiveStandardError: logDet.standardError, lanczosSteps: logDet.steps)
    }

    /// b̂ with conditional standard deviations from `σ²Tⱼ (A⁻¹)ₗₗ Tⱼ'` (conditional on β̂, as
    /// lme4's condVar): the per-level blocks of A⁻¹ estimated from the probes with the same
    /// control variate. Ordered as lme4's `as.data.frame(ranef(m, condVar = TRUE))`.
    /// `errors` gets, per term and effect, the median and largest relative Monte Carlo
    /// standard error of the conditional SDs (half that of the variance: d√v = dv/(2√v)).
    func conditionalModes(_ evaluation: Evaluation, sigmaSquared: Double, criterion: Criterion, messages: inout [String],
                          errors: inout [MonteCarloErrors.ConditionalSDErrors]) -> [RanefRow] {
        var variances = [Double](repeating: 0, count: model.q)
        var raised = 0
        // σ² (T B T')ᵣᵣ of a k × k block B (column-major) at level offset `at`.
        func transformed(_ B: [Double], at start: Int, _ T: [Double], _ k: Int, _ r: Int) -> Double {
            var value = 0.0
            for a in 0...r { for c in 0...r { value += T[r + a * k] * B[start + a + c * k] * T[r + c * k] } }
            return value
        }
        for (j, term) in model.terms.enumerated() {
            let k = term.k
            let T = model.templates[j]
            let estimated = evaluation.estimate.levelBlocks[j], lower = evaluation.estimate.blockInverses[j]
            let diagonalErrors = evaluation.estimate.levelDiagonalErrors[j]
            var relative = [[Double]](repeating: [], count: k)
            for l in 0..<term.levelCount {
                let base = term.layout.start(level: l)
                for r in 0..<k {
                    let value = transformed(estimated, at: l * k * k, T, k, r)
                    let bound = transformed(lower, at: l * k * k, T, k, r)
                    if value < bound { raised += 1 }
                    variances[base + r] = sigmaSquared * max(value, bound)
                    relative[r].append(diagonalErrors[l * k + r] / (2 * max(value, bound)))
                }
            }
            let randomTerm = frame.randomTerms[j]
            for r in 0..<k where !relative[r].isEmpty {
                let sorted = relative[r].sorted()
                errors.append(MonteCarloErrors.ConditionalSDErrors(
                    factor: randomTerm.groupingName, term: randomTerm.effectNames[r],
                    relativeMedian: sorted.count % 2 == 1 ? sorted[sorted.count / 2]
                        : 0.5 * (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]),
                    relativeMax: sorted.last!))
            }
        }
        messages.append("condSD: Hutchinson estimates of the diagonal of Var(b | y, β̂) with the per-level blocks as control "
                        + "variate (approximate)" + (raised > 0 ? "; \(raised) estimates below the per-level block's value, "
                        + "which bounds them from below, are reported at that bound" : ""))
        var rows: [RanefRow] = []
        rows.reserveCapacity(model.q)
        let terms = frame.randomTerms
        var done = Set<String>()
        for term in terms where done.insert(term.groupingName).inserted {
            for (j, other) in terms.enumerated() where other.groupingName == term.groupingName {
                let k = other.effectCount
                for r in 0..<k {
                    for l in 0..<other.levelCount {
                        let index = model.terms[j].layout.index(level: l, effect: r)
                        rows.append(RanefRow(factor: other.groupingName, term: other.effectNames[r], level: other.levels[l],
                                             value: evaluation.b[index], condSD: variances[index].squareRoot()))
                    }
                }
            }
        }
        return rows
    }

    /// Messages about the data that every fit repeats (rows and columns dropped).
    var dataMessages: [String] {
        var messages: [String] = []
        if frame.droppedRowCount > 0 {
            messages.append("\(frame.droppedRowCount) row\(frame.droppedRowCount == 1 ? "" : "s") with missing values dropped (na.omit)")
        }
        if !frame.droppedFixedEffects.isEmpty {
            let count = frame.droppedFixedEffects.count
            messages.append("fixed-effect model matrix is rank deficient so dropping \(count) column\(count == 1 ? "" : "s") / coefficient\(count == 1 ? "" : "s"): \(frame.droppedFixedEffects.joined(separator: ", "))")
        }
        return messages
    }
}

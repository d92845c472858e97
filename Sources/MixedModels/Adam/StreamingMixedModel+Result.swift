import Foundation

/// The report of a streaming fit: the same ``FitResult`` as the exact methods (assembled by
/// ``FitAssembly``), with what a model of 10⁶ levels cannot give exactly replaced by stated
/// approximations.
extension StreamingMixedModel {
    /// The ``FitResult`` at the solver's estimates.
    func result(solver: AdamSolver, covariances: [Matrix], sigmaSquared: Double, final: FinalPass, criterion: Criterion,
                epochs: Int, converged: Bool, messages extra: [String], trajectory: [TrajectoryPoint],
                labels: [String], elapsed seconds: () -> Double) throws -> FitResult {
        let parameters = CovarianceParameters(effectCounts: states.map(\.k))
        guard case .success(let theta) = parameters.theta(covariances: covariances, sigmaSquared: sigmaSquared) else {
            throw LMMError.numerical("internal error: a covariance matrix is not positive semi-definite")
        }
        let groupingNames = design.terms.map(\.groupingName)
        let ranef = try FitAssembly.ranefOrder(groupingNames: groupingNames) { j in
            try conditionalModes(term: j, sigmaSquared: sigmaSquared)
        }
        let covarianceOfBeta = try fixedEffectCovariance(sigmaSquared: sigmaSquared)
        let likelihood = approximateLikelihood(sigmaSquared: sigmaSquared, sse: final.sse,
                                               covarianceOfBeta: covarianceOfBeta, criterion: criterion)

        var messages = extra
        messages.append(String(format: "penalized objective ‖y − Xβ − Zb‖²/σ² + Σ b'V⁻¹b at the estimates: %.10g", likelihood.penalizedRSS / sigmaSquared))
        messages.append("logLik, AIC, BIC and the \(criterion == .reml ? "REML criterion" : "deviance") are approximate: "
                        + "log det(Λ'Z'ZΛ + I) is summed over the per-level diagonal blocks (an upper bound: the coupling "
                        + "between factors is ignored) and log det(RX'RX) is taken from the covariance of β̂ below")
        if states.count > 1 {
            messages.append("standard errors of the fixed effects: the terms' contributions to Var(β̂), each exact for its "
                            + "term alone, added (exact for balanced crossed designs)")
        }
        messages.append("condSD: per-level diagonal blocks σ²(Zₗ'Zₗ + σ²V⁻¹)⁻¹, conditional on β and the other "
                        + "factors' effects (exact for a single grouping factor; smaller than lme4's for crossed factors)")
        if final.sampled { messages.append("scaled residual quantiles from an evenly spaced sample of \(final.residuals.count) rows") }

        return FitAssembly(
            formula: formula.text, criterion: criterion, method: .adam, nobs: statistics.n,
            theta: theta, isDiagonal: parameters.isDiagonal, sigmaSquared: sigmaSquared,
            fixedEffectNames: design.fixed.names, fixedEffects: solver.beta, fixedEffectCovariance: covarianceOfBeta,
            varianceComponents: varCorr(covariances, sigmaSquared: sigmaSquared, labels: labels),
            objective: likelihood.objective,
            groupingNames: groupingNames, levelCounts: states.map(\.usedCount),
            randomEffects: ranef, residuals: final.residuals, iterations: epochs, converged: converged,
            messages: messages, elapsedSeconds: seconds(), trajectory: trajectory
        ).result
    }

    /// The random effects of term j (levels with rows only), effect by effect, with the
    /// conditional SDs of the per-level diagonal blocks σ²(Zₗ'Zₗ + σ²V⁻¹)⁻¹.
    private func conditionalModes(term j: Int, sigmaSquared: Double) throws -> [RanefRow] {
        let other = design.terms[j]
        let state = states[j], k = state.k
        let H = UnsafeMutablePointer<Double>.allocate(capacity: 2 * k * k)
        defer { H.deallocate() }
        var variances = [Double](repeating: 0, count: state.slotCount * k)
        for l in 0..<state.slotCount {
            let record = state.record(l)
            guard state.count(record) > 0 else { continue }
            state.curvature(record, into: H)
            guard SmallCholesky.inverse(of: H, k, work: H, into: H + k * k) else {
                throw LMMError.numerical("internal error: a posterior precision is not positive definite")
            }
            for a in 0..<k { variances[l * k + a] = sigmaSquared * H[k * k + a + a * k] }
        }
        var ranef: [RanefRow] = []
        for a in 0..<k {
            for l in 0..<state.slotCount where state.count(state.record(l)) > 0 {
                ranef.append(RanefRow(factor: other.groupingName, term: other.effects.names[a],
                                      level: other.grouping.labels[l], value: state.record(l)[a],
                                      condSD: max(variances[l * k + a], 0).squareRoot()))
            }
        }
        return ranef
    }
}

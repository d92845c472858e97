import Foundation

/// The report of a streaming fit: the same ``FitResult`` as the exact methods, with what a
/// model of 10⁶ levels cannot give exactly replaced by stated approximations.
extension StreamingMixedModel {
    /// What the last pass measured at the estimates.
    struct FinalPass {
        /// ‖y − Xβ − Zb‖².
        var sse: Double
        /// Residuals of every row, or of an evenly spaced sample of about a million rows.
        var residuals: [Double]
        var sampled: Bool
        /// The touch loops' sum (kept so that their loads are not optimized away).
        var touched: Double
    }

    /// Residuals at the final estimates, in file order.
    func finalPass(solver: AdamSolver, progress: (@Sendable (AdamProgress) -> Void)?, epoch: Int, maxEpochs: Int,
                   started seconds: () -> Double) throws -> FinalPass {
        let n = statistics.n, p = keptFixed.count
        let every = max(1, n / 1_000_000)
        var residuals: [Double] = []
        residuals.reserveCapacity(n / every + 1)
        var sse = 0.0, seen = 0, rowsDone = 0, touched = 0.0
        let kinds = reader.columns.map(\.kind)
        var binary = LMMBinaryChunk()
        let chunk = DesignChunk(design: design, capacity: reader.rowsPerChunk)
        let views = states.map(\.view)
        let beta = solver.beta
        let passStart = seconds()
        for c in 0..<reader.chunkCount {
            try reader.readChunk(c, into: &binary)
            chunk.load(binary, design: design, kinds: kinds, complete: statistics.completeChunks[c])
            let stride = chunk.capacity
            var blockStart = 0
            while blockStart < chunk.rowCount {
            let blockEnd = min(blockStart + AdamSolver.touchBlock, chunk.rowCount)
            var sink = 0.0
            for i in blockStart..<blockEnd {
                for (j, view) in views.enumerated() { sink += view.record(chunk.slots[j][i])[0] }
            }
            touched += sink
            for i in blockStart..<blockEnd {
                var fitted = 0.0
                for t in 0..<p { fitted += chunk.X[t * stride + i] * beta[t] }
                for (j, view) in views.enumerated() {
                    let record = view.record(chunk.slots[j][i])
                    if view.interceptOnly {
                        fitted += record[0]
                    } else {
                        for a in 0..<view.k { fitted += chunk.Z[j][a * stride + i] * record[a] }
                    }
                }
                let r = chunk.y[i] - fitted
                sse += r * r
                if seen % every == 0 { residuals.append(r) }
                seen += 1
            }
            blockStart = blockEnd
            }
            rowsDone += binary.rowCount
            if let progress {
                let elapsed = seconds() - passStart
                progress(AdamProgress(phase: .final, epoch: epoch, maxEpochs: maxEpochs, rowsDone: rowsDone,
                                      rowCount: statistics.rowCount, rowsPerSecond: Double(rowsDone) / max(elapsed, 1e-9),
                                      elapsedSeconds: seconds(), objective: nil, change: nil, varcorr: [],
                                      secondsRemaining: nil, epochFinished: false))
            }
        }
        return FinalPass(sse: sse, residuals: residuals, sampled: every > 1, touched: touched)
    }

    /// The ``FitResult`` at the solver's estimates.
    func result(solver: AdamSolver, covariances: [Matrix], sigmaSquared: Double, final: FinalPass, criterion: Criterion,
                epochs: Int, converged: Bool, messages extra: [String], trajectory: [TrajectoryPoint],
                labels: [String], elapsed seconds: () -> Double) throws -> FitResult {
        let p = keptFixed.count, n = statistics.n
        var messages = extra
        let parameters = CovarianceParameters(effectCounts: states.map(\.k))
        guard case .success(let theta) = parameters.theta(covariances: covariances, sigmaSquared: sigmaSquared) else {
            throw InputError("internal error: a covariance matrix is not positive semi-definite")
        }

        // The random effects, their diagonal-block conditional SDs, and the pieces of the
        // approximate likelihood.
        var logDetL = 0.0, penalty = 0.0
        var ranef: [RanefRow] = []
        var done = Set<String>()
        for term in design.terms where done.insert(term.groupingName).inserted {
            for (j, other) in design.terms.enumerated() where other.groupingName == term.groupingName {
                let state = states[j], k = state.k
                let H = UnsafeMutablePointer<Double>.allocate(capacity: 2 * k * k)
                defer { H.deallocate() }
                var variances = [Double](repeating: 0, count: state.slotCount * k)
                for l in 0..<state.slotCount {
                    let record = state.record(l)
                    guard state.count(record) > 0 else { continue }
                    state.curvature(record, into: H)
                    guard SmallCholesky.inverse(of: H, k, work: H, into: H + k * k) else { throw InputError("internal error: a posterior precision is not positive definite") }
                    for a in 0..<k { variances[l * k + a] = sigmaSquared * H[k * k + a + a * k] }
                }
                for a in 0..<k {
                    for l in 0..<state.slotCount where state.count(state.record(l)) > 0 {
                        ranef.append(RanefRow(factor: other.groupingName, term: other.effects.names[a],
                                              level: other.grouping.labels[l], value: state.record(l)[a],
                                              condSD: max(variances[l * k + a], 0).squareRoot()))
                    }
                }
            }
        }
        for state in states {
            let k = state.k
            let H = UnsafeMutablePointer<Double>.allocate(capacity: k * k)
            defer { H.deallocate() }
            var precision = state.precision
            let logDetPrecision = precision.withUnsafeMutableBufferPointer { Self.logDeterminant($0.baseAddress!, k) }
            for l in 0..<state.slotCount {
                let record = state.record(l)
                guard state.count(record) > 0 else { continue }
                state.curvature(record, into: H)
                logDetL += Self.logDeterminant(H, k) - logDetPrecision
                for a in 0..<k { for c in 0..<k { penalty += record[a] * state.precision[a + c * k] * record[c] } }
            }
        }

        let covarianceOfBeta = try fixedEffectCovariance(sigmaSquared: sigmaSquared)
        var logDetRX = Double(p) * log(sigmaSquared)
        var C = covarianceOfBeta.values
        logDetRX -= C.withUnsafeMutableBufferPointer { Self.logDeterminant($0.baseAddress!, p) }
        let penalizedRSS = final.sse + penalty
        let objectiveFunction = ProfiledObjective(n: n, p: p)
        let objective = objectiveFunction.atSigma(criterion, sigmaSquared: sigmaSquared, logDetL: logDetL,
                                                  logDetRX: logDetRX, penalizedRSS: penalizedRSS)
        let logLik = -objective / 2
        let count = Double(p + theta.count + 1)
        messages.append(String(format: "penalized objective ‖y − Xβ − Zb‖²/σ² + Σ b'V⁻¹b at the estimates: %.10g", penalizedRSS / sigmaSquared))
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
        let singular = zip(theta, parameters.isDiagonal).contains { $1 && $0 < 1e-4 }
        if singular { messages.append("boundary (singular) fit: see help('isSingular')") }
        var groups: [(name: String, levels: Int)] = []
        var seen = Set<String>()
        for (term, state) in zip(design.terms, states) where seen.insert(term.groupingName).inserted {
            groups.append((term.groupingName, state.usedCount))
        }
        let sigma = sigmaSquared.squareRoot()
        return FitResult(
            formula: formula.text, criterion: criterion, algorithm: "adam", nobs: n, theta: theta, sigma: sigma,
            fixedEffectNames: design.fixed.names, fixedEffects: solver.beta,
            fixedEffectStandardErrors: covarianceOfBeta.diagonal.map { max($0, 0).squareRoot() },
            fixedEffectCovariance: covarianceOfBeta,
            varianceComponents: varCorr(covariances, sigmaSquared: sigmaSquared, labels: labels),
            logLikelihood: logLik, objective: objective,
            AIC: -2 * logLik + 2 * count, BIC: -2 * logLik + log(Double(n)) * count,
            groups: groups, randomEffects: ranef,
            scaledResidualQuantiles: Quantiles.fivePoint(final.residuals.map { $0 / sigma }),
            iterations: epochs, converged: converged, isSingular: singular, messages: messages,
            elapsedSeconds: seconds(), trajectory: trajectory)
    }

    /// Var(β̂) ≈ σ² [(X'X)⁻¹ + Σⱼ (Sⱼ⁻¹ − (X'X)⁻¹)], with Sⱼ = X'X − Σₗ Xₗ'Zₗ (Zₗ'Zₗ + Λ̃ⱼ)⁻¹ Zₗ'Xₗ the
    /// Schur complement of the model with term j alone. Exact for one term; for several, the
    /// terms' contributions to the variance of β̂ are added, which is exact for balanced crossed
    /// designs (Var(ȳ) = σ²/n + σ²ᵤ/qᵤ + σ²ᵢ/qᵢ) and within a fraction of a percent of the exact
    /// standard errors on the Zipf-distributed users × items data of the tests.
    func fixedEffectCovariance(sigmaSquared: Double) throws -> Matrix {
        let p = keptFixed.count, full = statistics.crossXy.count
        let G = gram
        guard let inverseGram = SmallCholesky.inverse(G, p) else { throw InputError("internal error: X'X is not positive definite") }
        var covariance = inverseGram
        for state in states {
            let k = state.k
            var S = G
            var cross = [Double](repeating: 0, count: p * k)
            let H = UnsafeMutablePointer<Double>.allocate(capacity: 2 * k * k)
            defer { H.deallocate() }
            for l in 0..<state.slotCount {
                let record = state.record(l)
                guard state.count(record) > 0 else { continue }
                let source = state.crossXZ + l * full * k
                for a in 0..<k { for (r, t) in keptFixed.enumerated() { cross[r + a * p] = source[t + a * full] } }
                state.curvature(record, into: H)
                guard SmallCholesky.inverse(of: H, k, work: H, into: H + k * k) else { throw InputError("internal error: a posterior precision is not positive definite") }
                for s in 0..<p {
                    for r in s..<p {
                        var sum = 0.0
                        for a in 0..<k { for b in 0..<k { sum += cross[r + a * p] * H[k * k + a + b * k] * cross[s + b * p] } }
                        S[r + s * p] -= sum
                    }
                }
            }
            for s in 0..<p { for r in (s + 1)..<max(s + 1, p) { S[s + r * p] = S[r + s * p] } }
            guard let inverseS = SmallCholesky.inverse(S, p) else { throw InputError("internal error: a Schur complement of X'X is not positive definite") }
            for c in 0..<(p * p) { covariance[c] += inverseS[c] - inverseGram[c] }
        }
        var result = Matrix(zeros: p, p)
        for s in 0..<p { for r in 0..<p { result[r, s] = sigmaSquared * 0.5 * (covariance[r + s * p] + covariance[s + r * p]) } }
        return result
    }

    /// log det of a small symmetric positive definite matrix (overwritten by its factor).
    static func logDeterminant(_ A: UnsafeMutablePointer<Double>, _ k: Int) -> Double {
        guard k > 0, SmallCholesky.factorInPlace(A, k) else { return 0 }
        var sum = 0.0
        for a in 0..<k { sum += 2 * log(A[a + a * k]) }
        return sum
    }
}

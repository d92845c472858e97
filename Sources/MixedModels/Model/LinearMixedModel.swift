import Foundation

/// A linear mixed model `y = Xβ + Zb + ε`, `b ~ N(0, σ²ΛΛ')`, `ε ~ N(0, σ²I)`, set up for
/// repeated penalized least-squares solves (Bates et al. 2015): the model frame, the sparse
/// design and its cross-products, and the analysed CHOLMOD factor.
///
///     let data = try CSVReader.read(path: "sleepstudy.csv", ...)
///     let model = try LinearMixedModel(formula: Formula.parse("Reaction ~ 1 + Days + (1 + Days | Subject)"), data: data)
///     let fit = try model.fit(criterion: .reml)
public final class LinearMixedModel {
    public let frame: ModelFrame
    let common: CholmodCommon
    let pls: PenalizedLeastSquares

    /// Builds the model: model frame, `Z`, cross-products, symbolic analysis.
    public convenience init(formula: Formula, data: DataTable, options: ModelOptions = ModelOptions()) throws {
        try self.init(formula: formula, data: data, options: options, engine: .automatic)
    }

    /// With a chosen factorization (tests compare the two).
    init(formula: Formula, data: DataTable, options: ModelOptions = ModelOptions(), engine: PenalizedLeastSquares.Engine) throws {
        frame = try ModelFrame(formula: formula, data: data, options: options)
        PhaseLog.mark("model frame")
        common = CholmodCommon()
        pls = try PenalizedLeastSquares(frame: frame, common: common, engine: engine)
        PhaseLog.mark("Z, Z'Z, analysis")
    }

    /// The structure of θ.
    public var parameters: CovarianceParameters { pls.parameters }

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

    /// Fixed effects and BLUPs given every variance component (the relative covariance θ and
    /// σ² follow from them): "reproduce lmer's estimates given its variances".
    /// - Parameter criterion: which log-likelihood to report at these variances.
    public func fit(given variances: VarianceComponents, criterion: Criterion = .reml) throws -> FitResult {
        let start = DispatchTime.now()
        let (covariances, sigmaSquared) = try variances.resolve(for: frame)
        let theta: [Double]
        switch parameters.theta(covariances: covariances, sigmaSquared: sigmaSquared) {
        case .success(let value): theta = value
        case .failure(let failure):
            throw InputError("the covariance matrix of group '\(frame.termLabels[failure.term])' is not positive semi-definite", file: variances.source)
        }
        try pls.update(theta: theta)
        return try summarize(criterion: criterion, algorithm: "given", sigmaSquared: sigmaSquared,
                             iterations: 0, converged: true, start: start)
    }

    /// Assembles a ``FitResult`` from the PLS state at the current θ. With `sigmaSquared` nil,
    /// σ² is profiled (σ̂² = r²/(n − p) for REML, r²/n for ML), as at an optimum.
    func summarize(criterion: Criterion, algorithm: String, sigmaSquared given: Double?, iterations: Int,
                   converged: Bool, start: DispatchTime, messages extra: [String] = [],
                   trajectory: [TrajectoryPoint] = []) throws -> FitResult {
        let objectiveFunction = ProfiledObjective(n: frame.n, p: frame.X.columns, logWeightSum: frame.logWeightSum)
        let sigmaSquared = given ?? objectiveFunction.sigmaSquared(criterion, penalizedRSS: pls.penalizedRSS)
        let objective = objectiveFunction.atSigma(criterion, sigmaSquared: sigmaSquared, logDetL: pls.logDetL,
                                                  logDetRX: pls.logDetRX, penalizedRSS: pls.penalizedRSS)
        let theta = pls.theta
        let beta = pls.fixedEffects()
        let b = try pls.randomEffects()
        let covarianceOfBeta = fixedEffectCovariance(sigmaSquared: sigmaSquared)
        let residuals = residualVector(beta: beta, b: b)
        let sigma = sigmaSquared.squareRoot()

        PhaseLog.mark("estimates, residuals")
        // Conditional variances need the selected inverse, which overwrites the factor: last.
        let ranef = try conditionalModes(b: b, sigmaSquared: sigmaSquared)
        PhaseLog.mark("conditional variances")

        let logLik = -objective / 2
        let k = Double(beta.count + theta.count + 1)
        let singular = zip(theta, parameters.isDiagonal).contains { $1 && $0 < 1e-4 }
        var messages = dataMessages + extra
        if singular { messages.append("boundary (singular) fit: see help('isSingular')") }
        return FitResult(
            formula: frame.formula.text, criterion: criterion, algorithm: algorithm, nobs: frame.n,
            theta: theta, sigma: sigma, fixedEffectNames: frame.fixedEffectNames, fixedEffects: beta,
            fixedEffectStandardErrors: covarianceOfBeta.diagonal.map { $0.squareRoot() },
            fixedEffectCovariance: covarianceOfBeta,
            varianceComponents: varCorr(theta: theta, sigmaSquared: sigmaSquared),
            logLikelihood: logLik, objective: objective,
            AIC: -2 * logLik + 2 * k, BIC: -2 * logLik + log(Double(frame.n)) * k,
            groups: groupCounts, randomEffects: ranef,
            scaledResidualQuantiles: Quantiles.fivePoint(residuals.map { $0 / sigma }),
            iterations: iterations, converged: converged, isSingular: singular, messages: messages,
            elapsedSeconds: Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9,
            trajectory: trajectory, transformations: frame.transformations
        )
    }

    /// σ²(RX'RX)⁻¹.
    private func fixedEffectCovariance(sigmaSquared: Double) -> Matrix {
        let R = pls.RX()
        let p = R.rows
        var inverse = Matrix(zeros: p, p)
        // RX'RX = LLᵀ with L = RX'; potri gives its inverse.
        for j in 0..<p { for i in j..<p { inverse[i, j] = R[j, i] } }
        _ = inverse.values.withUnsafeMutableBufferPointer { BLAS.potriLower(n: p, A: $0.baseAddress!, lda: max(p, 1)) }
        for j in 0..<p {
            for i in j..<p {
                inverse[i, j] *= sigmaSquared
                inverse[j, i] = inverse[i, j]
            }
        }
        return inverse
    }

    /// y − Xβ − Zb.
    private func residualVector(beta: [Double], b: [Double]) -> [Double] {
        var r = frame.y
        let n = frame.n
        for (c, value) in beta.enumerated() {
            for i in 0..<n { r[i] -= frame.X.values[i + c * n] * value }
        }
        let Z = pls.design.Z
        let colptr = Z.columnPointers, rows = Z.rowIndices, values = Z.values
        for c in 0..<pls.q where b[c] != 0 {
            for index in Int(colptr[c])..<Int(colptr[c + 1]) { r[Int(rows[index])] -= values[index] * b[c] }
        }
        return r
    }

    /// lme4's `as.data.frame(VarCorr(m))`.
    func varCorr(theta: [Double], sigmaSquared: Double) -> [VarCorrEntry] {
        VarianceComponents(covariances: parameters.covariances(theta: theta, sigmaSquared: sigmaSquared),
                           sigmaSquared: sigmaSquared, labels: frame.termLabels,
                           effectNames: frame.randomTerms.map(\.effectNames)).entries
    }

    /// Levels per grouping factor, each factor once, in term order (lme4's `ngrps`).
    var groupCounts: [(name: String, levels: Int)] {
        var seen = Set<String>()
        return frame.randomTerms.compactMap { term in
            seen.insert(term.groupingName).inserted ? (term.groupingName, term.levelCount) : nil
        }
    }

    /// b̂ with conditional standard deviations from the diagonal blocks of
    /// `Var(b | y) = σ² Λ (Λ'Z'ZΛ + I)⁻¹ Λ'` (conditional on β̂, as lme4's `condVar`),
    /// ordered as lme4's `as.data.frame(ranef(m, condVar = TRUE))`: by grouping factor, then
    /// effect, then level.
    private func conditionalModes(b: [Double], sigmaSquared: Double) throws -> [RanefRow] {
        let variances = try ConditionalVariance.diagonal(pls: pls, sigmaSquared: sigmaSquared)
        var rows: [RanefRow] = []
        rows.reserveCapacity(pls.q)
        let terms = frame.randomTerms
        var done = Set<String>()
        for term in terms where done.insert(term.groupingName).inserted {
            for (j, other) in terms.enumerated() where other.groupingName == term.groupingName {
                let k = other.effectCount
                for r in 0..<k {
                    for l in 0..<other.levelCount {
                        let index = pls.design.offsets[j] + l * k + r
                        rows.append(RanefRow(factor: other.groupingName, term: other.effectNames[r], level: other.levels[l],
                                             value: b[index], condSD: max(variances[index], 0).squareRoot()))
                    }
                }
            }
        }
        return rows
    }
}

extension LinearMixedModel {
    /// A one-line description of the sparse factor (size, fill, flops, supernodes).
    public var factorDescription: String { pls.factorization.summary }
}

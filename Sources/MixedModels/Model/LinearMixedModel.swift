import Foundation

/// A linear mixed model `y = Xβ + Zb + ε`, `b ~ N(0, σ²ΛΛ')`, `ε ~ N(0, σ²I)`, set up for
/// repeated penalized least-squares solves (Bates et al. 2015): the model frame, the sparse
/// design and its cross-products, and the analysed CHOLMOD factor.
///
/// ```swift
/// let formula = try Formula.parse("Reaction ~ 1 + Days + (1 + Days | Subject)")
/// let data = try CSVReader.read(path: "sleepstudy.csv", for: formula)
/// let model = try LinearMixedModel(formula: formula, data: data)
/// let fit = try model.fit(criterion: .reml)
/// print(fit.summary(dataName: data.source))
/// ```
///
/// (`DocumentationExampleTests` runs this example.)
public final class LinearMixedModel {
    public let frame: ModelFrame
    let common: CholmodCommon
    let pls: PenalizedLeastSquares

    /// Builds the model: model frame, `Z`, cross-products, symbolic analysis.
    /// - Throws: ``LMMError``: ``LMMError/formula(_:)`` for a formula that does not fit the
    ///   data, ``LMMError/input(_:)`` for a bad weights or offset column,
    ///   ``LMMError/numerical(_:)`` when the design cannot be factored.
    public convenience init(formula: Formula, data: DataTable, options: ModelOptions = ModelOptions()) throws(LMMError) {
        try self.init(formula: formula, data: data, options: options, engine: .automatic)
    }

    /// With a chosen factorization (tests compare the two).
    init(formula: Formula, data: DataTable, options: ModelOptions = ModelOptions(),
         engine: PenalizedLeastSquares.Engine) throws(LMMError) {
        let frame = try LMMError.wrapping { try ModelFrame(formula: formula, data: data, options: options) }
        self.frame = frame
        PhaseLog.mark("model frame")
        let common = CholmodCommon()
        self.common = common
        pls = try LMMError.wrapping { try PenalizedLeastSquares(frame: frame, common: common, engine: engine) }
        PhaseLog.mark("Z, Z'Z, analysis")
    }

    /// The structure of θ.
    public var parameters: CovarianceParameters { pls.parameters }

    /// Messages about the data that every fit repeats (rows and columns dropped).
    var dataMessages: [String] {
        FitAssembly.dataMessages(droppedRows: frame.droppedRowCount, droppedFixedEffects: frame.droppedFixedEffects)
    }

    /// Fixed effects and BLUPs given every variance component (the relative covariance θ and
    /// σ² follow from them): "reproduce lmer's estimates given its variances".
    /// - Parameters:
    ///   - variances: every variance and covariance of the random effects, and the residual
    ///     variance (lme4's `varcorr` form, as ``VarianceComponents/load(path:)`` reads it).
    ///   - criterion: which log-likelihood to report at these variances.
    /// - Throws: ``InputError`` naming the source of `variances` when they do not fit the model,
    ///   cannot be represented exactly, or leave `Λ'Z'ZΛ + I` too ill-conditioned to solve
    ///   (``GivenVariancesCheck``): they are never quietly changed.
    public func fit(given variances: VarianceComponents, criterion: Criterion = .reml) throws(LMMError) -> FitResult {
        try LMMError.wrapping { try fitGiven(variances, criterion: criterion) }
    }

    /// The work of the function above (which wraps its internal errors).
    func fitGiven(_ variances: VarianceComponents, criterion: Criterion) throws -> FitResult {
        let start = DispatchTime.now()
        let (covariances, sigmaSquared) = try variances.resolve(for: frame)
        let theta: [Double]
        switch parameters.theta(covariances: covariances, sigmaSquared: sigmaSquared) {
        case .success(let value): theta = value
        case .failure(let failure):
            throw InputError("the covariance matrix of group '\(frame.termLabels[failure.term])' is not positive semi-definite", file: variances.source)
        }
        try GivenVariancesCheck.roundTrip(given: covariances, sigmaSquared: sigmaSquared, theta: theta, parameters: parameters,
                                          labels: frame.termLabels, effectNames: frame.randomTerms.map(\.effectNames),
                                          source: variances.source)
        try pls.update(theta: theta)
        try GivenVariancesCheck.conditioning(pls: pls, source: variances.source)
        return try summarize(criterion: criterion, method: .given, sigmaSquared: sigmaSquared,
                             iterations: 0, converged: true, start: start)
    }

    /// Assembles a ``FitResult`` from the PLS state at the current θ. With `sigmaSquared` nil,
    /// σ² is profiled (σ̂² = r²/(n − p) for REML, r²/n for ML), as at an optimum.
    func summarize(criterion: Criterion, method: FitMethod, sigmaSquared given: Double?, iterations: Int,
                   converged: Bool, start: DispatchTime, messages extra: [String] = [],
                   trajectory: [TrajectoryPoint] = []) throws -> FitResult {
        let objectiveFunction = ProfiledObjective(n: frame.n, p: frame.X.columns, logWeightSum: frame.logWeightSum)
        let sigmaSquared = given ?? objectiveFunction.sigmaSquared(criterion, penalizedRSS: pls.penalizedRSS)
        let objective = objectiveFunction.atSigma(criterion, sigmaSquared: sigmaSquared, logDetL: pls.logDetL,
                                                  logDetRX: pls.logDetRX, penalizedRSS: pls.penalizedRSS)
        let theta = pls.theta
        let beta = pls.fixedEffects()
        let b = try pls.randomEffects()
        let covarianceOfBeta = pls.fixedEffectCovariance(sigmaSquared: sigmaSquared)
        let residuals = residualVector(beta: beta, b: b)

        PhaseLog.mark("estimates, residuals")
        // Conditional variances need the selected inverse, which overwrites the factor: last.
        let ranef = try conditionalModes(b: b, sigmaSquared: sigmaSquared)
        PhaseLog.mark("conditional variances")

        return FitAssembly(
            formula: frame.formula.text, criterion: criterion, method: method, nobs: frame.n,
            theta: theta, isDiagonal: parameters.isDiagonal, sigmaSquared: sigmaSquared,
            fixedEffectNames: frame.fixedEffectNames, fixedEffects: beta, fixedEffectCovariance: covarianceOfBeta,
            varianceComponents: varCorr(theta: theta, sigmaSquared: sigmaSquared), objective: objective,
            groupingNames: frame.randomTerms.map(\.groupingName), levelCounts: frame.randomTerms.map(\.levelCount),
            randomEffects: ranef, residuals: residuals, iterations: iterations, converged: converged,
            messages: dataMessages + extra,
            elapsedSeconds: Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9,
            trajectory: trajectory, transformations: frame.transformations
        ).result
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

    /// b̂ with conditional standard deviations from the diagonal blocks of
    /// `Var(b | y) = σ² Λ (Λ'Z'ZΛ + I)⁻¹ Λ'` (conditional on β̂, as lme4's `condVar`),
    /// in lme4's order (``FitAssembly/ranefOrder(groupingNames:_:)``).
    private func conditionalModes(b: [Double], sigmaSquared: Double) throws -> [RanefRow] {
        let variances = try ConditionalVariance.diagonal(pls: pls, sigmaSquared: sigmaSquared)
        let terms = frame.randomTerms
        return FitAssembly.ranefOrder(groupingNames: terms.map(\.groupingName)) { j in
            let other = terms[j]
            var rows: [RanefRow] = []
            rows.reserveCapacity(other.effectCount * other.levelCount)
            let k = other.effectCount
            for r in 0..<k {
                for l in 0..<other.levelCount {
                    let index = pls.design.layouts[j].index(level: l, effect: r)
                    rows.append(RanefRow(factor: other.groupingName, term: other.effectNames[r], level: other.levels[l],
                                         value: b[index], condSD: max(variances[index], 0).squareRoot()))
                }
            }
            return rows
        }
    }
}

extension LinearMixedModel {
    /// A one-line description of the sparse factor (size, fill, flops, supernodes).
    package var factorDescription: String { pls.factorization.summary }
}

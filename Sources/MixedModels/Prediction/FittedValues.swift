/// Fitted values and residuals of a fit on its own data: lme4's `fitted(m)` (`Xβ̂ + Zb̂`,
/// plus the offset), `predict(m, re.form = NA)` (`Xβ̂`, plus the offset), `residuals(m)` and
/// `residuals(m, scaled = TRUE)` (the residual over σ̂), unweighted, each row numbered by its row in the data file as R numbers it
/// after na.omit (dropped rows keep their numbers).
public struct FittedValues: Sendable {
    /// 1-based data-file row of each observation.
    public var rows: [Int]
    /// Conditional fitted values `Xβ̂ + Zb̂` (+ offset).
    public var fitted: [Double]
    /// Marginal (population-level) fitted values `Xβ̂` (+ offset).
    public var marginal: [Double]
    /// `y − Xβ̂ − Zb̂`.
    public var residuals: [Double]
    public var sigma: Double

    /// The fitted values of `result`, a fit of `model`, from its model frame, β̂ and b̂.
    /// - Throws: ``InputError`` when the result's random effects are not the model's.
    public init(model: LinearMixedModel, result: FitResult) throws {
        let modes = try SavedModel.conditionalModes(of: result, frame: model.frame).modes
        self.init(frame: model.frame, beta: result.fixedEffects, modes: modes, sigma: result.sigma)
    }

    /// The fitted values of `result`, a matrix-free fit of `model` (``IterativeMixedModel``),
    /// from its model frame, β̂ and b̂.
    /// - Throws: ``InputError`` when the result's random effects are not the model's, or the
    ///   model was built without keeping its rows (``IterativeMixedModel/holdsRows``).
    public init(iterative model: IterativeMixedModel, result: FitResult) throws {
        try model.requireRows(for: "fitted values and residuals")
        let modes = try SavedModel.conditionalModes(of: result, frame: model.frame).modes
        self.init(frame: model.frame, beta: result.fixedEffects, modes: modes, sigma: result.sigma)
    }

    /// The fitted values of `saved` (its β̂, b̂ and σ̂) on `frame`, the model frame of its
    /// formula on the data it was fitted to.
    public init(frame: ModelFrame, saved: SavedModel) {
        self.init(frame: frame, beta: saved.beta, modes: saved.terms.map(\.modes), sigma: saved.sigma)
    }

    /// `modes[j]`: b̂ of the frame's random term j, level-major.
    init(frame: ModelFrame, beta: [Double], modes: [[Double]], sigma: Double) {
        let n = frame.n
        rows = frame.dataRows.map { $0 + 1 }
        var marginal = [Double](repeating: 0, count: n)
        for (c, beta) in beta.enumerated() {
            for i in 0..<n { marginal[i] += frame.X.values[c * n + i] * beta }
        }
        var fitted = marginal
        for (term, termModes) in zip(frame.randomTerms, modes) {
            let k = term.effectCount
            for i in 0..<n {
                let level = Int(term.codes[i])
                for e in 0..<k { fitted[i] += term.effects.values[e * n + i] * termModes[level * k + e] }
            }
        }
        var residuals = zip(frame.y, fitted).map { $0 - $1 }
        // The frame's y, X and Z rows carry √wᵢ and y has the offset subtracted: back to the
        // response's scale, as lme4's fitted() and residuals() report them.
        if let weights = frame.weights {
            for i in 0..<n {
                let root = weights[i].squareRoot()
                marginal[i] /= root
                fitted[i] /= root
                residuals[i] /= root
            }
        }
        if let offset = frame.offset {
            for i in 0..<n {
                marginal[i] += offset[i]
                fitted[i] += offset[i]
            }
        }
        self.marginal = marginal
        self.fitted = fitted
        self.residuals = residuals
        self.sigma = sigma
    }

    /// `row,fitted,fitted_marginal,residual,pearson`, one line per observation.
    public func csv() -> String {
        var text = "row,fitted,fitted_marginal,residual,pearson\n"
        text.reserveCapacity(rows.count * 80)
        for i in rows.indices {
            text += "\(rows[i]),\(fitted[i]),\(marginal[i]),\(residuals[i]),\(residuals[i] / sigma)\n"
        }
        return text
    }
}

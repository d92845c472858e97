/// Fitted values and residuals of a fit on its own data: lme4's `fitted(m)` (`Xβ̂ + Zb̂`),
/// `predict(m, re.form = NA)` (`Xβ̂`), `residuals(m)` and `residuals(m, type = "pearson")`
/// (the residual over σ̂), each row numbered by its row in the data file as R numbers it
/// after na.omit (dropped rows keep their numbers).
public struct FittedValues: Sendable {
    /// 1-based data-file row of each observation.
    public var rows: [Int]
    /// Conditional fitted values `Xβ̂ + Zb̂`.
    public var fitted: [Double]
    /// Marginal (population-level) fitted values `Xβ̂`.
    public var marginal: [Double]
    /// `y − Xβ̂ − Zb̂`.
    public var residuals: [Double]
    public var sigma: Double

    /// The fitted values of `result`, a fit of `model`, from its model frame and saved modes.
    public init(model: LinearMixedModel, result: FitResult, saved: SavedModel) {
        self.init(frame: model.frame, saved: saved)
    }

    /// The fitted values of `saved` (its β̂, b̂ and σ̂) on `frame`, the model frame of its
    /// formula on the data it was fitted to.
    public init(frame: ModelFrame, saved: SavedModel) {
        let n = frame.n
        rows = frame.dataRows.map { $0 + 1 }
        var marginal = [Double](repeating: 0, count: n)
        for (c, beta) in saved.beta.enumerated() {
            for i in 0..<n { marginal[i] += frame.X.values[c * n + i] * beta }
        }
        var fitted = marginal
        for (term, savedTerm) in zip(frame.randomTerms, saved.terms) {
            let k = term.effectCount
            for i in 0..<n {
                let level = Int(term.codes[i])
                for e in 0..<k { fitted[i] += term.effects.values[e * n + i] * savedTerm.modes[level * k + e] }
            }
        }
        self.marginal = marginal
        self.fitted = fitted
        residuals = zip(frame.y, fitted).map { $0 - $1 }
        sigma = saved.sigma
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

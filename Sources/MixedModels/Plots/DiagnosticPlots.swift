import Foundation

/// The diagnostic plots of a fit, as SVG documents: per grouping factor a caterpillar plot of
/// the conditional modes and a normal QQ plot of each effect's modes; residuals against fitted
/// values; a normal QQ plot of the residuals.
public struct DiagnosticPlots: Sendable {
    /// File name (`caterpillar_Subject.svg`, …) and SVG text.
    public var files: [(name: String, svg: String)]

    /// The plots of the conditional modes (rows as lme4's `ranef` lists them: by grouping
    /// factor, then effect, then level) and, when given, of the residuals.
    init(modes: [(factor: String, effect: String, level: String, value: Double, condSD: Double)],
         fitted: [Double]?, residuals: [Double]?) {
        var files: [(String, String)] = []
        var factors: [String] = []
        for row in modes where factors.last != row.factor && !factors.contains(row.factor) { factors.append(row.factor) }
        for factor in factors {
            let rowsOfFactor = modes.filter { $0.factor == factor }
            var effectNames: [String] = []
            for row in rowsOfFactor where !effectNames.contains(row.effect) { effectNames.append(row.effect) }
            let levels = rowsOfFactor.filter { $0.effect == effectNames[0] }.map(\.level)
            let effects = effectNames.map { name in
                let rows = rowsOfFactor.filter { $0.effect == name }
                return CaterpillarPlot.Effect(name: name, values: rows.map(\.value), condSDs: rows.map(\.condSD))
            }
            guard effects.allSatisfy({ $0.values.count == levels.count }) else { continue }
            let stem = LinearMixedModel.fileStem(factor)
            files.append(("caterpillar_\(stem).svg", CaterpillarPlot(factor: factor, levels: levels, effects: effects).svg))
            files.append(("qq_ranef_\(stem).svg", ScatterPlots.normalQQ(
                title: "Normal QQ plot of the conditional modes of \(factor)",
                samples: effects.map { ($0.name, $0.values) })))
        }
        if let fitted, let residuals {
            files.append(("residuals_vs_fitted.svg", ScatterPlots.residualsVersusFitted(fitted: fitted, residuals: residuals)))
            files.append(("qq_residuals.svg", ScatterPlots.normalQQ(title: "Normal QQ plot of the residuals",
                                                                    samples: [("residuals", residuals)])))
        }
        self.files = files
    }
}

extension SavedModel {
    /// The diagnostic plots of a saved model (``LinearMixedModel/diagnosticPlots(_:)``'s, from the
    /// file): the caterpillar and QQ plots of its conditional modes and, with `fitted` (its
    /// fitted values on the data it was fitted to), the residual plots.
    public func diagnosticPlots(fitted: FittedValues?) -> DiagnosticPlots {
        // lme4's ranef order: by grouping factor (first appearance), then term, effect, level.
        var rows: [(factor: String, effect: String, level: String, value: Double, condSD: Double)] = []
        var done = Set<String>()
        for term in terms where done.insert(term.groupingName).inserted {
            for other in terms where other.groupingName == term.groupingName {
                let k = other.effectCount
                for r in 0..<k {
                    for (l, level) in other.levels.enumerated() {
                        rows.append((other.groupingName, other.effectNames[r], level, other.modes[l * k + r], other.conditionalSD[l * k + r]))
                    }
                }
            }
        }
        return DiagnosticPlots(modes: rows, fitted: fitted?.fitted, residuals: fitted?.residuals)
    }
}

extension LinearMixedModel {
    /// The diagnostic plots of `fit`, a fit of this model: its conditional modes, and its
    /// fitted values and residuals (``FittedValues``). ``SavedModel/diagnosticPlots(fitted:)``
    /// draws the same files from the saved model.
    public func diagnosticPlots(_ fit: FitResult) throws -> DiagnosticPlots {
        let values = try FittedValues(model: self, result: fit)
        let modes = fit.randomEffects.map { (factor: $0.factor, effect: $0.term, level: $0.level, value: $0.value, condSD: $0.condSD) }
        return DiagnosticPlots(modes: modes, fitted: values.fitted, residuals: values.residuals)
    }

    /// A factor name as a file-name stem: letters, digits, `-` and `_` kept, the rest `_`.
    static func fileStem(_ name: String) -> String {
        String(name.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" })
    }
}

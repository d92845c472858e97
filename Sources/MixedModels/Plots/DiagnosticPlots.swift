import Foundation

/// The diagnostic plots of a fit, as SVG documents: per grouping factor a caterpillar plot of
/// the conditional modes and a normal QQ plot of each effect's modes; residuals against fitted
/// values; a normal QQ plot of the residuals.
public struct DiagnosticPlots: Sendable {
    /// File name (`caterpillar_Subject.svg`, …) and SVG text.
    public var files: [(name: String, svg: String)]
}

extension LinearMixedModel {
    /// The diagnostic plots of `fit`, a fit of this model (fitted values y − r from the
    /// penalized least-squares solution at the fit's θ).
    public func diagnosticPlots(_ fit: FitResult) throws -> DiagnosticPlots {
        try pls.update(theta: fit.theta)
        let beta = pls.fixedEffects()
        let b = try pls.randomEffects()
        let n = frame.n
        var fitted = [Double](repeating: 0, count: n)
        for (c, value) in beta.enumerated() {
            for i in 0..<n { fitted[i] += frame.X.values[i + c * n] * value }
        }
        let Z = pls.design.Z
        let colptr = Z.columnPointers, rows = Z.rowIndices, values = Z.values
        for c in 0..<pls.q where b[c] != 0 {
            for index in Int(colptr[c])..<Int(colptr[c + 1]) { fitted[Int(rows[index])] += values[index] * b[c] }
        }
        let residuals = (0..<n).map { frame.y[$0] - fitted[$0] }

        var files: [(String, String)] = []
        var factors: [String] = []
        for row in fit.randomEffects where factors.last != row.factor && !factors.contains(row.factor) { factors.append(row.factor) }
        for factor in factors {
            let rowsOfFactor = fit.randomEffects.filter { $0.factor == factor }
            var effectNames: [String] = []
            for row in rowsOfFactor where !effectNames.contains(row.term) { effectNames.append(row.term) }
            let levels = rowsOfFactor.filter { $0.term == effectNames[0] }.map(\.level)
            let effects = effectNames.map { name in
                let rows = rowsOfFactor.filter { $0.term == name }
                return CaterpillarPlot.Effect(name: name, values: rows.map(\.value), condSDs: rows.map(\.condSD))
            }
            guard effects.allSatisfy({ $0.values.count == levels.count }) else { continue }
            let stem = Self.fileStem(factor)
            files.append(("caterpillar_\(stem).svg", CaterpillarPlot(factor: factor, levels: levels, effects: effects).svg))
            files.append(("qq_ranef_\(stem).svg", ScatterPlots.normalQQ(
                title: "Normal QQ plot of the conditional modes of \(factor)",
                samples: effects.map { ($0.name, $0.values) })))
        }
        files.append(("residuals_vs_fitted.svg", ScatterPlots.residualsVersusFitted(fitted: fitted, residuals: residuals)))
        files.append(("qq_residuals.svg", ScatterPlots.normalQQ(title: "Normal QQ plot of the residuals",
                                                                samples: [("residuals", residuals)])))
        return DiagnosticPlots(files: files)
    }

    /// A factor name as a file-name stem: letters, digits, `-` and `_` kept, the rest `_`.
    static func fileStem(_ name: String) -> String {
        String(name.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" })
    }
}

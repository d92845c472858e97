import Foundation

/// The parts of a ``FitResult`` that do not depend on the method, written once for the exact,
/// given, MacKay and streaming fits: the data messages, lme4's order of the random effects, the
/// singular-fit test, AIC and BIC, and the group list.
struct FitAssembly {
    var formula: String
    var criterion: Criterion
    var method: FitMethod
    var nobs: Int
    var theta: [Double]
    /// Which entries of θ are diagonal entries of a Tⱼ (``CovarianceParameters/isDiagonal``).
    var isDiagonal: [Bool]
    var sigmaSquared: Double
    var fixedEffectNames: [String]
    var fixedEffects: [Double]
    /// Var(β̂), p × p.
    var fixedEffectCovariance: Matrix
    var varianceComponents: [VarCorrEntry]
    /// The REML criterion or the deviance.
    var objective: Double
    /// Each term's grouping factor and its number of levels (with observations), in term order.
    var groupingNames: [String]
    var levelCounts: [Int]
    /// In lme4's order (``ranefOrder(groupingNames:_:)``).
    var randomEffects: [RanefRow]
    /// y − Xβ − Zb (all rows, or a sample).
    var residuals: [Double]
    var iterations: Int
    var converged: Bool
    /// The method's messages; the singular-fit message is added when it applies.
    var messages: [String]
    var elapsedSeconds: Double
    var trajectory: [TrajectoryPoint] = []
    /// How each variable of the formula was computed (``ModelFrame/transformations``).
    var transformations: [JSONValue] = []

    /// lme4's `isSingular` (default tolerance 1e-4): a diagonal entry of some Tⱼ at zero.
    static func isSingular(theta: [Double], isDiagonal: [Bool]) -> Bool {
        zip(theta, isDiagonal).contains { $1 && $0 < 1e-4 }
    }

    static let singularMessage = "boundary (singular) fit: see help('isSingular')"

    /// Messages about the data that every fit repeats: rows dropped for missing values, and
    /// fixed-effect columns dropped for rank deficiency.
    static func dataMessages(droppedRows: Int, droppedFixedEffects: [String]) -> [String] {
        var messages: [String] = []
        if droppedRows > 0 {
            messages.append("\(droppedRows) row\(droppedRows == 1 ? "" : "s") with missing values dropped (na.omit)")
        }
        if !droppedFixedEffects.isEmpty {
            let count = droppedFixedEffects.count
            messages.append("fixed-effect model matrix is rank deficient so dropping \(count) column\(count == 1 ? "" : "s") / coefficient\(count == 1 ? "" : "s"): \(droppedFixedEffects.joined(separator: ", "))")
        }
        return messages
    }

    /// The random effects in the order of lme4's `as.data.frame(ranef(m, condVar = TRUE))`: by
    /// grouping factor (in the order of its first term), then term, then effect, then level.
    /// - Parameter rows: the rows of term j, effect by effect and level by level within an effect.
    static func ranefOrder(groupingNames: [String], _ rows: (Int) throws -> [RanefRow]) rethrows -> [RanefRow] {
        var result: [RanefRow] = []
        var done = Set<String>()
        for name in groupingNames where done.insert(name).inserted {
            for (j, other) in groupingNames.enumerated() where other == name {
                result.append(contentsOf: try rows(j))
            }
        }
        return result
    }

    /// Levels per grouping factor, each factor once, in term order (lme4's `ngrps`).
    static func groups(groupingNames: [String], levelCounts: [Int]) -> [(name: String, levels: Int)] {
        var seen = Set<String>()
        return zip(groupingNames, levelCounts).compactMap { name, levels in
            seen.insert(name).inserted ? (name, levels) : nil
        }
    }

    var result: FitResult {
        let logLik = -objective / 2
        let k = Double(fixedEffects.count + theta.count + 1)
        let singular = Self.isSingular(theta: theta, isDiagonal: isDiagonal)
        let sigma = sigmaSquared.squareRoot()
        return FitResult(
            formula: formula, criterion: criterion, method: method, nobs: nobs,
            theta: theta, sigma: sigma, fixedEffectNames: fixedEffectNames, fixedEffects: fixedEffects,
            fixedEffectStandardErrors: fixedEffectCovariance.diagonal.map { max($0, 0).squareRoot() },
            fixedEffectCovariance: fixedEffectCovariance,
            varianceComponents: varianceComponents,
            logLikelihood: logLik, objective: objective,
            AIC: -2 * logLik + 2 * k, BIC: -2 * logLik + log(Double(nobs)) * k,
            groups: Self.groups(groupingNames: groupingNames, levelCounts: levelCounts),
            randomEffects: randomEffects,
            scaledResidualQuantiles: Quantiles.fivePoint(residuals.map { $0 / sigma }),
            iterations: iterations, converged: converged, isSingular: singular,
            messages: singular ? messages + [Self.singularMessage] : messages,
            elapsedSeconds: elapsedSeconds, trajectory: trajectory, transformations: transformations)
    }
}

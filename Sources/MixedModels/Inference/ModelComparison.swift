import Foundation

/// Likelihood-ratio tests of nested models: lme4's `anova(m0, m1, …)`.
///
/// Every model is fitted by maximum likelihood (lme4 refits REML fits by ML before comparing:
/// REML criteria of models with different fixed effects are not comparable). The models are
/// sorted by their number of parameters `npar` = p + length(θ) + 1 (stable for ties, as R's
/// `order`); each row after the first is tested against the one before it:
/// Chisq = 2·max(0, Δ logLik), Df = Δ npar, Pr(>Chisq) = P(χ²(Df) > Chisq) (none for Df = 0).
///
/// Unlike lme4, which checks only the number of observations, the models must be nested —
/// each model's fixed-effect columns, and for each grouping factor its random effects, among
/// the next larger model's — and fitted to the same rows of the data file.
public struct ModelComparison: Sendable {
    /// One model's row of the table.
    public struct Row: Sendable {
        /// `m1`, `m2`, … in the order the formulas were given.
        public var name: String
        public var formula: String
        public var npar: Int
        public var AIC: Double
        public var BIC: Double
        public var logLik: Double
        public var deviance: Double
        /// Against the previous row; nil for the first.
        public var chisq: Double?
        public var df: Int?
        /// nil for the first row and when Df = 0.
        public var pValue: Double?
    }

    /// The data file's name.
    public var dataName: String
    /// The models in increasing `npar`.
    public var rows: [Row]

    /// A fitted model to compare: its ML fit, and what the checks need.
    public struct Model {
        public var formula: String
        public var result: FitResult
        /// The data-file rows it was fitted to.
        public var dataRows: [Int]
        public var response: String
        /// Effect names per grouping factor (the union over the factor's terms).
        public var randomEffects: [String: Set<String>]

        public init(model: LinearMixedModel, result: FitResult) {
            formula = model.frame.formula.text
            self.result = result
            dataRows = model.frame.dataRows
            response = model.frame.formula.response
            var effects: [String: Set<String>] = [:]
            for term in model.frame.randomTerms { effects[term.groupingName, default: []].formUnion(term.effectNames) }
            randomEffects = effects
        }
    }

    /// Fits every formula to the CSV file at `dataPath` by ML and compares them.
    /// - Throws: the errors of reading and fitting (``FormulaError``, ``InputError``), and
    ///   ``InputError`` when fewer than two formulas are given, the models have different
    ///   responses, were fitted to different rows, or are not nested.
    public static func fit(dataPath: String, formulas: [String]) throws -> ModelComparison {
        guard formulas.count >= 2 else { throw InputError("anova compares at least two models: give two or more -f formulas") }
        var models: [Model] = []
        var dataName = CSVReader.fileName(dataPath)
        for text in formulas {
            let formula = try Formula.parse(text)
            let table = try CSVReader.read(path: dataPath, for: formula)
            dataName = table.source
            let model = try LinearMixedModel(formula: formula, data: table)
            models.append(Model(model: model, result: try model.fit(criterion: .ml)))
        }
        return try ModelComparison(dataName: dataName, models: models)
    }

    /// Compares ML fits.
    public init(dataName: String, models: [Model]) throws {
        self.dataName = dataName
        func describe(_ index: Int) -> String { "m\(index + 1) (\(models[index].formula))" }
        for index in models.indices {
            if models[index].result.criterion != .ml {
                throw InputError("\(describe(index)) is a REML fit; likelihood-ratio tests need ML fits")
            }
            if models[index].response != models[0].response {
                throw InputError("the models have different responses: '\(models[0].response)' in \(describe(0)), '\(models[index].response)' in \(describe(index))")
            }
            if models[index].dataRows != models[0].dataRows {
                let (a, b) = (models[0].dataRows.count, models[index].dataRows.count)
                throw InputError("the models were not fitted to the same rows: \(describe(0)) uses \(a) rows, \(describe(index)) \(b)"
                                 + (a == b ? " (the same number, but not the same rows)" : "")
                                 + "; rows with a missing value in a column a formula uses are dropped from that model only")
            }
        }
        let order = models.indices.sorted { (models[$0].result.parameterCount, $0) < (models[$1].result.parameterCount, $1) }
        for (smaller, larger) in zip(order, order.dropFirst()) {
            let small = models[smaller], large = models[larger]
            let largeFixed = Set(large.result.fixedEffectNames)
            if let extra = small.result.fixedEffectNames.first(where: { !largeFixed.contains($0) }) {
                throw InputError("the models are not nested: \(describe(smaller)) has the fixed effect '\(extra)', which \(describe(larger)) lacks")
            }
            for (group, effects) in small.randomEffects.sorted(by: { $0.key < $1.key }) {
                let missing = effects.subtracting(large.randomEffects[group] ?? []).sorted()
                if !missing.isEmpty {
                    throw InputError("the models are not nested: \(describe(smaller)) has the random effect\(missing.count == 1 ? "" : "s") \(missing.map { "'\($0)'" }.joined(separator: ", ")) of '\(group)', which \(describe(larger)) lacks")
                }
            }
        }
        var rows: [Row] = []
        for index in order {
            let result = models[index].result
            var row = Row(name: "m\(index + 1)", formula: models[index].formula, npar: result.parameterCount,
                          AIC: result.AIC, BIC: result.BIC, logLik: result.logLikelihood,
                          deviance: -2 * result.logLikelihood, chisq: nil, df: nil, pValue: nil)
            if let previous = rows.last {
                let chisq = 2 * max(0, row.logLik - previous.logLik)
                let df = row.npar - previous.npar
                row.chisq = chisq
                row.df = df
                row.pValue = df == 0 ? nil : ChiSquare.upperTail(chisq, degreesOfFreedom: Double(df))
            }
            rows.append(row)
        }
        self.rows = rows
    }
}

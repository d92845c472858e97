/// Building a ``SavedModel`` from a fit.
extension SavedModel {
    /// The model of `result`, fitted by `model` to `data` (read from the file at `dataPath`)
    /// with `options` (prior weights, offset column, contrasts).
    /// - Throws: ``InputError`` when the data file cannot be read again for its fingerprint, or
    ///   the formula calls `as.numeric()` on a factor (its codes depend on the training data's
    ///   level order, which the file does not record).
    public init(model: LinearMixedModel, result: FitResult, data: DataTable, dataPath: String,
                options: ModelOptions = ModelOptions()) throws {
        try self.init(frame: model.frame, parameters: model.parameters, result: result, data: data, dataPath: dataPath,
                      options: options)
    }

    /// The model of `result`, a matrix-free fit (``IterativeMixedModel``) of `data` (read from
    /// the file at `dataPath`, a CSV or `.lmmbin` file). The file records what is approximate
    /// (``approximations``) and no joint covariance of b̂ and β̂: conditional prediction
    /// intervals are not available for it, population-level ones are (Cov(β̂) is exact given θ).
    /// - Throws: as ``init(model:result:data:dataPath:options:)``; ``InputError`` when the
    ///   model was built without keeping its rows (``IterativeMixedModel/holdsRows``).
    public init(iterative model: IterativeMixedModel, result: FitResult, data: DataTable, dataPath: String) throws {
        try model.requireRows(for: "the saved model")
        try self.init(frame: model.frame, parameters: nil, result: result, data: data, dataPath: dataPath,
                      options: ModelOptions())
        approximations = [
            Approximation(quantity: "theta", how: "variance components solve the REML/ML score with Hutchinson traces (Monte Carlo error; see the fit's messages)"),
            Approximation(quantity: "modes", how: "b and β solve the mixed-model equations by conjugate gradients, to the solver's tolerance"),
            Approximation(quantity: "condSD", how: "Hutchinson estimates of the diagonal of Var(b | y, β̂) with the per-level blocks as control variate"),
            Approximation(quantity: "joint_covariance", how: "not computed: conditional prediction intervals are not available"),
        ]
    }

    /// The common work of the initializers above; `parameters` nil: no joint covariance.
    init(frame: ModelFrame, parameters: CovarianceParameters?, result: FitResult, data: DataTable, dataPath: String,
         options: ModelOptions) throws {
        weights = options.weights
        offset = options.offset
        contrasts = options.contrasts
        let formula = frame.formula
        for (label, expression) in formula.expressions.sorted(by: { $0.key < $1.key }) where label != formula.response {
            if let call = Self.numericOfFactor(expression, data: data) {
                throw InputError("the model file cannot record '\(call)' (the codes of a factor depend on the training data's levels); compute it as a column of the data file to save the model")
            }
        }
        transformations = Self.transformations(of: frame)
        let print = try FileHash.fingerprint(path: dataPath)
        self.formula = formula.text
        criterion = result.criterion
        algorithm = result.method.name
        nobs = result.nobs
        self.data = DataFingerprint(file: data.source, rows: data.rowCount, bytes: print.bytes, hash: print.hash)
        fixedEffectNames = result.fixedEffectNames
        beta = result.fixedEffects
        droppedFixedEffects = frame.droppedFixedEffects
        theta = result.theta
        sigma = result.sigma
        fixedEffectCovariance = result.fixedEffectCovariance.values
        if let parameters {
            jointCovariance = JointCovariance.packed(frame: frame, parameters: parameters, theta: result.theta,
                                                     sigmaSquared: result.sigma * result.sigma)
            levelCovariance = jointCovariance != nil ? nil
                : LevelCovariance(frame: frame, parameters: parameters, theta: result.theta, sigmaSquared: result.sigma * result.sigma)
        } else {
            jointCovariance = nil
            levelCovariance = nil
        }
        approximations = []

        let modelVariables = formula.modelVariables
        columns = formula.columnsUsed.map { name in
            let roles = Column.Role.roles(of: name, in: formula)
            guard case .categorical(let factor) = data.columns[name]! else {
                return Column(name: name, roles: roles, isCategorical: false, levels: nil, contrasts: nil)
            }
            guard modelVariables.contains(name) else {
                return Column(name: name, roles: roles, isCategorical: true, levels: nil, contrasts: nil)
            }
            // The levels the fitted rows use, in R's order (ModelFrame drops the others).
            var used = [Bool](repeating: false, count: factor.levels.count)
            for row in frame.dataRows { used[Int(factor.codes[row])] = true }
            let levels = factor.levels.indices.filter { used[$0] }.map { factor.levels[$0] }
            return Column(name: name, roles: roles, isCategorical: true, levels: levels, contrasts: options.contrasts.rawValue)
        }

        let (modes, sds) = try Self.conditionalModes(of: result, frame: frame)
        let randomTerms = frame.randomTerms

        // Each lme4-ordered term's position among the formula's random terms.
        let design = try PredictionDesign(formula: formula, columns: columns, transformations: transformations,
                                          contrasts: contrasts)
        var taken = Set<Int>()
        terms = try randomTerms.enumerated().map { j, term in
            let index = try design.randomTermIndex(span: term.span, groupingName: term.groupingName,
                                                   effectNames: term.effectNames, taken: &taken)
            return Term(formulaIndex: index, groupingName: term.groupingName, effectNames: term.effectNames,
                        levels: term.levels, modes: modes[j], conditionalSD: sds[j])
        }
    }

    /// b̂ and the conditional SDs of each of the frame's random terms (level-major, as
    /// ``Term/modes``), from the result's rows (ordered by grouping factor, then term, effect
    /// and level, as LinearMixedModel lists them).
    static func conditionalModes(of result: FitResult, frame: ModelFrame) throws -> (modes: [[Double]], sds: [[Double]]) {
        try conditionalModes(of: result, terms: frame.randomTerms.map { ($0.groupingName, $0.effectNames, $0.levels) })
    }

    /// b̂ and the conditional SDs of each of `randomTerms` (lme4's order, the levels the fit
    /// reports), from the result's rows (ordered as ``conditionalModes(of:frame:)`` says).
    static func conditionalModes(of result: FitResult,
                                 terms randomTerms: [(groupingName: String, effectNames: [String], levels: [String])]) throws
        -> (modes: [[Double]], sds: [[Double]]) {
        var modes = randomTerms.map { [Double](repeating: 0, count: $0.effectNames.count * $0.levels.count) }
        var sds = modes
        var next = 0
        var done = Set<String>()
        for term in randomTerms where done.insert(term.groupingName).inserted {
            for (j, other) in randomTerms.enumerated() where other.groupingName == term.groupingName {
                let k = other.effectNames.count
                for r in 0..<k {
                    for l in 0..<other.levels.count {
                        guard next < result.randomEffects.count, case let row = result.randomEffects[next],
                              row.factor == other.groupingName, row.term == other.effectNames[r], row.level == other.levels[l] else {
                            throw InputError("internal error: the fit's random effects are not in lme4's order")
                        }
                        modes[j][l * k + r] = row.value
                        sds[j][l * k + r] = row.condSD
                        next += 1
                    }
                }
            }
        }
        return (modes, sds)
    }

    /// The frame's record of each function call of the formula but the response (which
    /// prediction does not evaluate), as ``Transformation``s.
    static func transformations(of frame: ModelFrame) -> [Transformation] {
        let formula = frame.formula
        return frame.transformations.compactMap { record -> Transformation? in
            guard case .object(let members) = record else { return nil }
            func member(_ key: String) -> JSONValue? { members.first { $0.0 == key }?.1 }
            func number(_ key: String) -> Double? {
                switch member(key) {
                case .number(let x)?: return x
                case .integer(let k)?: return Double(k)
                default: return nil
                }
            }
            func numbers(_ key: String) -> [Double]? {
                guard case .array(let values)? = member(key) else { return nil }
                return values.compactMap { value -> Double? in
                    switch value {
                    case .number(let x): return x
                    case .integer(let k): return Double(k)
                    default: return nil
                    }
                }
            }
            guard case .string(let label)? = member("variable"), label != formula.response,
                  formula.expressions[label] != nil,
                  case .string(let type)? = member("type"), let kind = Transformation.Kind(rawValue: type) else { return nil }
            var levels: [String]?
            if case .array(let values)? = member("levels") {
                levels = values.compactMap { if case .string(let text) = $0 { return text } else { return nil } }
            }
            var raw: Bool?
            if case .bool(let flag)? = member("raw") { raw = flag }
            return Transformation(variable: label, kind: kind, levels: levels, center: number("center"), scale: number("scale"),
                                  degree: number("degree").map { Int($0) }, raw: raw, alpha: numbers("alpha"), norm2: numbers("norm2"))
        }
    }

    /// The text of an `as.numeric()` call of a factor inside `expression`, if any.
    static func numericOfFactor(_ expression: FormulaExpression, data: DataTable) -> String? {
        switch expression {
        case .column, .number, .logical:
            return nil
        case .unary(_, let operand, _):
            return numericOfFactor(operand, data: data)
        case .binary(_, let lhs, let rhs):
            return numericOfFactor(lhs, data: data) ?? numericOfFactor(rhs, data: data)
        case .parenthesized(let inner, _):
            return numericOfFactor(inner, data: data)
        case .call(let name, let arguments, _):
            if name == "as.numeric", let argument = arguments.first?.value {
                switch argument {
                case .call(let inner, _, _) where inner == "factor" || inner == "as.factor":
                    return expression.label
                case .column(let column, _):
                    if case .categorical? = data.columns[column] { return expression.label }
                default:
                    break
                }
            }
            return arguments.lazy.compactMap { numericOfFactor($0.value, data: data) }.first
        }
    }
}

/// Building a ``SavedModel`` from a fit.
extension SavedModel {
    /// The model of `result`, fitted by `model` to `data` (read from the file at `dataPath`),
    /// with the prior-weights column `weights` if any.
    /// - Throws: ``InputError`` when the data file cannot be read again for its fingerprint.
    public init(model: LinearMixedModel, result: FitResult, data: DataTable, dataPath: String, weights: String? = nil) throws {
        self.weights = weights
        let frame = model.frame
        let formula = frame.formula
        // Prediction reads plain columns: a computed variable or an offset would be lost.
        let computed = formula.expressions.keys.filter { formula.columnsUsed.contains($0) == false }.sorted()
        if !computed.isEmpty || !formula.offsets.isEmpty {
            let names = (computed + formula.offsets.filter { !computed.contains($0) }).map { "'\($0)'" }.joined(separator: ", ")
            throw InputError("the model file cannot record the formula's function calls and offset() terms yet (\(names)); compute them as columns of the data file to save the model")
        }
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
        jointCovariance = JointCovariance.packed(frame: frame, parameters: model.parameters, theta: result.theta,
                                                 sigmaSquared: result.sigma * result.sigma)

        let modelVariables = formula.modelVariables
        let fixedVariables = Set(formula.fixed.terms.flatMap(\.variables))
        let effectVariables = Set(formula.random.flatMap { $0.effects.terms.flatMap(\.variables) })
        let grouping = formula.groupingColumns
        columns = formula.columnsUsed.map { name in
            var roles: [Column.Role] = []
            if name == formula.response { roles.append(.response) }
            if fixedVariables.contains(name) { roles.append(.fixed) }
            if effectVariables.contains(name) { roles.append(.randomEffect) }
            if grouping.contains(name) { roles.append(.grouping) }
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
            return Column(name: name, roles: roles, isCategorical: true, levels: levels, contrasts: "treatment")
        }

        let (modes, sds) = try Self.conditionalModes(of: result, frame: frame)
        let randomTerms = frame.randomTerms

        // Each lme4-ordered term's position among the formula's random terms.
        let design = try PredictionDesign(formula: formula, columns: columns)
        var taken = Set<Int>()
        terms = try randomTerms.enumerated().map { j, term in
            guard let index = formula.random.indices.first(where: { i in
                !taken.contains(i) && formula.random[i].span == term.span
                    && formula.random[i].groupingName == term.groupingName
                    && design.effectNames(ofTerm: i) == term.effectNames
            }) else {
                throw InputError("internal error: random term '\(term.groupingName)' not found in the formula")
            }
            taken.insert(index)
            return Term(formulaIndex: index, groupingName: term.groupingName, effectNames: term.effectNames,
                        levels: term.levels, modes: modes[j], conditionalSD: sds[j])
        }
    }

    /// b̂ and the conditional SDs of each of the frame's random terms (level-major, as
    /// ``Term/modes``), from the result's rows (ordered by grouping factor, then term, effect
    /// and level, as LinearMixedModel lists them).
    static func conditionalModes(of result: FitResult, frame: ModelFrame) throws -> (modes: [[Double]], sds: [[Double]]) {
        let randomTerms = frame.randomTerms
        var modes = randomTerms.map { [Double](repeating: 0, count: $0.columnCount) }
        var sds = modes
        var next = 0
        var done = Set<String>()
        for term in randomTerms where done.insert(term.groupingName).inserted {
            for (j, other) in randomTerms.enumerated() where other.groupingName == term.groupingName {
                let k = other.effectCount
                for r in 0..<k {
                    for l in 0..<other.levelCount {
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
}

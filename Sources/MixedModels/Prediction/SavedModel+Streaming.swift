/// Building a ``SavedModel`` from a streaming fit (`lmm fit … --method adam`).
extension SavedModel {
    /// The model of `result`, fitted by `model` (streaming Adam with `options`) to the data file
    /// at `dataPath` (the CSV or `.lmmbin` file the user gave; its fingerprint is recorded).
    ///
    /// What `lmm predict` needs to build `x` and `z` for new rows comes from the streaming
    /// design: the columns' kinds, the levels of categorical model variables (treatment
    /// contrasts, the only coding adam fits), and the row-wise function calls with the
    /// training centre and scale of each `scale()`. The modes are those of the levels with
    /// rows; the conditional SDs are adam's per-level blocks. The file lists what is
    /// approximate (``approximations``) and holds no joint covariance of b̂ and β̂, so that
    /// conditional prediction intervals are refused; Cov(β̂) is adam's (population-level
    /// intervals use it).
    /// - Throws: ``InputError`` when the data file cannot be read again for its fingerprint.
    public init(streaming model: StreamingMixedModel, options: AdamOptions, result: FitResult, dataPath: String) throws {
        let design = model.design
        let formula = model.formula
        let print = try FileHash.fingerprint(path: dataPath)
        self.formula = formula.text
        criterion = result.criterion
        algorithm = result.method.name
        nobs = result.nobs
        data = DataFingerprint(file: FileIO.fileName(dataPath), rows: model.rowCount, bytes: print.bytes, hash: print.hash)
        fixedEffectNames = result.fixedEffectNames
        beta = result.fixedEffects
        droppedFixedEffects = model.droppedFixedEffects
        theta = result.theta
        sigma = result.sigma
        weights = nil
        offset = nil
        contrasts = .treatment
        fixedEffectCovariance = result.fixedEffectCovariance.values
        jointCovariance = nil
        levelCovariance = nil
        transformations = formula.expressions.keys.sorted().compactMap { label -> Transformation? in
            guard label != formula.response else { return nil }
            guard let statistics = design.expressions.scaleRecord(label) else {
                return Transformation(variable: label, kind: .numeric)
            }
            return Transformation(variable: label, kind: .scale, center: statistics.center, scale: statistics.scale)
        }

        let reader = model.reader
        columns = formula.columnsUsed.map { name in
            let roles = Column.Role.roles(of: name, in: formula)
            let isCategorical = reader.columnIndex(name).map { reader.columns[$0].kind == .factor } ?? false
            guard isCategorical, let source = design.variables[name], source.levelOfCode != nil else {
                return Column(name: name, roles: roles, isCategorical: isCategorical, levels: nil, contrasts: nil)
            }
            return Column(name: name, roles: roles, isCategorical: true, levels: source.levels,
                          contrasts: ContrastCoding.treatment.rawValue)
        }

        // The levels with rows, per term in lme4's order (the result's random effects list those).
        let described = zip(design.terms, model.states).map { term, state in
            (groupingName: term.groupingName, effectNames: term.effects.names,
             levels: (0..<state.slotCount).filter { state.count(state.record($0)) > 0 }.map { term.grouping.labels[$0] })
        }
        let (modes, sds) = try Self.conditionalModes(of: result, terms: described)
        let predictionDesign = try PredictionDesign(formula: formula, columns: columns, transformations: transformations,
                                                    contrasts: .treatment)
        var taken = Set<Int>()
        terms = try described.enumerated().map { j, term in
            let index = try predictionDesign.randomTermIndex(span: design.terms[j].span, groupingName: term.groupingName,
                                                             effectNames: term.effectNames, taken: &taken)
            return Term(formulaIndex: index, groupingName: term.groupingName, effectNames: term.effectNames,
                        levels: term.levels, modes: modes[j], conditionalSD: sds[j])
        }

        let penalties: String
        switch options.penalties {
        case .given: penalties = "given (--variances), not estimated"
        case .learned(let form): penalties = "learned between epochs by MacKay's updates (\(FitMethod.mackay(form).name) form), not at the \(criterion.rawValue) optimum"
        }
        approximations = [
            Approximation(quantity: "theta", how: "the variance components were \(penalties)"),
            Approximation(quantity: "modes", how: "β and b minimize the penalized least-squares objective by streaming minibatch Adam, stopped at the tolerance or the epoch limit"),
            Approximation(quantity: "condSD", how: "per-level diagonal blocks σ²(Zₗ'Zₗ + σ²V⁻¹)⁻¹, conditional on β and the other factors' effects (exact for a single grouping factor)"),
        ]
        if model.states.count > 1 {
            approximations.append(Approximation(quantity: "fixef.vcov", how: "the terms' contributions to Var(β̂), each exact for its term alone, added (exact for balanced crossed designs)"))
        }
        approximations.append(Approximation(quantity: "joint_covariance", how: "not computed: the covariance of b̂ with β̂ is not available from the streaming fit, so conditional prediction intervals are not available"))
    }
}

extension StreamingExpressions {
    /// The training centre (nil when not centring) and scale (nil when not scaling) of the
    /// `scale()` call `label`; nil when `label` is not a `scale()` call.
    func scaleRecord(_ label: String) -> (center: Double?, scale: Double?)? {
        guard let statistics = scaleStatistics[label], case .call(_, let arguments, _)? = expressions[label] else { return nil }
        let center = Self.logicalArgument(arguments, "center", 1) ?? true
        let scale = Self.logicalArgument(arguments, "scale", 2) ?? true
        return (center ? statistics.center : nil, scale ? statistics.scale : nil)
    }
}

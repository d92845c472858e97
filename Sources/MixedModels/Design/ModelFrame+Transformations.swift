import Foundation

/// The parts of a model frame that go beyond columns: evaluated function calls, offsets,
/// prior weights, and the record of each variable's transformation.
extension ModelFrame {
    /// The formula's variables in order of first appearance: response, fixed terms, effects
    /// of random terms, offsets.
    static func variablesInOrder(_ formula: Formula) -> [String] {
        var seen = Set<String>()
        var labels: [String] = []
        func add(_ label: String) { if seen.insert(label).inserted { labels.append(label) } }
        add(formula.response)
        for term in formula.fixed.terms { term.variables.forEach(add) }
        for random in formula.random { for term in random.effects.terms { term.variables.forEach(add) } }
        formula.offsets.forEach(add)
        return labels
    }

    /// A data column as a formula variable.
    static func evaluated(_ column: Column) -> EvaluatedVariable {
        switch column {
        case .numeric(let values): return .numeric(values)
        case .categorical(let factor): return .factor(factor)
        }
    }

    /// The sum of the formula's `offset()` terms and of the offset column over the kept rows.
    static func offset(_ formula: Formula, _ options: ModelOptions, _ data: DataTable,
                       _ evaluated: [String: EvaluatedVariable], _ keep: [Int]) throws -> [Double]? {
        if formula.offsets.isEmpty && options.offset == nil { return nil }
        var total = [Double](repeating: 0, count: keep.count)
        for label in formula.offsets {
            guard case .numeric(let values)? = evaluated[label] else {
                throw FormulaError("an offset must be numeric", formula: formula.text,
                                   span: formula.expressions[label]?.span ?? 0..<0)
            }
            for (r, i) in keep.enumerated() { total[r] += values[i] }
        }
        if let name = options.offset {
            guard case .numeric(let values) = data.columns[name]! else {
                throw InputError("the offset column '\(name)' must be numeric, but it is categorical", file: data.source)
            }
            for (r, i) in keep.enumerated() { total[r] += values[i] }
        }
        if let r = total.firstIndex(where: { !$0.isFinite }) {
            throw InputError("the offset is not finite (\(total[r])) in data row \(keep[r] + 1)", file: data.source)
        }
        return total
    }

    /// The prior weights of the kept rows, checked: lme4 refuses negative weights
    /// (`all(weights >= 0) is not TRUE`) and fits garbage with a zero weight (its criterion is
    /// infinite for every θ), so both are errors here.
    static func weights(_ options: ModelOptions, _ data: DataTable, _ keep: [Int]) throws -> [Double]? {
        guard let name = options.weights else { return nil }
        guard case .numeric(let values) = data.columns[name]! else {
            throw InputError("the weights column '\(name)' must be numeric, but it is categorical", file: data.source)
        }
        let weights = keep.map { values[$0] }
        if let r = weights.firstIndex(where: { !($0 > 0) || !$0.isFinite }) {
            let w = weights[r]
            let why = w < 0 ? "negative (lme4: all(weights >= 0) is not TRUE)"
                : w == 0 ? "zero (lme4's likelihood is then -Inf for every variance; drop the row instead)"
                : "not finite"
            throw InputError("weight \(RFormat.number(w)) in column '\(name)', data row \(keep[r] + 1), is \(why); prior weights must be positive",
                             file: data.source)
        }
        return weights
    }

    /// Multiplies row i of `matrix` by `factors[i]`.
    static func scaleRows(_ matrix: inout Matrix, by factors: [Double]) {
        let n = matrix.rows
        for j in 0..<matrix.columns {
            for i in 0..<n { matrix.values[j * n + i] *= factors[i] }
        }
    }

    /// The `transformations` report: one record per variable that is a function call or a
    /// factor (its levels after unused ones are dropped, and the contrast coding), plus the
    /// weights and offset columns.
    static func transformations(_ labels: [String], _ formula: Formula, _ details: [String: JSONValue],
                                _ variables: [String: ModelMatrixBuilder.Variable], _ options: ModelOptions) -> [JSONValue] {
        var records: [JSONValue] = []
        for label in labels {
            let role = label == formula.response ? "response" : formula.offsets.contains(label) ? "offset" : "term"
            var members: [(String, JSONValue)]
            if case .object(let computed)? = details[label] {
                members = computed
            } else if case .factor? = variables[label] {
                members = [("variable", .string(label)), ("type", .string("factor"))]
            } else {
                continue
            }
            members.insert(("role", .string(role)), at: 1)
            if case .factor(_, let levels)? = variables[label] {
                members.removeAll { $0.0 == "type" }
                members.append(("type", .string("factor")))
                members.append(("levels", .array(levels.map(JSONValue.string))))
                members.append(("contrasts", .string(options.contrasts.rName)))
            }
            records.append(.object(members))
        }
        if let weights = options.weights {
            records.append(.object([("variable", .string(weights)), ("role", .string("weights")), ("type", .string("column"))]))
        }
        if let offset = options.offset {
            records.append(.object([("variable", .string(offset)), ("role", .string("offset")), ("type", .string("column"))]))
        }
        return records
    }
}

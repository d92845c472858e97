/// The model matrices of a saved model on rows of new data: `X` and each random term's effects,
/// built by ``ModelMatrixBuilder`` (R's `model.matrix` rules) with the factor levels and
/// contrasts of the fit, so that a new-data chunk gets exactly the fit's columns whatever
/// levels it happens to hold.
struct PredictionDesign {
    let formula: Formula
    /// Levels of each categorical model variable (a column or a `factor()` call; the fit's, in R's order).
    let levels: [String: [String]]
    /// Column-name suffixes of the model variables that are several columns (`poly(x, 2)`: `1`,
    /// `2`) or one column named by the call (`scale(x)`: the empty suffix).
    let suffixes: [String: [String]]
    /// Every model variable (fixed terms and random terms' effects).
    let variables: Set<String>
    let contrasts: ContrastCoding

    /// - Throws: ``InputError`` when a model variable has no type or a categorical one no levels.
    init(formula: Formula, columns: [SavedModel.Column], transformations: [SavedModel.Transformation],
         contrasts: ContrastCoding) throws {
        self.formula = formula
        self.contrasts = contrasts
        variables = formula.modelVariables
        var levels: [String: [String]] = [:]
        var suffixes: [String: [String]] = [:]
        for column in columns where variables.contains(column.name) && column.isCategorical {
            guard let list = column.levels, !list.isEmpty else {
                throw InputError("categorical model variable '\(column.name)' has no levels")
            }
            levels[column.name] = list
        }
        let calls = Dictionary(transformations.map { ($0.variable, $0) }, uniquingKeysWith: { first, _ in first })
        for name in variables where formula.expressions[name] != nil {
            guard let call = calls[name] else {
                throw InputError("the formula's variable '\(name)' has no entry in the model file's transformations")
            }
            switch call.kind {
            case .factor:
                guard let list = call.levels, !list.isEmpty else { throw InputError("factor '\(name)' has no levels") }
                levels[name] = list
            case .scale:
                suffixes[name] = [""]
            case .poly:
                suffixes[name] = (1...max(call.degree ?? 1, 1)).map(String.init)
            case .numeric:
                break
            }
        }
        for name in variables where formula.expressions[name] == nil && !columns.contains(where: { $0.name == name }) {
            throw InputError("the formula's variable '\(name)' is not among the columns")
        }
        self.levels = levels
        self.suffixes = suffixes
    }

    /// A builder over `rowCount` rows: numbers of the numeric variables, level indices (into
    /// ``levels``) of the categorical ones, columns of the several-column ones (``suffixes``).
    func builder(numbers: [String: [Double]], codes: [String: [Int32]], matrices: [String: [[Double]]] = [:],
                 rowCount: Int) -> ModelMatrixBuilder {
        var resolved: [String: ModelMatrixBuilder.Variable] = [:]
        for name in variables {
            if let list = levels[name] {
                resolved[name] = .factor(codes: codes[name] ?? [], levels: list)
            } else if let names = suffixes[name] {
                resolved[name] = .matrix(matrices[name] ?? names.map { _ in [] }, suffixes: names)
            } else {
                resolved[name] = .numeric(numbers[name] ?? [])
            }
        }
        var builder = ModelMatrixBuilder(variables: resolved, rowCount: rowCount)
        builder.contrasts = contrasts
        return builder
    }

    private var empty: ModelMatrixBuilder { builder(numbers: [:], codes: [:], rowCount: 0) }

    /// Names of the columns of the full `X` (before aliased columns are dropped).
    var fixedNames: [String] { empty.build(formula.fixed).names }

    /// Names of the effects of the formula's random term `index`.
    func effectNames(ofTerm index: Int) -> [String] { empty.build(formula.random[index].effects).names }

    /// The index among the formula's random terms of the fitted term at `span` with this grouping
    /// and these effects, not one of `taken` (a formula may repeat a grouping); it joins `taken`.
    func randomTermIndex(span: Range<Int>, groupingName: String, effectNames: [String], taken: inout Set<Int>) throws -> Int {
        guard let index = formula.random.indices.first(where: { i in
            !taken.contains(i) && formula.random[i].span == span && formula.random[i].groupingName == groupingName
                && self.effectNames(ofTerm: i) == effectNames
        }) else {
            throw InputError("internal error: random term '\(groupingName)' not found in the formula")
        }
        taken.insert(index)
        return index
    }
}

/// The model matrices of a saved model on rows of new data: `X` and each random term's effects,
/// built by ``ModelMatrixBuilder`` (R's `model.matrix` rules) with the factor levels of the fit,
/// so that a new-data chunk gets exactly the fit's columns whatever levels it happens to hold.
struct PredictionDesign {
    let formula: Formula
    /// Levels of each categorical model variable (the fit's, in R's order).
    let levels: [String: [String]]
    /// Every model variable (fixed terms and random terms' effects).
    let variables: Set<String>

    /// - Throws: ``InputError`` when a model variable has no type or a categorical one no levels.
    init(formula: Formula, columns: [SavedModel.Column]) throws {
        self.formula = formula
        variables = formula.modelVariables
        var levels: [String: [String]] = [:]
        for column in columns where variables.contains(column.name) && column.isCategorical {
            guard let list = column.levels, !list.isEmpty else {
                throw InputError("categorical model variable '\(column.name)' has no levels")
            }
            levels[column.name] = list
        }
        for name in variables where !columns.contains(where: { $0.name == name }) {
            throw InputError("the formula's variable '\(name)' is not among the columns")
        }
        self.levels = levels
    }

    /// A builder over `rowCount` rows: numbers of the numeric variables, level indices (into
    /// ``levels``) of the categorical ones.
    func builder(numbers: [String: [Double]], codes: [String: [Int32]], rowCount: Int) -> ModelMatrixBuilder {
        var resolved: [String: ModelMatrixBuilder.Variable] = [:]
        for name in variables {
            if let list = levels[name] {
                resolved[name] = .factor(codes: codes[name] ?? [], levels: list)
            } else {
                resolved[name] = .numeric(numbers[name] ?? [])
            }
        }
        return ModelMatrixBuilder(variables: resolved, rowCount: rowCount)
    }

    private var empty: ModelMatrixBuilder { builder(numbers: [:], codes: [:], rowCount: 0) }

    /// Names of the columns of the full `X` (before aliased columns are dropped).
    var fixedNames: [String] { empty.build(formula.fixed).names }

    /// Names of the effects of the formula's random term `index`.
    func effectNames(ofTerm index: Int) -> [String] { empty.build(formula.random[index].effects).names }
}

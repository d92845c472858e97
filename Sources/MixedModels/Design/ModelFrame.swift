import Foundation

/// The data of a model, resolved against its formula (R's `model.frame` plus lme4's
/// `mkReTrms`): the response `y`, the fixed-effects matrix `X` and the random-effects terms,
/// over the rows with no missing value in a column the formula uses.
public struct ModelFrame: Sendable {
    public let formula: Formula
    /// Number of observations used.
    public let n: Int
    /// The response.
    public internal(set) var y: [Double]
    /// The fixed-effects model matrix, n × p (full column rank).
    public internal(set) var X: Matrix
    /// Names of the columns of `X` (`(Intercept)`, `Days`, `serviceB`).
    public let fixedEffectNames: [String]
    /// Columns of the full model matrix dropped because they were linearly dependent on
    /// earlier ones (lme4: "fixed-effect model matrix is rank deficient").
    public let droppedFixedEffects: [String]
    /// The random-effects terms, ordered as lme4 orders them (by decreasing number of levels).
    public internal(set) var randomTerms: [RandomEffectsTerm]
    /// The index in `formula.random` of each of `randomTerms`.
    var randomTermSources: [Int]
    /// Rows dropped because a column the formula uses was missing (na.omit).
    public internal(set) var droppedRowCount: Int
    /// The data table's row (0-based) of each observation: R keeps these numbers after na.omit.
    public internal(set) var dataRows: [Int]

    /// The transformation of each variable that is not a plain numeric column (function
    /// calls, factor levels and contrasts, `scale`'s centre and scale, `poly`'s coefficients),
    /// in order of first appearance: what prediction on new data needs to rebuild the design.
    package let transformations: [JSONValue]
    /// The prior weights of the rows used (nil without weights). `y`, `X` and the random
    /// terms' effects are already multiplied by √wᵢ, so the fit is ordinary least squares on
    /// them; the log-likelihood then gains ½Σ log wᵢ (lme4's `ldW`).
    public let weights: [Double]?
    /// Σ log wᵢ over the rows used (0 without weights).
    public internal(set) var logWeightSum: Double
    /// The offset of each row used (the sum of the formula's `offset()` terms and of the
    /// offset column), already subtracted from `y`; nil without an offset.
    public let offset: [Double]?

    /// Resolves `formula` against `data`, checking what lme4 checks.
    /// - Throws: ``FormulaError`` (pointing into the formula) for an unknown column, a
    ///   categorical response, a grouping factor with one level or with as many levels as
    ///   observations, or more random effects than observations; ``InputError`` for a bad
    ///   weight or offset column.
    public init(formula: Formula, data: DataTable, options: ModelOptions = ModelOptions()) throws {
        self.formula = formula
        let checks = DataChecks(formula: formula)
        try checks.columnsExist(available: data.columnNames, isLoaded: { data.columns[$0] != nil }, source: data.source)
        for name in options.columns where data.columns[name] == nil {
            throw InputError("column '\(name)' (\(name == options.weights ? "--weights" : "--offset")) is not in the data; the columns are: "
                             + data.columnNames.joined(separator: ", "), file: data.source)
        }

        if data.rowCount == 0 {
            throw InputError("no data rows: the file has a header only (expected rows of values below it)", file: data.source)
        }
        // na.omit over every column the formula (and the options) use.
        let used = formula.columnsUsed + options.columns
        var missing = [Bool](repeating: false, count: data.rowCount)
        for name in used {
            switch data.columns[name]! {
            case .numeric(let values): for i in values.indices where values[i].isNaN { missing[i] = true }
            case .categorical(let factor): for i in factor.codes.indices where factor.codes[i] < 0 { missing[i] = true }
            }
        }
        // An infinite number in a complete row is an error (R: "NA/NaN/Inf in 'x'"), before any
        // function turns it into another infinity.
        try checks.finite(columns: used, of: data, skipping: missing)

        // R evaluates the formula's functions over every row, then drops incomplete rows.
        let labels = Self.variablesInOrder(formula)
        let evaluator = FormulaEvaluator(data: data, formula: formula.text)
        var evaluated: [String: EvaluatedVariable] = [:]
        var details: [String: JSONValue] = [:]
        for label in labels {
            guard let expression = formula.expressions[label] else { continue }
            (evaluated[label], details[label]) = try evaluator.evaluate(expression)
        }
        for value in evaluated.values {
            switch value {
            case .numeric(let values): for i in values.indices where values[i].isNaN { missing[i] = true }
            case .factor(let factor): for i in factor.codes.indices where factor.codes[i] < 0 { missing[i] = true }
            case .matrix(let columns, _): for column in columns { for i in column.indices where column[i].isNaN { missing[i] = true } }
            }
        }
        var keep: [Int] = []
        keep.reserveCapacity(data.rowCount)
        for i in 0..<data.rowCount where !missing[i] { keep.append(i) }
        droppedRowCount = data.rowCount - keep.count
        dataRows = keep
        n = keep.count
        if !options.isRowShare { try checks.rowsRemain(n) }

        let response: [Double]
        switch evaluated[formula.response] ?? Self.evaluated(data.columns[formula.response]!) {
        case .numeric(let values): response = values
        case .matrix(let columns, _) where columns.count == 1: response = columns[0]
        default:
            throw checks.categoricalResponse(firstText: data.firstTextFields[formula.response], source: data.source,
                                             column: data.columnNames.firstIndex(of: formula.response).map { $0 + 1 })
        }
        let responseKept = keep.map { response[$0] }
        if options.isRowShare {
            try checks.response(constant: nil, firstNonFinite: responseKept.first { !$0.isFinite })
        } else {
            try checks.response(responseKept)
        }
        offset = try Self.offset(formula, options, data, evaluated, keep)
        var y = responseKept
        if let offset { for i in 0..<n { y[i] -= offset[i] } }
        weights = try Self.weights(options, data, keep)
        logWeightSum = weights?.reduce(0) { $0 + Foundation.log($1) } ?? 0
        let rootWeights = weights?.map { $0.squareRoot() }
        if let rootWeights { for i in 0..<n { y[i] *= rootWeights[i] } }
        self.y = y

        // Variables of the fixed part and of the effects of random terms, over kept rows.
        var variables: [String: ModelMatrixBuilder.Variable] = [:]
        for name in formula.modelVariables {
            if let value = evaluated[name] {
                variables[name] = try Self.resolve(name, value, keep, formula, checks)
            } else {
                variables[name] = try Self.resolve(name, Self.evaluated(data.columns[name]!), keep, formula, checks)
            }
        }
        var builder = ModelMatrixBuilder(variables: variables, rowCount: n)
        builder.contrasts = options.contrasts
        transformations = Self.transformations(labels, formula, details, variables, options)

        let (fullX, fullNames) = builder.build(formula.fixed)
        let kept = RankDeficiency.independentColumns(of: fullX)
        var weightedX: Matrix
        if kept.count == fullX.columns {
            weightedX = fullX
            fixedEffectNames = fullNames
            droppedFixedEffects = []
        } else {
            var values: [Double] = []
            values.reserveCapacity(n * kept.count)
            for j in kept { values.append(contentsOf: fullX.values[(j * n)..<((j + 1) * n)]) }
            weightedX = Matrix(rows: n, columns: kept.count, values: values)
            fixedEffectNames = kept.map { fullNames[$0] }
            let keptSet = Set(kept)
            droppedFixedEffects = fullNames.indices.filter { !keptSet.contains($0) }.map { fullNames[$0] }
        }
        if let rootWeights { Self.scaleRows(&weightedX, by: rootWeights) }
        X = weightedX

        if !options.isRowShare { try checks.observations(n, fixedEffects: X.columns) }
        try checks.hasRandomTerms()

        var terms: [RandomEffectsTerm] = []
        for random in formula.random {
            let (codes, levels) = try Self.groupingFactor(random, data, keep, formula)
            var (effects, effectNames) = builder.build(random.effects)
            if let rootWeights { Self.scaleRows(&effects, by: rootWeights) }
            try checks.termHasEffects(effectNames.count, span: random.span)
            terms.append(RandomEffectsTerm(
                groupingName: random.groupingName, effectNames: effectNames, levels: levels,
                codes: codes, effects: effects, span: random.span
            ))
        }
        // lme4's `mkReTrms` order (``TermConventions/order(levelCounts:)``).
        let order = TermConventions.order(levelCounts: terms.map(\.levelCount))
        randomTerms = order.map { terms[$0] }
        randomTermSources = order
        for term in randomTerms where !options.isRowShare {
            try checks.identifiable(groupingName: term.groupingName, levels: term.levelCount, effects: term.effectCount,
                                    span: term.span, n: n)
        }
        try checks.magnitudes(y: y, X: X, names: fixedEffectNames)
        try checks.notExactlyFitted(y: y, X: X, terms: randomTerms)
    }

    // MARK: Variables

    private static func resolve(_ name: String, _ value: EvaluatedVariable, _ keep: [Int], _ formula: Formula,
                                _ checks: DataChecks) throws -> ModelMatrixBuilder.Variable {
        switch value {
        case .numeric(let values):
            return .numeric(keep.map { values[$0] })
        case .matrix(let columns, let suffixes):
            return .matrix(columns.map { column in keep.map { column[$0] } }, suffixes: suffixes)
        case .factor(let factor):
            let (codes, levels) = dropUnusedLevels(keep.map { factor.codes[$0] }, factor.levels)
            // A function's variable (factor(x)) is found by its expression's span.
            try checks.contrastLevels(of: name, count: levels.count, span: formula.expressions[name]?.span)
            return .factor(codes: codes, levels: levels)
        }
    }

    /// R's `factor(x)` after subsetting: levels no row uses are dropped, order kept.
    private static func dropUnusedLevels(_ codes: [Int32], _ levels: [String]) -> ([Int32], [String]) {
        var used = [Bool](repeating: false, count: levels.count)
        for code in codes { used[Int(code)] = true }
        if !used.contains(false) { return (codes, levels) }
        var remap = [Int32](repeating: -1, count: levels.count)
        var kept: [String] = []
        for (index, label) in levels.enumerated() where used[index] {
            remap[index] = Int32(kept.count)
            kept.append(label)
        }
        return (codes.map { remap[Int($0)] }, kept)
    }

    /// The grouping factor of a random term: one column, or the interaction `g1:g2` with
    /// levels `l1:l2` (the first factor varying slowest, unused combinations dropped). Only the
    /// combinations that occur are labelled: 200k classes × 10k schools would be 2·10⁹ labels.
    private static func groupingFactor(_ term: RandomTerm, _ data: DataTable, _ keep: [Int], _ formula: Formula) throws -> ([Int32], [String]) {
        let factors = term.grouping.map { Self.asFactor(data.columns[$0]!) }
        var codes = keep.map { Int64(factors[0].codes[$0]) }
        var levelCount = Int64(factors[0].levels.count)
        for factor in factors.dropFirst() {
            let inner = Int64(factor.levels.count)
            for (r, i) in keep.enumerated() { codes[r] = codes[r] * inner + Int64(factor.codes[i]) }
            levelCount *= inner
        }
        if factors.count == 1 {
            let (used, levels) = dropUnusedLevels(codes.map { Int32($0) }, factors[0].levels)
            return (used, levels)
        }
        // The combinations that occur, in code order (which is the lexicographic level order).
        let distinct: [Int64]
        let newCode: (Int64) -> Int32
        if levelCount <= Int64(max(4 * codes.count, 1 << 22)) {
            var used = [Int32](repeating: -1, count: Int(levelCount))
            for code in codes { used[Int(code)] = 0 }
            var found: [Int64] = []
            for index in 0..<Int(levelCount) where used[index] == 0 {
                used[index] = Int32(found.count)
                found.append(Int64(index))
            }
            distinct = found
            newCode = { used[Int($0)] }
        } else {
            distinct = Array(Set(codes)).sorted()
            var index: [Int64: Int32] = [:]
            index.reserveCapacity(distinct.count)
            for (position, code) in distinct.enumerated() { index[code] = Int32(position) }
            newCode = { index[$0]! }
        }
        let levels = distinct.map { combined -> String in
            var rest = combined
            var parts = [String](repeating: "", count: factors.count)
            for k in factors.indices.reversed() {
                let count = Int64(factors[k].levels.count)
                parts[k] = factors[k].levels[Int(rest % count)]
                rest /= count
            }
            return parts.joined(separator: ":")
        }
        return (codes.map(newCode), levels)
    }

    /// A column used as a grouping factor is categorical; a numeric column (data built in
    /// memory) becomes a factor of its distinct values in numeric order, as R's `factor`.
    static func asFactor(_ column: Column) -> Factor {
        switch column {
        case .categorical(let factor):
            return factor
        case .numeric(let values):
            let distinct = Array(Set(values.filter { !$0.isNaN })).sorted()
            var index: [Double: Int32] = [:]
            for (i, v) in distinct.enumerated() { index[v] = Int32(i) }
            return Factor(codes: values.map { $0.isNaN ? -1 : index[$0]! }, levels: distinct.map(RFormat.number))
        }
    }
}

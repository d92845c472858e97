/// The function calls and offsets of a saved model evaluated on a chunk of new data with the
/// training data's parameters, as R's `predict` does through `makepredictcall`: `scale(x)`
/// with the training centre and scale, `poly(x, k)` with the training coefficients, `factor(x)`
/// coded by the training levels; `offset()` terms and the offset column added to the linear
/// predictor.
struct PredictionTransformations {
    let formula: Formula
    let design: PredictionDesign
    /// Labels of the model variables that are calls and that the run needs.
    let calls: [String]
    /// The formula's `offset()` labels.
    let offsets: [String]
    /// The offset column of the fit, if any.
    let offsetColumn: String?
    private let scaleStatistics: [String: ScaleStatistics]
    private let polyCoefficients: [String: (alpha: [Double], norm2: [Double])]

    /// The calls among `variables` (and every `offset()` term) of `model`.
    init(model: SavedModel, formula: Formula, design: PredictionDesign, variables: [String]) {
        self.formula = formula
        self.design = design
        calls = variables.filter { formula.expressions[$0] != nil && design.variables.contains($0) }
        offsets = formula.offsets
        offsetColumn = model.offset
        var scales: [String: ScaleStatistics] = [:]
        var polys: [String: (alpha: [Double], norm2: [Double])] = [:]
        for record in model.transformations {
            switch record.kind {
            case .scale:
                scales[record.variable] = ScaleStatistics(center: record.center ?? 0, scale: record.scale ?? 1)
            case .poly:
                if record.raw != true, let alpha = record.alpha, let norm2 = record.norm2 { polys[record.variable] = (alpha, norm2) }
            case .factor, .numeric:
                break
            }
        }
        scaleStatistics = scales
        polyCoefficients = polys
    }

    /// Whether anything needs evaluating.
    var isEmpty: Bool { calls.isEmpty && offsets.isEmpty && offsetColumn == nil }

    /// The data columns the calls and offsets read.
    var columns: [String] {
        var seen = Set<String>()
        let names = (calls + offsets).flatMap { label in formula.expressions[label]?.columnReferences.map(\.name) ?? [label] }
            + [offsetColumn].compactMap { $0 }
        return names.filter { seen.insert($0).inserted }
    }

    /// The calls' values over a chunk, ready for ``PredictionDesign/builder(numbers:codes:matrices:rowCount:)``.
    struct Values {
        var numbers: [String: [Double]] = [:]
        var codes: [String: [Int32]] = [:]
        var matrices: [String: [[Double]]] = [:]
        /// The sum of the offsets of each row (nil without offsets).
        var offset: [Double]?
    }

    /// Evaluates the calls on `chunk` (the chunk's rows of ``columns``, NaN or code -1 where
    /// missing). `rowNumber(i)` is the data row (from 1) of chunk row i, `line(i)` its line.
    /// - Throws: ``FormulaError`` for a value a function cannot take (a log of a non-positive
    ///   value, …) naming the data row; ``InputError`` for a `factor()` level the fit did not
    ///   have or a non-finite offset, naming the file and line.
    func evaluate(_ chunk: DataTable, missing: [Bool], rowNumber: @escaping (Int) -> Int, line: (Int) -> Int) throws -> Values {
        var evaluator = FormulaEvaluator(data: chunk, formula: formula.text)
        evaluator.rowNumber = { rowNumber($0) - 1 }
        evaluator.scaleStatistics = scaleStatistics
        evaluator.polyCoefficients = polyCoefficients
        evaluator.allowsMissing = true
        let n = chunk.rowCount
        var values = Values()
        for label in calls {
            let (value, _) = try evaluator.evaluate(formula.expressions[label]!)
            switch value {
            case .numeric(let x):
                if design.suffixes[label] != nil { values.matrices[label] = [x] } else { values.numbers[label] = x }
            case .matrix(let columns, _):
                if design.suffixes[label] != nil { values.matrices[label] = columns } else { values.numbers[label] = columns.first ?? [] }
            case .factor(let factor):
                values.codes[label] = try codes(of: factor, label: label, missing: missing, chunk: chunk, line: line)
            }
        }
        guard !offsets.isEmpty || offsetColumn != nil else { return values }
        var total = [Double](repeating: 0, count: n)
        for label in offsets {
            guard case .numeric(let x) = try evaluator.evaluate(formula.expressions[label]!).0 else {
                throw FormulaError("an offset must be numeric", formula: formula.text, span: formula.expressions[label]!.span)
            }
            for i in 0..<n { total[i] += x[i] }
        }
        if let offsetColumn, case .numeric(let x)? = chunk.columns[offsetColumn] {
            for i in 0..<n { total[i] += x[i] }
        }
        if let i = (0..<n).first(where: { !missing[$0] && !total[$0].isFinite }) {
            throw InputError("the offset is not finite (\(total[i])) in data row \(rowNumber(i))", file: chunk.source, line: line(i))
        }
        values.offset = total
        return values
    }

    /// The training levels' indices of a `factor()` call's values.
    private func codes(of factor: Factor, label: String, missing: [Bool], chunk: DataTable, line: (Int) -> Int) throws -> [Int32] {
        let levels = design.levels[label] ?? []
        let index = Dictionary(levels.enumerated().map { ($1, Int32($0)) }, uniquingKeysWith: { first, _ in first })
        let mapped = factor.levels.map { index[$0] ?? -1 }
        var codes = [Int32](repeating: 0, count: factor.codes.count)
        for i in factor.codes.indices where !missing[i] {
            let code = Int(factor.codes[i])
            guard code >= 0, mapped[code] >= 0 else {
                let shown = levels.count <= 12 ? levels.joined(separator: ", ") : levels.prefix(12).joined(separator: ", ") + ", …"
                let value = code >= 0 ? factor.levels[code] : "NA"
                throw InputError("level '\(value)' of '\(label)' is not among the model's levels (\(shown)); a fixed effect cannot be predicted for it",
                                 file: chunk.source, line: line(i))
            }
            codes[i] = mapped[code]
        }
        return codes
    }
}

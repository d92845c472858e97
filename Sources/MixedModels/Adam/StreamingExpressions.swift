/// Function calls of a formula evaluated chunk by chunk for the streaming fitter: functions of
/// numeric columns that need nothing but the row itself (`log`, `log2`, `log10`, `log1p`,
/// `exp`, `sqrt`, `abs`, `I(…)` arithmetic, `as.numeric`), and `scale`, whose centre and scale
/// come from one pass over the file (``computeScaleStatistics(_:)``). `poly` needs a QR of the
/// whole column and `factor` its levels, so they are refused with a message rather than
/// computed from one chunk.
struct StreamingExpressions: Sendable {
    /// The calls, by label, and the file column of each column they read.
    let expressions: [String: FormulaExpression]
    let columnIndex: [String: Int]
    let formula: String
    /// Centre and scale of each `scale()` call, over every row of the file where its argument is present.
    private(set) var scaleStatistics: [String: ScaleStatistics] = [:]

    init(expressions: [String: FormulaExpression], columnIndex: [String: Int], formula: String) {
        self.expressions = expressions
        self.columnIndex = columnIndex
        self.formula = formula
    }

    static let streamable: Set<String> = ["log", "log2", "log10", "log1p", "exp", "sqrt", "abs", "I", "as.numeric", "scale"]

    /// One pass over the file: the mean and standard deviation of each `scale()` argument.
    mutating func computeScaleStatistics(_ reader: LMMBinaryReader) throws {
        let calls = expressions.filter { $0.value.functionName == "scale" }
        if calls.isEmpty { return }
        var moments: [String: ScaleStatistics.Moments] = [:]
        var chunk = LMMBinaryChunk()
        for c in 0..<reader.chunkCount {
            try reader.readChunk(c, into: &chunk)
            for (label, call) in calls {
                guard case .call(_, let arguments, _) = call else { continue }
                for value in try values(of: arguments[0].value, chunk, rows: nil) where !value.isNaN {
                    moments[label, default: .init()].add(value)
                }
            }
        }
        for (label, call) in calls {
            guard case .call(_, let arguments, _) = call else { continue }
            let center = Self.logicalArgument(arguments, "center", 1) ?? true
            let scale = Self.logicalArgument(arguments, "scale", 2) ?? true
            scaleStatistics[label] = (moments[label] ?? .init()).statistics(center: center, scale: scale)
        }
    }

    static func logicalArgument(_ arguments: [FormulaExpression.Argument], _ name: String, _ position: Int) -> Bool? {
        let argument = arguments.first { $0.name == name }
            ?? (arguments.count > position && arguments[position].name == nil ? arguments[position] : nil)
        if case .logical(let value, _)? = argument?.value { return value }
        return nil
    }

    /// Checks that every call of `formula` can be streamed.
    /// - Throws: ``FormulaError`` at the first call that cannot, saying why.
    static func check(_ formula: Formula, numericColumns: Set<String>) throws {
        for expression in formula.expressions.values.sorted(by: { $0.span.lowerBound < $1.span.lowerBound }) {
            try check(expression, formula)
            for (name, span) in expression.columnReferences where !numericColumns.contains(name) {
                throw FormulaError("--method adam evaluates functions of numeric columns only; '\(name)' is categorical",
                                   formula: formula.text, span: span)
            }
        }
    }

    private static func check(_ expression: FormulaExpression, _ formula: Formula) throws {
        switch expression {
        case .column, .number, .logical: return
        case .unary(_, let operand, _): try check(operand, formula)
        case .binary(_, let lhs, let rhs):
            try check(lhs, formula)
            try check(rhs, formula)
        case .parenthesized(let inner, _): try check(inner, formula)
        case .call(let name, let arguments, let span):
            guard streamable.contains(name) else {
                let why = name == "poly"
                    ? "poly() needs the QR decomposition of the whole column, which --method adam does not compute"
                    : name == "offset" ? "--method adam does not fit offsets"
                    : "\(name)() needs the levels of the whole column, which --method adam does not collect"
                throw FormulaError(why + "; add the computed column to the data, or use --method exact",
                                   formula: formula.text, span: span)
            }
            for argument in arguments { try check(argument.value, formula) }
        }
    }

    /// The values of the call `label` at the chunk's rows `rows` (all rows when nil).
    /// - Throws: ``FormulaError`` for a value outside the function's domain (with its file row).
    func values(_ label: String, _ chunk: LMMBinaryChunk, rows: [Int32]?) throws -> [Double] {
        try values(of: expressions[label]!, chunk, rows: rows)
    }

    /// The values of `expression` at the chunk's rows `rows` (all rows when nil).
    func values(of expression: FormulaExpression, _ chunk: LMMBinaryChunk, rows: [Int32]?) throws -> [Double] {
        var columns: [String: Column] = [:]
        var count = 0
        for (name, _) in expression.columnReferences where columns[name] == nil {
            let all = chunk.doubles[columnIndex[name]!]
            let values = rows.map { $0.map { all[Int($0)] } } ?? all
            count = values.count
            columns[name] = .numeric(values)
        }
        if columns.isEmpty { count = rows?.count ?? chunk.rowCount }
        var evaluator = FormulaEvaluator(data: DataTable(source: "", columnNames: Array(columns.keys), columns: columns, rowCount: count),
                                         formula: formula)
        let firstRow = chunk.firstRow
        evaluator.rowNumber = { i in Int(rows?[i] ?? Int32(i)) + firstRow }
        evaluator.scaleStatistics = scaleStatistics
        switch try evaluator.evaluate(expression).0 {
        case .numeric(let values): return values
        case .matrix(let columns, _) where columns.count == 1: return columns[0]
        default:
            throw FormulaError("--method adam evaluates numeric functions only", formula: formula, span: expression.span)
        }
    }
}

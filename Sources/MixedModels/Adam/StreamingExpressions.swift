/// Function calls of a formula evaluated chunk by chunk for the streaming fitter. Only
/// functions of numeric columns that need nothing but the row itself are streamed (`log`,
/// `log2`, `log10`, `log1p`, `exp`, `sqrt`, `abs`, `I(…)` arithmetic, `as.numeric`); `scale`
/// and `poly` need statistics of the whole column, and `factor` its levels, so they are
/// refused with a message rather than computed from one chunk.
struct StreamingExpressions: Sendable {
    /// The calls, by label, and the file column of each column they read.
    let expressions: [String: FormulaExpression]
    let columnIndex: [String: Int]
    let formula: String

    static let streamable: Set<String> = ["log", "log2", "log10", "log1p", "exp", "sqrt", "abs", "I", "as.numeric"]

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
                let why = FormulaFunctions.needStatistics.contains(name)
                    ? "\(name)() needs statistics of the whole column (a pass over the data), which --method adam does not make"
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
        let expression = expressions[label]!
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
        guard case .numeric(let values) = try evaluator.evaluate(expression).0 else {
            throw FormulaError("--method adam evaluates numeric functions only", formula: formula, span: expression.span)
        }
        return values
    }
}

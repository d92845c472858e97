import Foundation

/// A formula variable evaluated over the rows of the data, as R's `model.frame` evaluates it:
/// numbers, a factor, or a matrix of columns (`poly(x, 2)`, whose model-matrix columns are
/// the label followed by `1`, `2`).
enum EvaluatedVariable {
    case numeric([Double])
    case factor(Factor)
    case matrix([[Double]], suffixes: [String])
}

/// Evaluates the function calls of a formula over every row of a ``DataTable`` (missing values
/// stay missing). Statistics such as `scale`'s mean and `poly`'s coefficients are computed over
/// all rows where the argument is present, before rows are dropped for missing values in other
/// columns — as R does. What each function computed is kept as JSON (``transformation``), so
/// that the design can be rebuilt on new data.
struct FormulaEvaluator {
    let data: DataTable
    let formula: String
    /// The data row (from 0) of row i of `data`, for messages (a chunk of a file is not the file).
    var rowNumber: (Int) -> Int = { $0 }
    /// `scale()` centres and scales computed beforehand (over a whole file, or at fitting time
    /// when predicting), by the call's label; when absent they are computed from `data`.
    var scaleStatistics: [String: ScaleStatistics] = [:]
    /// `poly()` coefficients of the training data (R's `alpha` and `norm2`) by the call's
    /// label, when predicting: the basis is rebuilt on new x by the recurrence, as R's
    /// `predict` does, rather than orthogonalised again on the new values.
    var polyCoefficients: [String: (alpha: [Double], norm2: [Double])] = [:]
    /// Prediction on new data: a missing value in poly()'s argument gives a missing row
    /// (R's model.frame refuses it when fitting).
    var allowsMissing = false

    init(data: DataTable, formula: String) {
        self.data = data
        self.formula = formula
    }

    /// The value of `expression` and its description for the `transformations` report.
    func evaluate(_ expression: FormulaExpression) throws -> (EvaluatedVariable, JSONValue) {
        var details: [(String, JSONValue)] = [("variable", .string(expression.label))]
        let value = try value(of: expression, details: &details)
        return (value, .object(details))
    }

    // MARK: Values

    private func value(of expression: FormulaExpression, details: inout [(String, JSONValue)]) throws -> EvaluatedVariable {
        switch expression {
        case .call(let name, let arguments, _):
            switch name {
            case "factor", "as.factor":
                let factor: Factor
                switch try value(of: arguments[0].value, details: &details) {
                case .factor(let f): factor = f
                case .numeric(let values): factor = ModelFrame.asFactor(.numeric(values))
                case .matrix: throw error("\(name)() of a matrix", expression.span)
                }
                details.append(("type", .string("factor")))
                return .factor(factor)
            case "scale":
                let x = try numeric(arguments[0].value, in: expression)
                let center = logical(arguments, named: "center", position: 1) ?? true
                let scale = logical(arguments, named: "scale", position: 2) ?? true
                let statistics = scaleStatistics[expression.label] ?? ScaleStatistics(x, center: center, scale: scale)
                guard statistics.scale > 0, statistics.scale.isFinite, statistics.center.isFinite else {
                    throw error("scale() needs at least two values that are not all \(center ? "equal" : "zero") "
                                + "(its scale is \(RFormat.number(statistics.scale)))", expression.span)
                }
                details.append(("type", .string("scale")))
                details.append(("center", center ? .number(statistics.center) : .null))
                details.append(("scale", scale ? .number(statistics.scale) : .null))
                return .matrix([x.map { ($0 - statistics.center) / statistics.scale }], suffixes: [""])
            case "poly":
                let x = try numeric(arguments[0].value, in: expression)
                let degree = Int(number(arguments, named: "degree", position: 1) ?? 1)
                let raw = logical(arguments, named: "raw", position: 2) ?? false
                if !allowsMissing, let row = x.firstIndex(where: { $0.isNaN }) {
                    throw error("poly() cannot have missing values in its argument (data row \(rowNumber(row) + 1))", expression.span)
                }
                let columns: [[Double]]
                if raw {
                    columns = (1...degree).map { k in x.map { Foundation.pow($0, Double(k)) } }
                    details.append(("type", .string("poly")))
                    details.append(("degree", .integer(degree)))
                    details.append(("raw", .bool(true)))
                } else if let coefficients = polyCoefficients[expression.label] {
                    columns = OrthogonalPolynomial.evaluate(x, alpha: coefficients.alpha, norm2: coefficients.norm2)
                    details.append(("type", .string("poly")))
                } else {
                    let distinct = OrthogonalPolynomial.distinctCount(x)
                    guard degree < distinct else {
                        throw error("poly()'s degree must be less than the number of unique points (\(distinct))", expression.span)
                    }
                    let basis = OrthogonalPolynomial(x, degree: degree)
                    columns = basis.columns
                    details.append(("type", .string("poly")))
                    details.append(("degree", .integer(degree)))
                    details.append(("raw", .bool(false)))
                    details.append(("alpha", .array(basis.alpha.map(JSONValue.number))))
                    details.append(("norm2", .array(basis.norm2.map(JSONValue.number))))
                }
                return .matrix(columns, suffixes: (1...degree).map(String.init))
            default:
                let values = try numeric(expression, in: expression)
                if !details.contains(where: { $0.0 == "type" }) { details.append(("type", .string("numeric"))) }
                return .numeric(values)
            }
        case .column(let name, _):
            guard let column = data.columns[name] else { throw error("unknown column '\(name)'", expression.span) }
            switch column {
            case .numeric(let values): return .numeric(values)
            case .categorical(let factor): return .factor(factor)
            }
        default:
            return .numeric(try numeric(expression, in: expression))
        }
    }

    /// The numeric value of `expression` at every row (NaN where an input is missing).
    private func numeric(_ expression: FormulaExpression, in context: FormulaExpression) throws -> [Double] {
        switch expression {
        case .column(let name, let span):
            guard let column = data.columns[name] else { throw error("unknown column '\(name)'", span) }
            switch column {
            case .numeric(let values): return values
            case .categorical:
                throw error("'\(name)' is a categorical column; \(context.functionName.map { "\($0)()" } ?? "arithmetic") needs a numeric one", span)
            }
        case .number(let value, _):
            return [Double](repeating: value, count: data.rowCount)
        case .logical(let value, _):
            return [Double](repeating: value ? 1 : 0, count: data.rowCount)
        case .parenthesized(let inner, _):
            return try numeric(inner, in: context)
        case .unary(let op, let operand, _):
            let values = try numeric(operand, in: context)
            return op == "-" ? values.map { -$0 } : values
        case .binary(let op, let lhs, let rhs):
            let a = try numeric(lhs, in: context), b = try numeric(rhs, in: context)
            var result = [Double](repeating: 0, count: a.count)
            for i in result.indices {
                switch op {
                case "+": result[i] = a[i] + b[i]
                case "-": result[i] = a[i] - b[i]
                case "*": result[i] = a[i] * b[i]
                case "/": result[i] = a[i] / b[i]
                default: result[i] = Foundation.pow(a[i], b[i])
                }
            }
            try requireFinite(result, inputs: [a, b], expression)
            return result
        case .call(let name, let arguments, let span):
            switch name {
            case "I", "offset":
                return try numeric(arguments[0].value, in: expression)
            case "as.numeric":
                var scratch: [(String, JSONValue)] = []
                switch try value(of: arguments[0].value, details: &scratch) {
                case .numeric(let values): return values
                case .factor(let factor): return factor.codes.map { $0 < 0 ? .nan : Double($0 + 1) }
                case .matrix: throw error("as.numeric() of a matrix", span)
                }
            case "log", "log2", "log10", "log1p", "sqrt":
                let x = try numeric(arguments[0].value, in: expression)
                let base = name == "log" && arguments.count == 2 ? number(arguments, named: "base", position: 1) : nil
                let lowest: Double = name == "log1p" ? -1 : 0
                let allowsLowest = name == "sqrt"
                if let row = x.indices.first(where: { !x[$0].isNaN && (x[$0] < lowest || (!allowsLowest && x[$0] == lowest)) }) {
                    let what = name == "sqrt" ? "a negative value" : name == "log1p" ? "a value not above -1" : "a non-positive value"
                    throw error("\(name)() of \(what): \(arguments[0].value.label) is \(RFormat.number(x[row])) in data row \(rowNumber(row) + 1)", span)
                }
                if let base, base <= 0 || base == 1 {
                    throw error("log()'s base must be positive and not 1", span)
                }
                return x.map { v in
                    switch name {
                    case "log": return base.map { Foundation.log(v) / Foundation.log($0) } ?? Foundation.log(v)
                    case "log2": return Foundation.log2(v)
                    case "log10": return Foundation.log10(v)
                    case "log1p": return Foundation.log1p(v)
                    default: return v.squareRoot()
                    }
                }
            case "exp", "abs":
                let x = try numeric(arguments[0].value, in: expression)
                let result = name == "exp" ? x.map { Foundation.exp($0) } : x.map { Swift.abs($0) }
                try requireFinite(result, inputs: [x], expression)
                return result
            default:
                throw error("\(name)() must be a term by itself, not inside another expression", span)
            }
        }
    }

    // MARK: Arguments

    private func logical(_ arguments: [FormulaExpression.Argument], named name: String, position: Int) -> Bool? {
        let argument = arguments.first { $0.name == name }
            ?? (arguments.count > position && arguments[position].name == nil ? arguments[position] : nil)
        if case .logical(let value, _)? = argument?.value { return value }
        return nil
    }

    private func number(_ arguments: [FormulaExpression.Argument], named name: String, position: Int) -> Double? {
        let argument = arguments.first { $0.name == name }
            ?? (arguments.count > position && arguments[position].name == nil ? arguments[position] : nil)
        if case .number(let value, _)? = argument?.value { return value }
        return nil
    }

    // MARK: Errors

    /// A result that is not finite where every input is: division by zero, overflow.
    private func requireFinite(_ result: [Double], inputs: [[Double]], _ expression: FormulaExpression) throws {
        for i in result.indices where !result[i].isFinite && inputs.allSatisfy({ !$0[i].isNaN }) {
            throw error("\(expression.label) is not finite (\(result[i])) in data row \(rowNumber(i) + 1)", expression.span)
        }
    }

    private func error(_ message: String, _ span: Range<Int>) -> FormulaError {
        FormulaError(message, formula: formula, span: span)
    }
}

/// R's `scale(x, center, scale)`: subtract the mean (0 when not centring); divide by the
/// standard deviation, or by the root mean square `sqrt(Σx²/(n−1))` when not centred (1 when
/// not scaling) — over the values present.
struct ScaleStatistics: Sendable, Equatable {
    var center: Double
    var scale: Double

    init(center: Double, scale: Double) {
        self.center = center
        self.scale = scale
    }

    init(_ x: [Double], center: Bool, scale: Bool) {
        var moments = Moments()
        for value in x where !value.isNaN { moments.add(value) }
        self = moments.statistics(center: center, scale: scale)
    }

    /// Running count, mean and sum of squared deviations (Welford), for one pass over a file.
    struct Moments: Sendable {
        var count = 0
        var mean = 0.0
        var squares = 0.0

        mutating func add(_ value: Double) {
            count += 1
            let delta = value - mean
            mean += delta / Double(count)
            squares += delta * (value - mean)
        }

        func statistics(center: Bool, scale: Bool) -> ScaleStatistics {
            let n = Double(count)
            // Σx² = Σ(x − x̄)² + n·x̄² for the root mean square of an uncentred column.
            let sumSquares = center ? squares : squares + n * mean * mean
            return ScaleStatistics(center: center ? mean : 0, scale: scale ? (sumSquares / (n - 1)).squareRoot() : 1)
        }
    }
}

/// The functions a formula may call, as R evaluates them in `model.frame`, and the check of
/// each call's arguments when the formula is parsed (so that errors point at the call).
enum FormulaFunctions {
    /// Every supported function, as listed in errors.
    static let supported = [
        "factor", "as.factor", "as.numeric", "log", "log2", "log10", "log1p", "exp", "sqrt", "abs",
        "I", "scale", "poly", "offset",
    ]

    /// Functions of one numeric argument, element by element.
    static let elementwise: Set<String> = ["log2", "log10", "log1p", "exp", "sqrt", "abs"]

    /// Functions whose value depends on statistics of the whole column (a streaming fit needs
    /// a pass over the data to compute them).
    static let needStatistics: Set<String> = ["scale", "poly"]

    /// Checks `expression` (a call, with any calls inside it): known functions, the number
    /// and names of their arguments, constants where R expects constants.
    static func check(_ expression: FormulaExpression, formula: String, nested: Bool = false) throws(FormulaError) {
        switch expression {
        case .column, .number, .logical:
            return
        case .unary(_, let operand, _):
            try check(operand, formula: formula, nested: true)
        case .binary(_, let lhs, let rhs):
            try check(lhs, formula: formula, nested: true)
            try check(rhs, formula: formula, nested: true)
        case .parenthesized(let inner, _):
            try check(inner, formula: formula, nested: true)
        case .call(let name, let arguments, let span):
            let nameSpan = span.lowerBound..<span.lowerBound + name.count
            func fail(_ message: String, _ at: Range<Int>? = nil) -> FormulaError {
                FormulaError(message, formula: formula, span: at ?? span)
            }
            guard supported.contains(name) else {
                throw fail("unknown function '\(name)'; the supported functions are "
                           + supported.joined(separator: ", "), nameSpan)
            }
            if nested && (name == "poly" || name == "scale" || name == "offset" || name == "factor" || name == "as.factor") {
                throw fail("\(name)() must be a term by itself here, not inside another expression")
            }
            let positional = arguments.filter { $0.name == nil }
            let named = arguments.filter { $0.name != nil }
            func arity(_ allowed: ClosedRange<Int>, names: Set<String> = []) throws(FormulaError) {
                for argument in named where !names.contains(argument.name!) {
                    throw fail("\(name)() has no argument '\(argument.name!)'"
                               + (names.isEmpty ? "" : "; its named arguments are " + names.sorted().joined(separator: ", ")),
                               argument.span)
                }
                if !allowed.contains(positional.count + named.count) || positional.isEmpty {
                    let expected = allowed.lowerBound == allowed.upperBound
                        ? "\(allowed.lowerBound) argument\(allowed.lowerBound == 1 ? "" : "s")"
                        : "\(allowed.lowerBound) to \(allowed.upperBound) arguments"
                    throw fail("\(name)() takes \(expected), found \(arguments.count)")
                }
            }
            switch name {
            case "log":
                try arity(1...2, names: ["base"])
                if arguments.count == 2 { try requireNumber(arguments[1], of: name, formula: formula) }
            case "scale":
                try arity(1...3, names: ["center", "scale"])
                for argument in arguments.dropFirst() { try requireLogical(argument, of: name, formula: formula) }
            case "poly":
                try arity(2...3, names: ["degree", "raw"])
                // poly(x, degree, raw): the third positional argument, or `raw =`, is the flag.
                for (position, argument) in arguments.enumerated().dropFirst() {
                    if argument.name == "raw" || (argument.name == nil && position == 2) {
                        try requireLogical(argument, of: name, formula: formula)
                    } else {
                        guard case .number(let k, _) = argument.value, k >= 1, k == k.rounded() else {
                            throw fail("poly()'s degree must be a whole number of at least 1", argument.value.span)
                        }
                    }
                }
            default:
                try arity(1...1)
            }
            try check(arguments[0].value, formula: formula, nested: true)
        }
    }

    private static func requireNumber(_ argument: FormulaExpression.Argument, of name: String, formula: String) throws(FormulaError) {
        guard case .number = argument.value else {
            throw FormulaError("\(name)()'s \(argument.name ?? "second") argument must be a number",
                               formula: formula, span: argument.value.span)
        }
    }

    private static func requireLogical(_ argument: FormulaExpression.Argument, of name: String, formula: String) throws(FormulaError) {
        guard case .logical = argument.value else {
            throw FormulaError("\(name)()'s argument '\(argument.name ?? "")' must be TRUE or FALSE",
                               formula: formula, span: argument.value.span)
        }
    }
}

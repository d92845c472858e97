/// An R expression written in a formula where a column may stand: a function call such as
/// `log(Days + 1)`, `factor(age)`, `I(Days^2)` or `poly(Days, 2)`, with arithmetic, numbers
/// and named arguments inside. R names the variable by its deparsed text (``label``), which is
/// also how it names the model-matrix columns (`log(Days + 1)`, `poly(Days, 2)1`).
public indirect enum FormulaExpression: Sendable, Equatable {
    /// A column of the data; the span covers the name as written.
    case column(String, span: Range<Int>)
    /// A numeric constant.
    case number(Double, span: Range<Int>)
    /// `TRUE` or `FALSE` (named arguments such as `raw = TRUE`).
    case logical(Bool, span: Range<Int>)
    /// `name(arguments)`; the span runs from the name to the closing parenthesis.
    case call(String, arguments: [Argument], span: Range<Int>)
    /// `-x` or `+x`.
    case unary(Character, FormulaExpression, span: Range<Int>)
    /// `lhs op rhs` with `op` one of `+ - * / ^`.
    case binary(Character, FormulaExpression, FormulaExpression)
    /// `( … )`.
    case parenthesized(FormulaExpression, span: Range<Int>)

    /// An argument of a call, positional (`name == nil`) or named (`scale = FALSE`).
    public struct Argument: Sendable, Equatable {
        public var name: String?
        public var value: FormulaExpression
        /// Where the whole argument is written.
        public var span: Range<Int>
    }

    /// Where the expression is written in the formula text.
    public var span: Range<Int> {
        switch self {
        case .column(_, let span), .number(_, let span), .logical(_, let span), .call(_, _, let span),
             .unary(_, _, let span), .parenthesized(_, let span):
            return span
        case .binary(_, let lhs, let rhs):
            return lhs.span.lowerBound..<rhs.span.upperBound
        }
    }

    /// R's `deparse`: `log(Days + 1)`, `I(Days^2)`, `exp(Days/10)`, `scale(x, scale = FALSE)`.
    public var label: String {
        switch self {
        case .column(let name, _):
            return Self.isSyntactic(name) ? name : "`\(name)`"
        case .number(let value, _):
            return RFormat.number(value)
        case .logical(let value, _):
            return value ? "TRUE" : "FALSE"
        case .call(let name, let arguments, _):
            let inner = arguments.map { ($0.name.map { "\($0) = " } ?? "") + $0.value.label }
            return name + "(" + inner.joined(separator: ", ") + ")"
        case .unary(let op, let operand, _):
            return String(op) + operand.label
        case .binary(let op, let lhs, let rhs):
            // R's deparse spaces + and - and *, not / and ^.
            let spaced = op == "+" || op == "-" || op == "*"
            return lhs.label + (spaced ? " \(op) " : String(op)) + rhs.label
        case .parenthesized(let inner, _):
            return "(" + inner.label + ")"
        }
    }

    /// The columns the expression reads, with where each is written.
    public var columnReferences: [(name: String, span: Range<Int>)] {
        switch self {
        case .column(let name, let span): return [(name, span)]
        case .number, .logical: return []
        case .call(_, let arguments, _): return arguments.flatMap(\.value.columnReferences)
        case .unary(_, let operand, _): return operand.columnReferences
        case .binary(_, let lhs, let rhs): return lhs.columnReferences + rhs.columnReferences
        case .parenthesized(let inner, _): return inner.columnReferences
        }
    }

    /// The function name when the expression is a call.
    var functionName: String? {
        if case .call(let name, _, _) = self { return name }
        return nil
    }

    private static func isSyntactic(_ name: String) -> Bool {
        guard let first = name.first, first.isASCII, first.isLetter || first == "." else { return false }
        return name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "_") }
    }
}

extension Formula {
    /// Parses an lme4 model formula such as `Reaction ~ 1 + Days + (1 + Days | Subject)`.
    ///
    /// Supported: a single response column; the fixed terms `1`, `0`, columns (R names or
    /// backquoted `` `my var` ``), interactions `a:b`, crossings `a*b`, nesting `a/b`,
    /// removal `- x` / `- 1`, parentheses `(a + b):c`; random-effects terms `(effects | g)` and
    /// `(effects || g)` with grouping factors `g`, `g1:g2` and `g1/g2`.
    ///
    /// The result is expanded as R's `terms()` and lme4's `findbars` do: fixed terms ordered by
    /// degree then first appearance, duplicates removed, `||` split into uncorrelated terms and
    /// `/` into nested grouping factors.
    ///
    /// - Throws: `FormulaError` with a span pointing at the offending part of `text`.
    public static func parse(_ text: String) throws -> Formula {
        try parseFormula(text)
    }

    /// `parse(_:)` with its error type spelled out.
    static func parseFormula(_ text: String) throws(FormulaError) -> Formula {
        var parser = try FormulaParser(text)
        var syntax = try parser.parseFormula()
        syntax.expressions = parser.expressions
        return try FormulaExpander(text: text, expressions: syntax.expressions).formula(from: syntax)
    }
}

/// The syntax tree of a formula's right-hand side, before R's term algebra is applied.
indirect enum FormulaNode: Sendable, Equatable {
    enum Operator: Sendable, Equatable {
        /// `+`
        case plus
        /// `-`
        case minus
        /// `:`
        case interaction
        /// `*`
        case crossing
        /// `/`
        case nesting
    }

    /// A column name; the span covers the name as written (with backquotes if any).
    case variable(String, span: Range<Int>)
    /// `1` (`present == true`) or `0`.
    case intercept(present: Bool, span: Range<Int>)
    /// `( … )` around fixed terms or a grouping factor; the span includes the parentheses.
    case parenthesized(FormulaNode, span: Range<Int>)
    /// `(effects | grouping)` or `(effects || grouping)`; the span includes the parentheses.
    case random(effects: FormulaNode, grouping: FormulaNode, isDoubleBar: Bool, span: Range<Int>)
    /// A leading `- operand`, as in `-1 + x` (R's unary minus: `-a:b` is `(-a):b`); the
    /// span starts at the minus sign.
    case negation(FormulaNode, span: Range<Int>)
    /// `lhs op rhs`.
    case binary(Operator, FormulaNode, FormulaNode, operatorSpan: Range<Int>)

    /// The text the node was parsed from.
    var span: Range<Int> {
        switch self {
        case .variable(_, let span), .intercept(_, let span), .parenthesized(_, let span),
             .random(_, _, _, let span), .negation(_, let span):
            return span
        case .binary(_, let lhs, let rhs, _):
            return lhs.span.lowerBound..<rhs.span.upperBound
        }
    }
}

/// A parsed formula before expansion: the response and the right-hand side's syntax tree.
struct FormulaSyntax: Sendable, Equatable {
    var response: String
    var responseSpan: Range<Int>
    var rightHandSide: FormulaNode
    /// The function calls written in the formula, by label (a `.variable` node's name).
    var expressions: [String: FormulaExpression] = [:]
}

/// A recursive-descent parser for lme4 formulas.
///
///     formula     := response '~' sum
///     sum         := product (('+' | '-') product)*
///     product     := interaction (('*' | '/') interaction)*
///     interaction := factor (':' primary)*
///     factor      := primary | '-' primary      (the '-' only at the start of a sum)
///     primary     := name | '0' | '1' | '(' sum [('|' | '||') sum] ')'
///
/// As in R, a leading unary minus binds tightest (`-a:b` is `(-a):b`), then `:`, then `*`
/// and `/`, then `+` and `-`.
/// A name followed by `(` is a function call (``FormulaExpressionParser``), checked against
/// the functions R's formulas use (``FormulaFunctions``) and kept in ``expressions``; it
/// stands in the tree as a variable named by its label.
struct FormulaParser {
    /// What a `sum` is expected to hold; only changes the wording of errors.
    enum Part {
        case terms
        case grouping

        var noun: String {
            switch self {
            case .terms: "a term"
            case .grouping: "a grouping factor"
            }
        }
    }

    private var lexer: FormulaLexer
    /// Parentheses open around the current token: each level is a recursion of the parser (and
    /// of every later walk of the tree), so it is bounded (``maximumNesting``).
    private var nesting = 0
    /// The most parentheses that may be open at once: far more than any model needs, far less
    /// than what would exhaust the stack.
    static let maximumNesting = 200
    /// Binary operators read so far: a chain `a + b + … ` is a tree as deep as it is long, which
    /// the expansion walks recursively, so it is bounded too (``maximumOperators``).
    private var operators = 0
    /// The most operators (`+ - * / :` and `|`) in one formula: hundreds of terms, far less than
    /// what would exhaust the stack.
    static let maximumOperators = 1_000

    /// Counts one binary operator at `token`, throwing past ``maximumOperators``.
    private mutating func countOperator(_ token: FormulaToken) throws(FormulaError) {
        operators += 1
        guard operators <= Self.maximumOperators else {
            throw error("more than \(Self.maximumOperators) operators in one formula", at: token.span)
        }
    }
    /// The current (not yet consumed) token.
    private var token: FormulaToken
    /// The function calls parsed so far, by label.
    private(set) var expressions: [String: FormulaExpression] = [:]

    init(_ text: String) throws(FormulaError) {
        var lexer = FormulaLexer(text)
        let first = try lexer.next()
        self.lexer = lexer
        self.token = first
    }

    private var text: String { lexer.text }

    /// Parses `response ~ rhs` up to the end of the text.
    mutating func parseFormula() throws(FormulaError) -> FormulaSyntax {
        let (response, responseSpan) = try parseResponse()
        let tilde = token
        try advance()
        if token.kind == .end {
            throw FormulaError("empty right-hand side; expected a term after '~'", formula: text, span: tilde.span)
        }
        let rhs = try parseSum(after: tilde, part: .terms)
        switch token.kind {
        case .end:
            return FormulaSyntax(response: response, responseSpan: responseSpan, rightHandSide: rhs)
        case .bar, .doubleBar:
            throw error(
                "'\(token.text)' outside parentheses; write a random-effects term as '(effects \(token.text) grouping)'",
                at: token.span)
        case .rightParenthesis:
            throw error("unmatched ')'", at: token.span)
        default:
            throw unexpectedAfterTerm(closing: nil)
        }
    }

    // MARK: - Response

    private mutating func parseResponse() throws(FormulaError) -> (String, Range<Int>) {
        let first = token
        switch first.kind {
        case .end:
            throw error("empty formula; expected 'response ~ terms'", at: first.span)
        case .tilde:
            throw error("missing response; expected a column name before '~'", at: first.span)
        default:
            break
        }
        if case .name(let name) = first.kind {
            try advance()
            if let call = try parseCall(of: first) {
                if token.kind == .tilde { return (call.label, call.span) }
            } else {
                if name == "." && first.text == "." {
                    throw error("'.' cannot be the response; name the response column", at: first.span)
                }
                if token.kind == .tilde {
                    return (name, first.span)
                }
            }
        }
        // Not `name ~`: either the left-hand side is more than one column, or there is no `~`.
        var lookahead = lexer
        var lastBeforeTilde = first
        var next = token
        while next.kind != .tilde && next.kind != .end {
            lastBeforeTilde = next
            next = try lookahead.next()
        }
        if next.kind == .tilde {
            throw error(
                "the response must be a single column",
                at: first.span.lowerBound..<lastBeforeTilde.span.upperBound)
        }
        if case .name(let name) = first.kind {
            throw error("expected '~' after the response '\(name)'", at: token.span)
        }
        throw error("missing '~'; expected 'response ~ terms'", at: first.span)
    }

    // MARK: - Right-hand side

    /// `sum := product (('+' | '-') product)*`, whose first primary may be negated;
    /// `opener` is the token before it.
    private mutating func parseSum(after opener: FormulaToken, part: Part) throws(FormulaError) -> FormulaNode {
        var node: FormulaNode
        if token.kind == .minus {
            // As in R, unary minus binds tighter than ':', so `-a:b` is `(-a):b`.
            let minus = token
            try advance()
            let operand = try parsePrimary(after: minus, part: part)
            let negation = FormulaNode.negation(operand, span: minus.span.lowerBound..<operand.span.upperBound)
            node = try parseProduct(after: minus, part: part, first: negation)
        } else {
            node = try parseProduct(after: opener, part: part)
        }
        while token.kind == .plus || token.kind == .minus {
            let op = token
            try countOperator(op)
            try advance()
            let rhs = try parseProduct(after: op, part: part)
            node = .binary(op.kind == .plus ? .plus : .minus, node, rhs, operatorSpan: op.span)
        }
        return node
    }

    /// `product := interaction (('*' | '/') interaction)*`; `first`, if given, is the
    /// already parsed first primary.
    private mutating func parseProduct(
        after opener: FormulaToken, part: Part, first: FormulaNode? = nil
    ) throws(FormulaError) -> FormulaNode {
        var node = try parseInteraction(after: opener, part: part, first: first)
        while token.kind == .star || token.kind == .slash {
            let op = token
            try countOperator(op)
            try advance()
            let rhs = try parseInteraction(after: op, part: part)
            node = .binary(op.kind == .star ? .crossing : .nesting, node, rhs, operatorSpan: op.span)
        }
        return node
    }

    /// `interaction := primary (':' primary)*`; `first`, if given, is the already parsed
    /// first primary.
    private mutating func parseInteraction(
        after opener: FormulaToken, part: Part, first: FormulaNode? = nil
    ) throws(FormulaError) -> FormulaNode {
        var node: FormulaNode
        if let first {
            node = first
        } else {
            node = try parsePrimary(after: opener, part: part)
        }
        while token.kind == .colon {
            let op = token
            try countOperator(op)
            try advance()
            let rhs = try parsePrimary(after: op, part: part)
            node = .binary(.interaction, node, rhs, operatorSpan: op.span)
        }
        return node
    }

    /// `primary := name | '0' | '1' | '(' sum [('|' | '||') sum] ')'`
    private mutating func parsePrimary(after opener: FormulaToken, part: Part) throws(FormulaError) -> FormulaNode {
        let first = token
        switch first.kind {
        case .name(let name):
            try advance()
            if let call = try parseCall(of: first) {
                return .variable(call.label, span: call.span)
            }
            if name == "." && first.text == "." {
                throw error("'.' (all other columns) is not supported; list the columns", at: first.span)
            }
            return .variable(name, span: first.span)
        case .zero, .one:
            try advance()
            return .intercept(present: first.kind == .one, span: first.span)
        case .leftParenthesis:
            guard nesting < Self.maximumNesting else {
                throw error("parentheses nested more than \(Self.maximumNesting) deep", at: first.span)
            }
            nesting += 1
            defer { nesting -= 1 }
            try advance()
            let inner = try parseSum(after: first, part: part)
            if token.kind == .bar || token.kind == .doubleBar {
                let bar = token
                try advance()
                let grouping = try parseSum(after: bar, part: .grouping)
                let close = try expectClosingParenthesis(for: first)
                return .random(
                    effects: inner, grouping: grouping, isDoubleBar: bar.kind == .doubleBar,
                    span: first.span.lowerBound..<close.span.upperBound)
            }
            let close = try expectClosingParenthesis(for: first)
            return .parenthesized(inner, span: first.span.lowerBound..<close.span.upperBound)
        default:
            throw expectedTerm(after: opener, part: part)
        }
    }

    private mutating func expectClosingParenthesis(for open: FormulaToken) throws(FormulaError) -> FormulaToken {
        switch token.kind {
        case .rightParenthesis:
            let close = token
            try advance()
            return close
        case .end:
            throw error("unmatched '('", at: open.span)
        default:
            throw unexpectedAfterTerm(closing: open)
        }
    }

    // MARK: - Errors

    /// The current token cannot follow a complete term.
    private func unexpectedAfterTerm(closing open: FormulaToken?) -> FormulaError {
        switch token.kind {
        case .tilde:
            return error("unexpected '~'; a formula has only one '~'", at: token.span)
        case .bar, .doubleBar:
            return error("unexpected '\(token.text)'; a random-effects term has a single bar", at: token.span)
        default:
            let expected = open == nil ? "an operator (+, -, *, :, /)" : "an operator (+, -, *, :, /) or ')'"
            return error("expected \(expected) before \(token.quoted)", at: token.span)
        }
    }

    /// A term was expected after `opener` but the current token cannot start one.
    private func expectedTerm(after opener: FormulaToken, part: Part) -> FormulaError {
        if token.kind == .end {
            return error("expected \(part.noun) after '\(opener.text)'", at: opener.span)
        }
        if opener.kind == .leftParenthesis, token.kind == .bar || token.kind == .doubleBar {
            return error("expected a term before '\(token.text)'", at: token.span)
        }
        return error("expected \(part.noun) after '\(opener.text)'", at: token.span)
    }

    /// Parses `name(…)` when the current token is a `(` after `name`, registers it in
    /// ``expressions`` and moves past it; nil when no call follows the name.
    private mutating func parseCall(of name: FormulaToken) throws(FormulaError) -> FormulaExpression? {
        guard token.kind == .leftParenthesis, token.span.lowerBound == name.span.upperBound else { return nil }
        var parser = FormulaExpressionParser(text: text, characters: lexer.characters, position: name.span.lowerBound)
        let call = try parser.parseCall()
        try FormulaFunctions.check(call, formula: text)
        expressions[call.label] = call
        lexer.seek(to: parser.position)
        try advance()
        return call
    }

    private func error(_ message: String, at span: Range<Int>) -> FormulaError {
        FormulaError(message, formula: text, span: span)
    }

    private mutating func advance() throws(FormulaError) {
        token = try lexer.next()
    }
}

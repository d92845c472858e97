/// Parses the R expression of a function call written in a formula (`log(Days + 1)`,
/// `poly(x, 2, raw = TRUE)`), straight from the characters of the formula text:
///
///     sum      := product (('+' | '-') product)*
///     product  := unary (('*' | '/') unary)*
///     unary    := ('-' | '+') unary | power
///     power    := primary ['^' unary]
///     primary  := number | TRUE | FALSE | name | name '(' [argument (',' argument)*] ')' | '(' sum ')'
///     argument := [name '='] sum
///
/// As in R, `^` binds tighter than unary minus (`-x^2` is `-(x^2)`) and is right-associative.
struct FormulaExpressionParser {
    let text: String
    let characters: [Character]
    private(set) var position: Int

    init(text: String, characters: [Character], position: Int) {
        self.text = text
        self.characters = characters
        self.position = position
    }

    /// Parses the call `name(…)` starting at `position`; afterwards `position` is just past it.
    mutating func parseCall() throws(FormulaError) -> FormulaExpression {
        let expression = try parsePrimary()
        guard case .call = expression else {
            throw FormulaError("expected a function call", formula: text, span: expression.span)
        }
        return expression
    }

    // MARK: Grammar

    private mutating func parseSum() throws(FormulaError) -> FormulaExpression {
        var node = try parseProduct()
        while let op = peek(), op == "+" || op == "-" {
            position += 1
            node = .binary(op, node, try parseProduct())
        }
        return node
    }

    private mutating func parseProduct() throws(FormulaError) -> FormulaExpression {
        var node = try parseUnary()
        while let op = peek(), op == "*" || op == "/" {
            position += 1
            node = .binary(op, node, try parseUnary())
        }
        return node
    }

    private mutating func parseUnary() throws(FormulaError) -> FormulaExpression {
        if let op = peek(), op == "-" || op == "+" {
            let start = position
            position += 1
            let operand = try parseUnary()
            return .unary(op, operand, span: start..<operand.span.upperBound)
        }
        return try parsePower()
    }

    private mutating func parsePower() throws(FormulaError) -> FormulaExpression {
        let base = try parsePrimary()
        if peek() == "^" {
            position += 1
            return .binary("^", base, try parseUnary())
        }
        return base
    }

    private mutating func parsePrimary() throws(FormulaError) -> FormulaExpression {
        guard let c = peek() else {
            throw FormulaError("expected a value, a column or a function call", formula: text, span: position..<position)
        }
        let start = position
        if c == "(" {
            position += 1
            let inner = try parseSum()
            try expect(")", opening: start)
            return .parenthesized(inner, span: start..<position)
        }
        if c.isASCII && c.isNumber || (c == "." && start + 1 < characters.count && characters[start + 1].isNumber) {
            return try number()
        }
        guard let (name, span) = try name() else {
            throw FormulaError("unexpected '\(c)'; expected a value, a column or a function call",
                               formula: text, span: start..<start + 1)
        }
        if peek() == "(" {
            let open = position
            position += 1
            var arguments: [FormulaExpression.Argument] = []
            if peek() != ")" {
                repeat {
                    if !arguments.isEmpty { position += 1 }
                    arguments.append(try argument())
                } while peek() == ","
            }
            try expect(")", opening: open)
            return .call(name, arguments: arguments, span: span.lowerBound..<position)
        }
        if name == "TRUE" || name == "FALSE" { return .logical(name == "TRUE", span: span) }
        return .column(name, span: span)
    }

    private mutating func argument() throws(FormulaError) -> FormulaExpression.Argument {
        let start = position
        let saved = position
        if let (name, _) = try name(), peek() == "=", position + 1 >= characters.count || characters[position + 1] != "=" {
            skipBlanks()
            position += 1
            let value = try parseSum()
            return .init(name: name, value: value, span: start..<value.span.upperBound)
        }
        position = saved
        let value = try parseSum()
        return .init(name: nil, value: value, span: value.span)
    }

    // MARK: Pieces

    /// A name (R syntactic or backquoted) at the current position, or nil.
    private mutating func name() throws(FormulaError) -> (String, Range<Int>)? {
        skipBlanks()
        let start = position
        guard start < characters.count else { return nil }
        if characters[start] == "`" {
            var end = start + 1
            while end < characters.count, characters[end] != "`" { end += 1 }
            guard end < characters.count, end > start + 1 else {
                throw FormulaError("unterminated or empty backquoted name", formula: text, span: start..<start + 1)
            }
            position = end + 1
            return (String(characters[start + 1..<end]), start..<position)
        }
        let c = characters[start]
        guard c.isASCII, c.isLetter || c == "." else { return nil }
        var end = start + 1
        while end < characters.count, characters[end].isASCII,
              characters[end].isLetter || characters[end].isNumber || characters[end] == "." || characters[end] == "_" {
            end += 1
        }
        position = end
        return (String(characters[start..<end]), start..<end)
    }

    private mutating func number() throws(FormulaError) -> FormulaExpression {
        let start = position
        var end = start
        while end < characters.count {
            let c = characters[end]
            if c.isASCII && (c.isNumber || c == "." || c == "e" || c == "E") {
                end += 1
            } else if (c == "+" || c == "-") && end > start && (characters[end - 1] == "e" || characters[end - 1] == "E") {
                end += 1
            } else {
                break
            }
        }
        var literal = String(characters[start..<end])
        if end < characters.count, characters[end] == "L" { end += 1 }
        position = end
        if literal.hasPrefix(".") { literal = "0" + literal }
        guard let value = Double(literal), value.isFinite else {
            throw FormulaError("'\(String(characters[start..<end]))' is not a number", formula: text, span: start..<end)
        }
        return .number(value, span: start..<end)
    }

    private mutating func expect(_ close: Character, opening: Int) throws(FormulaError) {
        if peek() == close {
            position += 1
            return
        }
        if position >= characters.count {
            throw FormulaError("unmatched '('", formula: text, span: opening..<opening + 1)
        }
        let c = characters[position]
        let hint = c == "," ? "unexpected ','" : "unexpected '\(c)'; expected an operator (+ - * / ^), ',' or ')'"
        throw FormulaError(hint, formula: text, span: position..<position + 1)
    }

    /// The next non-blank character (blanks skipped), or nil at the end.
    private mutating func peek() -> Character? {
        skipBlanks()
        return position < characters.count ? characters[position] : nil
    }

    private mutating func skipBlanks() {
        while position < characters.count, characters[position].isWhitespace { position += 1 }
    }
}

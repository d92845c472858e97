/// A token of an lme4 model formula.
///
/// Spans are offsets counted in `Character`s of the formula text, the unit `FormulaError`
/// uses to place its caret.
struct FormulaToken: Sendable, Equatable {
    enum Kind: Sendable, Equatable {
        /// A column name: an R syntactic name or a backquoted name (without the backquotes).
        case name(String)
        /// `0`: no intercept.
        case zero
        /// `1`: an intercept.
        case one
        case tilde
        case plus
        case minus
        case star
        case colon
        case slash
        case bar
        case doubleBar
        case leftParenthesis
        case rightParenthesis
        /// The end of the formula (an empty span at the end of the text).
        case end
    }

    var kind: Kind
    /// Where the token is written, in characters of the formula text.
    var span: Range<Int>
    /// The token as written (including backquotes); empty for `.end`.
    var text: String

    /// How error messages name the token: `'x'`, or "the end of the formula".
    var quoted: String {
        kind == .end ? "the end of the formula" : "'\(text)'"
    }
}

/// Splits a formula into tokens on demand.
///
/// The lexer is lazy (`next()`), so an invalid character late in the formula does not hide
/// an earlier, more useful error such as a transformation `log(y^2)`.
struct FormulaLexer: Sendable {
    /// The formula text.
    let text: String
    /// The text as characters; token spans index into this array.
    let characters: [Character]
    /// The offset of the next character to read.
    private(set) var position = 0

    init(_ text: String) {
        self.text = text
        self.characters = Array(text)
    }

    /// Reads the next token; at the end of the text returns `.end` (repeatedly).
    mutating func next() throws(FormulaError) -> FormulaToken {
        while position < characters.count, characters[position].isWhitespace {
            position += 1
        }
        let start = position
        guard start < characters.count else {
            return FormulaToken(kind: .end, span: start..<start, text: "")
        }
        let c = characters[start]
        if Self.isNameStart(c), !(c == "." && start + 1 < characters.count && Self.isDigit(characters[start + 1])) {
            position += 1
            while position < characters.count, Self.isNameContinuation(characters[position]) {
                position += 1
            }
            let name = String(characters[start..<position])
            return FormulaToken(kind: .name(name), span: start..<position, text: name)
        }
        if c == "`" {
            return try backquotedName(from: start)
        }
        if Self.isDigit(c) || c == "." {
            return try number(from: start)
        }
        position += 1
        let kind: FormulaToken.Kind
        switch c {
        case "~": kind = .tilde
        case "+": kind = .plus
        case "-": kind = .minus
        case "*": kind = .star
        case ":": kind = .colon
        case "/": kind = .slash
        case "(": kind = .leftParenthesis
        case ")": kind = .rightParenthesis
        case "|":
            if position < characters.count, characters[position] == "|" {
                position += 1
                kind = .doubleBar
            } else {
                kind = .bar
            }
        default:
            position = start
            throw unexpectedCharacter(c, at: start)
        }
        return FormulaToken(kind: kind, span: start..<position, text: String(characters[start..<position]))
    }

    /// Continues reading at `offset` (after a function call parsed from the characters).
    mutating func seek(to offset: Int) {
        position = offset
    }

    /// Reads all remaining tokens, ending with (and including) `.end`.
    mutating func tokenize() throws(FormulaError) -> [FormulaToken] {
        var tokens: [FormulaToken] = []
        repeat {
            tokens.append(try next())
        } while tokens.last?.kind != .end
        return tokens
    }

    /// The offset just past the `)` matching the `(` at `open`, skipping backquoted names;
    /// nil if the parenthesis is not closed. Works on raw characters, so it can measure a
    /// call such as `I(x^2)` whose arguments are not valid formula tokens.
    func offsetAfterMatchingParenthesis(at open: Int) -> Int? {
        var depth = 0
        var index = open
        var inBackquotes = false
        while index < characters.count {
            let c = characters[index]
            if inBackquotes {
                if c == "`" { inBackquotes = false }
            } else if c == "`" {
                inBackquotes = true
            } else if c == "(" {
                depth += 1
            } else if c == ")" {
                depth -= 1
                if depth == 0 { return index + 1 }
            }
            index += 1
        }
        return nil
    }

    // MARK: - Pieces

    private mutating func backquotedName(from start: Int) throws(FormulaError) -> FormulaToken {
        var end = start + 1
        while end < characters.count, characters[end] != "`" {
            end += 1
        }
        guard end < characters.count else {
            throw FormulaError(
                "unterminated backquoted name; expected a closing '`'",
                formula: text, span: start..<start + 1)
        }
        let name = String(characters[start + 1..<end])
        position = end + 1
        guard !name.isEmpty else {
            throw FormulaError("empty backquoted name", formula: text, span: start..<position)
        }
        return FormulaToken(kind: .name(name), span: start..<position, text: String(characters[start..<position]))
    }

    private mutating func number(from start: Int) throws(FormulaError) -> FormulaToken {
        // Take the whole run of number-like characters (`2`, `1.5`, `1e3`, `10L`, `.5`) so the
        // error underlines all of it.
        var end = start
        while end < characters.count, Self.isNameContinuation(characters[end]) {
            end += 1
        }
        let literal = String(characters[start..<end])
        position = end
        switch literal {
        case "0": return FormulaToken(kind: .zero, span: start..<end, text: literal)
        case "1": return FormulaToken(kind: .one, span: start..<end, text: literal)
        default:
            throw FormulaError(
                "unexpected number '\(literal)'; only 0 and 1 (to remove or keep the intercept) may appear in a formula",
                formula: text, span: start..<end)
        }
    }

    private func unexpectedCharacter(_ c: Character, at offset: Int) -> FormulaError {
        let message: String
        switch c {
        case "^":
            message = "'^' is not supported; write the interactions out, e.g. a*b or a + b + a:b"
        case "%":
            message = "'%' operators such as %in% are not supported; use ':' or '/'"
        case "\"", "'":
            message = "unexpected quote \(c); write column names bare, or in backquotes `like this`"
        default:
            if c.isLetter {
                message = "unexpected character '\(c)'; put column names with such characters in backquotes `like this`"
            } else {
                message = "unexpected character '\(c)'"
            }
        }
        return FormulaError(message, formula: text, span: offset..<offset + 1)
    }

    private static func isDigit(_ c: Character) -> Bool {
        c.isASCII && c.isNumber
    }

    private static func isNameStart(_ c: Character) -> Bool {
        c.isASCII && (c.isLetter || c == ".")
    }

    private static func isNameContinuation(_ c: Character) -> Bool {
        c.isASCII && (c.isLetter || c.isNumber || c == "." || c == "_")
    }
}

import Testing
@testable import MixedModels

// Expected results were checked against R 4.2.2 / lme4 1.1-31:
//   attr(terms(nobars(f)), "term.labels"), attr(terms(nobars(f)), "intercept"), and for each
//   element b of lme4:::findbars(f), terms(~ b[[2]]) and deparse(b[[3]]).

// MARK: - Helpers

/// The character range of the `occurrence`-th (1-based) `piece` in `text`.
private func span(_ piece: String, in text: String, occurrence: Int = 1) -> Range<Int> {
    let haystack = Array(text)
    let needle = Array(piece)
    var seen = 0
    for start in 0...(haystack.count - needle.count) where Array(haystack[start..<start + needle.count]) == needle {
        seen += 1
        if seen == occurrence { return start..<start + needle.count }
    }
    Issue.record("'\(piece)' (occurrence \(occurrence)) not in '\(text)'")
    return 0..<0
}

/// `ModelTerms` written as lme4 would: `1 + x + f + x:f`, `0 + x`.
private func canonical(_ terms: ModelTerms) -> String {
    ([terms.hasIntercept ? "1" : "0"] + terms.terms.map(\.label)).joined(separator: " + ")
}

/// A formula written back in a canonical form that shows every part of the AST but spans:
/// `y ~ 1 + x + (1 + x | g)`; random terms in the parsed order, after expansion.
private func canonical(_ formula: Formula) -> String {
    let random = formula.random.map { "(\(canonical($0.effects)) | \($0.groupingName))" }
    return "\(formula.response) ~ " + ([canonical(formula.fixed)] + random).joined(separator: " + ")
}

/// The error `Formula.parse` throws for `text`, recording an issue if it succeeds.
private func parseError(_ text: String) -> FormulaError? {
    do {
        let formula = try Formula.parse(text)
        Issue.record("expected an error, parsed \(canonical(formula))")
        return nil
    } catch let error as FormulaError {
        return error
    } catch {
        Issue.record("expected a FormulaError, got \(error)")
        return nil
    }
}

// MARK: - Lexer

@Suite("FormulaLexer")
struct FormulaLexerTests {
    private func tokens(_ text: String) throws -> [FormulaToken] {
        var lexer = FormulaLexer(text)
        return try lexer.tokenize()
    }

    @Test func operatorsNamesAndNumbers() throws {
        let kinds = try tokens("y~x+0-1*a:b/c|g||(h)").map(\.kind)
        #expect(kinds == [
            .name("y"), .tilde, .name("x"), .plus, .zero, .minus, .one, .star, .name("a"), .colon,
            .name("b"), .slash, .name("c"), .bar, .name("g"), .doubleBar, .leftParenthesis,
            .name("h"), .rightParenthesis, .end,
        ])
    }

    @Test func spansSkipWhitespace() throws {
        let result = try tokens("  y \t~\n x.1_b  ")
        #expect(result.map(\.span) == [2..<3, 5..<6, 8..<13, 15..<15])
        #expect(result.map(\.text) == ["y", "~", "x.1_b", ""])
    }

    @Test(arguments: ["x", ".x", "x.y", "x_1", "X2", "..", "a.b.c_d9"])
    func syntacticNames(_ name: String) throws {
        #expect(try tokens(name).map(\.kind) == [.name(name), .end])
    }

    @Test func backquotedNameSpansIncludeTheBackquotes() throws {
        let result = try tokens("`my var` + `x-1`")
        #expect(result.map(\.kind) == [.name("my var"), .plus, .name("x-1"), .end])
        #expect(result.map(\.span) == [0..<8, 9..<10, 11..<16, 16..<16])
    }

    @Test func spansCountCharactersNotUnicodeScalars() throws {
        // "é" written as e + combining acute accent is one Character but two scalars.
        let text = "`cafe\u{301}` ~ x $"
        let result = try tokens("`cafe\u{301}` ~ x")
        #expect(result.map(\.span) == [0..<6, 7..<8, 9..<10, 10..<10])
        let error = parseError(text)
        #expect(error?.span == 11..<12)
        #expect(error?.description == "unexpected character '$'\n  \(text)\n             ^")
    }

    @Test func offsetAfterMatchingParenthesisSkipsBackquotes() {
        let lexer = FormulaLexer("f(a, `)`, (b)) + x")
        #expect(lexer.offsetAfterMatchingParenthesis(at: 1) == 14)
        #expect(FormulaLexer("f(a").offsetAfterMatchingParenthesis(at: 1) == nil)
    }
}

// MARK: - Fixed and random terms (checked against R)

@Suite("Formula.parse: expansion as R and lme4")
struct FormulaExpansionTests {
    @Test(arguments: [
        // lme4 examples
        ("Reaction ~ 1 + Days + (1 + Days | Subject)", "Reaction ~ 1 + Days + (1 + Days | Subject)"),
        ("Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)",
         "Reaction ~ 1 + Days + (1 | Subject) + (0 + Days | Subject)"),
        ("Reaction ~ Days + (Days || Subject)", "Reaction ~ 1 + Days + (1 | Subject) + (0 + Days | Subject)"),
        ("diameter ~ 1 + (1 | plate) + (1 | sample)", "diameter ~ 1 + (1 | plate) + (1 | sample)"),
        ("strength ~ 1 + (1 | batch/cask)", "strength ~ 1 + (1 | cask:batch) + (1 | batch)"),
        ("y ~ service + (1 | s) + (1 | d) + (1 | dept:service)",
         "y ~ 1 + service + (1 | s) + (1 | d) + (1 | dept:service)"),
        ("y ~ x*f + (1 + x | g)", "y ~ 1 + x + f + x:f + (1 + x | g)"),
    ])
    func lme4Examples(_ formula: String, _ expected: String) throws {
        #expect(canonical(try Formula.parse(formula)) == expected)
    }

    @Test(arguments: [
        ("y ~ 0 + x", "y ~ 0 + x"),
        ("y ~ x + 0", "y ~ 0 + x"),
        ("y ~ x - 1", "y ~ 0 + x"),
        ("y ~ -1 + x", "y ~ 0 + x"),
        ("y ~ 1 + x", "y ~ 1 + x"),
        ("y ~ x", "y ~ 1 + x"),
        ("y ~ 0 + 1 + x", "y ~ 1 + x"),
        ("y ~ 1 + 0 + x", "y ~ 0 + x"),
        ("y ~ x - 1 + 1", "y ~ 1 + x"),
        ("y ~ a - 1 + 0 + 1", "y ~ 1 + a"),
        ("y ~ a - 0", "y ~ 1 + a"),
        ("y ~ x - (1 + x)", "y ~ 0"),
        ("y ~ 1", "y ~ 1"),
        ("y ~ 0", "y ~ 0"),
        ("y ~ -1", "y ~ 0"),
    ])
    func intercept(_ formula: String, _ expected: String) throws {
        #expect(canonical(try Formula.parse(formula)) == expected)
    }

    @Test(arguments: [
        ("y ~ b*a + a", "y ~ 1 + b + a + b:a"),
        ("y ~ a*b*c", "y ~ 1 + a + b + c + a:b + a:c + b:c + a:b:c"),
        ("y ~ a*b*c - a:b:c", "y ~ 1 + a + b + c + a:b + a:c + b:c"),
        ("y ~ a:b*c", "y ~ 1 + c + a:b + a:b:c"),
        ("y ~ a*b:c", "y ~ 1 + a + b:c + a:b:c"),
        ("y ~ a*a", "y ~ 1 + a"),
        ("y ~ x:x", "y ~ 1 + x"),
        ("y ~ a*(b + c) - 1", "y ~ 0 + a + b + c + a:b + a:c"),
        ("y ~ (a + b):c", "y ~ 1 + a:c + b:c"),
        ("y ~ (a+b)*(c+d)", "y ~ 1 + a + b + c + d + a:c + a:d + b:c + b:d"),
        ("y ~ a/b", "y ~ 1 + a + a:b"),
        ("y ~ (a+b)/c", "y ~ 1 + a + b + a:b:c"),
        ("y ~ (a*b*c)/d", "y ~ 1 + a + b + c + a:b + a:c + b:c + a:b:c + a:b:c:d"),
    ])
    func crossingAndNesting(_ formula: String, _ expected: String) throws {
        #expect(canonical(try Formula.parse(formula)) == expected)
    }

    @Test(arguments: [
        ("y ~ a:b + b:a + a", "y ~ 1 + a + a:b"),
        ("y ~ c + a:b + b", "y ~ 1 + c + b + a:b"),
        ("y ~ a:c + b:a + c", "y ~ 1 + c + a:c + a:b"),
        ("y ~ b*c + a:c", "y ~ 1 + b + c + b:c + c:a"),
        ("y ~ c:b + a*b", "y ~ 1 + a + b + c:b + b:a"),
        ("y ~ a:b:c + c:a", "y ~ 1 + a:c + a:b:c"),
        ("y ~ b - b + a:b", "y ~ 1 + b:a"),
        ("y ~ x:y", "y ~ 1 + y:x"),
    ])
    func orderByDegreeThenAppearanceWithoutDuplicates(_ formula: String, _ expected: String) throws {
        #expect(canonical(try Formula.parse(formula)) == expected)
    }

    @Test(arguments: [
        ("y ~ a*b - a", "y ~ 1 + b + a:b"),
        ("y ~ a*b - b:a", "y ~ 1 + a + b"),
        ("y ~ x - x", "y ~ 1"),
        ("y ~ -x + x", "y ~ 1 + x"),
        ("y ~ a + b - (a + b) + c", "y ~ 1 + c"),
        ("y ~ a + (b | g) - a", "y ~ 1 + (1 + b | g)"),
        // R's unary minus binds tighter than ':' and '*': `-a:b` is `(-a):b`.
        ("y ~ -a:b + c", "y ~ 1 + c"),
        ("y ~ -a + b:a", "y ~ 1 + a:b"),
        ("y ~ a*(b - b)", "y ~ 1 + a"),
        // R's CrossTerms/NestTerms drop everything when the left operand is empty.
        ("y ~ -c*d", "y ~ 1"),
        ("y ~ (b - b)/a", "y ~ 1"),
    ])
    func removal(_ formula: String, _ expected: String) throws {
        #expect(canonical(try Formula.parse(formula)) == expected)
    }

    @Test(arguments: [
        ("y ~ (x | g) + z + (1|h)", "y ~ 1 + z + (1 + x | g) + (1 | h)"),
        ("y ~ (1 | g) + x + (1|h) + z:w", "y ~ 1 + x + z:w + (1 | g) + (1 | h)"),
        ("y ~ x + ((1|g))", "y ~ 1 + x + (1 | g)"),
        ("y ~ (x + (1|g))", "y ~ 1 + x + (1 | g)"),
        ("y ~ (c:b + a*b | g) + b*c", "y ~ 1 + b + c + b:c + (1 + a + b + c:b + b:a | g)"),
        ("y ~ x + (x | g1:g2) + (1 | g1/g2/g3)",
         "y ~ 1 + x + (1 + x | g1:g2) + (1 | g3:g2:g1) + (1 | g2:g1) + (1 | g1)"),
        ("y ~ (1 | a/b/c)", "y ~ 1 + (1 | c:b:a) + (1 | b:a) + (1 | a)"),
        ("y ~ (1 | a/b:c)", "y ~ 1 + (1 | b:c:a) + (1 | a)"),
        ("y ~ (-1 + x | g)", "y ~ 1 + (0 + x | g)"),
    ])
    func randomTerms(_ formula: String, _ expected: String) throws {
        #expect(canonical(try Formula.parse(formula)) == expected)
    }

    @Test(arguments: [
        ("y ~ (x*z || g)", "y ~ 1 + (1 | g) + (0 + x | g) + (0 + z | g) + (0 + x:z | g)"),
        ("y ~ (0 + x || g)", "y ~ 1 + (0 + x | g)"),
        ("y ~ (-1 + x || g)", "y ~ 1 + (0 + x | g)"),
        ("y ~ (b:a + a || g)", "y ~ 1 + (1 | g) + (0 + a | g) + (0 + b:a | g)"),
        ("y ~ x + (1 + x || g1/g2)",
         "y ~ 1 + x + (1 | g2:g1) + (1 | g1) + (0 + x | g2:g1) + (0 + x | g1)"),
        ("y ~ (a*b - a || g/h)",
         "y ~ 1 + (1 | h:g) + (1 | g) + (0 + b | h:g) + (0 + b | g) + (0 + a:b | h:g) + (0 + a:b | g)"),
        // lme4 1.1-31 fails on these two; the intended expansions:
        ("y ~ (1 || g)", "y ~ 1 + (1 | g)"),
        ("y ~ (1 | a:b/c)", "y ~ 1 + (1 | c:a:b) + (1 | a:b)"),
    ])
    func doubleBarsAndNesting(_ formula: String, _ expected: String) throws {
        #expect(canonical(try Formula.parse(formula)) == expected)
    }
}

// MARK: - Exact ASTs with spans

@Suite("Formula.parse: exact AST and spans")
struct FormulaASTTests {
    @Test func sleepstudyCorrelated() throws {
        let text = "Reaction ~ 1 + Days + (1 + Days | Subject)"
        let expected = Formula(
            text: text, response: "Reaction", responseSpan: 0..<8,
            fixed: ModelTerms(hasIntercept: true, terms: [Term(variables: ["Days"], span: 15..<19)]),
            random: [
                RandomTerm(
                    effects: ModelTerms(hasIntercept: true, terms: [Term(variables: ["Days"], span: 27..<31)]),
                    grouping: ["Subject"], span: 22..<42, groupingSpan: 34..<41),
            ])
        #expect(try Formula.parse(text) == expected)
    }

    @Test func sleepstudyUncorrelatedWritten() throws {
        let text = "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)"
        let expected = Formula(
            text: text, response: "Reaction", responseSpan: span("Reaction", in: text),
            fixed: ModelTerms(hasIntercept: true, terms: [Term(variables: ["Days"], span: span("Days", in: text))]),
            random: [
                RandomTerm(
                    effects: ModelTerms(hasIntercept: true, terms: []), grouping: ["Subject"],
                    span: span("(1 | Subject)", in: text), groupingSpan: span("Subject", in: text)),
                RandomTerm(
                    effects: ModelTerms(
                        hasIntercept: false,
                        terms: [Term(variables: ["Days"], span: span("Days", in: text, occurrence: 2))]),
                    grouping: ["Subject"], span: span("(0 + Days | Subject)", in: text),
                    groupingSpan: span("Subject", in: text, occurrence: 2)),
            ])
        #expect(try Formula.parse(text) == expected)
    }

    @Test func sleepstudyDoubleBar() throws {
        let text = "Reaction ~ Days + (Days || Subject)"
        let whole = span("(Days || Subject)", in: text)
        let subject = span("Subject", in: text)
        let expected = Formula(
            text: text, response: "Reaction", responseSpan: span("Reaction", in: text),
            fixed: ModelTerms(hasIntercept: true, terms: [Term(variables: ["Days"], span: span("Days", in: text))]),
            random: [
                RandomTerm(
                    effects: ModelTerms(hasIntercept: true, terms: []), grouping: ["Subject"],
                    span: whole, groupingSpan: subject),
                RandomTerm(
                    effects: ModelTerms(
                        hasIntercept: false,
                        terms: [Term(variables: ["Days"], span: span("Days", in: text, occurrence: 2))]),
                    grouping: ["Subject"], span: whole, groupingSpan: subject),
            ])
        #expect(try Formula.parse(text) == expected)
    }

    @Test func penicillinCrossed() throws {
        let text = "diameter ~ 1 + (1 | plate) + (1 | sample)"
        let intercept = ModelTerms(hasIntercept: true, terms: [])
        let expected = Formula(
            text: text, response: "diameter", responseSpan: span("diameter", in: text),
            fixed: intercept,
            random: [
                RandomTerm(
                    effects: intercept, grouping: ["plate"],
                    span: span("(1 | plate)", in: text), groupingSpan: span("plate", in: text)),
                RandomTerm(
                    effects: intercept, grouping: ["sample"],
                    span: span("(1 | sample)", in: text), groupingSpan: span("sample", in: text)),
            ])
        #expect(try Formula.parse(text) == expected)
    }

    @Test func pastesNested() throws {
        let text = "strength ~ 1 + (1 | batch/cask)"
        let intercept = ModelTerms(hasIntercept: true, terms: [])
        let whole = span("(1 | batch/cask)", in: text)
        let expected = Formula(
            text: text, response: "strength", responseSpan: span("strength", in: text),
            fixed: intercept,
            random: [
                RandomTerm(
                    effects: intercept, grouping: ["cask", "batch"],
                    span: whole, groupingSpan: span("batch/cask", in: text)),
                RandomTerm(
                    effects: intercept, grouping: ["batch"],
                    span: whole, groupingSpan: span("batch", in: text)),
            ])
        let formula = try Formula.parse(text)
        #expect(formula == expected)
        #expect(formula.random.map(\.groupingName) == ["cask:batch", "batch"])
    }

    @Test func instEvalInteractionGrouping() throws {
        let text = "y ~ service + (1 | s) + (1 | d) + (1 | dept:service)"
        let intercept = ModelTerms(hasIntercept: true, terms: [])
        let expected = Formula(
            text: text, response: "y", responseSpan: 0..<1,
            fixed: ModelTerms(hasIntercept: true, terms: [Term(variables: ["service"], span: span("service", in: text))]),
            random: [
                RandomTerm(
                    effects: intercept, grouping: ["s"],
                    span: span("(1 | s)", in: text), groupingSpan: span("s", in: text, occurrence: 2)),
                RandomTerm(
                    effects: intercept, grouping: ["d"],
                    span: span("(1 | d)", in: text), groupingSpan: span("d", in: text)),
                RandomTerm(
                    effects: intercept, grouping: ["dept", "service"],
                    span: span("(1 | dept:service)", in: text), groupingSpan: span("dept:service", in: text)),
            ])
        #expect(try Formula.parse(text) == expected)
    }

    @Test func crossingWithRandomSlope() throws {
        let text = "y ~ x*f + (1 + x | g)"
        let expected = Formula(
            text: text, response: "y", responseSpan: 0..<1,
            fixed: ModelTerms(hasIntercept: true, terms: [
                Term(variables: ["x"], span: 4..<5),
                Term(variables: ["f"], span: 6..<7),
                Term(variables: ["x", "f"], span: 4..<7),
            ]),
            random: [
                RandomTerm(
                    effects: ModelTerms(hasIntercept: true, terms: [Term(variables: ["x"], span: 15..<16)]),
                    grouping: ["g"], span: 10..<21, groupingSpan: 19..<20),
            ])
        #expect(try Formula.parse(text) == expected)
    }

    @Test func expandedTermsSpanTheTextThatProducedThem() throws {
        let text = "y ~ a*b*c + d:e + e:d"
        let formula = try Formula.parse(text)
        #expect(formula.fixed.terms.map(\.label) == ["a", "b", "c", "a:b", "a:c", "b:c", "d:e", "a:b:c"])
        #expect(formula.fixed.terms.map(\.span) == [
            span("a", in: text), span("b", in: text), span("c", in: text),
            span("a*b", in: text), span("a*b*c", in: text), span("a*b*c", in: text), span("d:e", in: text),
            span("a*b*c", in: text),
        ])
    }

    @Test func parenthesizedInteractionSpan() throws {
        let text = "y ~ (a + b):c"
        let formula = try Formula.parse(text)
        #expect(formula.fixed.terms == [
            Term(variables: ["a", "c"], span: span("(a + b):c", in: text)),
            Term(variables: ["b", "c"], span: span("(a + b):c", in: text)),
        ])
    }

    @Test func variablesOrderedByFirstAppearance() throws {
        let formula = try Formula.parse("y ~ b + a:b")
        #expect(formula.fixed.terms.map(\.variables) == [["b"], ["b", "a"]])
    }

    @Test func combinedDoubleBarAndNesting() throws {
        let text = "y ~ (1 + x || g1/g2)"
        let formula = try Formula.parse(text)
        let whole = span("(1 + x || g1/g2)", in: text)
        let x = Term(variables: ["x"], span: span("x", in: text))
        #expect(formula.random == [
            RandomTerm(effects: ModelTerms(hasIntercept: true, terms: []), grouping: ["g2", "g1"],
                       span: whole, groupingSpan: span("g1/g2", in: text)),
            RandomTerm(effects: ModelTerms(hasIntercept: true, terms: []), grouping: ["g1"],
                       span: whole, groupingSpan: span("g1", in: text)),
            RandomTerm(effects: ModelTerms(hasIntercept: false, terms: [x]), grouping: ["g2", "g1"],
                       span: whole, groupingSpan: span("g1/g2", in: text)),
            RandomTerm(effects: ModelTerms(hasIntercept: false, terms: [x]), grouping: ["g1"],
                       span: whole, groupingSpan: span("g1", in: text)),
        ])
    }

    @Test func threeLevelNestingGroupingSpans() throws {
        let text = "y ~ (1 | a/b/c)"
        let formula = try Formula.parse(text)
        #expect(formula.random.map(\.grouping) == [["c", "b", "a"], ["b", "a"], ["a"]])
        #expect(formula.random.map(\.groupingSpan) == [
            span("a/b/c", in: text), span("a/b", in: text), span("a", in: text),
        ])
    }

    @Test func backquotedNames() throws {
        let text = "`reaction time` ~ `my var` + (1 | `the group`)"
        let formula = try Formula.parse(text)
        #expect(formula.response == "reaction time")
        #expect(formula.responseSpan == span("`reaction time`", in: text))
        #expect(formula.fixed.terms == [Term(variables: ["my var"], span: span("`my var`", in: text))])
        #expect(formula.random.map(\.grouping) == [["the group"]])
        #expect(formula.random.map(\.groupingSpan) == [span("`the group`", in: text)])
    }

    @Test func keepsTheTextAndToleratesWhitespace() throws {
        let text = "  y~x+( 1 |g )  "
        let formula = try Formula.parse(text)
        #expect(formula.text == text)
        #expect(canonical(formula) == "y ~ 1 + x + (1 | g)")
        #expect(formula.responseSpan == 2..<3)
        #expect(formula.random.map(\.span) == [span("( 1 |g )", in: text)])
    }
}

// MARK: - Errors

/// A formula that must be rejected: the message and the caret line under the formula.
struct FormulaErrorCase: Sendable, CustomTestStringConvertible {
    var formula: String
    var caret: String
    var message: String

    init(_ formula: String, _ caret: String, _ message: String) {
        self.formula = formula
        self.caret = caret
        self.message = message
    }

    var testDescription: String { formula }
}

@Suite("Formula.parse: errors")
struct FormulaErrorTests {
    // Each caret line is written under its formula so the two line up as printed.
    static let cases: [FormulaErrorCase] = [
        // missing '~' / response
        .init("y x",
              "  ^",
              "expected '~' after the response 'y'"),
        .init("Reaction",
              "        ^",
              "expected '~' after the response 'Reaction'"),
        .init("~ x",
              "^",
              "missing response; expected a column name before '~'"),
        .init("",
              "^",
              "empty formula; expected 'response ~ terms'"),
        .init("y + z ~ x",
              "^~~~~",
              "the response must be a single column"),
        .init("1 ~ x",
              "^",
              "the response must be a single column"),
        .init(". ~ x",
              "^",
              "'.' cannot be the response; name the response column"),
        .init("sin(y) ~ x",
              "^~~",
              "unknown function 'sin'; the supported functions are factor, as.factor, as.numeric, log, log2, log10, log1p, exp, sqrt, abs, I, scale, poly, offset"),
        // empty right-hand side and empty terms
        .init("y ~",
              "  ^",
              "empty right-hand side; expected a term after '~'"),
        .init("y ~ 1 + + x",
              "        ^",
              "expected a term after '+'"),
        .init("y ~ x +",
              "      ^",
              "expected a term after '+'"),
        .init("y ~ x - ",
              "      ^",
              "expected a term after '-'"),
        .init("y ~ a: + b",
              "       ^",
              "expected a term after ':'"),
        .init("y ~ + x",
              "    ^",
              "expected a term after '~'"),
        .init("y ~ x + ( | g)",
              "          ^",
              "expected a term before '|'"),
        .init("y ~ (1 | )",
              "         ^",
              "expected a grouping factor after '|'"),
        .init("y ~ (1 | g/)",
              "           ^",
              "expected a grouping factor after '/'"),
        .init("y ~ x + ()",
              "         ^",
              "expected a term after '('"),
        // parentheses
        .init("y ~ (1 | g",
              "    ^",
              "unmatched '('"),
        .init("y ~ x + (a + (1 | g)",
              "        ^",
              "unmatched '('"),
        .init("y ~ x)",
              "     ^",
              "unmatched ')'"),
        .init("y ~ (x + z))",
              "           ^",
              "unmatched ')'"),
        // bars
        .init("y ~ x | g",
              "      ^",
              "'|' outside parentheses; write a random-effects term as '(effects | grouping)'"),
        .init("y ~ 1 + x || g",
              "          ^~",
              "'||' outside parentheses; write a random-effects term as '(effects || grouping)'"),
        .init("y ~ (1 | g | h)",
              "           ^",
              "unexpected '|'; a random-effects term has a single bar"),
        .init("y ~ ((1 | g) | h)",
              "     ^~~~~~~",
              "a random-effects term cannot be nested inside another"),
        .init("y ~ (x + (1|g) | h)",
              "         ^~~~~",
              "a random-effects term cannot be nested inside another"),
        .init("y ~ (1 | (1|g))",
              "         ^~~~~",
              "a random-effects term cannot be nested inside another"),
        .init("y ~ x:(1 | g)",
              "      ^~~~~~~",
              "a random-effects term cannot be part of an interaction"),
        .init("y ~ (1|g)*x",
              "    ^~~~~",
              "a random-effects term cannot be part of an interaction"),
        .init("y ~ x - (1|g)",
              "        ^~~~~",
              "a random-effects term cannot be removed with '-'"),
        .init("y ~ (0 | g)",
              "     ^",
              "a random-effects term needs an intercept or a term before the bar"),
        // grouping factors
        .init("y ~ (1 | g1 + g2)",
              "            ^",
              "'+' cannot be used in a grouping factor; expected a column, an interaction g1:g2, or nesting g1/g2"),
        .init("y ~ (1 | a*b)",
              "          ^",
              "'*' cannot be used in a grouping factor; expected a column, an interaction g1:g2, or nesting g1/g2"),
        .init("y ~ (1 | 1)",
              "         ^",
              "expected a grouping factor (a column, g1:g2, or g1/g2), found '1'"),
        .init("y ~ (1 | a/(b/c))",
              "             ^",
              "nesting '/' in a grouping factor must be outermost, as in g1/g2:g3; it cannot be inside parentheses or an interaction"),
        // unexpected tokens and characters
        .init("y ~ a b",
              "      ^",
              "expected an operator (+, -, *, :, /) before 'b'"),
        .init("y ~ x (1|g)",
              "      ^",
              "expected an operator (+, -, *, :, /) before '('"),
        .init("y ~ (a b)",
              "       ^",
              "expected an operator (+, -, *, :, /) or ')' before 'b'"),
        .init("y ~ x ~ z",
              "      ^",
              "unexpected '~'; a formula has only one '~'"),
        .init("y ~ x, z",
              "     ^",
              "unexpected character ','"),
        .init("y ~ x^2",
              "     ^",
              "'^' is not supported; write the interactions out, e.g. a*b or a + b + a:b"),
        .init("y ~ x + é",
              "        ^",
              "unexpected character 'é'; put column names with such characters in backquotes `like this`"),
        .init("y ~ `x",
              "    ^",
              "unterminated backquoted name; expected a closing '`'"),
        .init("y ~ ``",
              "    ^~",
              "empty backquoted name"),
        .init("y ~ .",
              "    ^",
              "'.' (all other columns) is not supported; list the columns"),
        // numbers other than 0 and 1
        .init("y ~ 2 + x",
              "    ^",
              "unexpected number '2'; only 0 and 1 (to remove or keep the intercept) may appear in a formula"),
        .init("y ~ x + 1.5",
              "        ^~~",
              "unexpected number '1.5'; only 0 and 1 (to remove or keep the intercept) may appear in a formula"),
        .init("y ~ x + (10 | g)",
              "         ^~",
              "unexpected number '10'; only 0 and 1 (to remove or keep the intercept) may appear in a formula"),
        // function calls
        .init("y ~ lg(x) + z",
              "    ^~",
              "unknown function 'lg'; the supported functions are factor, as.factor, as.numeric, log, log2, log10, log1p, exp, sqrt, abs, I, scale, poly, offset"),
        .init("y ~ I(x^2, 3)",
              "    ^~~~~~~~~",
              "I() takes 1 argument, found 2"),
        .init("y ~ x + (1 | log(g))",
              "             ^~~~~~",
              "a grouping factor must be a column (or factor(column)), an interaction g1:g2, or nesting g1/g2"),
        .init("y ~ log(x +) + z",
              "           ^",
              "unexpected ')'; expected a value, a column or a function call"),
        .init("y ~ poly(x, 2) + (poly(x, 2):log(z) | g) + offset(x*)",
              "                                                    ^",
              "unexpected ')'; expected a value, a column or a function call"),
        // intercept markers inside interactions; response on the right
        .init("y ~ a:1",
              "      ^",
              "'1' cannot be part of an interaction; add or remove the intercept as a term of its own, as in '0 + x'"),
        .init("y ~ (0 + a):b",
              "     ^",
              "'0' cannot be part of an interaction; add or remove the intercept as a term of its own, as in '0 + x'"),
        .init("y ~ x + y",
              "        ^",
              "the response 'y' cannot also be a term on the right-hand side"),
    ]

    @Test(arguments: cases)
    func rejects(_ errorCase: FormulaErrorCase) throws {
        let error = try #require(parseError(errorCase.formula))
        #expect(error.message == errorCase.message)
        #expect(error.formula == errorCase.formula)
        #expect(error.description == "\(errorCase.message)\n  \(errorCase.formula)\n  \(errorCase.caret)")
    }

    @Test func unknownColumnCaretCanUseTheTermSpan() throws {
        // How later stages report an unknown column: the term's span is exactly the name.
        let text = "Reaction ~ 1 + Dayz + (1 + Days | Subject)"
        let formula = try Formula.parse(text)
        let term = try #require(formula.fixed.terms.first)
        let error = FormulaError("unknown column 'Dayz'", formula: text, span: term.span)
        #expect(error.description == """
            unknown column 'Dayz'
              Reaction ~ 1 + Dayz + (1 + Days | Subject)
                             ^~~~
            """)
    }
}

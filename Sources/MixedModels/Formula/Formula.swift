/// A parsed lme4 model formula, e.g. `Reaction ~ 1 + Days + (1 + Days | Subject)`.
///
/// Variables may be R function calls (`log(y) ~ factor(a) + poly(x, 2) + offset(z) + …`,
/// see ``FormulaFunctions``); they are named by their deparsed text, as R names them.
///
/// Parsing expands the formula the way lme4 and R's `terms()` do: `a*b` becomes
/// `a + b + a:b`; `(1 + x || g)` becomes `(1 | g) + (0 + x | g)`; `(1 | g1/g2)` becomes
/// `(1 | g2:g1) + (1 | g1)`. Positions (`span`) are offsets in characters into `text`,
/// so errors found later (an unknown column) can point at the formula.
public struct Formula: Sendable, Equatable {
    /// The formula as the user wrote it.
    public var text: String
    /// The response variable (a column name).
    public var response: String
    /// Where the response is written in `text`.
    public var responseSpan: Range<Int>
    /// The fixed-effects part.
    public var fixed: ModelTerms
    /// The random-effects terms, in the order lme4 lists them before it sorts them by
    /// number of levels.
    public var random: [RandomTerm]
    /// The function calls written in the formula (`log(Days + 1)`, `factor(age)`), by label:
    /// a variable (or the response) whose name is a key here is that expression, evaluated on
    /// the data; any other name is a column.
    public var expressions: [String: FormulaExpression]
    /// The labels of the `offset(x)` terms, added to the linear predictor with coefficient 1.
    public var offsets: [String]
    /// Terms removed with `-` (`y ~ x - z`): not in the model, but their columns are the
    /// formula's, as in R's model frame (they must exist, and rows missing them are dropped).
    public var removedTerms: [Term]

    public init(text: String, response: String, responseSpan: Range<Int>, fixed: ModelTerms, random: [RandomTerm],
                expressions: [String: FormulaExpression] = [:], offsets: [String] = [], removedTerms: [Term] = []) {
        self.text = text
        self.response = response
        self.responseSpan = responseSpan
        self.fixed = fixed
        self.random = random
        self.expressions = expressions
        self.offsets = offsets
        self.removedTerms = removedTerms
    }
}

/// The right-hand side of a linear model: an intercept flag and a list of terms.
public struct ModelTerms: Sendable, Equatable {
    /// True unless `0 +` or `- 1` removed the intercept.
    public var hasIntercept: Bool
    /// Terms ordered as R orders them: by degree (main effects, then two-way interactions, …),
    /// within a degree by first appearance; no duplicates.
    public var terms: [Term]

    public init(hasIntercept: Bool, terms: [Term]) {
        self.hasIntercept = hasIntercept
        self.terms = terms
    }
}

/// One term: a main effect (one variable) or an interaction `a:b:c`.
public struct Term: Sendable, Equatable {
    /// The variables, ordered by their first appearance in the formula (as R labels `b:a`).
    public var variables: [String]
    /// Where the term is written in the formula text.
    public var span: Range<Int>

    public init(variables: [String], span: Range<Int>) {
        self.variables = variables
        self.span = span
    }

    /// R's label: the variables joined by `:`.
    public var label: String { variables.joined(separator: ":") }
}

/// A random-effects term `(effects | grouping)`.
public struct RandomTerm: Sendable, Equatable {
    /// The model terms left of the bar (intercept implied unless removed).
    public var effects: ModelTerms
    /// The grouping factor: one column, or several for an interaction `g1:g2`
    /// (levels `l1:l2`, the first factor varying slowest, as R's `g1:g2`).
    public var grouping: [String]
    /// Where the whole parenthesised term is written in the formula text.
    public var span: Range<Int>
    /// Where the grouping factor is written in the formula text.
    public var groupingSpan: Range<Int>

    public init(effects: ModelTerms, grouping: [String], span: Range<Int>, groupingSpan: Range<Int>) {
        self.effects = effects
        self.grouping = grouping
        self.span = span
        self.groupingSpan = groupingSpan
    }

    /// lme4's name of the grouping factor, e.g. `Subject` or `sample:plate`.
    public var groupingName: String { grouping.joined(separator: ":") }
}

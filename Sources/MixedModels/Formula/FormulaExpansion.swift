/// Turns a formula's syntax tree into a `Formula`, applying R's term algebra (`terms()`) to
/// the fixed part and to each random-effects term's left side, and lme4's `findbars`
/// expansions (`expandDoubleVerts`, `expandSlash`) to the random-effects terms.
struct FormulaExpander {
    /// The formula text, for errors.
    let text: String
    /// The function calls of the formula, by label.
    var expressions: [String: FormulaExpression] = [:]

    func formula(from syntax: FormulaSyntax) throws(FormulaError) -> Formula {
        // R numbers the variables in order of first appearance, the response first.
        var algebra = TermAlgebra()
        let responseIndex = algebra.index(of: syntax.response)
        var randomSyntax: [RandomSyntax]? = []
        let terms = try self.terms(of: syntax.rightHandSide, in: &algebra, sign: .plus, random: &randomSyntax)
        if let term = terms.first(where: { $0.variables == [responseIndex] }) {
            throw FormulaError(
                "the response '\(syntax.response)' cannot also be a term on the right-hand side",
                formula: text, span: term.span)
        }
        let fixed = algebra.modelTerms(terms)
        var random: [RandomTerm] = []
        for term in randomSyntax ?? [] {
            random += try expand(term)
        }
        return Formula(
            text: text, response: syntax.response, responseSpan: syntax.responseSpan,
            fixed: fixed, random: random, expressions: expressions, offsets: algebra.offsets.map(\.label),
            removedTerms: algebra.modelTerms(algebra.removed).terms)
    }

    // MARK: - R's term algebra

    /// Where a subexpression sits: in a sum, added (`plus`) or removed (`minus`), or as an
    /// operand of `:`, `*` or `/` (`nil`).
    enum Sign {
        case plus
        case minus

        var flipped: Sign { self == .plus ? .minus : .plus }
    }

    /// A random-effects term as written, before expansion.
    struct RandomSyntax {
        var effects: FormulaNode
        var grouping: FormulaNode
        var isDoubleBar: Bool
        var span: Range<Int>
    }

    /// The terms `node` stands for, as R's `EncodeVars`: `+` concatenates, `-` removes,
    /// `a:b` pairs every left term with every right term, `a*b` is `a + b + a:b`, `a/b` is
    /// `a + (all variables of a):b`; duplicates are dropped, the first kept. `1`, `0`, `-1`
    /// and `-0` set `algebra.hasIntercept`. Random-effects terms are appended to `random`,
    /// which is nil inside a random-effects term (they may not nest).
    private func terms(
        of node: FormulaNode, in algebra: inout TermAlgebra, sign: Sign?, random: inout [RandomSyntax]?
    ) throws(FormulaError) -> [ExpandedTerm] {
        switch node {
        case .variable(let name, let span):
            if expressions[name]?.functionName == "offset" {
                // R's terms(): an offset is not a term; it is added to the linear predictor.
                guard sign == .plus, random != nil else {
                    throw FormulaError(
                        random == nil ? "offset() cannot be part of a random-effects term; put it in the fixed part"
                            : "offset() must be added to the model ('+ offset(x)'), not removed or part of an interaction",
                        formula: text, span: span)
                }
                if !algebra.offsets.contains(where: { $0.label == name }) { algebra.offsets.append((name, span)) }
                return []
            }
            return [ExpandedTerm(variables: [algebra.index(of: name)], span: span)]

        case .intercept(let present, let span):
            guard let sign else {
                throw FormulaError(
                    "'\(present ? 1 : 0)' cannot be part of an interaction; "
                        + "add or remove the intercept as a term of its own, as in '0 + x'",
                    formula: text, span: span)
            }
            algebra.hasIntercept = present == (sign == .plus)
            return []

        case .parenthesized(let inner, _):
            return try terms(of: inner, in: &algebra, sign: sign, random: &random)

        case .random(let effects, let grouping, let isDoubleBar, let span):
            guard random != nil else {
                throw FormulaError(
                    "a random-effects term cannot be nested inside another", formula: text, span: span)
            }
            guard let sign else {
                throw FormulaError(
                    "a random-effects term cannot be part of an interaction", formula: text, span: span)
            }
            guard sign == .plus else {
                throw FormulaError(
                    "a random-effects term cannot be removed with '-'", formula: text, span: span)
            }
            random?.append(RandomSyntax(effects: effects, grouping: grouping, isDoubleBar: isDoubleBar, span: span))
            return []

        case .negation(let operand, _):
            // `- x` removes x from nothing; it matters only for the intercept (`-1`).
            algebra.removed += try terms(of: operand, in: &algebra, sign: sign?.flipped, random: &random)
            return []

        case .binary(let op, let lhs, let rhs, _):
            switch op {
            case .plus:
                let left = try terms(of: lhs, in: &algebra, sign: sign, random: &random)
                let right = try terms(of: rhs, in: &algebra, sign: sign, random: &random)
                return Self.unique(left + right)
            case .minus:
                let left = try terms(of: lhs, in: &algebra, sign: sign, random: &random)
                let right = try terms(of: rhs, in: &algebra, sign: sign?.flipped, random: &random)
                algebra.removed += right
                return left.filter { term in !right.contains { $0.variables == term.variables } }
            case .interaction, .crossing, .nesting:
                let left = try terms(of: lhs, in: &algebra, sign: nil, random: &random)
                let right = try terms(of: rhs, in: &algebra, sign: nil, random: &random)
                let span = node.span
                // R's CrossTerms and NestTerms lose everything when the left operand expands
                // to no terms (`(a - a)*b`, `-a/b`); keep to R.
                if op != .interaction && left.isEmpty { return [] }
                switch op {
                case .interaction:
                    return Self.unique(Self.interact(left, right, span: span))
                case .crossing:
                    return Self.unique(left + right + Self.interact(left, right, span: span))
                default:
                    let all = left.reduce(into: [Int]()) { $0 = ExpandedTerm.union($0, $1.variables) }
                    return Self.unique(left + Self.interact([ExpandedTerm(variables: all, span: span)], right, span: span))
                }
            }
        }
    }

    /// Every left term with every right term (R's `InteractTerms`), spanning `span`.
    private static func interact(_ left: [ExpandedTerm], _ right: [ExpandedTerm], span: Range<Int>) -> [ExpandedTerm] {
        var result: [ExpandedTerm] = []
        for l in left {
            for r in right {
                result.append(ExpandedTerm(variables: ExpandedTerm.union(l.variables, r.variables), span: span))
            }
        }
        return result
    }

    /// Drops repeated terms, keeping the first (R's `TrimRepeats`).
    private static func unique(_ terms: [ExpandedTerm]) -> [ExpandedTerm] {
        var result: [ExpandedTerm] = []
        for term in terms where !result.contains(where: { $0.variables == term.variables }) {
            result.append(term)
        }
        return result
    }

    // MARK: - Random-effects terms

    /// One written random-effects term as lme4's `findbars` lists it: `||` split into an
    /// intercept term and one `(0 + term | g)` per term, then each piece repeated for every
    /// level of a nested grouping `g1/g2` (innermost first).
    private func expand(_ term: RandomSyntax) throws(FormulaError) -> [RandomTerm] {
        var algebra = TermAlgebra()
        var nested: [RandomSyntax]? = nil
        let terms = try self.terms(of: term.effects, in: &algebra, sign: .plus, random: &nested)
        let effects = algebra.modelTerms(terms)
        if !effects.hasIntercept && effects.terms.isEmpty {
            throw FormulaError(
                "a random-effects term needs an intercept or a term before the bar",
                formula: text, span: term.effects.span)
        }
        let pieces: [ModelTerms]
        if term.isDoubleBar {
            pieces = (effects.hasIntercept ? [ModelTerms(hasIntercept: true, terms: [])] : [])
                + effects.terms.map { ModelTerms(hasIntercept: false, terms: [$0]) }
        } else {
            pieces = [effects]
        }
        let groupings = try self.groupings(of: term.grouping)
        return pieces.flatMap { piece in
            groupings.map { grouping in
                RandomTerm(effects: piece, grouping: grouping.names, span: term.span, groupingSpan: grouping.span)
            }
        }
    }

    /// The grouping factors a grouping expression stands for: `g` → `g`; `g1:g2` → `g1:g2`;
    /// `a/b/c` → `c:b:a`, `b:a`, `a` (lme4's `expandSlash`), each spanning the part of the
    /// text it comes from (`a/b/c`, `a/b`, `a`).
    private func groupings(of node: FormulaNode) throws(FormulaError) -> [(names: [String], span: Range<Int>)] {
        let levels = try nestingLevels(of: node)
        return (1...levels.count).reversed().map { depth in
            var names: [String] = []
            for level in levels[..<depth].reversed() {
                for name in level.names where !names.contains(name) {
                    names.append(name)
                }
            }
            return (names, levels[0].span.lowerBound..<levels[depth - 1].span.upperBound)
        }
    }

    /// The operands of a chain `g1/g2/…`, outermost first.
    private func nestingLevels(of node: FormulaNode) throws(FormulaError) -> [(names: [String], span: Range<Int>)] {
        if case .binary(.nesting, let lhs, let rhs, _) = node {
            return try nestingLevels(of: lhs) + [(try groupingNames(of: rhs), rhs.span)]
        }
        return [(try groupingNames(of: node), node.span)]
    }

    /// The columns of a grouping factor `g` or `g1:g2:…`.
    private func groupingNames(of node: FormulaNode) throws(FormulaError) -> [String] {
        switch node {
        case .variable(let name, let span):
            guard let call = expressions[name] else { return [name] }
            // `factor(g)` groups exactly as `g` does (lme4 makes every grouping variable a factor).
            if case .call(let function, let arguments, _) = call, function == "factor" || function == "as.factor",
               case .column(let column, _) = arguments[0].value {
                return [column]
            }
            throw FormulaError(
                "a grouping factor must be a column (or factor(column)), an interaction g1:g2, or nesting g1/g2",
                formula: text, span: span)
        case .parenthesized(let inner, _):
            return try groupingNames(of: inner)
        case .binary(.interaction, let lhs, let rhs, _):
            return try groupingNames(of: lhs) + groupingNames(of: rhs)
        case .binary(.nesting, _, _, let operatorSpan):
            throw FormulaError(
                "nesting '/' in a grouping factor must be outermost, as in g1/g2:g3; "
                    + "it cannot be inside parentheses or an interaction",
                formula: text, span: operatorSpan)
        case .binary(let op, _, _, let operatorSpan):
            let symbol = switch op {
            case .plus: "+"
            case .minus: "-"
            default: "*"
            }
            throw FormulaError(
                "'\(symbol)' cannot be used in a grouping factor; expected a column, "
                    + "an interaction g1:g2, or nesting g1/g2",
                formula: text, span: operatorSpan)
        case .negation(_, let span):
            throw FormulaError(
                "'-' cannot be used in a grouping factor; expected a column, "
                    + "an interaction g1:g2, or nesting g1/g2",
                formula: text, span: span.lowerBound..<span.lowerBound + 1)
        case .intercept(let present, let span):
            throw FormulaError(
                "expected a grouping factor (a column, g1:g2, or g1/g2), found '\(present ? 1 : 0)'",
                formula: text, span: span)
        case .random(_, _, _, let span):
            throw FormulaError(
                "a random-effects term cannot be nested inside another", formula: text, span: span)
        }
    }
}

/// A term during expansion: variable numbers (ascending, i.e. by first appearance) and the
/// text it comes from.
struct ExpandedTerm: Sendable, Equatable {
    var variables: [Int]
    var span: Range<Int>

    /// The ascending union of two ascending lists.
    static func union(_ a: [Int], _ b: [Int]) -> [Int] {
        Array(Set(a).union(b)).sorted()
    }
}

/// The variables of one model formula numbered by first appearance (R's `ExtractVars`), and
/// its intercept flag.
struct TermAlgebra {
    private(set) var names: [String] = []
    private var indices: [String: Int] = [:]
    var hasIntercept = true
    /// `offset(x)` terms, by label, with where each is written.
    var offsets: [(label: String, span: Range<Int>)] = []
    /// Terms removed with `-` (their columns are still the formula's, as in R's model frame).
    var removed: [ExpandedTerm] = []

    /// The number of `name`, assigning the next one on first sight.
    mutating func index(of name: String) -> Int {
        if let index = indices[name] { return index }
        indices[name] = names.count
        names.append(name)
        return names.count - 1
    }

    /// The terms ordered as R orders them (by degree, stably), with their variables named.
    func modelTerms(_ terms: [ExpandedTerm]) -> ModelTerms {
        let ordered = terms.enumerated()
            .sorted { ($0.element.variables.count, $0.offset) < ($1.element.variables.count, $1.offset) }
            .map { Term(variables: $0.element.variables.map { names[$0] }, span: $0.element.span) }
        return ModelTerms(hasIntercept: hasIntercept, terms: ordered)
    }
}

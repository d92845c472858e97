/// The data columns a formula refers to, and where.
extension Formula {
    /// Every column reference with the characters that name it, response first.
    /// The columns inside a function call (`log(Days + 1)` → `Days`) are listed where they
    /// are written.
    public var columnReferences: [(name: String, span: Range<Int>)] {
        var references = self.references(of: response, in: responseSpan)
        func add(_ names: [String], in span: Range<Int>) {
            for name in names { references += self.references(of: name, in: span) }
        }
        for term in fixed.terms { add(term.variables, in: term.span) }
        for term in removedTerms { add(term.variables, in: term.span) }
        for offset in offsets { references += expressions[offset]?.columnReferences ?? [] }
        for random in random {
            for term in random.effects.terms { add(term.variables, in: term.span) }
            add(random.grouping, in: random.groupingSpan)
        }
        return references
    }

    /// The columns a variable (a column or a function call's label) reads.
    func references(of variable: String, in span: Range<Int>) -> [(name: String, span: Range<Int>)] {
        if let expression = expressions[variable] { return expression.columnReferences }
        return [(variable, narrow(span, to: variable))]
    }

    /// The distinct columns the formula uses, in order of first reference.
    public var columnsUsed: [String] {
        var seen = Set<String>()
        return columnReferences.map(\.name).filter { seen.insert($0).inserted }
    }

    /// Columns used as grouping factors: always read as categorical.
    public var groupingColumns: Set<String> {
        Set(random.flatMap(\.grouping))
    }

    /// Columns read as categorical whatever their values look like: those used only as
    /// grouping factors. A column that is also the response or a covariate keeps its own type,
    /// as in R, where a grouping term makes a column a factor only inside that term
    /// (`Days + (1 | Days)` has one slope for `Days` and one intercept per day).
    public var factorColumns: Set<String> {
        var covariates = Set<String>()
        func add(_ variable: String) { for (name, _) in references(of: variable, in: 0..<0) { covariates.insert(name) } }
        add(response)
        offsets.forEach(add)
        for term in fixed.terms { term.variables.forEach(add) }
        for random in random { for term in random.effects.terms { term.variables.forEach(add) } }
        return groupingColumns.subtracting(covariates)
    }

    /// Variables that enter a model matrix (columns, or labels of ``expressions``): fixed-effects
    /// terms and the effects of random terms.
    public var modelVariables: Set<String> {
        Set(fixed.terms.flatMap(\.variables) + random.flatMap { $0.effects.terms.flatMap(\.variables) })
    }

    /// The part of `span` that spells `name` (the whole span when it is not found there).
    private func narrow(_ span: Range<Int>, to name: String) -> Range<Int> {
        let characters = Array(text)
        guard span.upperBound <= characters.count else { return span }
        let target = Array(name)
        var start = span.lowerBound
        while start + target.count <= span.upperBound {
            if Array(characters[start..<(start + target.count)]) == target { return start..<(start + target.count) }
            start += 1
        }
        return span
    }
}

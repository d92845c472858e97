/// lme4's checks of a model's data against its formula, with their messages: the one set that
/// ``ModelFrame`` (data in memory) and ``StreamingDesign``/``StreamingMixedModel`` (an `.lmmbin`
/// file read in chunks) both apply. Each check throws a ``FormulaError`` pointing into the
/// formula: at the column, the response, the random-effects term, or the whole formula.
struct DataChecks {
    let formula: Formula

    /// Every column the formula names is in the data. `loaded` tells a column that exists but
    /// was not read (`select`) from one that does not exist.
    func columnsExist(available names: [String], isLoaded: (String) -> Bool, source: String) throws {
        let available = names.joined(separator: ", ")
        for (name, span) in formula.columnReferences where !isLoaded(name) {
            let message = names.contains(name)
                ? "column '\(name)' was not loaded from \(source)"
                : "unknown column '\(name)'; available columns: \(available)"
            throw FormulaError(message, formula: formula.text, span: span)
        }
    }

    /// The response column holds numbers.
    func responseIsNumeric(_ isNumeric: Bool) throws {
        guard isNumeric else { throw categoricalResponse() }
    }

    /// The error for a categorical response column; `firstText` (in file `source`, field
    /// number `column`) is the field that made the column categorical, when known.
    func categoricalResponse(firstText: CellLocation? = nil, source: String? = nil, column: Int? = nil) -> FormulaError {
        let location = firstText.map { cell in
            " (\(source.map { $0 + ":" } ?? "line ")\(cell.line)\(column.map { ":\($0)" } ?? ""): \"\(cell.text)\" is not a number)"
        } ?? ""
        return FormulaError("the response '\(formula.response)' must be numeric, but the column is categorical\(location)",
                            formula: formula.text, span: formula.responseSpan)
    }

    /// Some row has no missing value in the columns the formula uses (na.omit).
    func rowsRemain(_ n: Int) throws {
        if n == 0 {
            throw FormulaError("no rows left: every row has a missing value in a column the formula uses",
                               formula: formula.text, span: wholeFormula)
        }
    }

    /// The response over the used rows varies and is finite.
    func response(_ y: [Double]) throws {
        let first = y.first
        try response(constant: first.flatMap { first in y.allSatisfy { $0 == first } ? first : nil },
                     firstNonFinite: y.first { !$0.isFinite })
    }

    /// The response varies and is finite: `constant` is its value when every used row has the
    /// same one, `firstNonFinite` its first infinite value in row order.
    func response(constant: Double?, firstNonFinite: Double?) throws {
        if let constant {
            throw FormulaError("the response '\(formula.response)' is constant (every used row is \(RFormat.number(constant))); there is no variance to model",
                               formula: formula.text, span: formula.responseSpan)
        }
        if let bad = firstNonFinite {
            throw FormulaError("the response '\(formula.response)' has a non-finite value (\(bad))",
                               formula: formula.text, span: formula.responseSpan)
        }
    }

    /// A categorical variable of `X` or of a term's effects has at least 2 levels in the used
    /// rows (contrasts need them).
    func contrastLevels(of name: String, count: Int, span expressionSpan: Range<Int>? = nil) throws {
        if count < 2 {
            let span = expressionSpan ?? formula.columnReferences.first { $0.name == name }?.span ?? 0..<0
            throw FormulaError("categorical variable '\(name)' has only \(count) level in the rows used; contrasts need at least 2",
                               formula: formula.text, span: span)
        }
    }

    /// More observations than fixed-effect parameters.
    func observations(_ n: Int, fixedEffects p: Int) throws {
        if n <= p {
            throw FormulaError("\(n) observation\(n == 1 ? "" : "s") for \(p) fixed effects: a mixed model needs more observations than fixed-effect parameters",
                               formula: formula.text, span: wholeFormula)
        }
    }

    /// The formula has a random-effects term.
    func hasRandomTerms() throws {
        if formula.random.isEmpty {
            throw FormulaError("no random-effects terms: add one such as (1 | g) (for a model without random effects use lm)",
                               formula: formula.text, span: wholeFormula)
        }
    }

    /// A random-effects term has at least one effect left of its bar.
    func termHasEffects(_ count: Int, span: Range<Int>) throws {
        if count == 0 {
            throw FormulaError("random-effects term has no effects (nothing left of the bar)",
                               formula: formula.text, span: span)
        }
    }

    /// lme4's `checkNlevels` and `check.nobs.vs.nRE` (both errors by default) for one term with
    /// `effects` effects per level of its grouping factor of `levels` used levels.
    func identifiable(groupingName: String, levels: Int, effects: Int, span: Range<Int>, n: Int) throws {
        if levels < 2 {
            throw FormulaError(
                "grouping factor '\(groupingName)' has \(levels) level; it needs at least 2 sampled levels",
                formula: formula.text, span: span)
        }
        if levels >= n {
            throw FormulaError(
                "grouping factor '\(groupingName)' has \(levels) levels for \(n) observations; the number of levels must be less than the number of observations",
                formula: formula.text, span: span)
        }
        if levels * effects >= n {
            throw FormulaError(
                "term has \(levels * effects) random effects (\(effects) × \(levels) levels) for \(n) observations; the random-effects parameters and the residual variance are unidentifiable",
                formula: formula.text, span: span)
        }
    }

    private var wholeFormula: Range<Int> { 0..<formula.text.count }
}

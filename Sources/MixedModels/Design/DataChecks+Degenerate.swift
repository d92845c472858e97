/// Data that no method can fit, caught before fitting so that every method says the same
/// thing (instead of a non-finite log-likelihood, a hang, or a factorization failure deep in
/// one algorithm):
/// - numbers whose squares overflow or underflow a double (y × 1e200): every method forms
///   sums of squares;
/// - a response that the fixed effects, or one random term's effects within each level of its
///   grouping factor, reproduce exactly (y = 3x + 1; y constant within each group): the residual
///   variance is then 0 and the likelihood has no maximum (lme4 stops in its factorization or
///   returns σ = 0).
extension DataChecks {
    /// Largest magnitude of a value whose square, summed over up to 10¹⁰ rows, stays finite
    /// with room for the algorithms' products; and the smallest non-zero one whose square is
    /// still a normal double.
    static let largestMagnitude = 1e140
    static let smallestMagnitude = 1e-140

    /// The response and the columns of `X` are within ``largestMagnitude`` and, when not all
    /// zero, reach ``smallestMagnitude``.
    func magnitudes(y: [Double], X: Matrix, names: [String]) throws {
        try magnitude(of: y, what: "the response '\(formula.response)'", span: formula.responseSpan)
        for j in 0..<X.columns {
            let span = formula.columnReferences.first { $0.name == names[j] }?.span ?? 0..<formula.text.count
            try X.values[(j * X.rows)..<((j + 1) * X.rows)].withUnsafeBufferPointer { column in
                try magnitude(of: column, what: "the fixed-effect column '\(names[j])'", span: span)
            }
        }
    }

    /// One variable's magnitude check (see ``magnitudes(y:X:names:)``).
    func magnitude<C: Collection>(of values: C, what: String, span: Range<Int>) throws where C.Element == Double {
        try magnitude(largest: values.reduce(0) { max($0, abs($1)) }, what: what, span: span)
    }

    /// The check for a variable whose largest |value| is `largest`.
    func magnitude(largest: Double, what: String, span: Range<Int>) throws {
        if largest > Self.largestMagnitude {
            throw FormulaError("\(what) is too large to fit: it reaches \(RFormat.number(largest)), and sums of squares "
                               + "beyond 1e280 overflow a double; rescale it (divide by a power of ten)",
                               formula: formula.text, span: span)
        }
        if largest > 0, largest < Self.smallestMagnitude {
            throw FormulaError("\(what) is too small to fit: its largest value is \(RFormat.number(largest)), and squares "
                               + "below 1e-280 underflow a double; rescale it (multiply by a power of ten)",
                               formula: formula.text, span: span)
        }
    }

    /// The response is not reproduced exactly by the fixed effects, nor by any one random
    /// term's effects within each level of its grouping factor.
    func notExactlyFitted(y: [Double], X: Matrix, terms: [RandomEffectsTerm]) throws {
        let n = y.count
        guard n > 0 else { return }
        let mean = y.reduce(0, +) / Double(n)
        let spread = y.reduce(0) { $0 + ($1 - mean) * ($1 - mean) }
        guard spread > 0 else { return }   // a constant response has its own message
        // Residual sums of squares below this are rounding error: the fit is exact.
        let exact = 1e-20 * spread

        // y on X, by modified Gram–Schmidt; centred when X has a constant column (the same
        // space, and rounding relative to the spread rather than to the mean). A scope of its
        // own: its n-vectors are freed before the terms' checks.
        do {
            let hasConstant = (0..<X.columns).contains { j in
                let first = X.values[j * n]
                return first != 0 && (0..<n).allSatisfy { X.values[j * n + $0] == first }
            }
            var residual = hasConstant ? y.map { $0 - mean } : y
            // The constant's unit vector (1/√n in every row) comes first; it is not stored.
            let unit = 1 / Double(n).squareRoot()
            func removeConstant(_ v: inout [Double]) {
                guard hasConstant else { return }
                var dot = 0.0
                for i in 0..<n { dot += unit * v[i] }
                for i in 0..<n { v[i] -= dot * unit }
            }
            var basis: [[Double]] = []
            for j in 0..<X.columns {
                var v = X.column(j)
                removeConstant(&v)
                for q in basis {
                    var dot = 0.0
                    for i in 0..<n { dot += q[i] * v[i] }
                    for i in 0..<n { v[i] -= dot * q[i] }
                }
                let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
                guard norm > 1e-10 * (X.values[(j * n)..<((j + 1) * n)].reduce(0) { $0 + $1 * $1 }.squareRoot()) else { continue }
                for i in 0..<n { v[i] /= norm }
                basis.append(v)
            }
            removeConstant(&residual)
            for q in basis {
                var dot = 0.0
                for i in 0..<n { dot += q[i] * residual[i] }
                for i in 0..<n { residual[i] -= dot * q[i] }
            }
            if residual.reduce(0, { $0 + $1 * $1 }) <= exact {
                throw FormulaError("the fixed effects reproduce the response '\(formula.response)' exactly (y = Xβ in every used row): "
                                   + "the residual variance would be 0, and a mixed model has no maximum likelihood then; "
                                   + "the response needs noise (is it computed from the covariates?)",
                                   formula: formula.text, span: formula.responseSpan)
            }
        }

        // y within each level of each term's grouping factor, on the term's effects (and, for
        // a term of one effect, together with the fixed effects: y = 3x + 1 + f(g)).
        for term in terms {
            let alone = withinLevelResidual(y, mean: mean, term)
            var withX = Double.infinity
            if term.effectCount == 1 && alone > exact {
                let columns = X.values.withUnsafeBufferPointer { values in
                    (0..<X.columns).map { j in Self.withinLevel(UnsafeBufferPointer(rebasing: values[(j * n)..<((j + 1) * n)]), term) }
                }
                withX = Self.residualSumOfSquares(Self.withinLevel(y, term), on: columns)
            }
            guard alone <= exact || withX <= exact else { continue }
            let how = alone > exact ? "the fixed effects plus a constant for each level"
                : term.effectNames == ["(Intercept)"] ? "constant within each level"
                : "an exact function of the term's effects within each level"
            throw FormulaError("the response '\(formula.response)' is \(how) of '\(term.groupingName)': the model "
                               + "reproduces it exactly, so the residual variance would be 0 and a mixed model has no "
                               + "maximum likelihood then",
                               formula: formula.text, span: term.span)
        }
    }

    /// `v` minus its projection on a one-effect term's column within each level.
    private static func withinLevel(_ v: [Double], _ term: RandomEffectsTerm) -> [Double] {
        v.withUnsafeBufferPointer { withinLevel($0, term) }
    }

    /// `v` (a column in place, not a copy) minus its projection on a one-effect term's column
    /// within each level.
    private static func withinLevel(_ v: UnsafeBufferPointer<Double>, _ term: RandomEffectsTerm) -> [Double] {
        let n = v.count
        var zz = [Double](repeating: 0, count: term.levelCount), zv = zz
        for i in 0..<n {
            let l = Int(term.codes[i]), z = term.effects.values[i]
            zz[l] += z * z
            zv[l] += z * v[i]
        }
        return (0..<n).map { i in
            let l = Int(term.codes[i])
            return v[i] - (zz[l] > 0 ? zv[l] / zz[l] : 0) * term.effects.values[i]
        }
    }

    /// The residual sum of squares of `y` on `columns` (modified Gram–Schmidt; columns that
    /// depend on earlier ones are skipped).
    /// `y` and `columns` are consumed: the residual and the basis are computed in their place.
    private static func residualSumOfSquares(_ y: consuming [Double], on columns: consuming [[Double]]) -> Double {
        var residual = consume y
        var basis: [[Double]] = []
        for k in columns.indices {
            var v = columns[k]
            columns[k] = []     // v the only owner: orthogonalized in place
            let original = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
            for q in basis {
                var dot = 0.0
                for i in v.indices { dot += q[i] * v[i] }
                for i in v.indices { v[i] -= dot * q[i] }
            }
            let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
            guard norm > 1e-10 * original else { continue }
            for i in v.indices { v[i] /= norm }
            basis.append(v)
        }
        for q in basis {
            var dot = 0.0
            for i in residual.indices { dot += q[i] * residual[i] }
            for i in residual.indices { residual[i] -= dot * q[i] }
        }
        return residual.reduce(0) { $0 + $1 * $1 }
    }

    /// The residual sum of squares of y − `mean` regressed on `term`'s effects separately
    /// within each level.
    private func withinLevelResidual(_ y: [Double], mean: Double, _ term: RandomEffectsTerm) -> Double {
        let n = y.count, k = term.effectCount, levels = term.levelCount
        if k == 1 {
            let centred = y.map { $0 - mean }
            return Self.withinLevel(centred, term).reduce(0) { $0 + $1 * $1 }
        }
        // Rows by level (counting sort), then Gram–Schmidt on the level's k columns.
        var starts = [Int](repeating: 0, count: levels + 1)
        for code in term.codes { starts[Int(code) + 1] += 1 }
        for l in 0..<levels { starts[l + 1] += starts[l] }
        var next = starts
        var order = [Int](repeating: 0, count: n)
        for i in 0..<n {
            let l = Int(term.codes[i])
            order[next[l]] = i
            next[l] += 1
        }
        var rss = 0.0
        for l in 0..<levels {
            let rows = order[starts[l]..<starts[l + 1]]
            let columns = (0..<k).map { a in rows.map { term.effects.values[a * n + $0] } }
            rss += Self.residualSumOfSquares(rows.map { y[$0] - mean }, on: columns)
        }
        return rss
    }
}

import MixedModels

extension DataSpec {
    /// Largest number of random-effect values (levels or level combinations × effects) drawn
    /// up front: 400 MB of doubles.
    static let maxRandomEffectValues = 50_000_000

    /// Checks everything that could make generation fail or the truth wrong, before any file
    /// is created: names, counts, standard deviations, covariance matrices (positive
    /// semi-definite), labels, nesting.
    /// - Throws: ``InputError`` naming the offending field, with `source` as the file.
    func validate(source: String) throws {
        func fail(_ path: String, _ message: String) -> InputError { InputError("\(path): \(message)", file: source) }

        guard rows >= 1 else { throw fail("rows", "the number of rows must be at least 1, got \(rows)") }
        guard rows <= 1 << 40 else { throw fail("rows", "at most 2^40 rows, got \(rows)") }
        guard (1...Int(Int32.max)).contains(rowsPerChunk) else { throw fail("rowsPerChunk", "must be between 1 and \(Int32.max)") }
        guard seed <= UInt64(Int64.max) else { throw fail("seed", "must be between 0 and \(Int64.max)") }
        guard intercept.isFinite else { throw fail("intercept", "must be a finite number") }
        guard sigma.isFinite, sigma > 0 else {
            throw fail("sigma", "the residual standard deviation must be positive, got \(sigma)")
        }

        // Names: one namespace for the response, covariates and factors (they are CSV columns).
        var names: Set<String> = []
        func checkName(_ name: String, _ path: String) throws {
            guard Self.isColumnName(name) else {
                throw fail(path, "'\(name)' is not a usable column name: use a letter followed by letters, digits, '.' or '_'")
            }
            guard names.insert(name).inserted else { throw fail(path, "the name '\(name)' is used twice") }
        }
        try checkName(response, "response")
        for (i, covariate) in covariates.enumerated() {
            let path = "covariates[\(i)]"
            try checkName(covariate.name, path + ".name")
            guard covariate.coefficient.isFinite else { throw fail(path + ".coefficient", "must be a finite number") }
            guard covariate.mean.isFinite else { throw fail(path + ".mean", "must be a finite number") }
            guard covariate.sd.isFinite, covariate.sd > 0 else {
                throw fail(path + ".sd", "the standard deviation of '\(covariate.name)' must be positive, got \(covariate.sd)")
            }
        }
        for (i, factor) in factors.enumerated() {
            try checkName(factor.name, "factors[\(i)].name")
        }
        for (i, factor) in factors.enumerated() {
            try validate(factor, path: "factors[\(i)]", fail: fail)
        }
        _ = try factorOrder(source: source)

        // Random-effects terms.
        for (i, term) in random.enumerated() {
            let path = "random[\(i)]"
            let groups = term.groupFactors
            for name in groups {
                guard factors.contains(where: { $0.name == name }) else {
                    throw fail(path + ".group", "'\(name)' is not a factor; the factors are \(factors.map(\.name).joined(separator: ", "))")
                }
            }
            guard Set(groups).count == groups.count else { throw fail(path + ".group", "a factor appears twice in '\(term.group)'") }
            guard !term.effects.isEmpty else { throw fail(path + ".effects", "needs at least one effect") }
            guard Set(term.effects).count == term.effects.count else { throw fail(path + ".effects", "an effect appears twice") }
            for (e, effect) in term.effects.enumerated() {
                if effect == "(Intercept)" {
                    guard e == 0 else { throw fail(path + ".effects", "list \"(Intercept)\" first, as lme4 orders effects") }
                } else if !covariates.contains(where: { $0.name == effect }) {
                    throw fail("\(path).effects[\(e)]", "'\(effect)' is neither \"(Intercept)\" nor a numeric covariate")
                }
            }
            let k = term.effects.count
            switch term.scale {
            case .sd(let sd, let correlation):
                guard sd.count == k else { throw fail(path + ".sd", "expected \(k) standard deviations (one per effect), got \(sd.count)") }
                for (e, value) in sd.enumerated() where !(value.isFinite && value >= 0) {
                    throw fail("\(path).sd[\(e)]", "the standard deviation of '\(term.effects[e])' for '\(term.group)' must not be negative, got \(value)")
                }
                if let correlation {
                    try checkSquare(correlation, k, path + ".correlation", fail: fail)
                    for r in 0..<k {
                        guard correlation[r][r] == 1 else { throw fail(path + ".correlation", "the diagonal must be 1") }
                        for s in 0..<k where abs(correlation[r][s]) > 1 {
                            throw fail(path + ".correlation", "correlations must be between -1 and 1, got \(correlation[r][s])")
                        }
                    }
                }
            case .covariance(let sigma):
                try checkSquare(sigma, k, path + ".covariance", fail: fail)
                for r in 0..<k where sigma[r][r] < 0 {
                    throw fail(path + ".covariance", "the variance of '\(term.effects[r])' for '\(term.group)' must not be negative, got \(sigma[r][r])")
                }
            }
            guard CovarianceFactor(term.covariance) != nil else {
                throw fail(path, "the covariance matrix of '\(term.group)' is not positive semi-definite")
            }
            let combinations = randomEffectLevels(groups: groups)
            guard combinations * k <= Self.maxRandomEffectValues else {
                throw fail(path + ".group", "'\(term.group)' has \(combinations) level combinations; at most \(Self.maxRandomEffectValues / k) are supported")
            }
        }
    }

    private func checkSquare(_ matrix: [[Double]], _ k: Int, _ path: String, fail: (String, String) -> InputError) throws {
        guard matrix.count == k, matrix.allSatisfy({ $0.count == k }) else {
            throw fail(path, "expected a \(k) × \(k) matrix (one row and column per effect)")
        }
        for r in 0..<k {
            for s in 0..<k {
                guard matrix[r][s].isFinite else { throw fail(path, "must hold finite numbers") }
                guard matrix[r][s] == matrix[s][r] else { throw fail(path, "must be symmetric") }
            }
        }
    }

    private func validate(_ factor: FactorSpec, path: String, fail: (String, String) -> InputError) throws {
        guard factor.levels >= 1 else {
            throw fail(path + ".levels", "factor '\(factor.name)' must have at least 1 level, got \(factor.levels)")
        }
        guard factor.levels <= Int(Int32.max) else { throw fail(path + ".levels", "at most \(Int32.max) levels") }
        if let labels = factor.labels {
            guard factor.prefix == nil else { throw fail(path, "give either \"labels\" or \"prefix\", not both") }
            for (k, label) in labels.enumerated() {
                guard Self.isLabel(label) else {
                    throw fail("\(path).labels[\(k)]", "'\(label)' is not a usable label: use a letter followed by letters and digits, not a word R reads as a number or logical (NA, Inf, TRUE, …)")
                }
                if k > 0 {
                    guard labels[k - 1].lowercased().utf8.lexicographicallyPrecedes(label.lowercased().utf8) else {
                        throw fail(path + ".labels", "labels must be distinct and in R's sorted order (case-insensitive alphabetical; the first is the reference level): '\(labels[k - 1])' comes before '\(label)'")
                    }
                }
            }
        } else {
            guard Self.isLabel(factor.labelPrefix, prefix: true) else {
                throw fail(path + ".prefix", "'\(factor.labelPrefix)' is not a usable label prefix: use a letter followed by letters and digits")
            }
        }
        switch factor.distribution {
        case .uniform: break
        case .zipf(let s):
            guard s.isFinite, s >= 0 else { throw fail(path + ".exponent", "the Zipf exponent must be a non-negative number, got \(s)") }
        case .probabilities(let p):
            guard factor.parent == nil else { throw fail(path, "a nested factor is drawn uniformly or by Zipf within its parent, not with \"probabilities\"") }
            guard p.count == factor.levels else { throw fail(path + ".probabilities", "expected \(factor.levels) probabilities (one per level), got \(p.count)") }
            guard p.allSatisfy({ $0.isFinite && $0 >= 0 }), p.reduce(0, +) > 0 else {
                throw fail(path + ".probabilities", "probabilities must be non-negative with a positive sum")
            }
        }
        if let parentName = factor.parent {
            guard parentName != factor.name else { throw fail(path + ".parent", "a factor cannot be nested in itself") }
            guard let parent = factors.first(where: { $0.name == parentName }) else {
                throw fail(path + ".parent", "'\(parentName)' is not a factor")
            }
            guard parent.levels <= factor.levels else {
                throw fail(path + ".parent", "'\(factor.name)' (\(factor.levels) levels) is nested in '\(parentName)' (\(parent.levels) levels), which needs at least as many levels in the child as in the parent")
            }
        }
        if let coefficients = factor.coefficients {
            guard factor.levels >= 2 else { throw fail(path + ".coefficients", "a factor with fixed effects needs at least 2 levels") }
            let labels = LevelLabels(factor)
            let reference = labels.label(0)
            guard coefficients[reference] == nil else {
                throw fail(path + ".coefficients", "'\(reference)' is the reference level (the first): it has no coefficient")
            }
            for code in 1..<factor.levels {
                guard let value = coefficients[labels.label(code)] else {
                    throw fail(path + ".coefficients", "missing the coefficient of level '\(labels.label(code))'")
                }
                guard value.isFinite else { throw fail(path + ".coefficients", "'\(labels.label(code))' must be a finite number") }
            }
            if coefficients.count != factor.levels - 1, let unknown = coefficients.keys.sorted().first(where: { labels.code(of: $0) == nil }) {
                throw fail(path + ".coefficients", "'\(unknown)' is not a level of '\(factor.name)'")
            }
        }
    }

    /// Factor indices with every parent before its children.
    /// - Throws: ``InputError`` when nesting is circular.
    func factorOrder(source: String) throws -> [Int] {
        var order: [Int] = []
        var state = [Int](repeating: 0, count: factors.count)    // 0 new, 1 visiting, 2 done
        func visit(_ i: Int) throws {
            if state[i] == 2 { return }
            guard state[i] == 0 else {
                throw InputError("factors: nesting of '\(factors[i].name)' is circular", file: source)
            }
            state[i] = 1
            if let parent = factors[i].parent, let p = factors.firstIndex(where: { $0.name == parent }) { try visit(p) }
            state[i] = 2
            order.append(i)
        }
        for i in factors.indices { try visit(i) }
        return order
    }

    /// Whether factor `ancestor` is a parent, grandparent, … of factor `descendant`.
    func isAncestor(_ ancestor: Int, of descendant: Int) -> Bool {
        var current = descendant
        var steps = 0
        while let parent = factors[current].parent, let p = factors.firstIndex(where: { $0.name == parent }), steps < factors.count {
            if p == ancestor { return true }
            current = p
            steps += 1
        }
        return false
    }

    /// The factors of a grouping that determine its level: those that are not ancestors of
    /// another factor of the grouping (a class determines its school).
    func keyFactors(groups: [String]) -> [Int] {
        let indices = groups.compactMap { name in factors.firstIndex { $0.name == name } }
        return indices.filter { a in !indices.contains { b in b != a && isAncestor(a, of: b) } }
    }

    /// Number of possible levels of a grouping (the product over its key factors).
    func randomEffectLevels(groups: [String]) -> Int {
        keyFactors(groups: groups).reduce(1) { product, f in
            let (value, overflow) = product.multipliedReportingOverflow(by: factors[f].levels)
            return overflow ? .max : value
        }
    }

    /// A name R's `read.csv` keeps as is and the formula parser reads as a column.
    static func isColumnName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, first.isASCIILetter else { return false }
        let reserved: Set<String> = ["if", "else", "repeat", "while", "function", "for", "next", "break", "in",
                                     "TRUE", "FALSE", "NULL", "Inf", "NaN", "NA", "NA_integer_", "NA_real_", "NA_character_"]
        return !reserved.contains(name)
            && name.unicodeScalars.allSatisfy { $0.isASCIILetter || $0.isASCIIDigit || $0 == "." || $0 == "_" }
    }

    /// A level label R reads as text and sorts as this program does: a letter, then letters
    /// and digits, and not a word R's `type.convert` turns into a number or logical.
    static func isLabel(_ label: String, prefix: Bool = false) -> Bool {
        guard let first = label.unicodeScalars.first, first.isASCIILetter else { return false }
        guard label.unicodeScalars.allSatisfy({ $0.isASCIILetter || $0.isASCIIDigit }) else { return false }
        if prefix { return true }
        return !["na", "nan", "inf", "infinity", "true", "false", "t", "f"].contains(label.lowercased())
    }
}

extension Unicode.Scalar {
    var isASCIILetter: Bool { ("a"..."z").contains(self) || ("A"..."Z").contains(self) }
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}

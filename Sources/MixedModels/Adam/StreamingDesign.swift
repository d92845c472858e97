/// A formula resolved against the columns of an `.lmmbin` file, for fitting chunk by chunk —
/// the streaming counterpart of ``ModelFrame``: the response, `X` and every random term's
/// grouping factor and effects, with level sets fixed for the whole file (a chunk never drops
/// a level that it happens not to contain), and the same checks and messages as lme4.
///
/// Rows with a missing value in a column the formula uses are skipped (na.omit). A level pass
/// over the file finds the levels of categorical variables that complete rows use (R drops the
/// others before building contrasts) and the combinations that occur in interaction grouping
/// factors; it is skipped when the formula has neither.
struct StreamingDesign: Sendable {
    /// One random-effects term, in formula order until ``ordered(levelCounts:)``.
    struct Term: Sendable {
        let groupingName: String
        /// The grouping factor's columns (one, or several for an interaction), by name.
        let groupingColumns: [String]
        let span: Range<Int>
        let grouping: GroupingFactor
        let effects: ModelColumns

        var effectCount: Int { effects.count }
    }

    let formula: Formula
    /// The file's name, for messages and the summary.
    let source: String
    /// File column of the response (−1 when the response is a function call).
    let response: Int
    /// The formula's function calls, evaluated chunk by chunk.
    let expressions: StreamingExpressions
    /// File columns that the formula uses: a row missing any of them is skipped.
    let usedColumns: [Int]
    private(set) var fixed: ModelColumns
    private(set) var terms: [Term]
    /// The formula's variables, by name (factors with the levels complete rows use).
    let variables: [String: ModelColumns.VariableSource]

    /// Resolves `formula` against the columns of `reader`.
    /// - Throws: ``FormulaError`` (pointing into the formula) for an unknown column, a
    ///   categorical response, a numeric grouping column, a categorical variable with one level
    ///   or a term with no effects; ``InputError`` for a chunk that cannot be read.
    init(formula: Formula, reader: LMMBinaryReader) throws {
        self.formula = formula
        source = FileIO.fileName(reader.path)
        let columns = reader.columns
        let index = Dictionary(uniqueKeysWithValues: columns.enumerated().map { ($1.name, $0) })
        let checks = DataChecks(formula: formula)
        try checks.columnsExist(available: columns.map(\.name), isLoaded: { index[$0] != nil }, source: source)
        try StreamingExpressions.check(formula, numericColumns: Set(columns.filter { $0.kind == .float64 }.map(\.name)))
        var expressions = StreamingExpressions(expressions: formula.expressions, columnIndex: index, formula: formula.text)
        try expressions.computeScaleStatistics(reader)
        self.expressions = expressions
        response = index[formula.response] ?? -1
        try checks.responseIsNumeric(formula.expressions[formula.response] != nil || columns[response].kind == .float64)
        try checks.hasRandomTerms()
        for random in formula.random {
            for name in random.grouping where columns[index[name]!].kind != .factor {
                if !formula.factorColumns.contains(name) {
                    throw FormulaError("'\(name)' is both a numeric covariate and a grouping factor; --method adam cannot use one "
                                       + "numeric column as both (add a copy of the column to group by, or use --method exact)",
                                       formula: formula.text, span: random.groupingSpan)
                }
                throw FormulaError("grouping column '\(name)' is stored as numbers in \(source); --method adam needs it "
                                   + "as a factor column (convert the CSV with it categorical)",
                                   formula: formula.text, span: random.groupingSpan)
            }
        }
        usedColumns = formula.columnsUsed.map { index[$0]! }

        // Levels used by complete rows: categorical variables and interaction groupings.
        let factorVariables = formula.modelVariables.filter { index[$0].map { columns[$0].kind == .factor } ?? false }.sorted()
        let interactions = formula.random.indices.filter { formula.random[$0].grouping.count > 1 }
        var usedCodes: [String: [Bool]] = [:]
        var usedKeys: [Int: Set<Int64>] = [:]
        if !factorVariables.isEmpty || !interactions.isEmpty {
            (usedCodes, usedKeys) = try Self.levelPass(reader, usedColumns: usedColumns, index: index,
                                                       factorVariables: factorVariables, formula: formula,
                                                       interactions: interactions)
        }
        if !formula.expressions.isEmpty {
            // One pass: every call's value on every complete row, so that a value outside a
            // function's domain (log of 0) is an error before fitting, with its row.
            let kinds = columns.map(\.kind)
            var chunk = LMMBinaryChunk()
            for c in 0..<reader.chunkCount {
                try reader.readChunk(c, into: &chunk)
                let rows = Self.completeRows(chunk, usedColumns: usedColumns, kinds: kinds)
                for label in formula.expressions.keys.sorted() { _ = try expressions.values(label, chunk, rows: rows) }
            }
        }

        var variables: [String: ModelColumns.VariableSource] = [:]
        for name in formula.modelVariables {
            if formula.expressions[name] != nil {
                var source = ModelColumns.VariableSource(column: -1, levelOfCode: nil, levels: [])
                source.call = (name, expressions)
                variables[name] = source
                continue
            }
            let column = index[name]!
            guard let used = usedCodes[name] else {
                variables[name] = ModelColumns.VariableSource(column: column, levelOfCode: nil, levels: [])
                continue
            }
            let labels = reader.levels(of: name)!
            let order = LMMBinaryReader.rOrder(labels)
            var levelOfCode = [Int32](repeating: -1, count: labels.count)
            var levels: [String] = []
            for code in order where used[code] {
                levelOfCode[code] = Int32(levels.count)
                levels.append(labels[code])
            }
            try checks.contrastLevels(of: name, count: levels.count)
            variables[name] = ModelColumns.VariableSource(column: column, levelOfCode: levelOfCode, levels: levels)
        }
        self.variables = variables
        fixed = ModelColumns(formula.fixed, variables: variables)
        var terms: [Term] = []
        for (t, random) in formula.random.enumerated() {
            let effects = ModelColumns(random.effects, variables: variables)
            try checks.termHasEffects(effects.count, span: random.span)
            let grouping: GroupingFactor
            if random.grouping.count == 1 {
                grouping = GroupingFactor(column: index[random.grouping[0]]!, fileLabels: reader.levels(of: random.grouping[0])!)
            } else {
                grouping = GroupingFactor(columns: random.grouping.map { index[$0]! },
                                          fileLabels: random.grouping.map { reader.levels(of: $0)! },
                                          usedKeys: usedKeys[t] ?? [])
            }
            terms.append(Term(groupingName: random.groupingName, groupingColumns: random.grouping, span: random.span,
                              grouping: grouping, effects: effects))
        }
        self.terms = terms
    }

    /// Drops aliased fixed-effect columns (indices into `fixed.names`).
    mutating func keepFixedColumns(_ kept: [Int]) { fixed.keep(kept) }

    /// The terms in lme4's order, given each term's number of used levels (in formula order),
    /// and the permutation applied (new position → formula position).
    mutating func ordered(levelCounts: [Int]) -> [Int] {
        let order = TermConventions.order(levelCounts: levelCounts)
        terms = order.map { terms[$0] }
        return order
    }

    /// lme4's group labels (``TermConventions/labels(groupingNames:)``).
    var termLabels: [String] { TermConventions.labels(groupingNames: terms.map(\.groupingName)) }

    /// Indices (into the chunk) of the rows with no missing value in `usedColumns`; nil when
    /// every row is complete (the chunk is then used as it is).
    static func completeRows(_ chunk: LMMBinaryChunk, usedColumns: [Int], kinds: [LMMBinaryColumn.Kind]) -> [Int32]? {
        var missing = false
        for column in usedColumns {
            if kinds[column] == .float64 {
                missing = chunk.doubles[column].withUnsafeBufferPointer { values in
                    var found = false
                    for value in values { found = found || value.isNaN }
                    return found
                }
            } else {
                missing = chunk.codeArrays[column].withUnsafeBufferPointer { codes in
                    var found = false
                    for code in codes { found = found || code < 0 }
                    return found
                }
            }
            if missing { break }
        }
        guard missing else { return nil }
        var rows: [Int32] = []
        rows.reserveCapacity(chunk.rowCount)
        outer: for r in 0..<chunk.rowCount {
            for column in usedColumns {
                if kinds[column] == .float64 ? chunk.doubles[column][r].isNaN : chunk.codeArrays[column][r] < 0 { continue outer }
            }
            rows.append(Int32(r))
        }
        return rows
    }

    /// One pass over the file: which codes of each categorical variable, and which combinations
    /// of each interaction grouping factor (by term index), complete rows use.
    private static func levelPass(_ reader: LMMBinaryReader, usedColumns: [Int], index: [String: Int],
                                  factorVariables: [String], formula: Formula,
                                  interactions: [Int]) throws -> ([String: [Bool]], [Int: Set<Int64>]) {
        let kinds = reader.columns.map(\.kind)
        var used: [String: [Bool]] = [:]
        for name in factorVariables { used[name] = [Bool](repeating: false, count: reader.levels(of: name)!.count) }
        var keys: [Int: Set<Int64>] = [:]
        var keyParts: [Int: (columns: [Int], ranks: [[Int32]], radix: [Int64])] = [:]
        for t in interactions {
            let names = formula.random[t].grouping
            let labels = names.map { reader.levels(of: $0)! }
            let ranks = labels.map { labels -> [Int32] in
                let order = LMMBinaryReader.rOrder(labels)
                var rank = [Int32](repeating: 0, count: order.count)
                for (position, code) in order.enumerated() { rank[code] = Int32(position) }
                return rank
            }
            keyParts[t] = (names.map { index[$0]! }, ranks, GroupingFactor.radix(levelCounts: labels.map(\.count)))
            keys[t] = []
        }
        var chunk = LMMBinaryChunk()
        for c in 0..<reader.chunkCount {
            try reader.readChunk(c, into: &chunk)
            let rows = completeRows(chunk, usedColumns: usedColumns, kinds: kinds)
            let count = rows?.count ?? chunk.rowCount
            for name in factorVariables {
                let codes = chunk.codeArrays[index[name]!]
                for i in 0..<count { used[name]![Int(codes[rows.map { Int($0[i]) } ?? i])] = true }
            }
            for t in interactions {
                let parts = keyParts[t]!
                for i in 0..<count {
                    keys[t]!.insert(GroupingFactor.key(chunk, row: rows.map { Int($0[i]) } ?? i, columns: parts.columns,
                                                       rankOfCode: parts.ranks, radix: parts.radix))
                }
            }
        }
        return (used, keys)
    }
}

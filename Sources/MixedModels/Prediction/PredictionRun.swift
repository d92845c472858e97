/// One pass of ``Predictor`` over a new-data file: resolves the model's columns against the
/// header, then converts the rows chunk by chunk (CSV fields → numbers, fit level indices and
/// grouping levels) and evaluates `Xβ̂ + Zb̂` on each chunk.
final class PredictionRun {
    private let model: SavedModel
    private let options: PredictionOptions
    private let formula: Formula
    private let design: PredictionDesign
    private let scanner: CSVScanner
    private let fileName: String
    private let fieldCount: Int

    /// A CSV column the prediction reads.
    private final class Input {
        let name: String
        let field: Int
        /// Numeric model variable; otherwise categorical.
        let isNumeric: Bool
        /// Categorical model variable: its fit levels (codes 0 ..< count of ``dictionary`` are they).
        let levelCount: Int
        let dictionary = LevelDictionary()
        var numbers: [Double] = []
        var codes: [Int32] = []
        /// Dictionary code of each chunk row (categorical columns; -1 when missing).
        var rawCodes: [Int32] = []
        /// The dictionary's labels by code, filled as the dictionary grows (for function calls).
        var labels: [String] = []

        init(name: String, field: Int, isNumeric: Bool, levels: [String]?) {
            self.name = name
            self.field = field
            self.isNumeric = isNumeric
            levelCount = levels?.count ?? 0
            for label in levels ?? [] {
                let bytes = Array(label.utf8)
                _ = bytes.withUnsafeBufferPointer { dictionary.code(for: $0.baseAddress ?? UnsafePointer(bitPattern: 1)!, length: $0.count) }
            }
        }
    }

    /// A random term and how its grouping level is found (a class: its caches are updated in
    /// place while it is in use).
    private final class TermLookup {
        let term: SavedModel.Term
        let effects: ModelTerms
        /// The inputs of the grouping columns.
        let inputs: [Int]
        /// Fit level index by label.
        let levelIndex: [String: Int32]
        /// Single grouping column: fit level of each dictionary code (-2 not yet resolved, -1 unseen).
        var levelOfCode: [Int32] = []
        /// Interaction: fit level of each combination of dictionary codes.
        var levelOfCombination: [[Int32]: Int32] = [:]
        /// Fit level of each chunk row (-1 unseen or missing).
        var levels: [Int32] = []

        init(term: SavedModel.Term, effects: ModelTerms, inputs: [Int], levelIndex: [String: Int32]) {
            self.term = term
            self.effects = effects
            self.inputs = inputs
            self.levelIndex = levelIndex
        }
    }

    private var inputs: [Input] = []
    private var terms: [TermLookup] = []
    /// What the intervals need (nil without intervals).
    private var intervals: IntervalParts?
    /// Index of each kept fixed-effect column in the full `X`.
    private let fixedColumns: [Int]
    /// The formula's function calls and offsets (nil when it has none).
    private var transformations: PredictionTransformations?

    init(model: SavedModel, newData: String, options: PredictionOptions) throws {
        self.model = model
        self.options = options
        let formula = try Formula.parse(model.formula)
        self.formula = formula
        let design = try PredictionDesign(formula: formula, columns: model.columns, transformations: model.transformations,
                                          contrasts: model.contrasts)
        self.design = design
        let fileName = CSVReader.fileName(newData)
        self.fileName = fileName
        let header = try CSVReader.readHeader(path: newData)
        fieldCount = header.count
        scanner = CSVScanner(source: try CSVByteSource(path: newData, name: fileName), chunkSize: CSVReader.defaultChunkSize)
        guard try scanner.nextRows(limit: 1) == 1 else {
            throw InputError("empty file: expected a header row with the column names", file: fileName, line: 1)
        }
        scanner.fixStride(fieldCount)

        // The columns needed: the fixed terms' variables; for conditional predictions also the
        // random terms' effects and grouping columns. The response is not needed.
        // A function call reads the columns it refers to; offsets are always added.
        let fixedVariables = formula.fixed.terms.flatMap(\.variables)
        var neededVariables = fixedVariables
        if !options.populationLevel {
            neededVariables += formula.random.flatMap { $0.effects.terms.flatMap(\.variables) + $0.grouping }
        } else if options.interval != .none {
            // The random effects' prior variance z'Σz needs their model rows, not the groups.
            neededVariables += formula.random.flatMap { $0.effects.terms.flatMap(\.variables) }
        }
        let transformations = PredictionTransformations(model: model, formula: formula, design: design, variables: neededVariables)
        var seen = Set<String>()
        let needed = (neededVariables.flatMap { formula.expressions[$0] == nil ? [$0] : [] } + transformations.columns)
            .filter { seen.insert($0).inserted }
        self.transformations = transformations.isEmpty ? nil : transformations
        let missing = needed.filter { !header.contains($0) }
        if !missing.isEmpty {
            throw InputError("the model needs column\(missing.count == 1 ? "" : "s") \(missing.map { "'\($0)'" }.joined(separator: ", ")), missing from the header; the columns are: \(header.joined(separator: ", "))",
                             file: fileName, line: 1)
        }
        let columnByName = Dictionary(model.columns.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        var inputIndex: [String: Int] = [:]
        var inputs: [Input] = []
        for name in needed {
            // The offset column is numeric (the fit checked it); the model's columns have their types.
            let column = columnByName[name]
                ?? (name == model.offset ? SavedModel.Column(name: name, roles: [], isCategorical: false) : nil)
            guard let column else {
                throw InputError("column '\(name)' of the formula has no entry in the model file", file: fileName)
            }
            let isModelVariable = design.variables.contains(name)
            inputIndex[name] = inputs.count
            inputs.append(Input(name: name, field: header.firstIndex(of: name)!,
                                isNumeric: !column.isCategorical,
                                levels: isModelVariable ? design.levels[name] : nil))
            if !column.isCategorical && column.roles.contains(.grouping) {
                throw InputError("grouping column '\(name)' is numeric in the model file", file: fileName)
            }
        }
        self.inputs = inputs
        if !options.populationLevel || options.interval != .none {
            terms = model.terms.map { term in
                let random = formula.random[term.formulaIndex]
                var index: [String: Int32] = [:]
                if !options.populationLevel {
                    index.reserveCapacity(term.levels.count)
                    for (l, label) in term.levels.enumerated() { index[label] = Int32(l) }
                }
                return TermLookup(term: term, effects: random.effects,
                                  inputs: options.populationLevel ? [] : random.grouping.map { inputIndex[$0]! },
                                  levelIndex: index)
            }
        }
        intervals = try options.interval == .none ? nil : IntervalParts(model: model, options: options)
        let fullNames = design.fixedNames
        let position = Dictionary(fullNames.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
        fixedColumns = try model.fixedEffectNames.map { name in
            guard let index = position[name] else { throw InputError("fixed effect '\(name)' is not a column of the model matrix", file: fileName) }
            return index
        }
    }

    // MARK: Streaming

    private var chunkRows = 0
    private var missing: [Bool] = []
    private var newLevel: [Bool] = []
    private var rowNumbers: [Int] = []
    /// The file line of each chunk row.
    private var lines: [Int] = []
    private var summary = PredictionSummary(rows: 0, missingRows: 0, newLevelRows: 0)

    func stream(into file: StreamingOutputFile) throws -> PredictionSummary {
        while true {
            // Batches of scanned rows, converted column by column (no per-row dispatch).
            let limit = min(CSVReader.batchSize, Predictor.chunkRows - chunkRows)
            let count = try scanner.nextRows(limit: limit)
            if count == 0 { break }
            for r in 0..<count where scanner.fieldCounts[r] != fieldCount {
                throw InputError("expected \(fieldCount) field\(fieldCount == 1 ? "" : "s"), found \(scanner.fieldCounts[r])",
                                 file: fileName, line: scanner.lines[r], column: min(fieldCount, scanner.fieldCounts[r]) + 1)
            }
            try convertBatch(count)
            if chunkRows == Predictor.chunkRows { try flush(into: file) }
        }
        try flush(into: file)
        return summary
    }

    /// Converts the scanner's `count` batch rows into the chunk.
    private func convertBatch(_ count: Int) throws {
        let base = chunkRows
        missing.append(contentsOf: repeatElement(false, count: count))
        let stride = scanner.stride
        for input in inputs {
            let column = input.field
            for r in 0..<count {
                let field = scanner.fields[r * stride + column]
                let bytes = scanner.buffer + field.start
                if input.isNumeric {
                    if let value = NumberParser.parse(bytes, count: field.count), !value.isNaN {
                        // As in the fit: R reads Inf and 1e400 as infinities, and a prediction
                        // from one is not a number.
                        if value.isInfinite {
                            throw DataChecks.infinite(CellLocation(row: base + r, line: scanner.lines[r], bytes: bytes, count: field.count),
                                                      value: value, column: input.name, number: column + 1, file: fileName,
                                                      role: ", which the model uses", advice: "a prediction cannot use an infinite "
                                                      + "number; correct it, or write NA for a missing value (its row is kept as NA)")
                        }
                        input.numbers.append(value)
                    } else if Self.isMissingField(bytes, count: field.count, numeric: true) {
                        // NaN, so that function calls on the row give missing values, not errors.
                        input.numbers.append(.nan)
                        missing[base + r] = true
                    } else {
                        throw InputError("column '\(input.name)' is numeric in the model; expected a number, found \"\(Self.text(bytes, field.count))\"",
                                         file: fileName, line: scanner.lines[r], column: column + 1)
                    }
                    continue
                }
                if Self.isMissingField(bytes, count: field.count, numeric: false) {
                    input.rawCodes.append(-1)
                    if input.levelCount > 0 { input.codes.append(0) }
                    missing[base + r] = true
                    continue
                }
                guard let code = input.dictionary.code(for: bytes, length: field.count) else {
                    throw InputError("column '\(input.name)' has too many distinct values", file: fileName, line: scanner.lines[r], column: column + 1)
                }
                input.rawCodes.append(code)
                if input.levelCount > 0 {
                    if Int(code) >= input.levelCount {
                        let levels = design.levels[input.name]!
                        let shown = levels.count <= 12 ? levels.joined(separator: ", ") : levels.prefix(12).joined(separator: ", ") + ", …"
                        throw InputError("level '\(Self.text(bytes, field.count))' of the factor '\(input.name)' is not among the model's levels (\(shown)); a fixed effect cannot be predicted for it",
                                         file: fileName, line: scanner.lines[r], column: column + 1)
                    }
                    input.codes.append(code)
                }
            }
        }
        for r in 0..<count {
            summary.rows += 1
            rowNumbers.append(summary.rows)
            lines.append(scanner.lines[r])
            if missing[base + r] { summary.missingRows += 1 }
        }
        newLevel.append(contentsOf: repeatElement(false, count: count))
        for lookup in terms {
            for r in 0..<count {
                if missing[base + r] || options.populationLevel {
                    lookup.levels.append(-1)
                    continue
                }
                let level = try self.level(of: lookup, chunkRow: base + r, batchRow: r)
                lookup.levels.append(level)
                if level < 0 { newLevel[base + r] = true }
            }
        }
        for r in 0..<count where newLevel[base + r] { summary.newLevelRows += 1 }
        chunkRows += count
    }

    /// The fit level of a term in a chunk row (-1 for an unseen level).
    private func level(of lookup: TermLookup, chunkRow i: Int, batchRow r: Int) throws -> Int32 {
        let level: Int32
        if lookup.inputs.count == 1 {
            let input = inputs[lookup.inputs[0]]
            let code = Int(input.rawCodes[i])
            if code >= lookup.levelOfCode.count {
                lookup.levelOfCode.append(contentsOf: repeatElement(-2, count: code + 1 - lookup.levelOfCode.count))
            }
            var found = lookup.levelOfCode[code]
            if found == -2 {
                found = lookup.levelIndex[input.dictionary.label(code)] ?? -1
                lookup.levelOfCode[code] = found
            }
            level = found
        } else {
            let key = lookup.inputs.map { inputs[$0].rawCodes[i] }
            if let found = lookup.levelOfCombination[key] {
                level = found
            } else {
                let label = zip(lookup.inputs, key).map { inputs[$0].dictionary.label(Int($1)) }.joined(separator: ":")
                level = lookup.levelIndex[label] ?? -1
                lookup.levelOfCombination[key] = level
            }
        }
        if level < 0 && options.newLevels == .error {
            let label = lookup.inputs.map { inputs[$0].dictionary.label(Int(inputs[$0].rawCodes[i])) }.joined(separator: ":")
            throw InputError("level '\(label)' of the grouping factor '\(lookup.term.groupingName)' was not in the fitted data (--new-levels population predicts it at the population level)",
                             file: fileName, line: scanner.lines[r], column: inputs[lookup.inputs[0]].field + 1)
        }
        return level
    }

    /// Evaluates and writes the chunk, then empties it.
    private func flush(into file: StreamingOutputFile) throws {
        let n = chunkRows
        guard n > 0 else { return }
        var numbers: [String: [Double]] = [:]
        var codes: [String: [Int32]] = [:]
        for input in inputs {
            if input.isNumeric { numbers[input.name] = input.numbers } else if input.levelCount > 0 { codes[input.name] = input.codes }
        }
        var matrices: [String: [[Double]]] = [:]
        var eta = [Double](repeating: 0, count: n)
        if let transformations {
            let values = try evaluate(transformations, rowCount: n)
            numbers.merge(values.numbers) { _, new in new }
            codes.merge(values.codes) { _, new in new }
            matrices = values.matrices
            if let offset = values.offset { eta = offset }
        }
        let builder = design.builder(numbers: numbers, codes: codes, matrices: matrices, rowCount: n)
        let X = builder.build(formula.fixed).matrix
        for (c, column) in fixedColumns.enumerated() {
            let beta = model.beta[c]
            X.values.withUnsafeBufferPointer { x in
                let base = column * n
                for i in 0..<n { eta[i] += x[base + i] * beta }
            }
        }
        for lookup in terms {
            let effects = builder.build(lookup.effects).matrix
            let k = lookup.term.effectCount
            let modes = lookup.term.modes
            for i in 0..<n {
                let level = Int(lookup.levels[i])
                guard level >= 0 else { continue }
                for e in 0..<k { eta[i] += effects.values[e * n + i] * modes[level * k + e] }
            }
        }
        let standardErrors = intervals.map { parts in
            parts.standardErrors(X: X, fixedColumns: fixedColumns, terms: terms.map { lookup in
                (effects: builder.build(lookup.effects).matrix, levels: lookup.levels)
            }, rowCount: n)
        }
        output.removeAll(keepingCapacity: true)
        for i in 0..<n {
            Self.appendDecimal(rowNumbers[i], to: &output)
            output.append(UInt8(ascii: ","))
            if missing[i] {
                output.append(contentsOf: [UInt8(ascii: "N"), UInt8(ascii: "A")])
                if intervals != nil { output.append(contentsOf: ",NA,NA,NA".utf8) }
            } else {
                output.append(contentsOf: eta[i].description.utf8)
                if let standardErrors, let parts = intervals {
                    let se = standardErrors[i]
                    for value in [se, eta[i] - parts.quantile * se, eta[i] + parts.quantile * se] {
                        output.append(UInt8(ascii: ","))
                        output.append(contentsOf: value.description.utf8)
                    }
                }
            }
            output.append(UInt8(ascii: "\n"))
        }
        try file.write(bytes: output)
        chunkRows = 0
        missing.removeAll(keepingCapacity: true)
        newLevel.removeAll(keepingCapacity: true)
        rowNumbers.removeAll(keepingCapacity: true)
        lines.removeAll(keepingCapacity: true)
        for input in inputs {
            input.numbers.removeAll(keepingCapacity: true)
            input.codes.removeAll(keepingCapacity: true)
            input.rawCodes.removeAll(keepingCapacity: true)
        }
        for lookup in terms { lookup.levels.removeAll(keepingCapacity: true) }
    }

    /// The chunk's columns that `transformations` reads, as a data table, and its calls' values.
    private func evaluate(_ transformations: PredictionTransformations, rowCount n: Int) throws -> PredictionTransformations.Values {
        var columns: [String: Column] = [:]
        let names = transformations.columns
        for name in names {
            guard let input = inputs.first(where: { $0.name == name }) else { continue }
            if input.isNumeric {
                columns[name] = .numeric(input.numbers)
            } else {
                while input.labels.count < input.dictionary.count { input.labels.append(input.dictionary.label(input.labels.count)) }
                columns[name] = .categorical(Factor(codes: input.rawCodes, levels: input.labels))
            }
        }
        let table = DataTable(source: fileName, columnNames: names, columns: columns, rowCount: n)
        let rows = rowNumbers, lines = self.lines
        return try transformations.evaluate(table, missing: missing, rowNumber: { rows[$0] }, line: { lines[$0] })
    }

    /// The output bytes of a chunk.
    private var output: [UInt8] = []

    /// Appends the decimal digits of `value` ≥ 0.
    private static func appendDecimal(_ value: Int, to bytes: inout [UInt8]) {
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var rest = value
        var count = 0
        withUnsafeMutableBytes(of: &digits) { buffer in
            repeat {
                buffer[19 - count] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
                count += 1
            } while rest > 0
            bytes.append(contentsOf: buffer[(20 - count)...])
        }
    }

    // MARK: Fields

    /// Empty or `NA` (blanks around it allowed in a numeric column), or `NaN` in a numeric one.
    private static func isMissingField(_ bytes: UnsafePointer<UInt8>, count: Int, numeric: Bool) -> Bool {
        var start = 0, end = count
        if numeric {
            while start < end, NumberParser.isBlank(bytes[start]) { start += 1 }
            while end > start, NumberParser.isBlank(bytes[end - 1]) { end -= 1 }
        }
        if start == end { return true }
        let text = UnsafeBufferPointer(start: bytes + start, count: end - start)
        if text.elementsEqual("NA".utf8) { return true }
        return numeric && (text.elementsEqual("NaN".utf8))
    }

    private static func text(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> String {
        String(decoding: UnsafeBufferPointer(start: bytes, count: min(count, 80)), as: UTF8.self)
    }
}

/// The columns of a model matrix — `X`, or the effects of one random term — computed chunk by
/// chunk from the columns of an `.lmmbin` file, with level sets fixed for the whole file.
///
/// Names, contrasts and column order are R's (``ModelMatrixBuilder``). When every term is an
/// intercept or a numeric variable (the usual case), the columns are the file's columns and a
/// chunk is copied straight; otherwise the builder runs on each chunk's variables.
struct ModelColumns: Sendable {
    /// How the columns are computed.
    enum Plan: Sendable {
        /// Each column is the constant 1 (nil) or a float64 file column.
        case direct([Int?])
        /// ``ModelMatrixBuilder`` on the chunk's variables, keeping the columns `kept`.
        case built(ModelTerms, variables: [String: VariableSource], kept: [Int])
    }

    /// A variable of the formula: a float64 file column, or a factor column with its levels
    /// (those that occur in the complete rows, in R's order).
    struct VariableSource: Sendable {
        let column: Int
        /// Factor: file code → index into `levels` (−1 for a level no complete row uses).
        let levelOfCode: [Int32]?
        let levels: [String]
        /// A numeric function call (its label and evaluator) in place of a file column.
        var call: (label: String, expressions: StreamingExpressions)? = nil

        /// The variable's values at the chunk's rows `rows` (all when nil); a call's domain was
        /// checked over the whole file when the design was made.
        func numeric(_ chunk: LMMBinaryChunk, rows: [Int32]?) -> [Double] {
            if let call {
                return (try? call.expressions.values(call.label, chunk, rows: rows))
                    ?? [Double](repeating: .nan, count: rows?.count ?? chunk.rowCount)
            }
            let values = chunk.doubles[column]
            return rows.map { $0.map { values[Int($0)] } } ?? values
        }
    }

    private(set) var names: [String]
    private(set) var plan: Plan

    var count: Int { names.count }

    /// Only constant columns: the term is `(1 | g)` (a fast path of the fitter).
    var isInterceptOnly: Bool {
        if case .direct(let sources) = plan { return sources == [nil] }
        return false
    }

    /// The columns of `terms`.
    /// - Parameter variables: the formula's variables; factors with their used levels.
    init(_ terms: ModelTerms, variables: [String: VariableSource]) {
        let numericOnly = terms.terms.allSatisfy {
            $0.variables.count == 1 && variables[$0.variables[0]]!.levelOfCode == nil && variables[$0.variables[0]]!.call == nil
        }
        if numericOnly {
            names = (terms.hasIntercept ? ["(Intercept)"] : []) + terms.terms.map { $0.variables[0] }
            plan = .direct((terms.hasIntercept ? [nil] : []) + terms.terms.map { variables[$0.variables[0]]!.column })
            return
        }
        // Names from the builder on no rows.
        let empty = Self.builder(variables: variables, rowCount: 0) { _ in [] } codes: { _ in [] }
        let (_, names) = empty.build(terms)
        self.names = names
        plan = .built(terms, variables: variables, kept: Array(names.indices))
    }

    /// Keeps only the columns `kept` (indices into ``names``): aliased fixed effects dropped.
    mutating func keep(_ kept: [Int]) {
        names = kept.map { names[$0] }
        switch plan {
        case .direct(let sources): plan = .direct(kept.map { sources[$0] })
        case .built(let terms, let variables, let previous): plan = .built(terms, variables: variables, kept: kept.map { previous[$0] })
        }
    }

    /// Writes the columns for the chunk's rows `rows` (indices into the chunk; all rows when
    /// nil) into `out`: column c at `out + c · columnStride`.
    func evaluate(_ chunk: LMMBinaryChunk, rows: [Int32]?, rowCount: Int,
                  into out: UnsafeMutablePointer<Double>, columnStride: Int) {
        switch plan {
        case .direct(let sources):
            for (c, source) in sources.enumerated() {
                let target = out + c * columnStride
                guard let source else {
                    target.update(repeating: 1, count: rowCount)
                    continue
                }
                chunk.doubles[source].withUnsafeBufferPointer { values in
                    if let rows {
                        for (i, r) in rows.enumerated() { target[i] = values[Int(r)] }
                    } else {
                        target.update(from: values.baseAddress!, count: rowCount)
                    }
                }
            }
        case .built(let terms, let variables, let kept):
            let builder = Self.builder(variables: variables, rowCount: rowCount) { source in
                source.numeric(chunk, rows: rows)
            } codes: { source in
                let codes = chunk.codeArrays[source.column]
                let map = source.levelOfCode!
                return rows.map { $0.map { map[Int(codes[Int($0)])] } } ?? codes.map { map[Int($0)] }
            }
            let (matrix, _) = builder.build(terms)
            matrix.values.withUnsafeBufferPointer { values in
                for (c, j) in kept.enumerated() {
                    (out + c * columnStride).update(from: values.baseAddress! + j * rowCount, count: rowCount)
                }
            }
        }
    }

    private static func builder(variables: [String: VariableSource], rowCount: Int,
                                numeric: (VariableSource) -> [Double], codes: (VariableSource) -> [Int32]) -> ModelMatrixBuilder {
        var resolved: [String: ModelMatrixBuilder.Variable] = [:]
        for (name, source) in variables {
            resolved[name] = source.levelOfCode == nil ? .numeric(numeric(source))
                                                       : .factor(codes: codes(source), levels: source.levels)
        }
        return ModelMatrixBuilder(variables: resolved, rowCount: rowCount)
    }
}

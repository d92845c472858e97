/// Builds model-matrix columns the way R's `model.matrix` does.
///
/// A factor in a term is coded by contrasts (``ContrastCoding``; treatment by default: one
/// column per level but the first, the reference) when the term without that factor is also in the model (the intercept
/// counting as the empty term), and by indicators of every level otherwise — R's rule from
/// `terms.formula`. In an interaction the first variable varies fastest, and columns are
/// named as R names them: `x`, `fB`, `x:fB`.
struct ModelMatrixBuilder {
    /// A variable resolved over the rows of the model frame.
    enum Variable {
        case numeric([Double])
        case factor(codes: [Int32], levels: [String])
        /// Several columns named by the variable followed by a suffix (`poly(x, 2)1`); an
        /// empty suffix names the column by the variable alone (`scale(x)`).
        case matrix([[Double]], suffixes: [String])
    }

    let variables: [String: Variable]
    let rowCount: Int
    var contrasts: ContrastCoding = .treatment

    /// Columns of `terms` (intercept first when present) and their names.
    func build(_ terms: ModelTerms) -> (matrix: Matrix, names: [String]) {
        var columns: [[Double]] = []
        var names: [String] = []
        if terms.hasIntercept {
            columns.append([Double](repeating: 1, count: rowCount))
            names.append("(Intercept)")
        }
        let present = Set(terms.terms.map { Set($0.variables) })
        for term in terms.terms {
            var termColumns: [[Double]] = [[Double](repeating: 1, count: rowCount)]
            var termNames: [String] = [""]
            for name in term.variables {
                let (factorColumns, factorNames) = codedColumns(
                    of: name, contrasts: usesContrasts(name, in: term, present: present, intercept: terms.hasIntercept)
                )
                // The first variable varies fastest: existing columns inside, new ones outside.
                var nextColumns: [[Double]] = []
                var nextNames: [String] = []
                for (column, columnName) in zip(factorColumns, factorNames) {
                    for (previous, previousName) in zip(termColumns, termNames) {
                        var product = previous
                        for i in 0..<rowCount { product[i] *= column[i] }
                        nextColumns.append(product)
                        nextNames.append(previousName.isEmpty ? columnName : previousName + ":" + columnName)
                    }
                }
                termColumns = nextColumns
                termNames = nextNames
            }
            columns.append(contentsOf: termColumns)
            names.append(contentsOf: termNames)
        }
        var values: [Double] = []
        values.reserveCapacity(rowCount * columns.count)
        for column in columns { values.append(contentsOf: column) }
        return (Matrix(rows: rowCount, columns: columns.count, values: values), names)
    }

    /// R's rule: contrasts when the margin (the term without this variable) is in the model.
    private func usesContrasts(_ name: String, in term: Term, present: Set<Set<String>>, intercept: Bool) -> Bool {
        var margin = Set(term.variables)
        margin.remove(name)
        return margin.isEmpty ? intercept : present.contains(margin)
    }

    private func codedColumns(of name: String, contrasts: Bool) -> ([[Double]], [String]) {
        switch variables[name]! {
        case .numeric(let values):
            return ([values], [name])
        case .matrix(let columns, let suffixes):
            return (columns, suffixes.map { name + $0 })
        case .factor(let codes, let levels):
            if contrasts {
                let (rows, suffixes) = self.contrasts.matrix(levels: levels)
                let columns = suffixes.indices.map { c in codes.map { rows[Int($0)][c] } }
                return (columns, suffixes.map { name + $0 })
            }
            var columns: [[Double]] = []
            for level in levels.indices {
                var column = [Double](repeating: 0, count: rowCount)
                for i in 0..<rowCount where Int(codes[i]) == level { column[i] = 1 }
                columns.append(column)
            }
            return (columns, levels.map { name + $0 })
        }
    }
}

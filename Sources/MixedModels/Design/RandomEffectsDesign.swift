/// The random-effects model matrix `Z` (n × q) and where each term's columns are.
///
/// `Z` is built directly in compressed-column form as a CHOLMOD matrix and never densified:
/// column `layouts[j].index(level: l, effect: r)` holds effect r of term j for the rows at level l.
final class RandomEffectsDesign {
    let terms: [RandomEffectsTerm]
    /// Where each term's columns, template and parameters are, with its Λ kernels.
    let layouts: [TermLayout]
    /// The θ of Λθ for these terms.
    let parameters: CovarianceParameters
    /// The term owning each column of `Z`.
    let termOfColumn: [Int32]
    let Z: CholmodSparse

    /// Total number of random effects.
    let q: Int
    var n: Int { Z.rowCount }

    init(terms: [RandomEffectsTerm], n: Int, common: CholmodCommon) throws {
        self.terms = terms
        let parameters = CovarianceParameters(effectCounts: terms.map(\.effectCount))
        self.parameters = parameters
        layouts = TermLayout.consecutive(effectCounts: terms.map(\.effectCount), levelCounts: terms.map(\.levelCount),
                                         parameters: parameters)
        q = layouts.last.map { $0.offset + $0.columnCount } ?? 0
        var termOfColumn = [Int32](repeating: 0, count: q)
        for (j, layout) in layouts.enumerated() { for c in layout.columns { termOfColumn[c] = Int32(j) } }
        self.termOfColumn = termOfColumn

        let nonzeros = terms.reduce(0) { $0 + $1.effectCount } * n
        Z = try CholmodSparse(rows: n, columns: q, nonzeros: nonzeros, symmetry: .general, common: common)
        let colptr = Z.columnPointers, rowind = Z.rowIndices, values = Z.values
        colptr[0] = 0
        for (term, layout) in zip(terms, layouts) {
            let k = term.effectCount
            var counts = [Int](repeating: 0, count: term.levelCount)
            for code in term.codes { counts[Int(code)] += 1 }
            // Column pointers of this term's columns.
            var next = [Int](repeating: 0, count: term.levelCount)   // fill position of (level, effect 0)
            for l in 0..<term.levelCount {
                for r in 0..<k {
                    let c = layout.index(level: l, effect: r)
                    colptr[c + 1] = colptr[c] + Int32(counts[l])
                }
                next[l] = Int(colptr[layout.start(level: l)])
            }
            // Rows in increasing order, so every column is sorted.
            term.effects.values.withUnsafeBufferPointer { effects in
                for i in 0..<n {
                    let l = Int(term.codes[i])
                    let base = layout.start(level: l)
                    let position = next[l]
                    for r in 0..<k {
                        let p = Int(colptr[base + r]) + (position - Int(colptr[base]))
                        rowind[p] = Int32(i)
                        values[p] = effects[i + r * n]
                    }
                    next[l] += 1
                }
            }
        }
    }
}

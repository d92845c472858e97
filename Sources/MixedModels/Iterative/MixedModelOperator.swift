import CLAPACK
import Foundation

/// Matrix-free products with the mixed-model equations in the spherical coordinates of
/// Bates et al. (2015): with `W = [ZΛ X]` (n × (q + p)),
///
///     H = W'W + diag(I_q, 0_p) = [Λ'Z'ZΛ + I   Λ'Z'X]
///                                [X'ZΛ          X'X  ]
///
/// and `A = Λ'Z'ZΛ + I` its random-effects block. Nothing q × q is ever formed: a product is
/// one pass over the rows that computes each row's fitted value and adds it back to the row's
/// levels (``RowSlots``), from the level codes and effect columns held here.
///
/// The rows are held sorted by the level of the *primary* term (the one with the most
/// coordinates; stable, so within a level in the frame's order): the primary term's vectors
/// are then read and written in order, and only the other terms' (smaller) vectors are
/// accessed at random. ``rowOrder`` maps the held rows back to the frame's.
///
/// Vectors of the system are stored coordinate-major (`v[a·m + c]` for coordinate a of
/// right-hand side c, m right-hand sides); row vectors likewise (`f[i·m + c]`). Every reduction
/// runs over chunks fixed by the data's size and is summed in chunk order, so results are the
/// same whatever the number of threads.
final class MixedModelOperator {
    /// One random-effects term's rows, in the operator's row order.
    struct TermRows {
        /// Where the term's coordinates of u are (``TermLayout``, shared with the exact engine).
        let layout: TermLayout
        var k: Int { layout.effectCount }
        var levelCount: Int { layout.levelCount }
        /// First coordinate of the term in u.
        var offset: Int { layout.offset }
        /// Level of each row, and the term's model matrix (n × k column-major; not held for an
        /// intercept-only term, whose only effect is 1 on every row).
        let columns: TermColumns
        var codes: UnsafePointer<Int32> { UnsafePointer(columns.codes) }
        /// True when the term is `(1 | g)`: its only effect is 1 on every row.
        var interceptOnly: Bool { columns.effects == nil }
        /// Σ over the level's rows of eᵢeᵢ' (k × k per level, column-major): Zₗ'Zₗ before Λ.
        let gram: [Double]

        /// Effect r of row i (n rows).
        @inline(__always) func effect(_ i: Int, _ r: Int, n: Int) -> Double {
            guard let effects = columns.effects else { return 1 }
            return effects[i + r * n]
        }
    }

    /// Rows held by this process (all of them, alone).
    let n: Int
    /// Rows over every process of ``group``: the model's number of observations.
    let observations: Int
    /// The processes holding the rows (each its share; the level-indexed vectors are the same
    /// on all): every sum over rows is this process's partial sum, then ``sumOverProcesses(_:count:)``.
    let group: any ProcessGroup
    let p: Int
    let q: Int
    /// The working response ỹ (``FixedEffectBasis``: y less its least-squares fit on X̃), so that
    /// a constant added to y or to a covariate cancels no digits in the products below.
    let y: [Double]
    /// The working X̃, n × p column-major (X's columns orthogonalized, `X = X̃R`).
    let X: [Double]
    /// Maps β̃ and its covariance back to the user's X.
    let basis: FixedEffectBasis
    let terms: [TermRows]
    /// X'X, p × p column-major.
    let XtX: [Double]
    /// The current Tⱼ (k × k column-major, lower triangular) of every term.
    private(set) var templates: [[Double]]
    /// Held row i is the frame's row `rowOrder[i]`.
    let rowOrder: [Int32]
    /// The passes over the rows: slots of primary levels and where each term's coordinates go.
    let slots: RowSlots

    /// Threads of the passes over rows and levels (the results do not depend on it).
    var threads = Threading.coreCount

    /// Rows per chunk of a parallel pass over the rows.
    static let rowChunk = 16_384
    /// Levels per chunk of a parallel gather.
    static let levelChunk = 4_096
    /// Rows ahead of the one at work whose random accesses are prefetched.
    static let prefetchDistance = 12

    /// The operator of `frame`'s rows; with a `group` of several processes, `frame` holds this
    /// process's share of the rows and every level of every term (collective).
    init(frame: ModelFrame, group: any ProcessGroup = SingleProcess(), observations: Int? = nil) {
        n = frame.n
        self.group = group
        self.observations = observations ?? frame.n
        p = frame.X.columns
        var Xf = frame.X.values, yf = frame.y
        var basis = FixedEffectBasis.orthogonalize(&Xf, n: n, p: p, group: group)
        basis.removeFit(from: &yf, workingX: Xf, n: n, group: group)
        self.basis = basis
        let layouts = TermLayout.consecutive(effectCounts: frame.randomTerms.map(\.effectCount),
                                             levelCounts: frame.randomTerms.map(\.levelCount),
                                             parameters: CovarianceParameters(effectCounts: frame.randomTerms.map(\.effectCount)))
        // The primary term: the most coordinates (the first of equals); rows sorted by its level.
        var primary = 0
        for (j, layout) in layouts.enumerated() where layout.columnCount > layouts[primary].columnCount { primary = j }
        let n = frame.n
        var order = [Int32](repeating: 0, count: n)
        var primaryStart = [Int](repeating: 0, count: 1)
        if layouts.isEmpty {
            for i in 0..<n { order[i] = Int32(i) }
        } else {
            let codes = frame.randomTerms[primary].codes
            var counts = [Int](repeating: 0, count: layouts[primary].levelCount + 1)
            for code in codes { counts[Int(code) + 1] += 1 }
            for l in 0..<layouts[primary].levelCount { counts[l + 1] += counts[l] }
            primaryStart = counts
            var next = counts
            for (i, code) in codes.enumerated() {
                order[next[Int(code)]] = Int32(i)
                next[Int(code)] += 1
            }
        }
        rowOrder = order
        // X̃ and ỹ into the operator's order where they are (no second copy of the rows).
        Self.permute(&Xf, columns: p, n: n, by: order)
        Self.permute(&yf, columns: 1, n: n, by: order)
        self.X = Xf
        self.y = yf
        let X = Xf
        var terms: [TermRows] = []
        for (term, layout) in zip(frame.randomTerms, layouts) {
            let k = term.effectCount, levels = term.levelCount
            let interceptOnly = k == 1 && term.effects.values.allSatisfy { $0 == 1 }
            let columns = TermColumns(n: n, k: k, interceptOnly: interceptOnly)
            let source = term.effects.values
            for i in 0..<n {
                let from = Int(order[i])
                columns.codes[i] = term.codes[from]
                if let effects = columns.effects { for r in 0..<k { effects[i + r * n] = source[from + r * n] } }
            }
            var gram = [Double](repeating: 0, count: levels * k * k)
            for i in 0..<n {
                let base = Int(columns.codes[i]) * k * k
                if interceptOnly {
                    gram[base] += 1
                } else {
                    let E = columns.effects!
                    for s in 0..<k { for r in 0..<k { gram[base + r + s * k] += E[i + r * n] * E[i + s * n] } }
                }
            }
            terms.append(TermRows(layout: layout, columns: columns, gram: gram))
        }
        q = layouts.last.map { $0.offset + $0.columnCount } ?? 0
        var XtX = [Double](repeating: 0, count: p * p)
        for s in 0..<p {
            for r in s..<p {
                var sum = 0.0
                for i in 0..<n { sum += X[i + r * n] * X[i + s * n] }
                XtX[r + s * p] = sum
                XtX[s + r * p] = sum
            }
        }
        // Z'Z's per-level blocks and X'X: sums over every process's rows.
        if group.size > 1 {
            var sums = terms.flatMap(\.gram) + XtX
            group.sum(&sums)
            var start = 0
            for j in terms.indices {
                let count = terms[j].gram.count
                terms[j] = TermRows(layout: terms[j].layout, columns: terms[j].columns, gram: Array(sums[start..<start + count]))
                start += count
            }
            XtX = Array(sums[start...])
        }
        self.terms = terms
        self.XtX = XtX
        slots = RowSlots(terms: terms, primary: primary, primaryStart: primaryStart, n: n, p: p)
        templates = terms.map { term in
            var T = [Double](repeating: 0, count: term.k * term.k)
            for r in 0..<term.k { T[r + r * term.k] = 1 }
            return T
        }
    }

    /// Puts each of the `columns` columns (n long, column-major) of `values` in the order
    /// `order` gives (row i becomes the old row `order[i]`), in place: the values are moved,
    /// not copied, cycle by cycle of the permutation.
    static func permute(_ values: inout [Double], columns: Int, n: Int, by order: [Int32]) {
        guard n > 0 else { return }
        var placed = [Bool](repeating: false, count: n)
        values.withUnsafeMutableBufferPointer { values in
            for column in 0..<columns {
                let a = values.baseAddress! + column * n
                if column > 0 { for i in 0..<n { placed[i] = false } }
                for start in 0..<n where !placed[start] {
                    let first = a[start]
                    var i = start
                    while true {
                        placed[i] = true
                        let source = Int(order[i])
                        if source == start { a[i] = first; break }
                        a[i] = a[source]
                        i = source
                    }
                }
            }
        }
    }

    /// `values` (one per held row, in the operator's order) in the frame's row order.
    func inFrameOrder(_ values: [Double]) -> [Double] {
        var out = [Double](repeating: 0, count: values.count)
        for i in values.indices { out[Int(rowOrder[i])] = values[i] }
        return out
    }

    /// Sets Λ from θ (lme4's order: each Tⱼ's lower triangle column by column).
    func setTheta(_ theta: [Double]) {
        var index = 0
        for (j, term) in terms.enumerated() {
            let k = term.k
            for s in 0..<k {
                for r in 0..<k {
                    if r >= s {
                        templates[j][r + s * k] = theta[index]
                        index += 1
                    } else {
                        templates[j][r + s * k] = 0
                    }
                }
            }
        }
    }

    /// Dimension of the system: q + p with the fixed effects, q without.
    func dimension(includeFixed: Bool) -> Int { q + (includeFixed ? p : 0) }
}

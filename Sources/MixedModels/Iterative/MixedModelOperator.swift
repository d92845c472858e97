import Foundation

/// Matrix-free products with the mixed-model equations in the spherical coordinates of
/// Bates et al. (2015): with `W = [ZΛ X]` (n × (q + p)),
///
///     H = W'W + diag(I_q, 0_p) = [Λ'Z'ZΛ + I   Λ'Z'X]
///                                [X'ZΛ          X'X  ]
///
/// and `A = Λ'Z'ZΛ + I` its random-effects block. Nothing q × q is ever formed: a product is one
/// pass over the rows (`Wv`) and one gather per level (`W'f`), from the model frame's level
/// codes and effect columns. Several right-hand sides go through each pass together.
///
/// Vectors of the system are stored coordinate-major (`v[a·m + c]` for coordinate a of
/// right-hand side c, m right-hand sides); row vectors likewise (`f[i·m + c]`). Every reduction
/// runs over chunks fixed by the data's size and is summed in chunk order, so results are the
/// same whatever the number of threads.
final class MixedModelOperator {
    /// One random-effects term's rows, grouped by level.
    struct TermRows {
        /// Where the term's coordinates of u are (``TermLayout``, shared with the exact engine).
        let layout: TermLayout
        var k: Int { layout.effectCount }
        var levelCount: Int { layout.levelCount }
        /// First coordinate of the term in u.
        var offset: Int { layout.offset }
        /// Level of each row.
        let codes: [Int32]
        /// The term's model matrix, n × k column-major.
        let effects: [Double]
        /// True when the term is `(1 | g)`: its only effect is 1 on every row.
        let interceptOnly: Bool
        /// Rows of level l: `rows[rowStart[l] ..< rowStart[l + 1]]`, increasing.
        let rowStart: [Int]
        let rows: [Int32]
        /// Σ over the level's rows of eᵢeᵢ' (k × k per level, column-major): Zₗ'Zₗ before Λ.
        let gram: [Double]
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

    /// Threads of the passes over rows and levels (the results do not depend on it).
    var threads = Threading.coreCount

    /// Rows per chunk of a parallel pass over the rows.
    static let rowChunk = 16_384
    /// Levels per chunk of a parallel gather.
    static let levelChunk = 4_096

    /// The operator of `frame`'s rows; with a `group` of several processes, `frame` holds this
    /// process's share of the rows and every level of every term (collective).
    init(frame: ModelFrame, group: any ProcessGroup = SingleProcess(), observations: Int? = nil) {
        n = frame.n
        self.group = group
        self.observations = observations ?? frame.n
        p = frame.X.columns
        var X = frame.X.values, y = frame.y
        var basis = FixedEffectBasis.orthogonalize(&X, n: n, p: p, group: group)
        basis.removeFit(from: &y, workingX: X, n: n, group: group)
        self.X = X
        self.y = y
        self.basis = basis
        let layouts = TermLayout.consecutive(effectCounts: frame.randomTerms.map(\.effectCount),
                                             levelCounts: frame.randomTerms.map(\.levelCount),
                                             parameters: CovarianceParameters(effectCounts: frame.randomTerms.map(\.effectCount)))
        var terms: [TermRows] = []
        for (term, layout) in zip(frame.randomTerms, layouts) {
            let k = term.effectCount, levels = term.levelCount
            var counts = [Int](repeating: 0, count: levels + 1)
            for code in term.codes { counts[Int(code) + 1] += 1 }
            for l in 0..<levels { counts[l + 1] += counts[l] }
            var next = counts
            var rows = [Int32](repeating: 0, count: frame.n)
            for (i, code) in term.codes.enumerated() {
                rows[next[Int(code)]] = Int32(i)
                next[Int(code)] += 1
            }
            let effects = term.effects.values
            var gram = [Double](repeating: 0, count: levels * k * k)
            for i in 0..<frame.n {
                let base = Int(term.codes[i]) * k * k
                for s in 0..<k { for r in 0..<k { gram[base + r + s * k] += effects[i + r * frame.n] * effects[i + s * frame.n] } }
            }
            let interceptOnly = k == 1 && effects.allSatisfy { $0 == 1 }
            terms.append(TermRows(layout: layout, codes: term.codes, effects: effects,
                                  interceptOnly: interceptOnly, rowStart: counts, rows: rows, gram: gram))
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
                terms[j] = TermRows(layout: terms[j].layout, codes: terms[j].codes, effects: terms[j].effects,
                                    interceptOnly: terms[j].interceptOnly, rowStart: terms[j].rowStart, rows: terms[j].rows,
                                    gram: Array(sums[start..<start + count]))
                start += count
            }
            XtX = Array(sums[start...])
        }
        self.terms = terms
        self.XtX = XtX
        templates = terms.map { term in
            var T = [Double](repeating: 0, count: term.k * term.k)
            for r in 0..<term.k { T[r + r * term.k] = 1 }
            return T
        }
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

    // MARK: Products

    /// out ← Λ v on the u coordinates (q × m); the β coordinates are not touched.
    func applyLambda(_ v: UnsafePointer<Double>, count m: Int, into out: UnsafeMutablePointer<Double>) {
        for j in terms.indices { applyLambda(term: j, v, count: m, into: out) }
    }

    /// out ← Λ' v on the u coordinates (q × m).
    func applyLambdaTransposed(_ v: UnsafePointer<Double>, count m: Int, into out: UnsafeMutablePointer<Double>) {
        for j in terms.indices { applyLambdaTransposed(term: j, v, count: m, into: out) }
    }

    /// Λ v on term j's coordinates only.
    func applyLambda(term j: Int, _ v: UnsafePointer<Double>, count m: Int, into out: UnsafeMutablePointer<Double>) {
        let term = terms[j]
        let k = term.k
        templates[j].withUnsafeBufferPointer { T in
            if k == 1 {
                let t = T[0]
                for index in (term.offset * m)..<((term.offset + term.levelCount) * m) { out[index] = t * v[index] }
                return
            }
            for l in 0..<term.levelCount {
                let base = term.layout.start(level: l)
                for r in stride(from: k - 1, through: 0, by: -1) {
                    for c in 0..<m {
                        var sum = 0.0
                        for a in 0...r { sum += T[r + a * k] * v[(base + a) * m + c] }
                        out[(base + r) * m + c] = sum
                    }
                }
            }
        }
    }

    /// Λ' v on term j's coordinates only (in place allowed).
    func applyLambdaTransposed(term j: Int, _ v: UnsafePointer<Double>, count m: Int, into out: UnsafeMutablePointer<Double>) {
        let term = terms[j]
        let k = term.k
        templates[j].withUnsafeBufferPointer { T in
            if k == 1 {
                let t = T[0]
                for index in (term.offset * m)..<((term.offset + term.levelCount) * m) { out[index] = t * v[index] }
                return
            }
            for l in 0..<term.levelCount {
                let base = term.layout.start(level: l)
                for a in 0..<k {
                    for c in 0..<m {
                        var sum = 0.0
                        for r in a..<k { sum += T[r + a * k] * v[(base + r) * m + c] }
                        out[(base + a) * m + c] = sum
                    }
                }
            }
        }
    }

    /// f ← Σ over the selected blocks of W_block v_block (n × m), where `lambdaV` holds Λv on
    /// the u coordinates and `v` the β coordinates at q..<q+p. `blocks` lists term indices, with
    /// `terms.count` meaning the fixed effects. With `accumulate` f is added to.
    /// With `columns`, only those right-hand sides are multiplied, and f holds just them
    /// (n × columns.count).
    func rowProduct(lambdaV: UnsafePointer<Double>, beta: UnsafePointer<Double>?, count m: Int, columns: Range<Int>? = nil,
                    blocks: [Int], accumulate: Bool, sign: Double = 1, into rowsOut: UnsafeMutablePointer<Double>) {
        let columns = columns ?? 0..<m
        let w = columns.count, c0 = columns.lowerBound
        // Shift the inputs so that column c0 is at offset 0; rows of f are w wide.
        nonisolated(unsafe) let lambdaV = lambdaV + c0, beta = beta.map { $0 + c0 }
        nonisolated(unsafe) let out = rowsOut
        let n = self.n, p = self.p, X = self.X, terms = self.terms, fixedIndex = terms.count
        let chunks = (n + Self.rowChunk - 1) / Self.rowChunk
        Parallel.forEach(chunks, concurrent: chunks > 1, threads: threads) { chunk in
            let start = chunk * Self.rowChunk, end = min(n, start + Self.rowChunk)
            if !accumulate { for index in (start * w)..<(end * w) { out[index] = 0 } }
            for block in blocks {
                if block == fixedIndex {
                    guard let beta else { continue }
                    X.withUnsafeBufferPointer { X in
                        for t in 0..<p {
                            for i in start..<end {
                                let x = sign * X[i + t * n]
                                for c in 0..<w { out[i * w + c] += x * beta[t * m + c] }
                            }
                        }
                    }
                    continue
                }
                let term = terms[block]
                let k = term.k
                term.codes.withUnsafeBufferPointer { codes in
                    if term.interceptOnly {
                        for i in start..<end {
                            let base = (term.offset + Int(codes[i])) * m
                            for c in 0..<w { out[i * w + c] += sign * lambdaV[base + c] }
                        }
                    } else {
                        term.effects.withUnsafeBufferPointer { E in
                            for i in start..<end {
                                let base = term.layout.start(level: Int(codes[i]))
                                for r in 0..<k {
                                    let e = sign * E[i + r * n]
                                    for c in 0..<w { out[i * w + c] += e * lambdaV[(base + r) * m + c] }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// out_u ← Z_j' f for term j's coordinates (before Λ'), for each level (parallel over levels).
    /// With `columns`, f holds just those right-hand sides (n × columns.count).
    func gather(term j: Int, _ f: UnsafePointer<Double>, count m: Int, columns: Range<Int>? = nil,
                into target: UnsafeMutablePointer<Double>) {
        let columns = columns ?? 0..<m
        let w = columns.count
        nonisolated(unsafe) let f = f, out = target + columns.lowerBound
        let term = terms[j], n = self.n
        let k = term.k
        let chunks = (term.levelCount + Self.levelChunk - 1) / Self.levelChunk
        Parallel.forEach(chunks, concurrent: chunks > 1, threads: threads) { chunk in
            let start = chunk * Self.levelChunk, end = min(term.levelCount, start + Self.levelChunk)
            term.rows.withUnsafeBufferPointer { rows in
                term.effects.withUnsafeBufferPointer { E in
                    for l in start..<end {
                        let base = term.layout.start(level: l)
                        for r in 0..<k { for c in 0..<w { out[(base + r) * m + c] = 0 } }
                        for position in term.rowStart[l]..<term.rowStart[l + 1] {
                            let i = Int(rows[position])
                            if term.interceptOnly {
                                for c in 0..<w { out[base * m + c] += f[i * w + c] }
                            } else {
                                for r in 0..<k {
                                    let e = E[i + r * n]
                                    for c in 0..<w { out[(base + r) * m + c] += e * f[i * w + c] }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// out ← X'f (p × m), summed over fixed row chunks in order.
    /// With `columns`, f holds just those right-hand sides (n × columns.count).
    func gatherFixed(_ f: UnsafePointer<Double>, count m: Int, columns: Range<Int>? = nil, into target: UnsafeMutablePointer<Double>) {
        let n = self.n, p = self.p
        let columns = columns ?? 0..<m
        let w = columns.count
        let out = target + columns.lowerBound
        let chunks = (n + Self.rowChunk - 1) / Self.rowChunk
        var partial = [Double](repeating: 0, count: chunks * p * w)
        nonisolated(unsafe) let f = f
        partial.withUnsafeMutableBufferPointer { partial in
            nonisolated(unsafe) let partial = partial
            X.withUnsafeBufferPointer { X in
                nonisolated(unsafe) let X = X
                Parallel.forEach(chunks, concurrent: chunks > 1, threads: threads) { chunk in
                    let start = chunk * Self.rowChunk, end = min(n, start + Self.rowChunk)
                    let target = partial.baseAddress! + chunk * p * w
                    for t in 0..<p {
                        for i in start..<end {
                            let x = X[i + t * n]
                            for c in 0..<w { target[t * w + c] += x * f[i * w + c] }
                        }
                    }
                }
            }
            for t in 0..<p {
                for c in 0..<w {
                    var sum = 0.0
                    for chunk in 0..<chunks { sum += partial[chunk * p * w + t * w + c] }
                    out[t * m + c] = sum
                }
            }
        }
    }

    /// out ← W'f: Λ'Z'f on the u coordinates and, with `includeFixed`, X'f on the β ones.
    func transposeProduct(_ f: UnsafePointer<Double>, count m: Int, includeFixed: Bool, work: UnsafeMutablePointer<Double>,
                          into out: UnsafeMutablePointer<Double>) {
        for j in terms.indices { gather(term: j, f, count: m, into: work) }
        sumOverProcesses(work, count: q * m)
        applyLambdaTransposed(work, count: m, into: out)
        if includeFixed {
            gatherFixed(f, count: m, into: out + q * m)
            sumOverProcesses(out + q * m, count: p * m)
        }
    }

    /// Replaces `count` values by their sums over the processes (the same on every process);
    /// alone, does nothing. Collective.
    func sumOverProcesses(_ values: UnsafeMutablePointer<Double>, count: Int) {
        guard group.size > 1 else { return }
        var buffer = Array(UnsafeBufferPointer(start: values, count: count))
        group.sum(&buffer)
        buffer.withUnsafeBufferPointer { values.update(from: $0.baseAddress!, count: count) }
    }

    /// `values` summed over the processes (collective; unchanged alone).
    func sumOverProcesses(_ values: [Double]) -> [Double] {
        var values = values
        if group.size > 1 { group.sum(&values) }
        return values
    }

    /// Right-hand sides per pass over the rows: the row buffer is n × this, not n × m.
    static let rowBatch = 8
}

/// Workspace for products with H or A, allocated once per count of right-hand sides.
final class OperatorWorkspace {
    let count: Int
    /// n × min(m, rowBatch) row vectors.
    let rowValues: UnsafeMutablePointer<Double>
    /// q × m (Λv, or Z'f before Λ').
    let lambdaValues: UnsafeMutablePointer<Double>
    let n: Int
    let q: Int

    init(n: Int, q: Int, count: Int) {
        self.n = n
        self.q = q
        self.count = count
        rowValues = .allocate(capacity: max(n * min(count, MixedModelOperator.rowBatch), 1))
        lambdaValues = .allocate(capacity: max(q * count, 1))
    }

    deinit {
        rowValues.deallocate()
        lambdaValues.deallocate()
    }
}

extension MixedModelOperator {
    /// out ← H v (with the fixed effects) or A v (without): W'Wv + v on the u coordinates.
    func apply(_ v: UnsafePointer<Double>, count m: Int, includeFixed: Bool, workspace: OperatorWorkspace,
               into out: UnsafeMutablePointer<Double>) {
        precondition(workspace.count == m)
        applyLambda(v, count: m, into: workspace.lambdaValues)
        var blocks = Array(terms.indices)
        if includeFixed { blocks.append(terms.count) }
        // Z'Z Λv into `out` (before Λ'), a batch of right-hand sides per pass over the rows.
        for c0 in stride(from: 0, to: m, by: Self.rowBatch) {
            let columns = c0..<min(m, c0 + Self.rowBatch)
            rowProduct(lambdaV: workspace.lambdaValues, beta: includeFixed ? v + q * m : nil, count: m, columns: columns,
                       blocks: blocks, accumulate: false, into: workspace.rowValues)
            for j in terms.indices { gather(term: j, workspace.rowValues, count: m, columns: columns, into: out) }
            if includeFixed { gatherFixed(workspace.rowValues, count: m, columns: columns, into: out + q * m) }
        }
        // This process's rows gave partial sums: one collective of (q + p) × m values.
        sumOverProcesses(out, count: dimension(includeFixed: includeFixed) * m)
        applyLambdaTransposed(out, count: m, into: out)
        for index in 0..<(q * m) { out[index] += v[index] }
    }

    /// The right-hand sides of the mixed-model equations for responses `responses` (n × m,
    /// row-major): W'r.
    func rightHandSide(_ responses: UnsafePointer<Double>, count m: Int, includeFixed: Bool, workspace: OperatorWorkspace,
                       into out: UnsafeMutablePointer<Double>) {
        transposeProduct(responses, count: m, includeFixed: includeFixed, work: workspace.lambdaValues, into: out)
    }
}

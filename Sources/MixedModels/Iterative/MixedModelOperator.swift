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
        var X = [Double](repeating: 0, count: n * p), y = [Double](repeating: 0, count: n)
        for i in 0..<n {
            let source = Int(order[i])
            y[i] = yf[source]
            for t in 0..<p { X[i + t * n] = Xf[source + t * n] }
        }
        Xf = []
        yf = []
        self.X = X
        self.y = y
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

    // MARK: Products

    /// out ← Λ v on the u coordinates (q × m); the β coordinates are not touched.
    func applyLambda(_ v: UnsafePointer<Double>, count m: Int, into out: UnsafeMutablePointer<Double>) {
        for j in terms.indices { applyLambda(term: j, v, count: m, into: out) }
    }

    /// out ← Λ' v on the u coordinates (q × m).
    func applyLambdaTransposed(_ v: UnsafePointer<Double>, count m: Int, into out: UnsafeMutablePointer<Double>) {
        for j in terms.indices { applyLambdaTransposed(term: j, v, count: m, into: out) }
    }

    /// Λ v on term j's coordinates only (in place allowed).
    func applyLambda(term j: Int, _ v: UnsafePointer<Double>, count m: Int, into out: UnsafeMutablePointer<Double>) {
        lambdaKernel(term: j, transposed: false, v, count: m, into: out)
    }

    /// Λ' v on term j's coordinates only (in place allowed).
    func applyLambdaTransposed(term j: Int, _ v: UnsafePointer<Double>, count m: Int, into out: UnsafeMutablePointer<Double>) {
        lambdaKernel(term: j, transposed: true, v, count: m, into: out)
    }

    /// Tⱼ (or Tⱼ') applied level by level, over chunks of levels on the operator's threads.
    private func lambdaKernel(term j: Int, transposed: Bool, _ v: UnsafePointer<Double>, count m: Int,
                              into out: UnsafeMutablePointer<Double>) {
        let term = terms[j]
        let k = term.k, T = templates[j]
        nonisolated(unsafe) let v = v, out = out
        let chunks = (term.levelCount + Self.levelChunk - 1) / Self.levelChunk
        Parallel.forEach(chunks, concurrent: chunks > 1 && term.levelCount * k * m > 1 << 16, threads: threads) { chunk in
            let first = chunk * Self.levelChunk, last = min(term.levelCount, first + Self.levelChunk)
            if k == 1 {
                let t = T[0]
                for index in ((term.offset + first) * m)..<((term.offset + last) * m) { out[index] = t * v[index] }
                return
            }
            if k == 2 {
                let t00 = T[0], t10 = T[1], t11 = T[3]
                for l in first..<last {
                    let base0 = (term.offset + 2 * l) * m, base1 = base0 + m
                    for c in 0..<m {
                        let v0 = v[base0 + c], v1 = v[base1 + c]
                        if transposed {
                            out[base0 + c] = t00 * v0 + t10 * v1
                            out[base1 + c] = t11 * v1
                        } else {
                            out[base0 + c] = t00 * v0
                            out[base1 + c] = t10 * v0 + t11 * v1
                        }
                    }
                }
                return
            }
            T.withUnsafeBufferPointer { T in
                for l in first..<last {
                    let base = term.layout.start(level: l)
                    if transposed {
                        for a in 0..<k {
                            for c in 0..<m {
                                var sum = 0.0
                                for r in a..<k { sum += T[r + a * k] * v[(base + r) * m + c] }
                                out[(base + a) * m + c] = sum
                            }
                        }
                    } else {
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
                let k = term.k, codes = term.codes
                if let E = term.columns.effects {
                    for i in start..<end {
                        let base = term.layout.start(level: Int(codes[i]))
                        for r in 0..<k {
                            let e = sign * E[i + r * n]
                            for c in 0..<w { out[i * w + c] += e * lambdaV[(base + r) * m + c] }
                        }
                    }
                } else {
                    for i in start..<end {
                        let base = (term.offset + Int(codes[i])) * m
                        for c in 0..<w { out[i * w + c] += sign * lambdaV[base + c] }
                    }
                }
            }
        }
    }

    /// out_u ← Z_j' f for term j's coordinates (before Λ'): the primary term level by level,
    /// another by partial sums per slot of rows, added in slot order.
    /// With `columns`, f holds just those right-hand sides (n × columns.count).
    func gather(term j: Int, _ f: UnsafePointer<Double>, count m: Int, columns: Range<Int>? = nil,
                into target: UnsafeMutablePointer<Double>) {
        let columns = columns ?? 0..<m
        let w = columns.count
        nonisolated(unsafe) let f = f, out = target + columns.lowerBound
        let term = terms[j], n = self.n, k = term.k, slots = self.slots
        if j == slots.primary {
            Parallel.forEach(slots.count, concurrent: slots.count > 1, threads: threads) { s in
                for l in slots.levelBounds[s]..<slots.levelBounds[s + 1] {
                    let base = term.layout.start(level: l)
                    for r in 0..<k {
                        for c in 0..<w {
                            var sum = 0.0
                            for i in slots.primaryStart[l]..<slots.primaryStart[l + 1] { sum += term.effect(i, r, n: n) * f[i * w + c] }
                            out[(base + r) * m + c] = sum
                        }
                    }
                }
            }
            return
        }
        // Other terms: per slot, the sums over its rows (8 right-hand sides at a time).
        let size = term.levelCount * k
        let partial = UnsafeMutablePointer<Double>.allocate(capacity: max(slots.count * size * min(w, 8), 1))
        defer { partial.deallocate() }
        nonisolated(unsafe) let sums = partial
        for b0 in stride(from: 0, to: w, by: 8) {
            let width = min(8, w - b0)
            Parallel.forEach(slots.count, concurrent: slots.count > 1, threads: threads) { s in
                let target = sums + s * size * width
                target.update(repeating: 0, count: size * width)
                let codes = term.codes
                for i in slots.primaryStart[slots.levelBounds[s]]..<slots.primaryStart[slots.levelBounds[s + 1]] {
                    let base = Int(codes[i]) * k
                    for r in 0..<k {
                        let e = term.effect(i, r, n: n)
                        for c in 0..<width { target[(base + r) * width + c] += e * f[i * w + b0 + c] }
                    }
                }
            }
            let chunks = (size + Self.levelChunk - 1) / Self.levelChunk
            Parallel.forEach(chunks, concurrent: chunks > 1, threads: threads) { chunk in
                for a in (chunk * Self.levelChunk)..<min(size, (chunk + 1) * Self.levelChunk) {
                    for c in 0..<width {
                        var sum = 0.0
                        for s in 0..<slots.count { sum += sums[s * size * width + a * width + c] }
                        out[(term.offset + a) * m + b0 + c] = sum
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
}

/// Workspace for products with H or A, allocated once per count of right-hand sides.
final class OperatorWorkspace {
    let count: Int
    /// q × m (Λv, or Z'f before Λ').
    let lambdaValues: UnsafeMutablePointer<Double>
    /// The slots' partial sums of a pass (``RowSlots/partialDoubles``).
    let partials: UnsafeMutablePointer<Double>
    /// Λv padded to two right-hand sides, for a single one (q + p, × 2) and the product's.
    let single: (v: UnsafeMutablePointer<Double>, out: UnsafeMutablePointer<Double>)?
    let n: Int
    let q: Int

    init(model: MixedModelOperator, count: Int) {
        n = model.n
        q = model.q
        self.count = count
        lambdaValues = .allocate(capacity: max(q * count, 1))
        partials = .allocate(capacity: max(model.slots.partialDoubles, 1))
        single = count == 1 ? (.allocate(capacity: 2 * (model.q + model.p) + 2), .allocate(capacity: 2 * (model.q + model.p) + 2)) : nil
    }

    deinit {
        lambdaValues.deallocate()
        partials.deallocate()
        if let single {
            single.v.deallocate()
            single.out.deallocate()
        }
    }
}

extension MixedModelOperator {
    /// out ← H v (with the fixed effects) or A v (without): W'Wv + v on the u coordinates.
    func apply(_ v: UnsafePointer<Double>, count m: Int, includeFixed: Bool, workspace: OperatorWorkspace,
               into out: UnsafeMutablePointer<Double>) {
        precondition(workspace.count == m)
        applyLambda(v, count: m, into: workspace.lambdaValues)
        if m == 1, let single = workspace.single {
            // One right-hand side: twice, as two lanes (the kernels work on 2, 4 or 8 at a time).
            let dimension = dimension(includeFixed: includeFixed)
            for a in 0..<q { single.v[2 * a] = workspace.lambdaValues[a]; single.v[2 * a + 1] = workspace.lambdaValues[a] }
            if includeFixed { for t in 0..<p { single.v[2 * (q + t)] = v[q + t]; single.v[2 * (q + t) + 1] = v[q + t] } }
            slotProduct(SIMD2<Double>.self, lambdaV: single.v, beta: includeFixed ? single.v + 2 * q : nil, count: 2, column: 0,
                        partials: workspace.partials, into: single.out)
            for a in 0..<dimension { out[a] = single.out[2 * a] }
        } else {
            var c0 = 0
            let beta = includeFixed ? v + q * m : nil
            // 16, 8, 4 or 2 right-hand sides per pass (the smallest that takes what is left, at
            // most 16); the last pass may overlap the one before (its columns are computed
            // again by the same operations, to the same values).
            while c0 < m {
                let left = m - c0
                var width = left > 8 ? 16 : left > 4 ? 8 : left > 2 ? 4 : 2
                while width > m { width /= 2 }
                let start = min(c0, m - width)
                switch width {
                case 16:
                    slotProduct(SIMD16<Double>.self, lambdaV: workspace.lambdaValues, beta: beta, count: m, column: start,
                                partials: workspace.partials, into: out)
                case 8:
                    slotProduct(SIMD8<Double>.self, lambdaV: workspace.lambdaValues, beta: beta, count: m, column: start,
                                partials: workspace.partials, into: out)
                case 4:
                    slotProduct(SIMD4<Double>.self, lambdaV: workspace.lambdaValues, beta: beta, count: m, column: start,
                                partials: workspace.partials, into: out)
                default:
                    slotProduct(SIMD2<Double>.self, lambdaV: workspace.lambdaValues, beta: beta, count: m, column: start,
                                partials: workspace.partials, into: out)
                }
                c0 = start + width
            }
        }
        // This process's rows gave partial sums: one collective of (q + p) × m values.
        sumOverProcesses(out, count: dimension(includeFixed: includeFixed) * m)
        applyLambdaTransposed(out, count: m, into: out)
        BlockVectors(dimension: q, count: m, threads: threads).forEach { range in
            for index in range { out[index] += v[index] }
        }
    }

    /// The right-hand sides of the mixed-model equations for responses `responses` (n × m,
    /// row-major): W'r.
    func rightHandSide(_ responses: UnsafePointer<Double>, count m: Int, includeFixed: Bool, workspace: OperatorWorkspace,
                       into out: UnsafeMutablePointer<Double>) {
        transposeProduct(responses, count: m, includeFixed: includeFixed, work: workspace.lambdaValues, into: out)
    }

    /// One pass over the rows for right-hand sides `column ..< column + V.scalarCount`: out ←
    /// Z'(ZΛv + Xβ) on the u coordinates (before Λ') and, with `beta`, X'(ZΛv + Xβ) on the β ones.
    /// Each slot of rows adds its primary levels' sums straight into `out` and the other terms'
    /// (and X's) into its own partial sums, which are then added in slot order.
    private func slotProduct<V: SIMD>(_: V.Type, lambdaV: UnsafePointer<Double>, beta: UnsafePointer<Double>?, count m: Int,
                                      column: Int, partials: UnsafeMutablePointer<Double>, into out: UnsafeMutablePointer<Double>)
        where V.Scalar == Double {
        let W = V.scalarCount
        let slots = self.slots, n = self.n, p = self.p
        let primaryTerm = terms[slots.primary]
        let kP = primaryTerm.k, primaryOffset = primaryTerm.offset
        let primaryEffects = primaryTerm.columns.effects.map { UnsafePointer($0) }
        let others = slots.others(terms)
        let width = slots.partialWidth
        nonisolated(unsafe) let lambdaV = lambdaV + column, beta = beta.map { $0 + column }, out = out + column
        nonisolated(unsafe) let partials = partials
        let fixedRow = slots.secondaryCount
        let matrix = X
        Parallel.forEach(slots.count, concurrent: slots.count > 1, threads: threads) { s in
            let partial = partials + s * width
            partial.update(repeating: 0, count: width)
            matrix.withUnsafeBufferPointer { X in
            others.withUnsafeBufferPointer { others in
            withUnsafeTemporaryAllocation(of: V.self, capacity: 2 * kP) { scratch in
                let vP = scratch.baseAddress!, acc = vP + kP
                for l in slots.levelBounds[s]..<slots.levelBounds[s + 1] {
                    let baseP = primaryOffset + l * kP
                    for r in 0..<kP {
                        vP[r] = UnsafeRawPointer(lambdaV + (baseP + r) * m).loadUnaligned(as: V.self)
                        acc[r] = V()
                    }
                    for i in slots.primaryStart[l]..<slots.primaryStart[l + 1] {
                        // The other terms' entries a few rows ahead, into the cache (they are
                        // read at random; waiting for them is most of a pass's time).
                        let ahead = min(i + Self.prefetchDistance, n - 1)
                        for t in others {
                            let code = Int(t.codes[ahead])
                            let source = lambdaV + (t.offset + code * t.k) * m, target = partial + (t.secondary + code * t.k) * W
                            for r in 0..<t.k {
                                for line in stride(from: 0, to: W, by: 8) { lmm_prefetch(source + r * m + line) }
                                lmm_prefetch(source + r * m + W - 1)
                            }
                            for line in stride(from: 0, to: t.k * W, by: 8) { lmm_prefetch(target + line) }
                        }
                        var f: V
                        if let E = primaryEffects {
                            f = V()
                            for r in 0..<kP { f += E[i + r * n] * vP[r] }
                        } else {
                            f = vP[0]
                        }
                        for t in others {
                            let code = Int(t.codes[i])
                            if let E = t.effects {
                                let base = (t.offset + code * t.k) * m
                                for r in 0..<t.k { f += E[i + r * n] * UnsafeRawPointer(lambdaV + base + r * m).loadUnaligned(as: V.self) }
                            } else {
                                f += UnsafeRawPointer(lambdaV + (t.offset + code) * m).loadUnaligned(as: V.self)
                            }
                        }
                        if let beta {
                            for t in 0..<p { f += X[i + t * n] * UnsafeRawPointer(beta + t * m).loadUnaligned(as: V.self) }
                        }
                        if let E = primaryEffects {
                            for r in 0..<kP { acc[r] += E[i + r * n] * f }
                        } else {
                            acc[0] += f
                        }
                        for t in others {
                            let code = Int(t.codes[i])
                            let target = UnsafeMutableRawPointer(partial + (t.secondary + code * t.k) * W)
                            if let E = t.effects {
                                for r in 0..<t.k {
                                    let sum = target.load(fromByteOffset: r * W * 8, as: V.self) + E[i + r * n] * f
                                    target.storeBytes(of: sum, toByteOffset: r * W * 8, as: V.self)
                                }
                            } else {
                                target.storeBytes(of: target.load(as: V.self) + f, as: V.self)
                            }
                        }
                        if beta != nil {
                            for t in 0..<p {
                                let target = UnsafeMutableRawPointer(partial + (fixedRow + t) * W)
                                target.storeBytes(of: target.load(as: V.self) + X[i + t * n] * f, as: V.self)
                            }
                        }
                    }
                    for r in 0..<kP { UnsafeMutableRawPointer(out + (baseP + r) * m).storeBytes(of: acc[r], as: V.self) }
                }
            }
            }
            }
        }
        // The other terms' coordinates (and X's) from the slots' partial sums, in slot order.
        let rows = slots.secondaryCount + (beta == nil ? 0 : p)
        let chunks = (rows + Self.levelChunk - 1) / Self.levelChunk
        let destination = slots.destinations(terms, q: q)
        Parallel.forEach(chunks, concurrent: chunks > 1, threads: threads) { chunk in
            for a in (chunk * Self.levelChunk)..<min(rows, (chunk + 1) * Self.levelChunk) {
                var sum = V()
                for s in 0..<slots.count { sum += UnsafeRawPointer(partials + s * width + a * W).load(as: V.self) }
                UnsafeMutableRawPointer(out + destination(a) * m).storeBytes(of: sum, as: V.self)
            }
        }
    }
}

/// A term as the row kernels see it: its level codes and effects (nil: intercept only), k,
/// its first coordinate in u and in the slots' partial sums.
struct KernelTerm {
    let codes: UnsafePointer<Int32>
    let effects: UnsafePointer<Double>?
    let k: Int
    let offset: Int
    let secondary: Int
}

/// The owner of one term's row columns: level codes and (unless intercept only) effects,
/// n × k column-major.
final class TermColumns: @unchecked Sendable {
    let codes: UnsafeMutablePointer<Int32>
    let effects: UnsafeMutablePointer<Double>?

    init(n: Int, k: Int, interceptOnly: Bool) {
        codes = .allocate(capacity: max(n, 1))
        codes.initialize(repeating: 0, count: max(n, 1))
        if interceptOnly {
            effects = nil
        } else {
            effects = .allocate(capacity: max(n * k, 1))
            effects!.initialize(repeating: 0, count: max(n * k, 1))
        }
    }

    deinit {
        codes.deallocate()
        effects?.deallocate()
    }
}

/// How a pass over the rows is split: the primary term's levels (rows sorted by them) in a
/// fixed number of slots of about equal rows, fixed by the data alone so that results do not
/// depend on the threads. Each slot keeps its own partial sums of the other terms' coordinates
/// and of X'f (16 right-hand sides wide at most).
struct RowSlots: Sendable {
    let primary: Int
    /// Rows of primary level l: `primaryStart[l] ..< primaryStart[l + 1]`.
    let primaryStart: [Int]
    /// Slot s covers primary levels `levelBounds[s] ..< levelBounds[s + 1]`.
    let levelBounds: [Int]
    /// Per term: its first coordinate in a slot's partial sums (−1 for the primary term).
    let secondaryStart: [Int]
    /// Coordinates of the other terms; X's p follow them in a slot's partial sums.
    let secondaryCount: Int
    /// Doubles of one slot's partial sums: (other coordinates + p) × 16.
    let partialWidth: Int

    var count: Int { levelBounds.count - 1 }
    var partialDoubles: Int { count * partialWidth }

    static let maxSlots = 4
    /// Bytes of partial sums the slots may hold together.
    static let partialBudget = 256 << 20

    init(terms: [MixedModelOperator.TermRows], primary: Int, primaryStart: [Int], n: Int, p: Int) {
        self.primary = primary
        self.primaryStart = primaryStart
        var starts: [Int] = []
        var secondary = 0
        for (j, term) in terms.enumerated() {
            if j == primary {
                starts.append(-1)
            } else {
                starts.append(secondary)
                secondary += term.levelCount * term.k
            }
        }
        secondaryStart = starts
        secondaryCount = secondary
        partialWidth = (secondary + p) * 16
        let levels = primaryStart.count - 1
        var count = min(Self.maxSlots, max(1, n / 32_768), max(levels, 1))
        count = max(1, min(count, Self.partialBudget / max(partialWidth * 8, 1)))
        var bounds = [0]
        var level = 0
        for s in 1..<count {
            let target = n * s / count
            while level < levels && primaryStart[level] < target { level += 1 }
            bounds.append(max(level, bounds.last!))
        }
        bounds.append(levels)
        levelBounds = bounds
    }

    /// The terms other than the primary, as the kernels see them.
    func others(_ terms: [MixedModelOperator.TermRows]) -> [KernelTerm] {
        terms.indices.filter { $0 != primary }.map { j in
            KernelTerm(codes: terms[j].codes, effects: terms[j].columns.effects.map { UnsafePointer($0) }, k: terms[j].k,
                       offset: terms[j].offset, secondary: secondaryStart[j])
        }
    }

    /// The coordinate of the system (u, then β at q) of row a of the partial sums.
    func destinations(_ terms: [MixedModelOperator.TermRows], q: Int) -> @Sendable (Int) -> Int {
        // Each other term's block of the partial sums maps to its block of u.
        let blocks = terms.indices.filter { $0 != primary }.map { (start: secondaryStart[$0], offset: terms[$0].offset) }
        let secondaryCount = self.secondaryCount
        return { a in
            if a >= secondaryCount { return q + (a - secondaryCount) }
            var shift = 0
            for block in blocks where a >= block.start { shift = block.offset - block.start }
            return a + shift
        }
    }
}

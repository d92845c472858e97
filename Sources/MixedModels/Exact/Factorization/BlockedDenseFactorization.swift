import Foundation

/// Factorization of `A = Λ'Z'ZΛ + I` for crossed models whose first term (the one with the
/// most levels) leaves a dense Schur complement on the other terms — users × items.
///
/// Every row has one level of the first term, so its block `A₁₁` is block diagonal (one
/// k₁ × k₁ block per level) and is factored level by level. With `W = A₂₁L₁₁⁻ᵀ`, the
/// complement `S = A₂₂ − WW'` of the other terms is formed densely and factored by LAPACK:
///
///     L = [ L₁₁  0  ]        L₁₁L₁₁' = A₁₁,   L_S L_S' = S = A₂₂ − WW'
///         [ W    L_S ]
///
/// This is the blocked Cholesky of MixedModels.jl. It is used instead of CHOLMOD when `S` is
/// dense: measured on 73k rows with crossed factors of 2,972 and 1,128 levels, CHOLMOD spent
/// 21 ms per factorization on thousands of small supernodes; level-by-level elimination plus
/// one `dpotrf` costs a fraction of that, and holds `S` once (800 MB for 10k levels) where
/// CHOLMOD would need `S` in sparse form plus its factor.
///
/// Factor order: the first term's columns in `A`'s order, then the other terms' columns in the
/// dense order (their level blocks sorted by decreasing number of rows, so that the updates of
/// the busiest levels land in nearby memory).
final class BlockedDenseFactorization: RandomEffectsFactorization {
    let design: RandomEffectsDesign
    private let parameters: CovarianceParameters
    let G: CholmodSparse
    private let q: Int
    /// Columns of the first term (q₁ = ℓ₁k₁).
    let q1: Int
    let k1: Int
    let levels1: Int
    /// Size of S.
    let nS: Int

    // Dense order of the other terms: dense index of A-index q1 + i is `denseIndex[i]`.
    let denseIndex: [Int32]
    private let originalIndex: [Int32]      // inverse of denseIndex (offset by q1)

    /// Blocks of `A₂₂` (from G): the G position of entry (0, 0), the column stride in G, the
    /// terms, and their dense positions.
    struct PairBlock {
        var gBase: Int32
        var stride: Int32
        var termRow: Int32
        var termColumn: Int32
        var denseRow: Int32
        var denseColumn: Int32
    }
    let pairBlocks: [PairBlock]

    /// For each level of the first term, the blocks of the other terms it shares rows with:
    /// `levelStart[l] ..< levelStart[l+1]` index `links`.
    struct Link {
        var denseStart: Int32
        var k: Int32
        var term: Int32
        var gBase: Int32       // G position of G[(0,l) entry r = 0, (b,m) entry s = 0]
        var stride: Int32      // column stride of that G block
        var wOffset: Int32     // where this block's W rows start in `W`
    }
    // Held in manually allocated buffers (freed in deinit): the hot loops index them millions of
    // times per factorization, and array accesses through a class property cost retains there.
    let levelStart: UnsafeMutableBufferPointer<Int>
    let links: UnsafeMutableBufferPointer<Link>
    /// Dense start of each link, contiguous, for the kernels of the common case where every
    /// other term is scalar (then W is a links × k₁ row-major matrix).
    let linkDense: UnsafeMutableBufferPointer<Int32>
    let scalarLinks: Bool
    /// The links again, grouped by the column of S they update (their dense start), within a
    /// column in increasing link (so level) order, with the end of their level's links: the
    /// scalar kernels walk S column by column, so each column stays in cache while every
    /// update to it lands (by level, the updates of one level scatter over all of S). Only for
    /// scalar links with k₁ ≤ 2.
    private struct ColumnLink {
        var link: Int32
        var levelEnd: Int32
    }
    private let columnLinkStart: UnsafeMutableBufferPointer<Int>
    private let columnLinks: UnsafeMutableBufferPointer<ColumnLink>
    /// Column ranges of S of about equal work (Σ over their links of the rows below), the
    /// units that Dispatch workers take: `columnChunks[c] ..< columnChunks[c + 1]`.
    let columnChunks: [Int]
    /// The same columns in two parts of about equal work (the selected inverse's two workers).
    private let inverseParts: [Int]
    /// W = A₂₁ L₁₁⁻ᵀ: for each link, k_b × k₁ values, column-major.
    private var W: [Double]
    /// L₁₁ per level, k₁ × k₁ column-major (lower).
    private(set) var L11: [Double]
    /// S and then its Cholesky factor L_S (lower triangle). In panels of `S.width` columns
    /// where the triangular route applies and S is large (half the storage: 1.6 GB at 20,000
    /// columns against 3.2 GB); otherwise the full nS × nS square, whose upper triangle only
    /// the general inverse kernel writes (it mirrors the lower one).
    private(set) var S: LowerPanelMatrix
    /// Holds S in panels of `width` columns from now on (`width ≥ nS`: square); a factorization
    /// must follow. Panels need the triangular inverse route (scalar other terms, k₁ ≤ 2), which
    /// a panelled S always takes.
    func usePanels(width: Int) throws {
        precondition(width >= nS || (scalarLinks && k1 <= 2), "S in panels needs the triangular inverse route")
        S = try LowerPanelMatrix(n: nS, width: width, for: Self.describeS(nS))
    }
    private static func describeS(_ nS: Int) -> String { "the dense \(nS) × \(nS) block of the factorization" }
    /// The panel width chosen for S of `nS` columns whose triangular route applies.
    static func defaultPanelWidth(nS: Int, triangularRoute: Bool) -> Int {
        triangularRoute && nS >= panelledFrom ? panelColumns : nS
    }
    /// Panels from this order on (below it S is at most 128 MB).
    static let panelledFrom = 4096
    /// Columns per panel.
    static let panelColumns = 512
    /// Three k_max × k_max work blocks.
    private var scratch: [Double]
    let kmax: Int
    private var denseRHS: [Double]
    private var lowerSolveBuffer: [Double] = []
    let blasThreads: Int
    /// The templates of the last factorization (the inverse's traces need them).
    private(set) var templates: [Double] = []

    /// How ``invert()`` computes the inverse's entries.
    enum InverseRoute {
        /// The triangular route where it applies and costs less (``triangularInverseIsCheaper``).
        case automatic
        /// `L_S⁻¹` by `dtrtri`, then per-level Gram matrices (``invertTriangular()``): for
        /// scalar other terms and k₁ ≤ 2, where it applies; `dpotri` otherwise.
        case triangular
        /// `S⁻¹` by `dpotri`, then A⁻¹ on Z'Z's pattern.
        case fullInverse
    }

    /// Whether the triangular route is expected to beat `dpotri`: its Gram matrices take
    /// less than a fifth of `dlauum`'s n³/6 multiply-adds (they run at about a tenth of its
    /// speed, but `dlauum` is not needed at all), and S has 2,000 columns or more. Measured
    /// on AMD EPYC (Zen 5), per inversion: 1M users × items rows (10,000 items, Gram work
    /// 0.03 of n³/6) 3.7–4.1 s against 5.8 s; ml-1m (3,706 items, 0.17) 135 ms against 170 ms;
    /// InstEval (1,156 columns, 0.11) 17 ms against 15 ms.
    var triangularInverseIsCheaper: Bool {
        Self.triangularInverseIsCheaper(nS: nS, gramWork: gramWork, scalarLinks: scalarLinks, k1: k1)
    }
    private static func triangularInverseIsCheaper(nS: Int, gramWork: Double, scalarLinks: Bool, k1: Int) -> Bool {
        let n = Double(nS)
        return scalarLinks && k1 <= 2 && nS >= 2000 && 5 * gramWork < n * n * n / 6
    }
    /// Multiply-adds of the triangular route's level Gram matrices.
    let gramWork: Double
    /// The route of ``invert()`` (tests compare the two).
    var inverseRoute = InverseRoute.automatic

    /// Decides whether the blocked dense form suits this design: at least two terms, a
    /// complement of moderate size (it is held densely: up to 24,000 columns, whose lower
    /// triangle — all that is touched — is 2.3 GB), mostly filled. Measured: 2M rows with 20,000
    /// items, 6 min 16 s and 2.5 GB peak, where CHOLMOD took over 20 min and 4.5 GB.
    static func suits(design: RandomEffectsDesign, G: CholmodSparse) -> Bool {
        guard design.terms.count >= 2 else { return false }
        let q1 = design.terms[0].columnCount
        let nS = design.q - q1
        guard nS >= 256, nS <= 24_000 else { return false }
        // Fill of S from the first term's levels: Σ_l m_l² (blocks shared by level l, upper bound).
        let colptr = G.columnPointers, rows = G.rowIndices
        var perLevel = [Int](repeating: 0, count: design.terms[0].levelCount)
        let k1 = design.terms[0].effectCount
        for c in q1..<design.q {
            for index in Int(colptr[c])..<Int(colptr[c + 1]) where Int(rows[index]) < q1 {
                perLevel[Int(rows[index]) / k1] += 1
            }
        }
        let fill = perLevel.reduce(0.0) { $0 + Double($1) * Double($1) / Double(k1 * k1) }
        return fill >= 0.25 * Double(nS) * Double(nS)
    }

    /// - Parameter alsoNeeded: bytes the caller still allocates after this (its right-hand
    ///   sides), checked against the memory available together with S.
    /// - Throws: ``InsufficientMemory`` when S (and `alsoNeeded`) cannot be had.
    init(design: RandomEffectsDesign, G: CholmodSparse, parameters: CovarianceParameters, alsoNeeded: Int = 0) throws {
        self.design = design
        self.parameters = parameters
        self.G = G
        q = design.q
        let first = design.terms[0]
        k1 = first.effectCount
        levels1 = first.levelCount
        q1 = first.columnCount
        nS = q - q1
        let colptr = G.columnPointers, rowind = G.rowIndices
        let owner = design.termOfColumn

        // Dense order: blocks of the other terms by decreasing number of rows.
        struct Block { var start: Int; var k: Int; var rows: Int }
        var blocks: [Block] = []
        let Zp = design.Z.columnPointers
        for b in 1..<design.terms.count {
            let k = design.terms[b].effectCount
            for m in 0..<design.terms[b].levelCount {
                let start = design.layouts[b].start(level: m)
                blocks.append(Block(start: start, k: k, rows: Int(Zp[start + 1] - Zp[start])))
            }
        }
        let order = blocks.indices.sorted { blocks[$0].rows != blocks[$1].rows ? blocks[$0].rows < blocks[$1].rows : $0 < $1 }
        var denseIndex = [Int32](repeating: 0, count: q - q1)
        var originalIndex = [Int32](repeating: 0, count: q - q1)
        var next = 0
        for index in order {
            for r in 0..<blocks[index].k {
                denseIndex[blocks[index].start + r - q1] = Int32(next)
                originalIndex[next] = Int32(blocks[index].start + r - q1)
                next += 1
            }
        }
        self.denseIndex = denseIndex
        self.originalIndex = originalIndex

        // Walk G's columns of the other terms: blocks with the first term become links, the
        // rest pair blocks of A₂₂.
        var pairBlocks: [PairBlock] = []
        var linksPerLevel = [[Link]](repeating: [], count: levels1)
        for b in 1..<design.terms.count {
            let kb = design.terms[b].effectCount
            for m in 0..<design.terms[b].levelCount {
                let c0 = design.layouts[b].start(level: m)
                let firstEntry = Int(colptr[c0])
                let blockRows = Int(colptr[c0 + 1]) - firstEntry
                var t = 0
                while t < blockRows {
                    let row = Int(rowind[firstEntry + t])
                    let a = Int(owner[row])
                    let ka = design.terms[a].effectCount
                    if a == 0 {
                        linksPerLevel[row / k1].append(Link(
                            denseStart: denseIndex[c0 - q1], k: Int32(kb), term: Int32(b),
                            gBase: Int32(firstEntry + t), stride: Int32(blockRows), wOffset: 0))
                    } else {
                        pairBlocks.append(PairBlock(
                            gBase: Int32(firstEntry + t), stride: Int32(blockRows), termRow: Int32(a), termColumn: Int32(b),
                            denseRow: denseIndex[row - q1], denseColumn: denseIndex[c0 - q1]))
                    }
                    t += ka
                }
            }
        }
        self.pairBlocks = pairBlocks
        var levelStart = [0]
        var links: [Link] = []
        var wCount = 0
        for var list in linksPerLevel {
            list.sort { $0.denseStart < $1.denseStart }
            for var link in list {
                link.wOffset = Int32(wCount)
                wCount += Int(link.k) * k1
                links.append(link)
            }
            levelStart.append(links.count)
        }
        self.levelStart = .allocate(capacity: levelStart.count)
        _ = self.levelStart.initialize(from: levelStart)
        self.links = .allocate(capacity: max(links.count, 1))
        _ = self.links.initialize(from: links)
        linkDense = .allocate(capacity: max(links.count, 1))
        _ = linkDense.initialize(from: links.map(\.denseStart))
        scalarLinks = links.allSatisfy { $0.k == 1 }
        let byColumn = scalarLinks && k1 <= 2
        columnLinkStart = .allocate(capacity: nS + 1)
        columnLinkStart.initialize(repeating: 0)
        columnLinks = .allocate(capacity: byColumn ? max(links.count, 1) : 1)
        var chunks = [0, nS]
        var parts = [0, nS]
        if byColumn {
            for link in links { columnLinkStart[Int(link.denseStart) + 1] += 1 }
            for j in 0..<nS { columnLinkStart[j + 1] += columnLinkStart[j] }
            var next = Array(columnLinkStart[0..<nS])
            var work = [Double](repeating: 0, count: nS)
            for l in 0..<levels1 {
                let end = levelStart[l + 1]
                for b in levelStart[l]..<end {
                    let j = Int(links[b].denseStart)
                    columnLinks[next[j]] = ColumnLink(link: Int32(b), levelEnd: Int32(end))
                    next[j] += 1
                    work[j] += Double(end - b)
                }
            }
            // About 8 chunks per core, cut at equal shares of the work.
            let total = work.reduce(0, +)
            let count = max(1, min(nS, 8 * Threading.coreCount))
            chunks = [0]
            var sum = 0.0
            for j in 0..<nS {
                sum += work[j]
                if Double(chunks.count) * total / Double(count) <= sum && j + 1 < nS && chunks.count < count { chunks.append(j + 1) }
            }
            chunks.append(nS)
            var half = 0.0
            for j in 0..<nS {
                half += work[j]
                if 2 * half >= total && j + 1 < nS { parts = [0, j + 1, nS]; break }
            }
        }
        columnChunks = chunks
        inverseParts = parts
        // Multiply-adds of the triangular route's Gram matrices (see invertTriangular).
        var gramWork = 0.0
        let m = Double((design.terms.count - 1) * k1)
        for l in 0..<levels1 where levelStart[l] < levelStart[l + 1] {
            for index in levelStart[l]..<levelStart[l + 1] { gramWork += Double(nS - Int(links[index].denseStart)) * Double(k1) }
            gramWork += Double(nS - Int(links[levelStart[l]].denseStart)) * m * (m + 1) / 2
        }
        self.gramWork = gramWork
        W = [Double](repeating: 0, count: wCount)
        L11 = [Double](repeating: 0, count: levels1 * k1 * k1)
        let triangularRoute = Self.triangularInverseIsCheaper(nS: nS, gramWork: gramWork, scalarLinks: scalarLinks, k1: k1)
        let width = Self.defaultPanelWidth(nS: nS, triangularRoute: triangularRoute)
        let bytes = MemoryBudget.product(8, LowerPanelMatrix.storedCount(n: nS, width: width)), what = Self.describeS(nS)
        try MemoryBudget.require(bytes > Int.max - alsoNeeded ? .max : bytes + alsoNeeded, for: what)
        try MemoryBudget.probe(bytes, for: what)
        S = try LowerPanelMatrix(n: nS, width: width, for: what)
        kmax = design.terms.map(\.effectCount).max() ?? 1
        scratch = [Double](repeating: 0, count: 3 * kmax * kmax)
        denseRHS = [Double](repeating: 0, count: nS)
        blasThreads = Threading.blasThreads(forLargestBlock: nS)
    }

    deinit {
        levelStart.deallocate()
        links.deallocate()
        linkDense.deallocate()
        columnLinkStart.deallocate()
        columnLinks.deallocate()
    }

    var summary: String {
        "blocked: \(levels1) diagonal \(k1)×\(k1) blocks, then a dense \(nS) × \(nS) Schur complement (LAPACK)"
    }

    // MARK: Factorization

    func factorize(templates T: UnsafeBufferPointer<Double>) throws -> Double {
        PhaseLog.mark("  (before factorization)")
        templates = Array(T)
        let g = UnsafePointer(G.values.baseAddress!)
        let T1 = T.baseAddress!  // term 0's template starts at offset 0
        var logDet = 0.0
        let k1 = self.k1
        // L₁₁ and W, level by level.
        try L11.withUnsafeMutableBufferPointer { L in
            try W.withUnsafeMutableBufferPointer { Wbuf in
                try scratch.withUnsafeMutableBufferPointer { work in
                    let colptr = G.columnPointers
                    for l in 0..<levels1 {
                        let Ll = L.baseAddress! + l * k1 * k1
                        let c0 = l * k1
                        let base = Int(colptr[c0])
                        // A₁₁ block = T₁' G T₁ + I, then its Cholesky factor.
                        BlockTransform.congruence(G: g + base, columnStride: k1, ka: k1, kb: k1, Ta: T1, Tb: T1,
                                                  scratch: work.baseAddress!, into: Ll, outputStride: k1)
                        for r in 0..<k1 { Ll[r + r * k1] += 1 }
                        guard SmallCholesky.factorInPlace(Ll, k1) else { throw PLSError.factorizationFailed }
                        for r in 0..<k1 { logDet += 2 * log(Ll[r + r * k1]) }
                        // W blocks: (T_b' G_{J,(0,l)} T₁) L₁₁⁻ᵀ.
                        for index in levelStart[l]..<levelStart[l + 1] {
                            let link = links[index]
                            let kb = Int(link.k)
                            let Tb = design.layouts[Int(link.term)].template(T.baseAddress!)
                            let out = Wbuf.baseAddress! + Int(link.wOffset)
                            // G block stored as (0,l) rows × J columns: element (r, s) at gBase + s*stride + r.
                            // We want Tb' (G^T) T1: transpose through the scratch.
                            let Gt = work.baseAddress! + kmax * kmax
                            for s in 0..<kb { for r in 0..<k1 { Gt[s + r * kb] = g[Int(link.gBase) + s * Int(link.stride) + r] } }
                            BlockTransform.congruence(G: Gt, columnStride: kb, ka: kb, kb: k1, Ta: Tb, Tb: T1,
                                                      scratch: work.baseAddress!, into: out, outputStride: kb)
                            SmallCholesky.solveRightTransposed(out, rows: kb, L: Ll, k1)
                        }
                    }
                }
            }
        }
        PhaseLog.mark("    factor: L₁₁, W")
        try formComplement(T)
        PhaseLog.mark("    factor: Schur complement")
        Threading.setDenseKernelThreads(blasThreads)
        let info = S.factorCholesky()
        PhaseLog.mark("    factor: dpotrf")
        if info != 0 { throw PLSError.factorizationFailed }
        for d in 0..<nS { logDet += 2 * log(S.column(d)[d]) }
        return logDet
    }

    /// S = Λ₂'G₂₂Λ₂ + I − WW' in the lower triangle.
    private func formComplement(_ T: UnsafeBufferPointer<Double>) throws {
        let nS = self.nS, k1 = self.k1
        let g = UnsafePointer(G.values.baseAddress!)
        do {
            let S = self.S
            // Zero the lower triangle (the part dpotrf reads).
            S.zeroLower()
            scratch.withUnsafeMutableBufferPointer { work in
                let block = work.baseAddress! + 2 * kmax * kmax
                for pair in pairBlocks {
                    let ka = design.terms[Int(pair.termRow)].effectCount
                    let kb = design.terms[Int(pair.termColumn)].effectCount
                    let Ta = design.layouts[Int(pair.termRow)].template(T.baseAddress!)
                    let Tb = design.layouts[Int(pair.termColumn)].template(T.baseAddress!)
                    BlockTransform.congruence(G: g + Int(pair.gBase), columnStride: Int(pair.stride), ka: ka, kb: kb,
                                              Ta: Ta, Tb: Tb, scratch: work.baseAddress!, into: block, outputStride: ka)
                    let dr = Int(pair.denseRow), dc = Int(pair.denseColumn)
                    // A diagonal block holds both triangles: take its lower one only.
                    for s in 0..<kb {
                        for r in (dr == dc ? s : 0)..<ka {
                            let i = dr + r, j = dc + s
                            if i >= j { S.column(j)[i] += block[r + s * ka] } else { S.column(i)[j] += block[r + s * ka] }
                        }
                    }
                }
            }
            for d in 0..<nS { S.column(d)[d] += 1 }
            // − W_l W_l' for every level of the first term. Its links are sorted by dense
            // position, so for a column b the rows a ≥ b run down one column of S: the inner
            // loop walks memory in order (the other way round, every update missed the cache).
            W.withUnsafeBufferPointer { Wbuf in
                let w = Wbuf.baseAddress!
                if scalarLinks && k1 <= 2 {
                    // Every link one row: W is links × k₁. Column by column of S (each column
                    // in cache while its updates land), the columns shared out to the cores:
                    // every entry still receives its levels' updates in level order, so the
                    // result does not depend on the number of threads and equals the level
                    // by level order's.
                    let dense = linkDense.baseAddress!
                    let start = UnsafePointer(columnLinkStart.baseAddress!), byColumn = UnsafePointer(columnLinks.baseAddress!)
                    let chunks = columnChunks
                    Parallel.forEach(chunks.count - 1) { c in
                        for j in chunks[c]..<chunks[c + 1] {
                            let column = S.column(j)
                            for e in start[j]..<start[j + 1] {
                                let b = Int(byColumn[e].link), end = Int(byColumn[e].levelEnd)
                                if k1 == 1 {
                                    let x = w[b]
                                    for a in b..<end { column[Int(dense[a])] -= w[a] * x }
                                } else {
                                    let x0 = w[2 * b], x1 = w[2 * b + 1]
                                    for a in b..<end { column[Int(dense[a])] -= w[2 * a] * x0 + w[2 * a + 1] * x1 }
                                }
                            }
                        }
                    }
                    return
                }
                for l in 0..<levels1 {
                    let end = levelStart[l + 1]
                    for b in levelStart[l]..<end {
                        let lb = links[b]
                        let kb = Int(lb.k)
                        let wb = w + Int(lb.wOffset)
                        for s in 0..<kb {
                            let column = S.column(Int(lb.denseStart) + s)
                            if k1 == 1 {
                                let wbs = wb[s]
                                for a in b..<end {
                                    let la = links[a]
                                    let ka = Int(la.k)
                                    let wa = w + Int(la.wOffset)
                                    let target = column + Int(la.denseStart)
                                    for r in (a == b ? s : 0)..<ka { target[r] -= wa[r] * wbs }
                                }
                            } else {
                                for a in b..<end {
                                    let la = links[a]
                                    let ka = Int(la.k)
                                    let wa = w + Int(la.wOffset)
                                    let target = column + Int(la.denseStart)
                                    for r in (a == b ? s : 0)..<ka {
                                        var sum = 0.0
                                        for c in 0..<k1 { sum += wa[r + c * ka] * wb[s + c * kb] }
                                        target[r] -= sum
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    // MARK: Solves

    func solveLower(_ B: UnsafeMutablePointer<Double>, columns: Int) throws {
        let k1 = self.k1, q = self.q, q1 = self.q1, nS = self.nS
        // Reused between calls (reallocated only when the number of columns grows).
        if lowerSolveBuffer.count < nS * columns { lowerSolveBuffer = [Double](repeating: 0, count: nS * columns) }
        lowerSolveBuffer.withUnsafeMutableBufferPointer { Dbuf in
        L11.withUnsafeBufferPointer { L in
            W.withUnsafeBufferPointer { Wbuf in
                do {
                    let Dp = Dbuf.baseAddress!
                    for c in 0..<columns {
                        for i in 0..<nS { Dp[Int(denseIndex[i]) + c * nS] = B[q1 + i + c * q] }
                    }
                    for l in 0..<levels1 {
                        let Ll = L.baseAddress! + l * k1 * k1
                        for c in 0..<columns {
                            let x = B + l * k1 + c * q
                            SmallCholesky.solveLower(Ll, k1, x)
                            for index in levelStart[l]..<levelStart[l + 1] {
                                let link = links[index]
                                let kb = Int(link.k)
                                let w = Wbuf.baseAddress! + Int(link.wOffset)
                                let target = Dp + Int(link.denseStart) + c * nS
                                for s in 0..<kb {
                                    var sum = 0.0
                                    for r in 0..<k1 { sum += w[s + r * kb] * x[r] }
                                    target[s] -= sum
                                }
                            }
                        }
                    }
                    S.solveLower(Dp, columns: columns, ldb: nS)
                    for c in 0..<columns { for d in 0..<nS { B[q1 + d + c * q] = Dp[d + c * nS] } }
                }
            }
        }
        }
    }

    func solveUpper(_ x: UnsafeMutablePointer<Double>) throws {
        let k1 = self.k1, q1 = self.q1, nS = self.nS
        denseRHS.withUnsafeMutableBufferPointer { Dbuf in
            let Dp = Dbuf.baseAddress!
            for d in 0..<nS { Dp[d] = x[q1 + d] }
            S.solveLowerTransposed(Dp)
            L11.withUnsafeBufferPointer { L in
                W.withUnsafeBufferPointer { Wbuf in
                    for l in 0..<levels1 {
                        let xl = x + l * k1
                        for index in levelStart[l]..<levelStart[l + 1] {
                            let link = links[index]
                            let kb = Int(link.k)
                            let w = Wbuf.baseAddress! + Int(link.wOffset)
                            let source = Dp + Int(link.denseStart)
                            for r in 0..<k1 {
                                var sum = 0.0
                                for s in 0..<kb { sum += w[s + r * kb] * source[s] }
                                xl[r] -= sum
                            }
                        }
                        SmallCholesky.solveUpper(L.baseAddress! + l * k1 * k1, k1, xl)
                    }
                }
            }
            for i in 0..<nS { x[q1 + i] = Dp[Int(denseIndex[i])] }
        }
    }

    // MARK: Selected inverse

    func invert() -> InverseEntries {
        switch inverseRoute {
        case .automatic where triangularInverseIsCheaper, .triangular where scalarLinks && k1 <= 2:
            return invertTriangular()
        case _ where !S.isSquare:
            // S in panels (only where the triangular route applies: defaultPanelWidth, usePanels).
            return invertTriangular()
        default:
            break
        }
        let nS = self.nS, k1 = self.k1
        PhaseLog.mark("  (solves)")
        BLAS.potriLower(n: nS, A: S.square, lda: nS)
        PhaseLog.mark("    selected inverse: dpotri")
        // First-term blocks: Σ₁₁,l = L₁₁⁻ᵀ (I + W_l' S⁻¹ W_l) L₁₁⁻¹ and
        // Σ₂₁ = −S⁻¹ W_l L₁₁⁻¹ on the links of level l.
        var diagonal = [Double](repeating: 0, count: levels1 * k1 * k1)
        var cross = [Double](repeating: 0, count: W.count)
        do {
            let Sp = S.square
            // The general kernel below reads S⁻¹[·, j] as one contiguous column: mirror the lower
            // triangle (in tiles, so the strided writes stay in cache). The scalar kernel reads the
            // lower triangle only.
            if !(scalarLinks && k1 <= 2) {
                let tile = 64
                for j0 in stride(from: 0, to: nS, by: tile) {
                    for i0 in stride(from: j0, to: nS, by: tile) {
                        for j in j0..<min(j0 + tile, nS) {
                            for i in max(i0, j + 1)..<min(i0 + tile, nS) { Sp[j + i * nS] = Sp[i + j * nS] }
                        }
                    }
                }
            }
            W.withUnsafeBufferPointer { Wbuf in
                L11.withUnsafeBufferPointer { L in
                    cross.withUnsafeMutableBufferPointer { C in
                        if scalarLinks && k1 <= 2 {
                            // Y = S⁻¹[R,R] W_l for every level at once, column by column of S⁻¹
                            // (the order in which the complement was formed): each pair a > b of
                            // a level once, from the lower triangle, column dense[b] read down
                            // its rows dense[a] (increasing) while it is in cache. The columns
                            // are cut in two parts of equal work, one per core.
                            let dense = linkDense.baseAddress!, w = Wbuf.baseAddress!
                            let parts = inverseParts, start = UnsafePointer(columnLinkStart.baseAddress!)
                            let byColumn = UnsafePointer(columnLinks.baseAddress!)
                            let count = C.count
                            // Part 0 writes into the cross blocks, part 1 into its own buffer,
                            // added after: the same sums whatever the number of threads.
                            let y0 = C.baseAddress!
                            let y1 = UnsafeMutablePointer<Double>.allocate(capacity: max(count, 1))
                            defer { y1.deallocate() }
                            Parallel.forEach(parts.count - 1) { part in
                                let y = part == 0 ? y0 : y1
                                y.update(repeating: 0, count: count)
                                for j in parts[part]..<parts[part + 1] {
                                    let column = Sp + j * nS
                                    for e in start[j]..<start[j + 1] {
                                        let b = Int(byColumn[e].link), end = Int(byColumn[e].levelEnd)
                                        if k1 == 1 {
                                            let wb = w[b]
                                            var yb = column[Int(dense[b])] * wb
                                            for a in (b + 1)..<end {
                                                let value = column[Int(dense[a])]
                                                y[a] += value * wb
                                                yb += value * w[a]
                                            }
                                            y[b] += yb
                                        } else {
                                            let wb0 = w[2 * b], wb1 = w[2 * b + 1]
                                            let diagonal = column[Int(dense[b])]
                                            var yb0 = diagonal * wb0, yb1 = diagonal * wb1
                                            for a in (b + 1)..<end {
                                                let value = column[Int(dense[a])]
                                                y[2 * a] += value * wb0
                                                y[2 * a + 1] += value * wb1
                                                yb0 += value * w[2 * a]
                                                yb1 += value * w[2 * a + 1]
                                            }
                                            y[2 * b] += yb0
                                            y[2 * b + 1] += yb1
                                        }
                                    }
                                }
                            }
                            if parts.count > 2 { for index in 0..<count { y0[index] += y1[index] } }
                            PhaseLog.mark("    selected inverse: S⁻¹W")
                        }
                        for l in 0..<levels1 {
                            let range = levelStart[l]..<levelStart[l + 1]
                            let Ll = L.baseAddress! + l * k1 * k1
                            // Y = S⁻¹[R,R] W_l, written where the cross blocks go.
                            if scalarLinks && k1 <= 2 {
                                // Y was formed for every level above, column by column.
                            } else {
                            for a in range {
                                let la = links[a]
                                let ka = Int(la.k)
                                let ya = C.baseAddress! + Int(la.wOffset)
                                for index in 0..<(ka * k1) { ya[index] = 0 }
                                for r in 0..<ka {
                                    let column = Sp + (Int(la.denseStart) + r) * nS
                                    for b in range {
                                        let lb = links[b]
                                        let kb = Int(lb.k)
                                        let wb = Wbuf.baseAddress! + Int(lb.wOffset)
                                        let entries = column + Int(lb.denseStart)
                                        for c in 0..<k1 {
                                            var sum = 0.0
                                            for s in 0..<kb { sum += entries[s] * wb[s + c * kb] }
                                            ya[r + c * ka] += sum
                                        }
                                    }
                                }
                            }
                            }
                            // Q = I + W' Y (k1 × k1); Σ₁₁ = L⁻ᵀ Q L⁻¹.
                            let Q = diagonal.withUnsafeMutableBufferPointer { $0.baseAddress! + l * k1 * k1 }
                            for c in 0..<k1 {
                                for d in 0..<k1 {
                                    var sum = c == d ? 1.0 : 0.0
                                    for a in range {
                                        let la = links[a]
                                        let ka = Int(la.k)
                                        let wa = Wbuf.baseAddress! + Int(la.wOffset)
                                        let ya = C.baseAddress! + Int(la.wOffset)
                                        for r in 0..<ka { sum += wa[r + c * ka] * ya[r + d * ka] }
                                    }
                                    Q[c + d * k1] = sum
                                }
                            }
                            SmallCholesky.congruenceByInverse(Ll, k1, Q)
                            // Σ₂₁ = −Y L⁻¹.
                            for a in range {
                                let la = links[a]
                                let ya = C.baseAddress! + Int(la.wOffset)
                                SmallCholesky.solveRight(ya, rows: Int(la.k), L: Ll, k1)
                                for index in 0..<(Int(la.k) * k1) { ya[index] = -ya[index] }
                            }
                        }
                    }
                }
            }
        }
        PhaseLog.mark("    selected inverse: level blocks")
        let onPattern = valuesOnPattern(diagonal: diagonal, cross: cross)
        PhaseLog.mark("    selected inverse: on Z'Z's pattern")
        return Inverse(owner: self, diagonal: diagonal, cross: cross, valuesOnPattern: onPattern)
    }

    /// A⁻¹ at the positions of G's stored values, from the blocks `invert()` computed and S⁻¹
    /// (the gradient reads it there: looking each block up cost a binary search among the
    /// level's links and took longer than the gradient's arithmetic).
    private func valuesOnPattern(diagonal: [Double], cross: [Double]) -> [Double] {
        let colptr = G.columnPointers
        var values = [Double](repeating: 0, count: Int(colptr[q]))
        let k1 = self.k1
        values.withUnsafeMutableBufferPointer { out in
            // First-term diagonal blocks: the only stored blocks of those columns.
            for l in 0..<levels1 {
                for s in 0..<k1 {
                    let base = Int(colptr[l * k1 + s])
                    assert(Int(colptr[l * k1 + s + 1]) - base == k1, "a first-term column of Z'Z holds its own block only")
                    for r in 0..<k1 { out[base + r] = diagonal[l * k1 * k1 + r + s * k1] }
                }
            }
            // Links: G stores (first-term effect r, other effect s) at gBase + s·stride + r.
            for index in 0..<links.count {
                let link = links[index]
                let kb = Int(link.k), base = Int(link.gBase), stride = Int(link.stride), offset = Int(link.wOffset)
                for s in 0..<kb { for r in 0..<k1 { out[base + s * stride + r] = cross[offset + s + r * kb] } }
            }
            // Blocks among the other terms: S⁻¹ (lower triangle).
            do {
                let S = self.S
                for pair in pairBlocks {
                    let ka = design.terms[Int(pair.termRow)].effectCount
                    let kb = design.terms[Int(pair.termColumn)].effectCount
                    let dr = Int(pair.denseRow), dc = Int(pair.denseColumn)
                    for s in 0..<kb {
                        for r in 0..<ka {
                            let i = dr + r, j = dc + s
                            out[Int(pair.gBase) + s * Int(pair.stride) + r] = S.symmetricEntry(i, j)
                        }
                    }
                }
            }
        }
        return values
    }

    private struct Inverse: InverseEntries {
        let owner: BlockedDenseFactorization
        let diagonal: [Double]
        let cross: [Double]
        let valuesOnPattern: [Double]?

        /// The link of a first-term level containing dense index d: its W offset, dense start, k.
        private func link(level l: Int, dense d: Int) -> (offset: Int, start: Int, k: Int)? {
            let o = owner
            // The level's links are sorted by dense start: the last one starting at or before d.
            var low = o.levelStart[l], high = o.levelStart[l + 1]
            while low < high {
                let mid = (low + high) / 2
                if Int(o.links[mid].denseStart) <= d { low = mid + 1 } else { high = mid }
            }
            guard low > o.levelStart[l] else { return nil }
            let found = o.links[low - 1]
            let start = Int(found.denseStart), k = Int(found.k)
            return d < start + k ? (Int(found.wOffset), start, k) : nil
        }

        func entry(_ i: Int, _ j: Int) -> Double {
            let o = owner
            if i >= o.q1 && j >= o.q1 {
                let a = Int(o.denseIndex[i - o.q1]), b = Int(o.denseIndex[j - o.q1])
                return o.S.symmetricEntry(a, b)
            }
            if i < o.q1 && j < o.q1 {
                guard i / o.k1 == j / o.k1 else { return 0 }
                let l = i / o.k1
                return diagonal[l * o.k1 * o.k1 + (i % o.k1) + (j % o.k1) * o.k1]
            }
            let (first, other) = i < o.q1 ? (i, j) : (j, i)
            let d = Int(o.denseIndex[other - o.q1])
            guard let found = link(level: first / o.k1, dense: d) else { return 0 }
            return cross[found.offset + (d - found.start) + (first % o.k1) * found.k]
        }

        func block(rows i0: Int, _ m: Int, columns j0: Int, _ k: Int, into out: UnsafeMutablePointer<Double>) {
            let o = owner
            // A first-term block against a block of another term: one search for the link.
            if i0 < o.q1 && j0 >= o.q1 && (i0 % o.k1) == 0 && m == o.k1,
               let found = link(level: i0 / o.k1, dense: Int(o.denseIndex[j0 - o.q1])), found.k == k {
                let d0 = Int(o.denseIndex[j0 - o.q1]) - found.start
                for c in 0..<k { for r in 0..<m { out[r + c * m] = cross[found.offset + d0 + c + r * found.k] } }
                return
            }
            if j0 < o.q1 && i0 >= o.q1 && (j0 % o.k1) == 0 && k == o.k1,
               let found = link(level: j0 / o.k1, dense: Int(o.denseIndex[i0 - o.q1])), found.k == m {
                let d0 = Int(o.denseIndex[i0 - o.q1]) - found.start
                for c in 0..<k { for r in 0..<m { out[r + c * m] = cross[found.offset + d0 + r + c * found.k] } }
                return
            }
            for c in 0..<k { for r in 0..<m { out[r + c * m] = entry(i0 + r, j0 + c) } }
        }
    }
}

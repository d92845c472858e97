import Foundation

/// The inverse's entries without `S⁻¹`: from `X = L_S⁻¹` (`dtrtri`, one third of `dpotri`'s
/// work: `dpotri` is `dtrtri` and then `dlauum`, which forms `S⁻¹ = X'X` densely).
///
/// With scalar other terms, every first-term level l touches `S` through the sparse n × k₁
/// block `Ĝ_l` of `Λ₂'Z₂'Z₁` on its links (`A₂₁` block `Ĝ_l T₁`, `W_l = Ĝ_l T₁ L_l⁻ᵀ`), and
/// everything the gradient and the conditional variances need of the level comes from the
/// k₁ × k₁ Gram matrices of `U_l^b = X Ĝ_l^b` (its links to other term b, raw Z'Z values):
///
///     P_l = Ĝ_l' S⁻¹ Ĝ_l = Σ_bc θ_b θ_c U_l^b' U_l^c,      Y_l = L_l⁻¹ T₁'
///     A⁻¹_ll = L_l⁻ᵀ (I + Y_l P_l Y_l') L_l⁻¹
///     M_l   = A⁻¹_ll T₁'G_ll − L_l⁻ᵀ Y_l P_l                 (the gradient's trace block)
///     Σ_{a ∈ b} M_a ∋ −tr(U_l^b' U_l Y_l'Y_l)                (other term b, from level l)
///
/// where `M_I = Σ_J A⁻¹_IJ (Λ'G)_JI` is the block ``ProfiledGradient`` sums over each term's
/// levels. The Gram matrices cost Σ over links of the rows below the link's column of `X`
/// (`X` is lower triangular) times k₁ — at 1M users × items rows (10,000 items, 1M links)
/// about 1.4·10¹⁰ multiply-adds against `dlauum`'s 1.7·10¹¹ — in stripes of rows of `X`
/// that stay in the cache while every level's links read them.
extension BlockedDenseFactorization {
    /// ``invert()`` by the triangular route (scalar other terms, k₁ ≤ 2).
    func invertTriangular() -> InverseEntries {
        let n = nS, k1 = self.k1
        Threading.setDenseKernelThreads(blasThreads)
        S.invertTriangular()
        PhaseLog.mark("    selected inverse: dtrtri")
        let otherTerms = design.terms.count - 1
        let m = otherTerms * k1
        let grams = levelGrams(m: m)
        PhaseLog.mark("    selected inverse: level Gram matrices")

        // θ of the other (scalar) terms, T₁.
        let T = templates
        let theta = (1..<design.terms.count).map { T[design.layouts[$0].templateOffset] }
        let T1 = Array(T[design.layouts[0].templateOffset..<(design.layouts[0].templateOffset + k1 * k1)])
        var sums = design.terms.map { [Double](repeating: 0, count: $0.effectCount * $0.effectCount) }
        var diagonal = [Double](repeating: 0, count: levels1 * k1 * k1)
        let colptr = G.columnPointers, g = G.values
        L11.withUnsafeBufferPointer { Lbuf in
            var P = [Double](repeating: 0, count: k1 * k1), Y = P, YP = P, block = P, TG = P, H = P, K = P
            for l in 0..<levels1 {
                let C = grams + l * m * m
                let Ll = Lbuf.baseAddress! + l * k1 * k1
                // P = Σ_bc θ_b θ_c C[(b, ·), (c, ·)] (C holds its upper triangle).
                func gram(_ i: Int, _ j: Int) -> Double { i <= j ? C[i + j * m] : C[j + i * m] }
                for c in 0..<k1 {
                    for d in 0..<k1 {
                        var sum = 0.0
                        for b in 0..<otherTerms {
                            for e in 0..<otherTerms { sum += theta[b] * theta[e] * gram(b * k1 + c, e * k1 + d) }
                        }
                        P[c + d * k1] = sum
                    }
                }
                // Y = L⁻¹ T₁' (column by column), YP = Y P, A⁻¹_ll = L⁻ᵀ (I + Y P Y') L⁻¹.
                for c in 0..<k1 {
                    for r in 0..<k1 { Y[r + c * k1] = T1[c + r * k1] }
                    Y.withUnsafeMutableBufferPointer { SmallCholesky.solveLower(Ll, k1, $0.baseAddress! + c * k1) }
                }
                for r in 0..<k1 {
                    for c in 0..<k1 {
                        var sum = 0.0
                        for e in 0..<k1 { sum += Y[r + e * k1] * P[e + c * k1] }
                        YP[r + c * k1] = sum
                    }
                }
                for r in 0..<k1 {
                    for c in 0..<k1 {
                        var sum = r == c ? 1.0 : 0.0
                        for e in 0..<k1 { sum += YP[r + e * k1] * Y[c + e * k1] }
                        block[r + c * k1] = sum
                    }
                }
                block.withUnsafeMutableBufferPointer { SmallCholesky.congruenceByInverse(Ll, k1, $0.baseAddress!) }
                for index in 0..<(k1 * k1) { diagonal[l * k1 * k1 + index] = block[index] }
                // M_l = A⁻¹_ll (T₁'G_ll) − L⁻ᵀ (Y P); G_ll is the level's own (full) block of Z'Z.
                for s in 0..<k1 {
                    let base = Int(colptr[l * k1 + s])
                    for r in 0..<k1 {
                        var sum = 0.0
                        for t in r..<k1 { sum += T1[t + r * k1] * g[base + t] }
                        TG[r + s * k1] = sum
                    }
                }
                YP.withUnsafeMutableBufferPointer { buffer in
                    for c in 0..<k1 { SmallCholesky.solveUpper(Ll, k1, buffer.baseAddress! + c * k1) }
                }
                for r in 0..<k1 {
                    for c in 0..<k1 {
                        var sum = -YP[r + c * k1]
                        for e in 0..<k1 { sum += block[r + e * k1] * TG[e + c * k1] }
                        sums[0][r + c * k1] += sum
                    }
                }
                // Other term b: −tr(H_b K), H_b = U_b'U = Σ_e θ_e C[(b, ·), (e, ·)], K = Y'Y.
                for r in 0..<k1 {
                    for c in 0..<k1 {
                        var sum = 0.0
                        for e in 0..<k1 { sum += Y[e + r * k1] * Y[e + c * k1] }
                        K[r + c * k1] = sum
                    }
                }
                for b in 0..<otherTerms {
                    for c in 0..<k1 {
                        for d in 0..<k1 {
                            var sum = 0.0
                            for e in 0..<otherTerms { sum += theta[e] * gram(b * k1 + c, e * k1 + d) }
                            H[c + d * k1] = sum
                        }
                    }
                    var trace = 0.0
                    for c in 0..<k1 { for d in 0..<k1 { trace += H[c + d * k1] * K[d + c * k1] } }
                    sums[b + 1][0] -= trace
                }
            }
        }
        grams.deallocate()

        // S⁻¹ on the diagonal and on the blocks of Z'Z among the other terms, and their part
        // of the traces: M_C += S⁻¹_CR θ_R g_RC, and M_R += S⁻¹_RC θ_C g_RC off the diagonal.
        let diagonalS = (0..<n).map { inverseEntry($0, $0) }
        var pairValues = [Double](repeating: 0, count: pairBlocks.count)
        for (index, pair) in pairBlocks.enumerated() {
            let dr = Int(pair.denseRow), dc = Int(pair.denseColumn)
            let value = dr == dc ? diagonalS[dr] : inverseEntry(dr, dc)
            pairValues[index] = value
            let entry = g[Int(pair.gBase)]
            let a = Int(pair.termRow), b = Int(pair.termColumn)
            sums[b][0] += value * theta[a - 1] * entry
            if dr != dc { sums[a][0] += value * theta[b - 1] * entry }
        }
        PhaseLog.mark("    selected inverse: traces")
        return TriangularInverse(owner: self, diagonal: diagonal, diagonalS: diagonalS, traceSums: sums)
    }

    /// S⁻¹[i, j] = Σ_{r ≥ max(i, j)} X[r, i] X[r, j] for dense indices, from X = L_S⁻¹.
    fileprivate func inverseEntry(_ i: Int, _ j: Int) -> Double {
        let first = max(i, j)
        return dotProduct(S.column(i) + first, S.column(j) + first, nS - first)
    }

    /// For every first-term level l, the Gram matrix (m × m, upper triangle, m = k₁ × the
    /// other terms) of the columns of `[U_l^1 … U_l^B]`, `U_l^b = X Ĝ_l^b` (raw Z'Z values on
    /// the level's links to term b). Deallocate the result.
    ///
    /// Rows of X in stripes of about 16 MB, each copied first into a packed buffer (its
    /// column pieces one after the other: read in place, every piece sat on its own page
    /// and the Gram matrices took 4.6 s at 1M rows, 1.6× `dlauum`). Within a stripe each level
    /// adds its links' pieces (a link at column d reaches rows ≥ d only) into a few short
    /// vectors and their Gram matrix into the level's; the levels are shared out to the cores,
    /// each level's sums in stripe order whatever the number of threads.
    private func levelGrams(m: Int) -> UnsafeMutablePointer<Double> {
        let n = nS, k1 = self.k1, levels = levels1
        let mm = m * m
        let stripe = max(32, min(512, (16 << 20) / max(8 * n, 1)))
        let count = levels * mm
        let out = UnsafeMutablePointer<Double>.allocate(capacity: max(count, 1))
        out.initialize(repeating: 0, count: max(count, 1))
        let packed = UnsafeMutablePointer<Double>.allocate(capacity: stripe * n)
        defer { packed.deallocate() }
        let X = S
        let levelStart = UnsafePointer(self.levelStart.baseAddress!)
        let links = UnsafePointer(self.links.baseAddress!)
        let g = UnsafePointer(G.values.baseAddress!)
        // Levels in chunks of about equal numbers of links, a few per core.
        let chunkCount = max(1, min(levels, 8 * Threading.coreCount))
        var chunks = [0]
        for c in 1..<chunkCount {
            let target = levelStart[levels] * c / chunkCount
            var low = chunks.last!, high = levels
            while low < high { let mid = (low + high) / 2; if levelStart[mid] < target { low = mid + 1 } else { high = mid } }
            chunks.append(low)
        }
        chunks.append(levels)
        let scratch = (0..<(chunks.count - 1)).map { _ in UnsafeMutablePointer<Double>.allocate(capacity: stripe * m) }
        defer { for buffer in scratch { buffer.deallocate() } }
        for r0 in stride(from: 0, to: n, by: stripe) {
            let r1 = min(n, r0 + stripe), h = r1 - r0
            // Column d's rows r0..<r1 at packed + d·h (zero above the diagonal).
            let columnParts = Threading.coreCount
            Parallel.forEach(columnParts) { part in
                for d in (r1 * part / columnParts)..<(r1 * (part + 1) / columnParts) {
                    let target = packed + d * h
                    let first = max(r0, d)
                    if first > r0 { target.update(repeating: 0, count: first - r0) }
                    (target + (first - r0)).update(from: X.column(d) + first, count: r1 - first)
                }
            }
            let B = UnsafePointer(packed)
            Parallel.forEach(chunks.count - 1) { chunk in
                let u = scratch[chunk]
                for l in chunks[chunk]..<chunks[chunk + 1] {
                    let first = levelStart[l], end = levelStart[l + 1]
                    guard first < end else { continue }
                    let top = Int(links[first].denseStart)
                    guard top < r1 else { continue }
                    let from = max(r0, top) - r0        // rows above the level's first column are zero
                    u.update(repeating: 0, count: h * m)
                    // Links in fours where they share a term (all of them, for one other
                    // term): four pieces read side by side keep the memory busy (one piece
                    // at a time waited on each piece's first lines) and u is read and
                    // written once per four. A piece is zero above its column's diagonal,
                    // so the rows start at the level's first row for every link.
                    var a = first
                    while a < end {
                        let link = links[a]
                        let d = Int(link.denseStart)
                        if d >= r1 { break }
                        let term = Int(link.term)
                        let target = u + (term - 1) * k1 * h
                        if a + 3 < end && Int(links[a + 3].denseStart) < r1 && links[a + 1].term == link.term
                            && links[a + 2].term == link.term && links[a + 3].term == link.term {
                            let p0 = B + d * h, p1 = B + Int(links[a + 1].denseStart) * h
                            let p2 = B + Int(links[a + 2].denseStart) * h, p3 = B + Int(links[a + 3].denseStart) * h
                            let b0 = Int(link.gBase), b1 = Int(links[a + 1].gBase)
                            let b2 = Int(links[a + 2].gBase), b3 = Int(links[a + 3].gBase)
                            if k1 == 1 {
                                let g0 = g[b0], g1 = g[b1], g2 = g[b2], g3 = g[b3]
                                for r in from..<h { target[r] += (p0[r] * g0 + p1[r] * g1) + (p2[r] * g2 + p3[r] * g3) }
                            } else {
                                let g00 = g[b0], g10 = g[b1], g20 = g[b2], g30 = g[b3]
                                let g01 = g[b0 + 1], g11 = g[b1 + 1], g21 = g[b2 + 1], g31 = g[b3 + 1]
                                let target1 = target + h
                                for r in from..<h {
                                    let x0 = p0[r], x1 = p1[r], x2 = p2[r], x3 = p3[r]
                                    target[r] += (x0 * g00 + x1 * g10) + (x2 * g20 + x3 * g30)
                                    target1[r] += (x0 * g01 + x1 * g11) + (x2 * g21 + x3 * g31)
                                }
                            }
                            a += 4
                            continue
                        }
                        let piece = B + d * h
                        let base = Int(link.gBase)
                        if k1 == 1 {
                            let g0 = g[base]
                            for r in from..<h { target[r] += piece[r] * g0 }
                        } else {
                            let g0 = g[base], g1 = g[base + 1]
                            let target1 = target + h
                            for r in from..<h {
                                let x = piece[r]
                                target[r] += x * g0
                                target1[r] += x * g1
                            }
                        }
                        a += 1
                    }
                    let C = out + l * mm
                    for j in 0..<m {
                        for i in 0...j { C[i + j * m] += dotProduct(u + i * h + from, u + j * h + from, h - from) }
                    }
                }
            }
        }
        return out
    }

    /// The entries of A⁻¹ by the triangular route: the first term's diagonal blocks and S⁻¹'s
    /// diagonal precomputed, every other entry from X = L_S⁻¹ when asked (a cross entry costs
    /// its level's links times the rows of X: the gradient and the conditional variances never
    /// ask for one).
    private struct TriangularInverse: InverseEntries {
        let owner: BlockedDenseFactorization
        let diagonal: [Double]
        let diagonalS: [Double]
        let traceSums: [[Double]]?

        var logDetTraceSums: [[Double]]? { traceSums }

        func entry(_ i: Int, _ j: Int) -> Double {
            let o = owner
            let q1 = o.q1, k1 = o.k1
            if i >= q1 && j >= q1 {
                let a = Int(o.denseIndex[i - q1]), b = Int(o.denseIndex[j - q1])
                return a == b ? diagonalS[a] : o.inverseEntry(a, b)
            }
            if i < q1 && j < q1 {
                guard i / k1 == j / k1 else { return 0 }
                return diagonal[(i / k1) * k1 * k1 + (i % k1) + (j % k1) * k1]
            }
            // A⁻¹[d, (l, c)] = −(X[:, d]' U_l T₁ L_l⁻ᵀ L_l⁻¹)[c], U_l = X Ĝ_l.
            let (first, other) = i < q1 ? (i, j) : (j, i)
            let l = first / k1, d = Int(o.denseIndex[other - q1]), n = o.nS
            let X = o.S, columnD = X.column(d)
            let T = o.templates
            var y = [Double](repeating: 0, count: k1)
            for a in o.levelStart[l]..<o.levelStart[l + 1] {
                let link = o.links[a]
                let theta = T[o.design.layouts[Int(link.term)].templateOffset]
                let column = X.column(Int(link.denseStart))
                // X[:, d]' X[:, dₐ] over the rows both reach.
                var dot = 0.0
                for r in max(d, Int(link.denseStart))..<n { dot += columnD[r] * column[r] }
                for c in 0..<k1 { y[c] += dot * theta * o.G.values[Int(link.gBase) + c] }
            }
            // y T₁, then L⁻ᵀ, L⁻¹ from the right: (y T₁) L⁻ᵀ L⁻¹.
            let offset = o.design.layouts[0].templateOffset
            var row = [Double](repeating: 0, count: k1)
            for c in 0..<k1 { for e in c..<k1 { row[c] += y[e] * T[offset + e + c * k1] } }
            o.L11.withUnsafeBufferPointer { L in
                let Ll = L.baseAddress! + l * k1 * k1
                row.withUnsafeMutableBufferPointer { buffer in
                    SmallCholesky.solveRightTransposed(buffer.baseAddress!, rows: 1, L: Ll, k1)
                    SmallCholesky.solveRight(buffer.baseAddress!, rows: 1, L: Ll, k1)
                }
            }
            return -row[first % k1]
        }
    }
}

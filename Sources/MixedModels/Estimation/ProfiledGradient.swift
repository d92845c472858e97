import Foundation

/// The gradient of the profiled criterion d(θ) with respect to θ, analytic:
///
///     d(θ) = log|A| + [log|RX'RX|] + ν log r²        (ν = n for ML, n − p for REML)
///
///     ∂ log|A|      / ∂θₖ = 2 tr(A⁻¹Λ'G Dₖ)
///     ∂ r²          / ∂θₖ = −2 (Z'e)' Dₖ u            (e the residual; envelope theorem)
///     ∂ log|RX'RX|  / ∂θₖ = −2 tr(K F' Dₖ),  K = A⁻¹Λ'Z'X = Λ'H,  F = H(RX'RX)⁻¹,  H = Z'V₀⁻¹X
///
/// with `A = Λ'GΛ + I`, `G = Z'Z`, `Dₖ = ∂Λ/∂θₖ` (one entry of Tⱼ at every level of its term).
/// `A⁻¹` is needed only on the blocks of `G`: the selected inverse. Cost: one selected
/// inversion (about two factorizations) plus p + 1 solves.
enum ProfiledGradient {
    /// ∇d at the θ of the last `pls.update`. Overwrites the factor (selected inversion).
    static func compute(_ pls: PenalizedLeastSquares, criterion: Criterion) throws -> [Double] {
        let q = pls.q, p = pls.p, n = pls.n
        let design = pls.design
        let terms = design.terms
        let G = pls.products.G
        let owner = design.termOfColumn

        let beta = pls.workingFixedEffects()
        let u = try pls.sphericalEffects()
        let b = pls.applyLambda(u)
        let z = pls.residualCrossProduct(workingBeta: beta, b: b)
        let Y = pls.products.ZtXy

        // REML: K = A⁻¹Λ'Z'X, H = Z'X − GΛK, F = H (RX'RX)⁻¹.
        var K: [Double] = [], F: [Double] = []
        if criterion == .reml && p > 0 {
            K = try pls.solveFixedEffectColumns()
            var H = Array(Y[0..<(q * p)])
            for c in 0..<p {
                let lambdaK = pls.applyLambda(Array(K[(c * q)..<((c + 1) * q)]))
                var column = Array(H[(c * q)..<((c + 1) * q)])
                symmetricProduct(G: G, owner: owner, design: design, x: lambdaK, subtractingInto: &column)
                for i in 0..<q { H[i + c * q] = column[i] }
            }
            // F = H R⁻¹R⁻ᵀ with RX upper: solve row by row.
            let R = pls.workingRX()
            F = H
            var row = [Double](repeating: 0, count: p)
            for i in 0..<q {
                for c in 0..<p { row[c] = F[i + c * q] }
                // row ← row R⁻¹ (upper R: forward over columns)
                for c in 0..<p {
                    var s = row[c]
                    for d in 0..<c { s -= row[d] * R[d, c] }
                    row[c] = s / R[c, c]
                }
                // row ← row R⁻ᵀ (backward)
                for c in stride(from: p - 1, through: 0, by: -1) {
                    var s = row[c]
                    for d in (c + 1)..<max(c + 1, p) { s -= row[d] * R[c, d] }
                    row[c] = s / R[c, c]
                }
                for c in 0..<p { F[i + c * q] = row[c] }
            }
        }

        // M_I = Σ_J A⁻¹_{IJ} (Λ'G)_{JI} for every level block I, from the stored blocks of G,
        // summed over each term's levels (or those sums straight from the factorization).
        let inverse = try pls.invert()
        let traceSums = inverse.logDetTraceSums ?? traceBlockSums(pls, inverse: inverse)
        PhaseLog.mark("    gradient: traces on Z'Z's blocks")
        let nu = Double(criterion == .ml ? n : n - p)
        let rss = pls.penalizedRSS
        var gradient: [Double] = []
        for (j, term) in terms.enumerated() {
            let k = term.effectCount
            for s in 0..<k {
                for r in s..<k {
                    let logDetA = traceSums[j][s + r * k]
                    var dRSS = 0.0, logDetRX = 0.0
                    for l in 0..<term.levelCount {
                        let base = design.layouts[j].start(level: l)
                        dRSS += z[base + r] * u[base + s]
                        if !K.isEmpty {
                            for c in 0..<p { logDetRX += K[base + s + c * q] * F[base + r + c * q] }
                        }
                    }
                    gradient.append(2 * logDetA - 2 * logDetRX + nu * (-2 * dRSS) / rss)
                }
            }
        }
        return gradient
    }

    /// For every term, Σ over its levels of `M_I = Σ_J A⁻¹_{IJ} (Λ'G)_{JI}` (k × k,
    /// column-major), from A⁻¹ on the stored blocks of G.
    private static func traceBlockSums(_ pls: PenalizedLeastSquares, inverse: InverseEntries) -> [[Double]] {
        let design = pls.design
        let terms = design.terms
        let G = pls.products.G
        let colptr = G.columnPointers, rowind = G.rowIndices, g = G.values
        let owner = design.termOfColumn
        let T = pls.templates
        let onPattern = inverse.valuesOnPattern
        var M = [Double](repeating: 0, count: terms.reduce(0) { $0 + $1.levelCount * $1.effectCount * $1.effectCount })
        var mOffset = [Int](), offset = 0
        for term in terms { mOffset.append(offset); offset += term.levelCount * term.effectCount * term.effectCount }
        let kmax = terms.map(\.effectCount).max() ?? 1
        var inverseBlock = [Double](repeating: 0, count: kmax * kmax)
        var product = [Double](repeating: 0, count: kmax * kmax)
        for b in terms.indices {
            let kb = terms[b].effectCount
            let layoutB = design.layouts[b], Tb = layoutB.templateOffset
            for m in 0..<terms[b].levelCount {
                let c0 = layoutB.start(level: m)
                let first = Int(colptr[c0])
                let blockRows = Int(colptr[c0 + 1]) - first
                let baseC = mOffset[b] + m * kb * kb
                var t = 0
                while t < blockRows {
                    let r0 = Int(rowind[first + t])
                    let a = Int(owner[r0])
                    let ka = terms[a].effectCount
                    let layoutA = design.layouts[a], Ta = layoutA.templateOffset
                    let gBase = first + t
                    // M_C += A⁻¹_{CR} (T_a' G_RC), with G_RC (ka × kb) at gBase + s*blockRows + r.
                    for s2 in 0..<kb {
                        for r in 0..<ka {
                            var tg = 0.0
                            for r2 in r..<ka { tg += T[Ta + r2 + r * ka] * g[gBase + s2 * blockRows + r2] }
                            product[r + s2 * ka] = tg
                        }
                    }
                    inverseBlock.withUnsafeMutableBufferPointer { out in
                        if let onPattern {
                            // A⁻¹[c0 + s1, r0 + r] = A⁻¹[r0 + r, c0 + s1], stored where G stores (r, s1).
                            for r in 0..<ka { for s1 in 0..<kb { out[s1 + r * kb] = onPattern[gBase + s1 * blockRows + r] } }
                        } else {
                            inverse.block(rows: c0, kb, columns: r0, ka, into: out.baseAddress!)
                        }
                    }
                    for s2 in 0..<kb {
                        for s1 in 0..<kb {
                            var sum = 0.0
                            for r in 0..<ka { sum += inverseBlock[s1 + r * kb] * product[r + s2 * ka] }
                            M[baseC + s1 + s2 * kb] += sum
                        }
                    }
                    if r0 != c0 {
                        // M_R += A⁻¹_{RC} (T_b' G_RC')  (A⁻¹_{RC} is the transpose of A⁻¹_{CR}).
                        let baseR = mOffset[a] + layoutA.level(ofColumn: r0) * ka * ka
                        for r2 in 0..<ka {
                            for s in 0..<kb {
                                var tg = 0.0
                                for s2 in s..<kb { tg += T[Tb + s2 + s * kb] * g[gBase + s2 * blockRows + r2] }
                                product[s + r2 * kb] = tg
                            }
                        }
                        for r2 in 0..<ka {
                            for r1 in 0..<ka {
                                var sum = 0.0
                                for s in 0..<kb { sum += inverseBlock[s + r1 * kb] * product[s + r2 * kb] }
                                M[baseR + r1 + r2 * ka] += sum
                            }
                        }
                    }
                    t += ka
                }
            }
        }

        return terms.enumerated().map { j, term in
            let k = term.effectCount
            var sum = [Double](repeating: 0, count: k * k)
            for l in 0..<term.levelCount {
                for index in 0..<(k * k) { sum[index] += M[mOffset[j] + l * k * k + index] }
            }
            return sum
        }
    }

    /// y ← y − Gx for the symmetric G stored as upper blocks plus full diagonal blocks.
    static func symmetricProduct(G: CholmodSparse, owner: [Int32], design: RandomEffectsDesign, x: [Double],
                                 subtractingInto y: inout [Double]) {
        let colptr = G.columnPointers, rowind = G.rowIndices, g = G.values
        let layouts = design.layouts
        for c in 0..<design.q {
            let layout = layouts[Int(owner[c])]
            let levelStart = layout.start(level: layout.level(ofColumn: c))
            for index in Int(colptr[c])..<Int(colptr[c + 1]) {
                let i = Int(rowind[index])
                if i >= levelStart {
                    y[i] -= g[index] * x[c]           // own diagonal block, stored in full
                } else {
                    y[i] -= g[index] * x[c]
                    y[c] -= g[index] * x[i]
                }
            }
        }
    }
}

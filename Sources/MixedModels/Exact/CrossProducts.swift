/// The cross-products of the model matrices, computed once per model so that each
/// evaluation costs a refactorization, not a pass over the n rows (as MixedModels.jl's `A`):
/// `G = Z'Z` (sparse, symmetric), `Z'[X y]`, `X'X`, `X'y`, `y'y`.
///
/// `G` is stored in the upper triangle with a block pattern: each column block (term b,
/// level m) holds, for every term a < b, the dense kᵃ × kᵇ blocks of the levels of a that
/// share a row with level m, then its own full kᵇ × kᵇ diagonal block (CHOLMOD ignores the
/// part below the diagonal). Every column of a block has the same rows, and every stored
/// block is dense, so `Λ'GΛ` has exactly this pattern for any θ.
final class CrossProducts {
    /// `Z'Z`, q × q, upper, block pattern.
    let G: CholmodSparse
    /// `Z'[X y]`, q × (p + 1), column-major.
    let ZtXy: [Double]
    /// `[X y]'[X y]`, (p + 1) × (p + 1), lower triangle, column-major.
    let XyTXy: [Double]
    let p: Int

    init(design: RandomEffectsDesign, X: Matrix, y: [Double]) throws {
        let n = design.n, q = design.q, p = X.columns
        self.p = p
        let terms = design.terms
        let colptrZ = design.Z.columnPointers, rowsZ = design.Z.rowIndices

        // Pattern: for each column block, the sorted levels of each earlier term.
        var columnBlockRows: [Int32] = []          // concatenated row indices of one column per block
        var blockStart: [Int] = [0]                // into columnBlockRows, per column block
        var stamp = terms.map { [Int32](repeating: -1, count: $0.levelCount) }
        var blockIndex: Int32 = 0
        for b in terms.indices {
            let kb = terms[b].effectCount
            for m in 0..<terms[b].levelCount {
                let c0 = design.offsets[b] + m * kb
                for a in 0..<b {
                    let ka = terms[a].effectCount
                    var levels: [Int32] = []
                    let codes = terms[a].codes
                    for p in Int(colptrZ[c0])..<Int(colptrZ[c0 + 1]) {
                        let l = codes[Int(rowsZ[p])]
                        if stamp[a][Int(l)] != blockIndex {
                            stamp[a][Int(l)] = blockIndex
                            levels.append(l)
                        }
                    }
                    levels.sort()
                    for l in levels {
                        for r in 0..<ka { columnBlockRows.append(Int32(design.offsets[a] + Int(l) * ka + r)) }
                    }
                }
                for r in 0..<kb { columnBlockRows.append(Int32(c0 + r)) }
                blockStart.append(columnBlockRows.count)
                blockIndex += 1
            }
        }

        // Allocate G: each of a block's k columns repeats the block's rows.
        var nonzeros = 0
        var blockCounter = 0
        for term in terms {
            for _ in 0..<term.levelCount {
                nonzeros += (blockStart[blockCounter + 1] - blockStart[blockCounter]) * term.effectCount
                blockCounter += 1
            }
        }
        G = try CholmodSparse(rows: q, columns: q, nonzeros: nonzeros, symmetry: .upper, common: design.Z.common)
        let colptr = G.columnPointers, rowind = G.rowIndices, values = G.values
        colptr[0] = 0
        var column = 0
        var block = 0
        for term in terms {
            for _ in 0..<term.levelCount {
                let start = blockStart[block], end = blockStart[block + 1]
                for _ in 0..<term.effectCount {
                    var p = Int(colptr[column])
                    for t in start..<end {
                        rowind[p] = columnBlockRows[t]
                        values[p] = 0
                        p += 1
                    }
                    colptr[column + 1] = Int32(p)
                    column += 1
                }
                block += 1
            }
        }

        // Values: accumulate every row's products into its blocks.
        var position = terms.map { [Int32](repeating: -1, count: $0.levelCount) }
        for b in terms.indices {
            let kb = terms[b].effectCount
            let Xb = terms[b].effects.values
            for m in 0..<terms[b].levelCount {
                let c0 = design.offsets[b] + m * kb
                let first = Int(colptr[c0])
                let blockRows = Int(colptr[c0 + 1]) - first
                // Where each earlier term's levels sit in this block's rows.
                var t = 0
                while t < blockRows - kb {
                    let row = Int(rowind[first + t])
                    let a = Int(design.termOfColumn[row])
                    let ka = terms[a].effectCount
                    position[a][(row - design.offsets[a]) / ka] = Int32(t)
                    t += ka
                }
                for p in Int(colptrZ[c0])..<Int(colptrZ[c0 + 1]) {
                    let i = Int(rowsZ[p])
                    for s in 0..<kb {
                        let zbs = Xb[i + s * n]
                        let columnStart = Int(colptr[c0 + s])
                        for a in 0..<b {
                            let ka = terms[a].effectCount
                            let offset = Int(position[a][Int(terms[a].codes[i])])
                            let Xa = terms[a].effects.values
                            for r in 0..<ka { values[columnStart + offset + r] += Xa[i + r * n] * zbs }
                        }
                        let diagonal = columnStart + blockRows - kb
                        for r in 0..<kb { values[diagonal + r] += Xb[i + r * n] * zbs }
                    }
                }
            }
        }

        // Z'[X y] and [X y]'[X y].
        var ZtXy = [Double](repeating: 0, count: q * (p + 1))
        for (j, term) in terms.enumerated() {
            let k = term.effectCount
            let Xj = term.effects.values
            for i in 0..<n {
                let base = design.offsets[j] + Int(term.codes[i]) * k
                for r in 0..<k {
                    let z = Xj[i + r * n]
                    for c in 0..<p { ZtXy[base + r + c * q] += z * X.values[i + c * n] }
                    ZtXy[base + r + p * q] += z * y[i]
                }
            }
        }
        self.ZtXy = ZtXy
        var Xy = X.values
        Xy.append(contentsOf: y)
        var XyTXy = [Double](repeating: 0, count: (p + 1) * (p + 1))
        Xy.withUnsafeBufferPointer { A in
            XyTXy.withUnsafeMutableBufferPointer { C in
                BLAS.syrkTransposed(n: n, k: p + 1, alpha: 1, A: A.baseAddress!, lda: n, beta: 0, C: C.baseAddress!, ldc: p + 1)
            }
        }
        self.XyTXy = XyTXy
    }
}

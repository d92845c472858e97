/// CHOLMOD's sparse Cholesky factorization of the whole of `A = Λ'Z'ZΛ + I`: the pattern is
/// analysed once (fill-reducing ordering, supernodes); each θ rescales `Λ'GΛ` on `G`'s fixed
/// block pattern and calls `cholmod_factorize_p` with the identity added as a shift.
final class SparseCholeskyFactorization: RandomEffectsFactorization {
    private let design: RandomEffectsDesign
    private let parameters: CovarianceParameters
    /// `Z'Z`, upper, block pattern.
    private let G: CholmodSparse
    /// `Λ'Z'ZΛ` on the pattern of `G`.
    private let A: CholmodSparse
    let factor: CholmodFactor
    /// Row i of `A` is row `inversePermutation[i]` of `PAP'`.
    let inversePermutation: [Int32]
    private let blasThreads: Int

    /// Solve buffers by number of right-hand sides (p + 1 for the update, 1 for other solves).
    private var lowerSolveBuffers: [Int: (rhs: CholmodDense, solved: CholmodDense)] = [:]
    private let uRHS: CholmodDense
    private let uSolved: CholmodDense
    private let workspace: CholmodFactor.SolveWorkspace
    private var blockScratch: [Double]
    private let allScalar: Bool

    init(design: RandomEffectsDesign, G: CholmodSparse, parameters: CovarianceParameters, rightHandSides: Int) throws {
        self.design = design
        self.parameters = parameters
        self.G = G
        let common = G.common
        A = try CholmodSparse(rows: G.rowCount, columns: G.columnCount, nonzeros: G.nonzeroCount, symmetry: .upper, common: common)
        _ = A.columnPointers.initialize(from: G.columnPointers)
        for index in 0..<G.nonzeroCount {
            A.rowIndices[index] = G.rowIndices[index]
            A.values[index] = G.values[index]
        }
        factor = try CholmodFactor(analyzing: A)
        blasThreads = Threading.blasThreads(forLargestBlock: factor.statistics.largestSupernode)
        var inverse = [Int32](repeating: 0, count: design.q)
        for (k, original) in factor.permutation.enumerated() { inverse[Int(original)] = Int32(k) }
        inversePermutation = inverse
        lowerSolveBuffers[rightHandSides] = (try CholmodDense(rows: design.q, columns: rightHandSides, common: common),
                                             CholmodDense(common: common))
        uRHS = try CholmodDense(rows: design.q, columns: 1, common: common)
        uSolved = CholmodDense(common: common)
        workspace = CholmodFactor.SolveWorkspace(common: common)
        let kmax = design.terms.map(\.effectCount).max() ?? 1
        blockScratch = [Double](repeating: 0, count: kmax * kmax)
        allScalar = design.terms.allSatisfy { $0.effectCount == 1 }
    }

    var summary: String { "CHOLMOD sparse Cholesky: " + factor.statistics.description }

    func factorize(templates: UnsafeBufferPointer<Double>) throws -> Double {
        scaleCrossProducts(templates)
        Threading.setBLASThreads(blasThreads)
        try factor.factorize(A, shift: 1)
        return factor.logDeterminant
    }

    func solveLower(_ B: UnsafeMutablePointer<Double>, columns: Int) throws {
        let q = design.q
        if lowerSolveBuffers[columns] == nil {
            lowerSolveBuffers[columns] = (try CholmodDense(rows: q, columns: columns, common: G.common), CholmodDense(common: G.common))
        }
        let (rhs, solved) = lowerSolveBuffers[columns]!
        let target = rhs.values, ld = rhs.leadingDimension
        for c in 0..<columns {
            for i in 0..<q { target[Int(inversePermutation[i]) + c * ld] = B[i + c * q] }
        }
        try factor.solve(.L, rhs, into: solved, workspace: workspace)
        let source = solved.values, lds = solved.leadingDimension
        for c in 0..<columns { for k in 0..<q { B[k + c * q] = source[k + c * lds] } }
    }

    func solveUpper(_ x: UnsafeMutablePointer<Double>) throws {
        let q = design.q
        let target = uRHS.values
        for k in 0..<q { target[k] = x[k] }
        try factor.solve(.Lt, uRHS, into: uSolved, workspace: workspace)
        let v = uSolved.values
        for (k, original) in factor.permutation.enumerated() { x[Int(original)] = v[k] }
    }

    func invert() -> InverseEntries {
        Inverse(selected: SelectedInverse(overwriting: factor), inversePermutation: inversePermutation)
    }

    private struct Inverse: InverseEntries {
        let selected: SelectedInverse
        let inversePermutation: [Int32]
        func entry(_ i: Int, _ j: Int) -> Double {
            selected.entry(Int(inversePermutation[i]), Int(inversePermutation[j]))
        }
    }

    /// A = Λ'GΛ, block by block on the fixed pattern.
    private func scaleCrossProducts(_ T: UnsafeBufferPointer<Double>) {
        let colptr = G.columnPointers, rowind = G.rowIndices
        let g = G.values, a = A.values
        let terms = design.terms
        let layouts = design.layouts
        let owner = design.termOfColumn
        let q = design.q
        if allScalar {
            // θ per term is one number: A = θₐ θ_b G.
            for c in 0..<q {
                let thetaB = T[layouts[Int(owner[c])].templateOffset]
                for index in Int(colptr[c])..<Int(colptr[c + 1]) {
                    let thetaA = T[layouts[Int(owner[Int(rowind[index])])].templateOffset]
                    a[index] = g[index] * thetaA * thetaB
                }
            }
            return
        }
        blockScratch.withUnsafeMutableBufferPointer { scratch in
            for b in terms.indices {
                let kb = terms[b].effectCount
                let Tb = layouts[b].template(T.baseAddress!)
                for m in 0..<terms[b].levelCount {
                    let c0 = layouts[b].start(level: m)
                    let first = Int(colptr[c0])
                    let blockRows = Int(colptr[c0 + 1]) - first
                    var t = 0
                    while t < blockRows {
                        let ra = Int(owner[Int(rowind[first + t])])
                        let ka = terms[ra].effectCount
                        let Ta = layouts[ra].template(T.baseAddress!)
                        BlockTransform.congruence(G: g.baseAddress! + first + t, columnStride: blockRows,
                                                  ka: ka, kb: kb, Ta: Ta, Tb: Tb, scratch: scratch.baseAddress!,
                                                  into: a.baseAddress! + first + t, outputStride: blockRows)
                        t += ka
                    }
                }
            }
        }
    }
}

/// The small dense kernel of Λ'GΛ: one block `Tₐ' G Tᵦ`.
enum BlockTransform {
    /// `out = Taᵀ · G · Tb` for a ka × kb block of G stored with `columnStride` between its
    /// columns; Ta (ka × ka) and Tb (kb × kb) lower triangular, column-major.
    @inline(__always)
    static func congruence(G: UnsafePointer<Double>, columnStride: Int, ka: Int, kb: Int,
                           Ta: UnsafePointer<Double>, Tb: UnsafePointer<Double>,
                           scratch: UnsafeMutablePointer<Double>,
                           into out: UnsafeMutablePointer<Double>, outputStride: Int) {
        // scratch = G · Tb  (ka × kb)
        for s in 0..<kb {
            for r in 0..<ka {
                var sum = 0.0
                for s2 in s..<kb { sum += G[r + s2 * columnStride] * Tb[s2 + s * kb] }
                scratch[r + s * ka] = sum
            }
        }
        // out = Taᵀ · scratch
        for s in 0..<kb {
            for r in 0..<ka {
                var sum = 0.0
                for r2 in r..<ka { sum += Ta[r2 + r * ka] * scratch[r2 + s * ka] }
                out[r + s * outputStride] = sum
            }
        }
    }
}

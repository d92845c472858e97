import Foundation

/// Penalized least squares given θ, in the notation of Bates, Mächler, Bolker and Walker
/// (2015), "Fitting Linear Mixed-Effects Models Using lme4", JSS 67(1), section 3.
///
/// For θ it factors `Λ'Z'ZΛ + I = P'LL'P` (sparse, CHOLMOD), then eliminates `u` from the
/// mixed-model equations through the dense p × p Schur complement
/// `RX'RX = X'X − RZX'RZX` with `RZX = L⁻¹PΛ'Z'X`; `cu = L⁻¹PΛ'Z'y` and
/// `cβ = RX'⁻¹(X'y − RZX'cu)` give the penalized residual sum of squares
/// `r² = y'y − ‖cu‖² − ‖cβ‖²` without touching the n rows. This one core serves every method:
/// REML/ML optimization, the MacKay and EM loops, and the given-variances fit.
///
/// The work is split as the optimizer needs it: construction analyses the pattern once;
/// ``update(theta:)`` refactors and computes the profiled quantities (the only work per
/// evaluation, into preallocated buffers); ``fixedEffects()``, ``sphericalEffects()`` and
/// ``randomEffects()`` recover β, u and b = Λu on demand.
final class PenalizedLeastSquares {
    let design: RandomEffectsDesign
    let products: CrossProducts
    let parameters: CovarianceParameters
    let n: Int
    let p: Int
    var q: Int { design.q }

    /// `Λ'Z'ZΛ` on the pattern of `G`; the factorization adds the identity.
    let A: CholmodSparse
    let factor: CholmodFactor
    /// OpenBLAS threads for this factor's dense blocks.
    let blasThreads: Int
    /// Inverse of the fill-reducing permutation: row i of `A` is row `inversePermutation[i]` of `PAP'`.
    let inversePermutation: [Int32]

    // Workspace, allocated once.
    private var templates: [Double]
    private let rhs: CholmodDense            // P Λ' Z'[X y]
    private let solved: CholmodDense         // L⁻¹ P Λ' Z'[X y] = [RZX cu]
    private let uRHS: CholmodDense
    private let uSolved: CholmodDense
    private let workspace: CholmodFactor.SolveWorkspace
    /// Lower Cholesky factor of the (p+1) × (p+1) Schur complement of [X y]: RX' and cβ'.
    private var schur: [Double]
    private var blockScratch: [Double]

    // Results of the last update.
    private(set) var theta: [Double]
    /// log det(LL') = log det(Λ'Z'ZΛ + I).
    private(set) var logDetL = 0.0
    /// log det(RX'RX).
    private(set) var logDetRX = 0.0
    /// Penalized residual sum of squares ‖y − Xβ − ZΛu‖² + ‖u‖² at the PLS solution.
    private(set) var penalizedRSS = 0.0

    init(frame: ModelFrame, common: CholmodCommon) throws {
        n = frame.n
        p = frame.X.columns
        design = try RandomEffectsDesign(terms: frame.randomTerms, n: frame.n, common: common)
        products = try CrossProducts(design: design, X: frame.X, y: frame.y)
        parameters = CovarianceParameters(effectCounts: frame.randomTerms.map(\.effectCount))
        let G = products.G
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

        let q = design.q
        rhs = try CholmodDense(rows: q, columns: p + 1, common: common)
        solved = CholmodDense(common: common)
        uRHS = try CholmodDense(rows: q, columns: 1, common: common)
        uSolved = CholmodDense(common: common)
        workspace = CholmodFactor.SolveWorkspace(common: common)
        templates = [Double](repeating: 0, count: parameters.templateStorageCount)
        schur = [Double](repeating: 0, count: (p + 1) * (p + 1))
        let kmax = frame.randomTerms.map(\.effectCount).max() ?? 1
        blockScratch = [Double](repeating: 0, count: kmax * kmax)
        theta = parameters.initialTheta
    }

    // MARK: Evaluation

    /// Refactors for θ and computes `logDetL`, `logDetRX` and `penalizedRSS`.
    /// - Throws: ``PLSError`` when the fixed-effects Schur complement is not positive definite.
    func update(theta newTheta: [Double]) throws {
        precondition(newTheta.count == parameters.count, "θ has \(parameters.count) elements")
        theta = newTheta
        theta.withUnsafeBufferPointer { θ in
            templates.withUnsafeMutableBufferPointer { parameters.fill(θ, into: $0) }
        }
        scaleCrossProducts()
        Threading.setBLASThreads(blasThreads)
        try factor.factorize(A, shift: 1)
        logDetL = factor.logDeterminant
        fillRightHandSide()
        try factor.solve(.L, rhs, into: solved, workspace: workspace)
        try reduceFixedEffects()
    }

    /// A = Λ'GΛ, block by block on the fixed pattern.
    private func scaleCrossProducts() {
        let G = products.G
        let colptr = G.columnPointers, rowind = G.rowIndices
        let g = G.values, a = A.values
        let terms = design.terms
        let offsets = design.offsets
        let owner = design.termOfColumn
        templates.withUnsafeBufferPointer { T in
            blockScratch.withUnsafeMutableBufferPointer { scratch in
                let allScalar = terms.allSatisfy { $0.effectCount == 1 }
                if allScalar {
                    // θ per term is one number: A = θₐ θ_b G.
                    for c in 0..<q {
                        let thetaB = T[parameters.templateOffsets[Int(owner[c])]]
                        for index in Int(colptr[c])..<Int(colptr[c + 1]) {
                            let thetaA = T[parameters.templateOffsets[Int(owner[Int(rowind[index])])]]
                            a[index] = g[index] * thetaA * thetaB
                        }
                    }
                    return
                }
                for b in terms.indices {
                    let kb = terms[b].effectCount
                    let Tb = T.baseAddress! + parameters.templateOffsets[b]
                    for m in 0..<terms[b].levelCount {
                        let c0 = offsets[b] + m * kb
                        let first = Int(colptr[c0])
                        let blockRows = Int(colptr[c0 + 1]) - first
                        var t = 0
                        while t < blockRows {
                            let ra = Int(owner[Int(rowind[first + t])])
                            let ka = terms[ra].effectCount
                            let Ta = T.baseAddress! + parameters.templateOffsets[ra]
                            // scratch = G_block · T_b  (ka × kb)
                            for s in 0..<kb {
                                for r in 0..<ka {
                                    var sum = 0.0
                                    for s2 in s..<kb { sum += g[Int(colptr[c0 + s2]) + t + r] * Tb[s2 + s * kb] }
                                    scratch[r + s * ka] = sum
                                }
                            }
                            // A_block = T_a' · scratch
                            for s in 0..<kb {
                                let column = Int(colptr[c0 + s]) + t
                                for r in 0..<ka {
                                    var sum = 0.0
                                    for r2 in r..<ka { sum += Ta[r2 + r * ka] * scratch[r2 + s * ka] }
                                    a[column + r] = sum
                                }
                            }
                            t += ka
                        }
                    }
                }
            }
        }
    }

    /// rhs = P Λ' Z'[X y].
    private func fillRightHandSide() {
        let out = rhs.values
        let ld = rhs.leadingDimension
        let columns = p + 1
        let terms = design.terms
        products.ZtXy.withUnsafeBufferPointer { Y in
            templates.withUnsafeBufferPointer { T in
                for (j, term) in terms.enumerated() {
                    let k = term.effectCount
                    let Tj = T.baseAddress! + parameters.templateOffsets[j]
                    for l in 0..<term.levelCount {
                        let base = design.offsets[j] + l * k
                        for r in 0..<k {
                            let target = Int(inversePermutation[base + r])
                            for c in 0..<columns {
                                var sum = 0.0
                                for r2 in r..<k { sum += Tj[r2 + r * k] * Y[base + r2 + c * q] }
                                out[target + c * ld] = sum
                            }
                        }
                    }
                }
            }
        }
    }

    /// Schur complement of [X y]: its Cholesky factor gives RX, cβ and r².
    private func reduceFixedEffects() throws {
        let C = solved.values
        let ld = solved.leadingDimension
        let m = p + 1
        for index in 0..<(m * m) { schur[index] = products.XyTXy[index] }
        schur.withUnsafeMutableBufferPointer { S in
            BLAS.syrkTransposed(n: q, k: m, alpha: -1, A: C.baseAddress!, lda: ld, beta: 1, C: S.baseAddress!, ldc: m)
        }
        let info = schur.withUnsafeMutableBufferPointer { BLAS.potrfLower(n: p, A: $0.baseAddress!, lda: m) }
        if info != 0 { throw PLSError.fixedEffectsNotPositiveDefinite }
        // Last row: cβ' = (X'y − RZX'cu)' RX⁻¹, and r² = (y'y − ‖cu‖²) − ‖cβ‖².
        var logDet = 0.0
        for j in 0..<p { logDet += log(schur[j + j * m]) }
        logDetRX = 2 * logDet
        var rss = schur[p + p * m]
        for j in 0..<p {
            var s = schur[p + j * m]
            for c in 0..<j { s -= schur[p + c * m] * schur[j + c * m] }
            s /= schur[j + j * m]
            schur[p + j * m] = s
            rss -= s * s
        }
        penalizedRSS = max(rss, 0)
    }

    // MARK: Solutions

    /// β̂ at the last update.
    func fixedEffects() -> [Double] {
        let m = p + 1
        var beta = [Double](repeating: 0, count: p)
        for j in stride(from: p - 1, through: 0, by: -1) {
            var s = schur[p + j * m]
            for c in (j + 1)..<max(j + 1, p) { s -= schur[c + j * m] * beta[c] }
            beta[j] = s / schur[j + j * m]
        }
        return beta
    }

    /// RX (upper triangular, p × p) at the last update: `RX'RX` is the Schur complement.
    func RX() -> Matrix {
        var R = Matrix(zeros: p, p)
        let m = p + 1
        for j in 0..<p { for i in j..<p { R[j, i] = schur[i + j * m] } }
        return R
    }

    /// û (spherical random effects) at the last update: `L'Pu = cu − RZX β`.
    func sphericalEffects() throws -> [Double] {
        let beta = fixedEffects()
        let C = solved.values
        let ld = solved.leadingDimension
        let target = uRHS.values
        for k in 0..<q {
            var s = C[k + p * ld]
            for c in 0..<p { s -= C[k + c * ld] * beta[c] }
            target[k] = s
        }
        try factor.solve(.Lt, uRHS, into: uSolved, workspace: workspace)
        let v = uSolved.values
        var u = [Double](repeating: 0, count: q)
        for (k, original) in factor.permutation.enumerated() { u[Int(original)] = v[k] }
        return u
    }

    /// b̂ = Λû.
    func randomEffects() throws -> [Double] {
        applyLambda(try sphericalEffects())
    }

    /// Λv for a vector v of length q.
    func applyLambda(_ v: [Double]) -> [Double] {
        var out = [Double](repeating: 0, count: q)
        for (j, term) in design.terms.enumerated() {
            let k = term.effectCount
            let base0 = parameters.templateOffsets[j]
            for l in 0..<term.levelCount {
                let base = design.offsets[j] + l * k
                for r in 0..<k {
                    var s = 0.0
                    for r2 in 0...r { s += templates[base0 + r + r2 * k] * v[base + r2] }
                    out[base + r] = s
                }
            }
        }
        return out
    }
}

/// Failures of the penalized least-squares solve.
enum PLSError: Error, CustomStringConvertible {
    case fixedEffectsNotPositiveDefinite

    var description: String {
        switch self {
        case .fixedEffectsNotPositiveDefinite:
            return "the fixed-effects cross-product is not positive definite (X is rank deficient given the random effects)"
        }
    }
}

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

    /// The factorization of Λ'Z'ZΛ + I (CHOLMOD, or blocked dense for dense crossed complements).
    let factorization: RandomEffectsFactorization

    // Workspace, allocated once.
    /// Every `Tⱼ` at the current θ (column-major, as ``CovarianceParameters`` lays them out).
    private(set) var templates: [Double]
    /// Λ'Z'[X y] in A's order, then L⁻¹PΛ'Z'[X y] = [RZX cu] in factor order (q × (p+1)).
    private var solved: [Double]
    private var uWork: [Double]
    /// Lower Cholesky factor of the (p+1) × (p+1) Schur complement of [X y]: RX' and cβ'.
    private var schur: [Double]

    // Results of the last update.
    private(set) var theta: [Double]
    /// log det(LL') = log det(Λ'Z'ZΛ + I).
    private(set) var logDetL = 0.0
    /// log det(RX'RX).
    private(set) var logDetRX = 0.0
    /// Penalized residual sum of squares ‖y − Xβ − ZΛu‖² + ‖u‖² at the PLS solution.
    private(set) var penalizedRSS = 0.0
    /// True while the factor holds L for `theta` (an update succeeded and no selected
    /// inversion has overwritten it since).
    private(set) var isFactored = false
    /// û and the selected inverse at `theta`, kept after a selected inversion so that the
    /// summary at an optimum found by Newton steps (whose last gradient inverted the factor)
    /// needs neither a refactorization nor a second inversion.
    private var cachedSpherical: [Double]?
    private var cachedInverse: InverseEntries?

    /// True when û and the estimates at `theta` are available: the factor holds L, or a
    /// selected inversion kept û and A⁻¹ for this θ.
    var hasSolution: Bool { isFactored || (cachedSpherical != nil && cachedInverse != nil) }

    /// Which factorization to use.
    enum Engine {
        /// Blocked dense when the first term leaves a dense complement, CHOLMOD otherwise.
        case automatic
        case sparseCholesky
        case blockedDense
    }

    init(frame: ModelFrame, common: CholmodCommon, engine: Engine = .automatic) throws {
        n = frame.n
        p = frame.X.columns
        design = try RandomEffectsDesign(terms: frame.randomTerms, n: frame.n, common: common)
        products = try CrossProducts(design: design, X: frame.X, y: frame.y)
        parameters = CovarianceParameters(effectCounts: frame.randomTerms.map(\.effectCount))
        let blocked: Bool
        switch engine {
        case .automatic: blocked = BlockedDenseFactorization.suits(design: design, G: products.G)
        case .sparseCholesky: blocked = false
        case .blockedDense: blocked = design.terms.count >= 2
        }
        if blocked {
            factorization = BlockedDenseFactorization(design: design, G: products.G, parameters: parameters)
        } else {
            factorization = try SparseCholeskyFactorization(design: design, G: products.G, parameters: parameters, rightHandSides: p + 1)
        }
        let q = design.q
        templates = [Double](repeating: 0, count: parameters.templateStorageCount)
        solved = [Double](repeating: 0, count: q * (p + 1))
        uWork = [Double](repeating: 0, count: q)
        schur = [Double](repeating: 0, count: (p + 1) * (p + 1))
        theta = parameters.initialTheta
    }

    // MARK: Evaluation

    /// Refactors for θ and computes `logDetL`, `logDetRX` and `penalizedRSS`.
    /// - Throws: ``PLSError`` when the fixed-effects Schur complement is not positive definite.
    func update(theta newTheta: [Double]) throws {
        precondition(newTheta.count == parameters.count, "θ has \(parameters.count) elements")
        theta = newTheta
        isFactored = false
        cachedSpherical = nil
        cachedInverse = nil
        theta.withUnsafeBufferPointer { θ in
            templates.withUnsafeMutableBufferPointer { parameters.fill(θ, into: $0) }
        }
        logDetL = try templates.withUnsafeBufferPointer { try factorization.factorize(templates: $0) }
        fillRightHandSide()
        try solved.withUnsafeMutableBufferPointer { try factorization.solveLower($0.baseAddress!, columns: p + 1) }
        try reduceFixedEffects()
        isFactored = true
    }

    /// The selected inverse of the current factor (overwrites it, keeping û for this θ), or the
    /// one already computed for this θ.
    func invert() throws -> InverseEntries {
        if let cachedInverse { return cachedInverse }
        let u = try sphericalEffects()
        let inverse = factorization.invert()
        isFactored = false
        cachedSpherical = u
        cachedInverse = inverse
        return inverse
    }

    /// Λ'Z'[X y] into `solved`, in A's order.
    private func fillRightHandSide() {
        let columns = p + 1
        let q = self.q
        let terms = design.terms
        products.ZtXy.withUnsafeBufferPointer { Y in
            templates.withUnsafeBufferPointer { T in
                solved.withUnsafeMutableBufferPointer { out in
                    for (j, term) in terms.enumerated() {
                        let k = term.effectCount
                        let Tj = T.baseAddress! + parameters.templateOffsets[j]
                        for l in 0..<term.levelCount {
                            let base = design.offsets[j] + l * k
                            for c in 0..<columns {
                                for r in 0..<k {
                                    var sum = 0.0
                                    for r2 in r..<k { sum += Tj[r2 + r * k] * Y[base + r2 + c * q] }
                                    out[base + r + c * q] = sum
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Schur complement of [X y]: its Cholesky factor gives RX, cβ and r².
    private func reduceFixedEffects() throws {
        let m = p + 1
        let q = self.q
        for index in 0..<(m * m) { schur[index] = products.XyTXy[index] }
        solved.withUnsafeBufferPointer { C in
            schur.withUnsafeMutableBufferPointer { S in
                BLAS.syrkTransposed(n: q, k: m, alpha: -1, A: C.baseAddress!, lda: q, beta: 1, C: S.baseAddress!, ldc: m)
            }
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
        if let cachedSpherical { return cachedSpherical }
        precondition(isFactored, "û needs the factor of the current θ")
        let beta = fixedEffects()
        let q = self.q
        var u = [Double](repeating: 0, count: q)
        for k in 0..<q {
            var s = solved[k + p * q]
            for c in 0..<p { s -= solved[k + c * q] * beta[c] }
            u[k] = s
        }
        try u.withUnsafeMutableBufferPointer { try factorization.solveUpper($0.baseAddress!) }
        return u
    }

    /// The PLS fit of another response `v` with the current θ (same factor, same X): returns
    /// β̂ᵥ and b̂ᵥ. `Ztv = Z'v` and `Xtv = X'v` are the response's cross-products.
    func solve(Ztv: [Double], Xtv: [Double]) throws -> (beta: [Double], b: [Double]) {
        let q = self.q, m = p + 1
        var c = [Double](repeating: 0, count: q)
        templates.withUnsafeBufferPointer { T in
            for (j, term) in design.terms.enumerated() {
                let k = term.effectCount
                let Tj = T.baseAddress! + parameters.templateOffsets[j]
                for l in 0..<term.levelCount {
                    let base = design.offsets[j] + l * k
                    for r in 0..<k {
                        var sum = 0.0
                        for r2 in r..<k { sum += Tj[r2 + r * k] * Ztv[base + r2] }
                        c[base + r] = sum
                    }
                }
            }
        }
        try c.withUnsafeMutableBufferPointer { try factorization.solveLower($0.baseAddress!, columns: 1) }
        // cβ = RX'⁻¹(X'v − RZX'c), then β = RX⁻¹cβ; RX' is the lower factor in `schur`.
        var cb = [Double](repeating: 0, count: p)
        for j in 0..<p {
            var s = Xtv[j]
            for k in 0..<q { s -= solved[k + j * q] * c[k] }
            for d in 0..<j { s -= schur[j + d * m] * cb[d] }
            cb[j] = s / schur[j + j * m]
        }
        var beta = [Double](repeating: 0, count: p)
        for j in stride(from: p - 1, through: 0, by: -1) {
            var s = cb[j]
            for d in (j + 1)..<max(j + 1, p) { s -= schur[d + j * m] * beta[d] }
            beta[j] = s / schur[j + j * m]
        }
        for k in 0..<q { for j in 0..<p { c[k] -= solved[k + j * q] * beta[j] } }
        try c.withUnsafeMutableBufferPointer { try factorization.solveUpper($0.baseAddress!) }
        return (beta, applyLambda(c))
    }

    /// `(A⁻¹ + M(RX'RX)⁻¹M')z` with `M = A⁻¹Λ'Z'X`: the u-block of H⁻¹ applied to (z, 0), H the
    /// mixed-model matrix. The posterior covariance of u times z, over σ².
    func solveSpherical(_ z: [Double]) throws -> [Double] {
        let q = self.q, m = p + 1
        var w = z
        try w.withUnsafeMutableBufferPointer { try factorization.solveLower($0.baseAddress!, columns: 1) }
        // t = (RX'RX)⁻¹ RZX' w, with RX' the lower factor in `schur`.
        var t = [Double](repeating: 0, count: p)
        for c in 0..<p {
            var s = 0.0
            for k in 0..<q { s += solved[k + c * q] * w[k] }
            t[c] = s
        }
        for j in 0..<p {
            for d in 0..<j { t[j] -= schur[j + d * m] * t[d] }
            t[j] /= schur[j + j * m]
        }
        for j in stride(from: p - 1, through: 0, by: -1) {
            for d in (j + 1)..<max(j + 1, p) { t[j] -= schur[d + j * m] * t[d] }
            t[j] /= schur[j + j * m]
        }
        for k in 0..<q { for c in 0..<p { w[k] += solved[k + c * q] * t[c] } }
        try w.withUnsafeMutableBufferPointer { try factorization.solveUpper($0.baseAddress!) }
        return w
    }

    /// `A⁻¹Λ'Z'X` (q × p, column-major, A's order): the solves behind the REML gradient.
    func solveFixedEffectColumns() throws -> [Double] {
        let q = self.q
        var out = Array(solved[0..<(q * p)])
        try out.withUnsafeMutableBufferPointer { buffer in
            for c in 0..<p { try factorization.solveUpper(buffer.baseAddress! + c * q) }
        }
        return out
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
    case factorizationFailed

    var description: String {
        switch self {
        case .fixedEffectsNotPositiveDefinite:
            return "the fixed-effects cross-product is not positive definite (X is rank deficient given the random effects)"
        case .factorizationFailed:
            return "the factorization of Λ'Z'ZΛ + I failed (non-finite variance parameters?)"
        }
    }
}

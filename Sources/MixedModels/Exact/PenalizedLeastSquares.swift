import Foundation

/// Penalized least squares given θ, in the notation of Bates, Mächler, Bolker and Walker
/// (2015), "Fitting Linear Mixed-Effects Models Using lme4", JSS 67(1), section 3.
///
/// For θ it factors `Λ'Z'ZΛ + I = P'LL'P` (sparse, CHOLMOD), then eliminates `u` from the
/// mixed-model equations through the dense p × p Schur complement
/// `RX'RX = X'X − RZX'RZX` with `RZX = L⁻¹PΛ'Z'X`; `cu = L⁻¹PΛ'Z'y` and
/// `cβ = RX'⁻¹(X'y − RZX'cu)` give the penalized residual sum of squares
/// `r² = y'y − ‖cu‖² − ‖cβ‖²` without touching the n rows (X and y in the working coordinates of
/// ``FixedEffectBasis``, so that no shift of the data cancels its digits). This one core serves every method:
/// REML/ML optimization, the MacKay and EM loops, and the given-variances fit.
///
/// The work is split as the optimizer needs it: construction analyses the pattern once;
/// ``update(theta:)`` refactors and computes the profiled quantities (the only work per
/// evaluation, into preallocated buffers); ``fixedEffects()``, ``sphericalEffects()`` and
/// ``randomEffects()`` recover β, u and b = Λu on demand.
///
/// What the factor holds is explicit (``State``), as in MixedModels.jl where `objective(m)`
/// reads `L` and only `updateL!` changes it: ``update(theta:)`` makes it `.factored`,
/// ``invert()`` turns it into `.inverted` (the selected inverse has overwritten L; û and A⁻¹
/// are kept) and every solve with L checks that it is still `.factored`. The profiled
/// quantities of the last successful update (``Evaluation``) are a value that no inversion
/// touches, so the objective is a pure read.
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

    /// The profiled quantities at one θ (Bates et al. 2015, eqs. 34 and 41).
    struct Evaluation {
        /// log det(LL') = log det(Λ'Z'ZΛ + I).
        let logDetL: Double
        /// log det(RX'RX).
        let logDetRX: Double
        /// Penalized residual sum of squares ‖y − Xβ − ZΛu‖² + ‖u‖² at the PLS solution.
        let penalizedRSS: Double
    }

    /// What the factorization holds for ``theta``.
    enum State {
        /// Nothing usable: before the first update, or the last update failed.
        case empty
        /// L at `theta`, with [RZX cu] and RX: every solve is available.
        case factored(Evaluation)
        /// The selected inverse at `theta` has overwritten L. û and A⁻¹ are kept, so the
        /// summary at an optimum found by Newton steps (whose last gradient inverted the
        /// factor) needs neither a refactorization nor a second inversion; RX and β̂ are
        /// still valid. Solves with L need ``update(theta:)`` first.
        case inverted(Evaluation, u: [Double], inverse: InverseEntries)

        var evaluation: Evaluation? {
            switch self {
            case .empty: return nil
            case .factored(let evaluation), .inverted(let evaluation, _, _): return evaluation
            }
        }
    }

    /// θ of the last update (successful or not).
    private(set) var theta: [Double]
    private(set) var state: State = .empty

    /// True when û and the estimates at `theta` are available (factored or inverted).
    var hasSolution: Bool { state.evaluation != nil }

    /// The profiled quantities at `theta`; only after a successful update.
    var evaluation: Evaluation {
        guard let evaluation = state.evaluation else { preconditionFailure("no successful update(theta:) yet") }
        return evaluation
    }
    /// log det(LL') = log det(Λ'Z'ZΛ + I) at `theta`.
    var logDetL: Double { evaluation.logDetL }
    /// log det(RX'RX) at `theta`.
    var logDetRX: Double { evaluation.logDetRX }
    /// Penalized residual sum of squares at `theta`.
    var penalizedRSS: Double { evaluation.penalizedRSS }

    /// The profiled criterion at `theta` (−2 log-likelihood profiled over β and σ²): a pure
    /// read of the last update.
    func objective(_ criterion: Criterion) -> Double {
        let evaluation = self.evaluation
        return ProfiledObjective(n: n, p: p).profiled(criterion, logDetL: evaluation.logDetL,
                                                      logDetRX: evaluation.logDetRX, penalizedRSS: evaluation.penalizedRSS)
    }

    /// Stops with a clear message when L is not the factor of `theta` (an inversion
    /// overwrote it, or no update succeeded).
    private func requireFactor(_ caller: StaticString = #function) {
        guard case .factored = state else {
            preconditionFailure("\(caller) needs the factor L at the current θ; call update(theta:) after invert()")
        }
    }

    /// Which factorization to use.
    enum Engine {
        /// Blocked dense when the first term leaves a dense complement, CHOLMOD otherwise.
        case automatic
        case sparseCholesky
        case blockedDense
    }

    /// - Throws: ``InsufficientMemory`` before an allocation that cannot be had; CHOLMOD's errors.
    init(frame: ModelFrame, common: CholmodCommon, engine: Engine = .automatic) throws {
        n = frame.n
        p = frame.X.columns
        design = try RandomEffectsDesign(terms: frame.randomTerms, n: frame.n, common: common)
        PhaseLog.mark("  Z")
        // Memory is checked before each large allocation (issue 11, item 12): the cross-products
        // (and OpenBLAS's buffers, mapped at its first call), then the factorization.
        let q = design.q, kmax = design.terms.map(\.effectCount).max() ?? 1
        try MemoryBudget.require(8 * n * (p + 1) + 8 * 2 * q * (p + 1) + 12 * kmax * design.Z.nonzeroCount
                                 + MemoryBudget.blasBuffer, for: "the cross-products")
        products = try CrossProducts(design: design, X: frame.X, y: frame.y)
        PhaseLog.mark("  Z'Z, Z'[X y]")
        parameters = design.parameters
        let blocked: Bool
        switch engine {
        case .automatic: blocked = BlockedDenseFactorization.suits(design: design, G: products.G)
        case .sparseCholesky: blocked = false
        case .blockedDense: blocked = design.terms.count >= 2
        }
        if blocked {
            // The factorization checks the memory for its dense block (its storage depends on
            // the inverse route it will take) together with the solves' vectors.
            factorization = try BlockedDenseFactorization(design: design, G: products.G, parameters: parameters,
                                                          alsoNeeded: 8 * 2 * q * (p + 1))
        } else {
            let sparse = try SparseCholeskyFactorization(design: design, G: products.G, parameters: parameters, rightHandSides: p + 1)
            // The symbolic analysis knows the numeric factor's size; CHOLMOD allocates it at the
            // first factorization, and a supernodal factorization calls the system's OpenBLAS
            // (whose buffer is not mapped yet).
            let factorBytes = 8 * sparse.factor.storedCount + 8 * 2 * q * (p + 1)
            let blas = sparse.factor.isSupernodal ? MemoryBudget.blasBuffer : 0
            try MemoryBudget.require(factorBytes + blas, for: "the sparse Cholesky factor")
            try MemoryBudget.probe(8 * sparse.factor.storedCount, for: "the sparse Cholesky factor")
            factorization = sparse
        }
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
        state = .empty
        theta.withUnsafeBufferPointer { θ in
            templates.withUnsafeMutableBufferPointer { parameters.fill(θ, into: $0) }
        }
        let logDetL = try templates.withUnsafeBufferPointer { try factorization.factorize(templates: $0) }
        fillRightHandSide()
        try solved.withUnsafeMutableBufferPointer { try factorization.solveLower($0.baseAddress!, columns: p + 1) }
        let (logDetRX, penalizedRSS) = try reduceFixedEffects()
        state = .factored(Evaluation(logDetL: logDetL, logDetRX: logDetRX, penalizedRSS: penalizedRSS))
    }

    /// The selected inverse at `theta`: computed from L (which it overwrites, keeping û), or
    /// the one already computed for this θ.
    func invert() throws -> InverseEntries {
        switch state {
        case .empty:
            preconditionFailure("invert() needs a successful update(theta:)")
        case .inverted(_, _, let inverse):
            return inverse
        case .factored(let evaluation):
            let u = try sphericalEffects()
            let inverse = factorization.invert()
            state = .inverted(evaluation, u: u, inverse: inverse)
            return inverse
        }
    }

    /// Λ'Z'[X y] into `solved`, in A's order.
    private func fillRightHandSide() {
        let q = self.q
        let layouts = design.layouts
        products.ZtXy.withUnsafeBufferPointer { Y in
            templates.withUnsafeBufferPointer { T in
                solved.withUnsafeMutableBufferPointer { out in
                    for c in 0...p {
                        layouts.lambdaTranspose(T.baseAddress!, Y.baseAddress! + c * q, into: out.baseAddress! + c * q)
                    }
                }
            }
        }
    }

    /// Schur complement of [X y]: its Cholesky factor gives RX, cβ and r².
    /// - Returns: log det(RX'RX) and r².
    private func reduceFixedEffects() throws -> (logDetRX: Double, penalizedRSS: Double) {
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
        let logDetRX = 2 * logDet
        var rss = schur[p + p * m]
        for j in 0..<p {
            var s = schur[p + j * m]
            for c in 0..<j { s -= schur[p + c * m] * schur[j + c * m] }
            s /= schur[j + j * m]
            schur[p + j * m] = s
            rss -= s * s
        }
        return (logDetRX, max(rss, 0))
    }

    // MARK: Solutions

    /// β̂ at the last update, for the user's X (``FixedEffectBasis/userFixedEffects(_:)``).
    func fixedEffects() -> [Double] {
        products.basis.userFixedEffects(workingFixedEffects())
    }

    /// β̃ at the last update: the coefficients of the working X̃ and ỹ of ``CrossProducts``,
    /// which every cross-product in this class uses.
    func workingFixedEffects() -> [Double] {
        precondition(hasSolution, "β̂ needs a successful update(theta:)")
        let m = p + 1
        var beta = [Double](repeating: 0, count: p)
        for j in stride(from: p - 1, through: 0, by: -1) {
            var s = schur[p + j * m]
            for c in (j + 1)..<max(j + 1, p) { s -= schur[c + j * m] * beta[c] }
            beta[j] = s / schur[j + j * m]
        }
        return beta
    }

    /// RX (upper triangular, p × p) at the last update, for the user's X: `RX'RX` is the
    /// Schur complement X'V₀⁻¹X.
    func RX() -> Matrix {
        products.basis.userRX(workingRX())
    }

    /// RX of the working X̃ (consistent with ``solveFixedEffectColumns()`` and
    /// ``workingFixedEffects()``); same determinant as ``RX()``.
    func workingRX() -> Matrix {
        precondition(hasSolution, "RX needs a successful update(theta:)")
        var R = Matrix(zeros: p, p)
        let m = p + 1
        for j in 0..<p { for i in j..<p { R[j, i] = schur[i + j * m] } }
        return R
    }

    /// σ²(RX'RX)⁻¹ for the user's X, computed in the working coordinates (well conditioned
    /// when a covariate is shifted far from zero) and transformed back.
    func fixedEffectCovariance(sigmaSquared: Double) -> Matrix {
        let R = workingRX()
        var inverse = Matrix(zeros: p, p)
        // RX'RX = LLᵀ with L = RX'; potri gives its inverse.
        for j in 0..<p { for i in j..<p { inverse[i, j] = R[j, i] } }
        _ = inverse.values.withUnsafeMutableBufferPointer { BLAS.potriLower(n: p, A: $0.baseAddress!, lda: max(p, 1)) }
        for j in 0..<p {
            for i in j..<p {
                inverse[i, j] *= sigmaSquared
                inverse[j, i] = inverse[i, j]
            }
        }
        return products.basis.userCovariance(inverse)
    }

    /// û (spherical random effects) at the last update: `L'Pu = cu − RZX β`.
    func sphericalEffects() throws -> [Double] {
        if case .inverted(_, let u, _) = state { return u }
        requireFactor()
        let beta = workingFixedEffects()
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
    /// β̂ᵥ (for the user's X) and b̂ᵥ. `Ztv = Z'v` and `Xtv = X'v` are the response's
    /// cross-products with the user's X.
    func solve(Ztv: [Double], Xtv userXtv: [Double]) throws -> (beta: [Double], b: [Double]) {
        requireFactor()
        let Xtv = products.basis.workingCrossProduct(userXtv)
        let q = self.q, m = p + 1
        var c = lambdaTranspose(Ztv)
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
        return (products.basis.userCoefficients(beta), applyLambda(c))
    }

    /// The PLS fits of `count` responses at once, in the working basis (one lower solve for
    /// all): `Ztv` (q × count) and `Xtv` (p × count, X̃'v) column-major in; β̃ᵥ (p × count) and
    /// b̂ᵥ (q × count) out.
    func solveWorking(Ztv: [Double], Xtv: [Double], count: Int) throws -> (beta: [Double], b: [Double]) {
        requireFactor()
        let q = self.q, m = p + 1
        var c = [Double](repeating: 0, count: q * count)
        for column in 0..<count {
            let lambdaTz = lambdaTranspose(Array(Ztv[(column * q)..<((column + 1) * q)]))
            for k in 0..<q { c[k + column * q] = lambdaTz[k] }
        }
        try c.withUnsafeMutableBufferPointer { try factorization.solveLower($0.baseAddress!, columns: count) }
        var betas = [Double](repeating: 0, count: p * count)
        for column in 0..<count {
            let offset = column * q
            // cβ = RX'⁻¹(X̃'v − RZX'c), then β = RX⁻¹cβ; RX' is the lower factor in `schur`.
            var cb = [Double](repeating: 0, count: p)
            for j in 0..<p {
                var s = Xtv[j + column * p]
                for k in 0..<q { s -= solved[k + j * q] * c[offset + k] }
                for d in 0..<j { s -= schur[j + d * m] * cb[d] }
                cb[j] = s / schur[j + j * m]
            }
            for j in stride(from: p - 1, through: 0, by: -1) {
                var s = cb[j]
                for d in (j + 1)..<max(j + 1, p) { s -= schur[d + j * m] * betas[d + column * p] }
                betas[j + column * p] = s / schur[j + j * m]
            }
            for k in 0..<q { for j in 0..<p { c[offset + k] -= solved[k + j * q] * betas[j + column * p] } }
            try c.withUnsafeMutableBufferPointer { try factorization.solveUpper($0.baseAddress! + offset) }
            // b̂ = Λû over û.
            let fitted = applyLambda(Array(c[offset..<(offset + q)]))
            for k in 0..<q { c[offset + k] = fitted[k] }
        }
        return (betas, c)
    }

    /// z = Z'e = Z'ỹ − Z'X̃β̃ − G b for the working β̃ and b (the residual's cross-product).
    func residualCrossProduct(workingBeta beta: [Double], b: [Double]) -> [Double] {
        let q = self.q
        let Y = products.ZtXy
        var z = [Double](repeating: 0, count: q)
        for i in 0..<q {
            var s = Y[i + p * q]
            for c in 0..<p { s -= Y[i + c * q] * beta[c] }
            z[i] = s
        }
        ProfiledGradient.symmetricProduct(G: products.G, owner: design.termOfColumn, design: design, x: b, subtractingInto: &z)
        return z
    }

    /// `(A⁻¹ + M(RX'RX)⁻¹M')z` with `M = A⁻¹Λ'Z'X`: the u-block of H⁻¹ applied to (z, 0), H the
    /// mixed-model matrix. The posterior covariance of u times z, over σ². Without the fixed
    /// effects, `A⁻¹z` (the posterior given β).
    func solveSpherical(_ z: [Double], includingFixedEffects: Bool = true) throws -> [Double] {
        requireFactor()
        let q = self.q, m = p + 1
        var w = z
        try w.withUnsafeMutableBufferPointer { try factorization.solveLower($0.baseAddress!, columns: 1) }
        guard includingFixedEffects else {
            try w.withUnsafeMutableBufferPointer { try factorization.solveUpper($0.baseAddress!) }
            return w
        }
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

    /// `A⁻¹Λ'Z'X̃` (q × p, column-major, A's order), with the working X̃: the solves behind the
    /// REML gradient (to be combined with ``workingRX()``).
    func solveFixedEffectColumns() throws -> [Double] {
        requireFactor()
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
        templates.withUnsafeBufferPointer { T in
            v.withUnsafeBufferPointer { x in
                out.withUnsafeMutableBufferPointer { design.layouts.lambda(T.baseAddress!, x.baseAddress!, into: $0.baseAddress!) }
            }
        }
        return out
    }

    /// Λ'v for a vector v of length q.
    func lambdaTranspose(_ v: [Double]) -> [Double] {
        var out = [Double](repeating: 0, count: q)
        templates.withUnsafeBufferPointer { T in
            v.withUnsafeBufferPointer { x in
                out.withUnsafeMutableBufferPointer { design.layouts.lambdaTranspose(T.baseAddress!, x.baseAddress!, into: $0.baseAddress!) }
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

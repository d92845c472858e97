import Foundation

/// A fit the iterative method cannot complete.
public struct IterativeFitError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
}

extension IterativeMixedModel {
    /// Everything computed at one value of the variance components.
    struct Evaluation {
        var phi: [Double]
        var u: [Double]
        var beta: [Double]
        /// b = Λu.
        var b: [Double]
        /// y − Xβ̂ − Zb̂.
        var residuals: [Double]
        var sse: Double
        var estimate: TraceProbes.Estimate
        var score: VarianceScore
        /// CG iterations: the response with the probes.
        var solverIterations: Int
        /// The fixed effects eliminated exactly: Λ'Z'X and M = A⁻¹Λ'Z'X (q × p,
        /// coordinate-major), the Schur complement S = RX'RX = X'X − X'ZΛM and S⁻¹ (p × p).
        var ZtX: [Double]
        var M: [Double]
        var schur: [Double]
        var schurInverse: [Double]

        /// Frees the vectors over levels and rows (u, b, residuals, Λ'Z'X, M, the per-level
        /// blocks of the estimate) once no step reads them: the next evaluation replaces this one.
        mutating func release() {
            u = []
            b = []
            residuals = []
            ZtX = []
            M = []
            estimate.levelBlocks = []
            estimate.blockInverses = []
            estimate.levelDiagonalErrors = []
        }
    }

    /// The persistent state of a fit: the probes, Z'[X y], and the solutions of the last
    /// iteration, which start the next one's solves.
    ///
    /// The right-hand sides [Λ'Z'X  Λ'Z'y  z] (p + 1 + N columns) are solved in blocks of at
    /// most ``blockWidth(q:)`` columns (each column's iterations are its own, so the blocks give
    /// the same solutions as one solve of all): the conjugate-gradient vectors are held for
    /// one block at a time, and the probes are drawn again for each use.
    final class FitState {
        let probes: TraceProbes
        /// Z'[X y] before Λ' (q × (p + 1)): it does not depend on θ.
        let ZtXy: Buffer
        /// The blocks of columns of [X y | probes].
        let blocks: [Range<Int>]
        /// Per block, the solutions of A x = [Λ'Z'X  Λ'Z'y  z] at the last θ (q × block width),
        /// in single precision: they only start the next solves.
        private(set) var solutions: [SingleBuffer]
        /// The average-information solves' last solutions (q × variance parameters), likewise.
        var variateSolution: SingleBuffer?

        /// Columns per block: 16 (one pass over the rows per conjugate-gradient iteration), or 8
        /// when a block's vectors (four of q × 16 doubles: the solution, the residuals, the
        /// directions and the products) would pass 512 MB. The width changes no value, only the
        /// memory and the passes over the rows.
        static func blockWidth(q: Int) -> Int { 4 * q * 16 * 8 <= 512 << 20 ? 16 : 8 }

        init(model: MixedModelOperator, options: IterativeOptions) {
            let n = model.n, p = model.p, q = model.q
            probes = TraceProbes(count: options.probes, seed: options.seed)
            let ZtXy = Buffer(q * (p + 1))
            self.ZtXy = ZtXy
            // Column by column from X̃ and ỹ where the operator holds them (each column's sums
            // are the same as in one pass over all p + 1).
            let none = Buffer(1)    // no rows held: a pointer for the empty columns
            model.X.withUnsafeBufferPointer { X in
                model.y.withUnsafeBufferPointer { y in
                    for column in 0...p {
                        let held = column < p ? X.baseAddress.map { $0 + column * n } : y.baseAddress
                        let f = held ?? UnsafePointer(none.pointer)
                        for j in model.terms.indices {
                            model.gather(term: j, f, count: p + 1, columns: column..<column + 1, into: ZtXy.pointer)
                        }
                    }
                }
            }
            model.sumOverProcesses(ZtXy.pointer, count: q * (p + 1))
            let m = p + 1 + options.probes
            let width = Self.blockWidth(q: q)
            blocks = stride(from: 0, to: m, by: width).map { $0..<min(m, $0 + width) }
            solutions = blocks.map { SingleBuffer(q * $0.count) }
        }

        /// Frees the solutions (and the variates'), once no solve follows.
        func release() {
            solutions = []
            variateSolution = nil
        }
    }

    /// Fits by average-information Newton steps on the REML (or ML) score in the variance
    /// components from the exact engine's approximate start (``ApproximateStart``: sweeps over
    /// the rows with each level's posterior approximated by its own block, no solves), or after
    /// two EM steps from a moment start when that start is not usable; traces from fixed
    /// Rademacher probes.
    public func fit(_ options: IterativeOptions) throws(LMMError) -> FitResult { try fitWithErrors(options).result }

    /// ``fit(_:)`` with the Monte Carlo standard errors as numbers.
    public func fitWithErrors(_ options: IterativeOptions) throws(LMMError) -> IterativeFit {
        try LMMError.wrapping { try fitIterative(options) }
    }

    /// The work of ``fitWithErrors(_:)`` (which wraps its errors).
    func fitIterative(_ options: IterativeOptions) throws -> IterativeFit {
        let begin = DispatchTime.now()
        model.threads = options.threads ?? Threading.coreCount
        if model.group.size > 1 && options.preconditioner == .gaussSeidel {
            // Its sweeps update row vectors term after term: a collective per term and sweep.
            throw IterativeFitError(message: "on more than one process the iterative method uses --preconditioner block-jacobi")
        }
        let layout = VarianceParameters(effectCounts: model.terms.map(\.k))
        // OpenBLAS's buffer is mapped already: the approximate start's cross-product, taken when
        // the model was built, mapped it.
        try IterativeMemory(frame: frame).checkFit(probes: options.probes, gaussSeidel: options.preconditioner == .gaussSeidel,
                                                   blasMapped: true)
        let approximate = approximateStart(layout)
        var phi = approximate ?? startingValues(layout)
        let emSteps = approximate == nil ? 2 : 0
        PhaseLog.mark(approximate == nil ? "moment start" : "approximate start")
        let state = FitState(model: model, options: options)
        var converged = false
        var iteration = 0
        var evaluation = try evaluate(phi: phi, layout: layout, state: state, options: options)
        var started = begin
        var forecast = StepForecast(tolerance: options.tolerance)
        // The average information at the last evaluated φ, when its step was computed.
        var lastInformation: [Double]?
        while iteration < options.maxIterations {
            iteration += 1
            let useEM = iteration <= emSteps
            var step: [Double]
            var variateIterations = 0
            if useEM {
                step = zip(evaluation.score.emStep, phi).map { $0 - $1 }
            } else {
                let (information, iterations) = try averageInformation(evaluation, layout: layout, state: state, options: options)
                variateIterations = iterations
                lastInformation = information
                guard let newton = DenseSolve.solve(information, evaluation.score.gradient) else {
                    throw IterativeFitError(message: "iteration \(iteration): the average-information matrix is not positive definite")
                }
                step = newton
            }
            // Halve the step until every covariance block stays positive definite; EM's step
            // always does (its blocks are sums of squares plus posterior covariances).
            var scale = 1.0
            var candidate = phi
            while true {
                candidate = zip(phi, step).map { $0 + scale * $1 }
                if isAdmissible(candidate, layout) { break }
                scale /= 2
                if scale < 1e-3 {
                    candidate = evaluation.score.emStep
                    step = zip(candidate, phi).map { $0 - $1 }
                    scale = 1
                    break
                }
            }
            let scales = layout.scales(phi)
            let change = zip(step, scales).map { abs(scale * $0) / $1 }.max() ?? 0
            let (covariances, sigmaSquared) = layout.split(phi)
            let now = DispatchTime.now().uptimeNanoseconds
            let elapsed = Double(now - begin.uptimeNanoseconds) / 1e9
            let remaining = forecast.record(change: change, elapsed: elapsed)
            options.progress?(IterativeProgress(
                iteration: iteration, step: useEM ? "em" : "newton",
                solverIterations: [evaluation.solverIterations, variateIterations],
                varcorr: varCorr(covariances, sigmaSquared), change: change,
                seconds: Double(now - started.uptimeNanoseconds) / 1e9, elapsed: elapsed,
                secondsRemaining: useEM ? nil : remaining))
            started = DispatchTime.now()
            if !useEM && change < options.tolerance {
                // φ is the answer: its Newton step moves no component by the tolerance, so the
                // step is not taken (its evaluation would change the estimates by less than that
                // and cost a whole evaluation), and φ's evaluation and information are reported.
                converged = true
                break
            }
            phi = candidate
            evaluation.release()    // its vectors before the next evaluation's
            evaluation = try evaluate(phi: phi, layout: layout, state: state, options: options)
            lastInformation = nil
        }
        let information = try lastInformation ?? averageInformation(evaluation, layout: layout, state: state, options: options).0
        state.release()     // before the log determinant's Lanczos vectors
        return try result(evaluation, information: information, layout: layout, state: state, options: options,
                          iterations: iteration, converged: converged, start: begin)
    }

    /// The approximate start of the exact engine taken when the model was built
    /// (``approximateComponents``: its sums over rows combined over the processes, so every
    /// process gets the same start), or nil when it is not admissible.
    func approximateStart(_ layout: VarianceParameters) -> [Double]? {
        let (covariances, sigmaSquared) = approximateComponents
        let phi = layout.join(covariances, sigmaSquared)
        guard phi.allSatisfy(\.isFinite), isAdmissible(phi, layout) else { return nil }
        return phi
    }

    /// A moment start: half of var(y) to σ², the other half split over the terms, each effect
    /// scaled by the mean square of its column (``momentSums``).
    func startingValues(_ layout: VarianceParameters) -> [Double] {
        let n = Double(model.observations)
        let sums = momentSums
        let variance = sums[0] / max(n - 1, 1)
        let share = 0.5 * variance / Double(model.terms.count)
        var next = 1
        let covariances = model.terms.map { term -> Matrix in
            var V = Matrix(zeros: term.k, term.k)
            for r in 0..<term.k {
                V[r, r] = share / max(sums[next] / n, 1e-12)
                next += 1
            }
            return V
        }
        return layout.join(covariances, 0.5 * variance)
    }

    /// The sums of the moment start over `frame`'s rows, then over the processes (collective):
    /// Σ(y − ȳ)² of the user's response (the operator holds y's residual on X, see
    /// ``FixedEffectBasis``), then per term and effect Σ eᵢ².
    static func momentSums(frame: ModelFrame, model: MixedModelOperator) -> [Double] {
        let n = Double(model.observations)
        let mean = model.sumOverProcesses([frame.y.reduce(0, +)])[0] / n
        var sums = [frame.y.reduce(0) { $0 + ($1 - mean) * ($1 - mean) }]
        for term in frame.randomTerms {
            let effects = term.effects.values
            for r in 0..<term.effectCount {
                var square = 0.0
                for i in 0..<model.n { square += effects[i + r * model.n] * effects[i + r * model.n] }
                sums.append(square)
            }
        }
        return model.sumOverProcesses(sums)
    }

    /// Every block positive definite and σ² positive.
    func isAdmissible(_ phi: [Double], _ layout: VarianceParameters) -> Bool {
        let (covariances, sigmaSquared) = layout.split(phi)
        guard sigmaSquared > 0, sigmaSquared.isFinite else { return false }
        for V in covariances {
            var L = V.values
            let ok = L.withUnsafeMutableBufferPointer { SmallCholesky.factorInPlace($0.baseAddress!, V.rows) }
            if !ok { return false }
        }
        return true
    }

    /// θ of the variance components.
    func theta(_ phi: [Double], _ layout: VarianceParameters) throws -> [Double] {
        let (covariances, sigmaSquared) = layout.split(phi)
        switch parameters.theta(covariances: covariances, sigmaSquared: sigmaSquared) {
        case .success(let theta): return theta
        case .failure(let failure):
            throw IterativeFitError(message: "the covariance of factor '\(frame.termLabels[failure.term])' is not positive semi-definite")
        }
    }

    /// Solves A x = [Λ'Z'X  Λ'Z'y  z] at φ in blocks of columns, eliminates β through the p × p Schur
    /// complement, and estimates the score. The probes estimate A⁻¹ only; for REML the rank-p
    /// part of H⁻¹ that β adds, M S⁻¹ M', is exact.
    func evaluate(phi: [Double], layout: VarianceParameters, state: FitState, options: IterativeOptions) throws -> Evaluation {
        model.setTheta(try theta(phi, layout))
        let solvers = Solvers(model: model, kind: options.preconditioner, tolerance: options.solverTolerance)
        let q = model.q, p = model.p, n = model.n, N = state.probes.count

        let ZtXy = Buffer(q * (p + 1))
        model.applyLambdaTransposed(state.ZtXy.pointer, count: p + 1, into: ZtXy.pointer)
        var ZtX = [Double](repeating: 0, count: q * p), M = [Double](repeating: 0, count: q * p)
        var c = [Double](repeating: 0, count: q)
        for a in 0..<q { for t in 0..<p { ZtX[a * p + t] = ZtXy[a * (p + 1) + t] } }
        let accumulator = TraceProbes.Accumulator(model: model, blocks: solvers.blocksA, count: N)
        PhaseLog.mark("evaluation: set-up")
        var iterations = 0
        for (block, columns) in state.blocks.enumerated() {
            let width = columns.count
            let fixed = columns.lowerBound..<max(columns.lowerBound, min(columns.upperBound, p + 1))
            let probes = (max(columns.lowerBound, p + 1) - (p + 1))..<(columns.upperBound - (p + 1))
            // The solve works in doubles from the last solutions, kept in single precision.
            let stored = state.solutions[block]
            let x = Buffer(q * width)
            stored.load(into: x.pointer)
            // The right-hand sides (and the probes among them) live only through the solve (it
            // overwrites them); the probes are drawn again for the traces (the same values),
            // not held meanwhile.
            let report: ConjugateGradient.Report
            do {
                let rhs = Buffer(q * width)
                for a in 0..<q { for column in fixed { rhs[a * width + column - columns.lowerBound] = ZtXy[a * (p + 1) + column] } }
                if !probes.isEmpty {
                    let z = Buffer(q * probes.count)
                    state.probes.fill(probes: probes, q: q, dimension: q, into: z.pointer)
                    let shift = fixed.count
                    for a in 0..<q { for j in 0..<probes.count { rhs[a * width + shift + j] = z[a * probes.count + j] } }
                }
                report = solvers.A.solve(rhs.pointer, count: width, x: x.pointer)
            }
            guard report.converged else {
                throw IterativeFitError(message: "conjugate gradients did not reach a relative residual of \(options.solverTolerance) in \(solvers.A.maxIterations) iterations")
            }
            stored.store(x.pointer)
            iterations = max(iterations, report.maxIterations)
            for column in fixed {
                let index = column - columns.lowerBound
                for a in 0..<q {
                    if column < p { M[a * p + column] = x[a * width + index] } else { c[a] = x[a * width + index] }
                }
            }
            if !probes.isEmpty {
                let z = Buffer(q * probes.count)
                state.probes.fill(probes: probes, q: q, dimension: q, into: z.pointer)
                accumulator.add(probes: probes, z: z.pointer, solutions: x.pointer, stride: width, offset: fixed.count)
            }
            PhaseLog.mark("evaluation: block \(block + 1), \(width) × \(report.maxIterations) iterations")
        }
        // S = X'X − (Λ'Z'X)'M, and β̂ = S⁻¹(X'y − (Λ'Z'X)'c), û = c − Mβ̂.
        var schur = model.XtX
        var reduced = [Double](repeating: 0, count: p)
        for i in 0..<n { for t in 0..<p { reduced[t] += model.X[i + t * n] * model.y[i] } }
        reduced = model.sumOverProcesses(reduced)
        for a in 0..<q {
            for s in 0..<p {
                reduced[s] -= ZtX[a * p + s] * c[a]
                for r in 0..<p { schur[r + s * p] -= ZtX[a * p + r] * M[a * p + s] }
            }
        }
        for s in 0..<p { for r in 0..<s { let v = 0.5 * (schur[r + s * p] + schur[s + r * p]); schur[r + s * p] = v; schur[s + r * p] = v } }
        guard let schurInverse = DenseSolve.inverse(schur) else {
            throw IterativeFitError(message: "the fixed-effects Schur complement is not positive definite")
        }
        var beta = [Double](repeating: 0, count: p)
        for r in 0..<p { for s in 0..<p { beta[r] += schurInverse[r + s * p] * reduced[s] } }
        var u = c
        for a in 0..<q { for t in 0..<p { u[a] -= M[a * p + t] * beta[t] } }

        let (b, residuals) = fitted(u: u, beta: beta)
        let sse = model.sumOverProcesses([residuals.reduce(0) { $0 + $1 * $1 }])[0]
        PhaseLog.mark("evaluation: β, residuals")
        var estimate = accumulator.estimate()
        if options.criterion == .reml { addFixedEffectsPart(to: &estimate, M: M, schurInverse: schurInverse) }
        PhaseLog.mark("evaluation: traces")
        let score = try VarianceScore(layout: layout, phi: phi, model: model, b: b, sse: sse, estimate: estimate,
                                  criterion: options.criterion)
        return Evaluation(phi: phi, u: u, beta: beta, b: b, residuals: residuals, sse: sse, estimate: estimate, score: score,
                          solverIterations: iterations, ZtX: ZtX, M: M, schur: schur, schurInverse: schurInverse)
    }

    /// H⁻¹ on the u block is A⁻¹ + M S⁻¹ M': adds the second (exact) to the sums and the trace.
    func addFixedEffectsPart(to estimate: inout TraceProbes.Estimate, M: [Double], schurInverse: [Double]) {
        let p = model.p
        guard p > 0 else { return }
        var MS = [Double](repeating: 0, count: model.q * p)     // M S⁻¹
        for a in 0..<model.q { for s in 0..<p { for r in 0..<p { MS[a * p + s] += M[a * p + r] * schurInverse[r + s * p] } } }
        for (j, term) in model.terms.enumerated() {
            let k = term.k
            let T = model.templates[j]
            var block = [Double](repeating: 0, count: k * k)
            for l in 0..<term.levelCount {
                let base = term.layout.start(level: l)
                for s in 0..<k {
                    for r in 0..<k {
                        var value = 0.0
                        for t in 0..<p { value += MS[(base + r) * p + t] * M[(base + s) * p + t] }
                        block[r + s * k] = value
                    }
                }
                for r in 0..<k { estimate.trace += block[r + r * k] }
                for s in 0..<k {
                    for r in 0..<k {
                        var value = 0.0
                        for a in 0...r { for c in 0...s { value += T[r + a * k] * block[a + c * k] * T[s + c * k] } }
                        estimate.termSums[j][r + s * k] += value
                    }
                }
            }
        }
    }

    /// b = Λu and y − Xβ − ZΛu.
    func fitted(u: [Double], beta: [Double]) -> (b: [Double], residuals: [Double]) {
        var b = [Double](repeating: 0, count: model.q)
        var f = [Double](repeating: 0, count: model.n)
        u.withUnsafeBufferPointer { u in
            b.withUnsafeMutableBufferPointer { model.applyLambda(u.baseAddress!, count: 1, into: $0.baseAddress!) }
        }
        b.withUnsafeBufferPointer { b in
            beta.withUnsafeBufferPointer { beta in
                f.withUnsafeMutableBufferPointer {
                    model.rowProduct(lambdaV: b.baseAddress!, beta: beta.baseAddress!, count: 1,
                                     blocks: Array(0...model.terms.count), accumulate: false, into: $0.baseAddress!)
                }
            }
        }
        for i in 0..<model.n { f[i] = model.y[i] - f[i] }    // the residuals, in f's place
        return (b, f)
    }

    /// The coefficients on Z's columns of the average information's working variates
    /// (q × count): for covariance entry (r, s) of term j, (I ⊗ Eᵣₛ Σⱼ⁻¹) b̂ⱼ on the term's
    /// coordinates; for σ² (the last column), b̂.
    func variateCoefficients(_ evaluation: Evaluation, covariances: [Matrix], count: Int) throws -> Buffer {
        let q = model.q
        let V = Buffer(q * count)
        var a = 0
        for (j, term) in model.terms.enumerated() {
            let k = term.k
            let inverse = try VarianceScore.inverse(covariances[j])
            for s in 0..<k {
                for r in s..<k {
                    for l in 0..<term.levelCount {
                        let base = term.layout.start(level: l)
                        // E_rs Σ⁻¹ b_l: row r gets (Σ⁻¹b)_s, row s gets (Σ⁻¹b)_r.
                        var gs = 0.0, gr = 0.0
                        for c in 0..<k {
                            gs += inverse[s, c] * evaluation.b[base + c]
                            gr += inverse[r, c] * evaluation.b[base + c]
                        }
                        V[(base + r) * count + a] += gs
                        if r != s { V[(base + s) * count + a] += gr }
                    }
                    a += 1
                }
            }
        }
        for index in 0..<q { V[index * count + count - 1] = evaluation.b[index] }
        return V
    }

    /// The average-information matrix ½ wₐ'P w_b (Gilmour, Thompson & Cullis 1995) with working
    /// variates wₐ = (∂V/∂φₐ) P y: for a covariance entry Z (I ⊗ Eᵣₛ Σⱼ⁻¹) b̂ⱼ, for σ² ê/σ².
    /// P w is the residual of the mixed-model fit of w, over σ² (ML: V⁻¹w, without X).
    /// - Returns: the matrix (column-major) and the CG iterations of its solves.
    func averageInformation(_ evaluation: Evaluation, layout: VarianceParameters, state: FitState,
                            options: IterativeOptions) throws -> ([Double], Int) {
        let (covariances, sigmaSquared) = layout.split(evaluation.phi)
        let q = model.q, p = model.p, n = model.n, count = layout.count
        let includeFixed = options.criterion == .reml
        // The variates' coefficients on Z's columns (``variateCoefficients``); σ²'s variate
        // ê/σ² = (ỹ − X̃β̂ − Zb̂)/σ² is not of that form: its coefficients are b̂, Z'Zb̂ is taken
        // with the others and Z'ê formed from it. The variates' rows (n × count) are never held
        // whole: their cross-products come from the coefficients, and the rows a stretch at a
        // time where the information sums them; the coefficients are formed again there rather
        // than held through the solve.
        let last = count - 1
        var V = try variateCoefficients(evaluation, covariances: covariances, count: count)
        let crossed = Buffer((q + (includeFixed ? p : 0)) * count)
        do {
            let noFixed = Buffer(includeFixed ? p * count : 0)
            let workspace = OperatorWorkspace(model: model, count: count)
            model.crossProduct(V.pointer, beta: includeFixed ? UnsafePointer(noFixed.pointer) : nil, count: count,
                               workspace: workspace, into: crossed.pointer)
        }
        V = Buffer(0)
        // Z'ê = Z'ỹ − Z'X̃β̂ − Z'Zb̂ (Z'[X̃ ỹ] summed over the processes already), over σ².
        for a in 0..<q {
            var value = state.ZtXy[a * (p + 1) + p]
            for t in 0..<p { value -= state.ZtXy[a * (p + 1) + t] * evaluation.beta[t] }
            crossed[a * count + last] = (value - crossed[a * count + last]) / sigmaSquared
        }
        // X'w: X'ZV from the pass, X'ê/σ² from the residuals.
        var reduced = [Double](repeating: 0, count: p * count)
        if includeFixed && p > 0 {
            var Xte = [Double](repeating: 0, count: p)
            for i in 0..<n { for t in 0..<p { Xte[t] += model.X[i + t * n] * evaluation.residuals[i] } }
            Xte = model.sumOverProcesses(Xte)
            for t in 0..<p {
                for a in 0..<last { reduced[t * count + a] = crossed[(q + t) * count + a] }
                reduced[t * count + last] = Xte[t] / sigmaSquared
            }
        }

        // The PLS fit of each w: c_w = A⁻¹Λ'Z'w, β_w = S⁻¹(X'w − (Λ'Z'X)'c_w), u_w = c_w − Mβ_w
        // (ML: β fixed, so u_w = c_w and no X).
        let solvers = Solvers(model: model, kind: options.preconditioner, tolerance: options.solverTolerance)
        model.applyLambdaTransposed(crossed.pointer, count: count, into: crossed.pointer)    // Λ'Z'w
        if state.variateSolution == nil { state.variateSolution = SingleBuffer(q * count) }
        let stored = state.variateSolution!
        let u = Buffer(q * count)      // the solution, then u_w
        stored.load(into: u.pointer)
        PhaseLog.mark("information: set-up")
        let report = solvers.A.solve(crossed.pointer, count: count, x: u.pointer)
        PhaseLog.mark("information: solve, \(count) × \(report.maxIterations) iterations")
        stored.store(u.pointer)
        let betaW = Buffer(p * count)
        if includeFixed && p > 0 {
            for a in 0..<q { for t in 0..<p { for c in 0..<count { reduced[t * count + c] -= evaluation.ZtX[a * p + t] * u[a * count + c] } } }
            for r in 0..<p { for s in 0..<p { for c in 0..<count { betaW[r * count + c] += evaluation.schurInverse[r + s * p] * reduced[s * count + c] } } }
            for a in 0..<q { for t in 0..<p { for c in 0..<count { u[a * count + c] -= evaluation.M[a * p + t] * betaW[t * count + c] } } }
        }
        let lambda = u
        model.applyLambda(u.pointer, count: count, into: lambda.pointer)     // in place
        V = try variateCoefficients(evaluation, covariances: covariances, count: count)
        var blocks = Array(model.terms.indices)
        if includeFixed { blocks.append(model.terms.count) }
        // The variates' and the fitted rows a stretch at a time, summed in row order.
        let stretch = 4 * MixedModelOperator.rowChunk
        let w = Buffer(min(n, stretch) * count)
        let fittedRows = Buffer(min(n, stretch) * count)
        var information = [Double](repeating: 0, count: count * count)
        for first in stride(from: 0, to: n, by: stretch) {
            let rows = first..<min(n, first + stretch)
            model.rowProduct(lambdaV: V.pointer, beta: nil, count: count, rows: rows, blocks: Array(model.terms.indices),
                             accumulate: false, into: w.pointer)
            for i in rows { w[(i - first) * count + last] = evaluation.residuals[i] / sigmaSquared }
            model.rowProduct(lambdaV: lambda.pointer, beta: includeFixed ? betaW.pointer : nil, count: count, rows: rows,
                             blocks: blocks, accumulate: false, into: fittedRows.pointer)
            for i in rows {
                let row = (i - first) * count
                for b in 0..<count {
                    let Pw = (w[row + b] - fittedRows[row + b]) / sigmaSquared
                    for a in 0..<count { information[a + b * count] += 0.5 * w[row + a] * Pw }
                }
            }
        }
        information = model.sumOverProcesses(information)
        for b in 0..<count {
            for a in (b + 1)..<max(b + 1, count) {
                let value = 0.5 * (information[a + b * count] + information[b + a * count])
                information[a + b * count] = value
                information[b + a * count] = value
            }
        }
        PhaseLog.mark("information: the rest")
        return (information, report.maxIterations)
    }

    /// lme4's `as.data.frame(VarCorr(m))` of covariance blocks and σ².
    func varCorr(_ covariances: [Matrix], _ sigmaSquared: Double) -> [VarCorrEntry] {
        VarianceComponents(covariances: covariances, sigmaSquared: sigmaSquared, labels: frame.termLabels,
                           effectNames: frame.randomTerms.map(\.effectNames)).entries
    }
}

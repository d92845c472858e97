import Foundation

/// The variance components as one vector φ: for each term the lower triangle of its
/// covariance Σⱼ = σ²TⱼTⱼ' column by column (θ's order), then σ².
struct VarianceParameters {
    let effectCounts: [Int]

    var count: Int { effectCounts.reduce(0) { $0 + $1 * ($1 + 1) / 2 } + 1 }

    func split(_ phi: [Double]) -> (covariances: [Matrix], sigmaSquared: Double) {
        var index = 0
        var covariances: [Matrix] = []
        for k in effectCounts {
            var V = Matrix(zeros: k, k)
            for s in 0..<k { for r in s..<k { V[r, s] = phi[index]; V[s, r] = phi[index]; index += 1 } }
            covariances.append(V)
        }
        return (covariances, phi[index])
    }

    func join(_ covariances: [Matrix], _ sigmaSquared: Double) -> [Double] {
        var phi: [Double] = []
        for (V, k) in zip(covariances, effectCounts) { for s in 0..<k { for r in s..<k { phi.append(V[r, s]) } } }
        phi.append(sigmaSquared)
        return phi
    }

    /// The scale of each parameter for the convergence test: its term's largest variance, or σ².
    func scales(_ phi: [Double]) -> [Double] {
        let (covariances, sigmaSquared) = split(phi)
        var scales: [Double] = []
        for (V, k) in zip(covariances, effectCounts) {
            let scale = max(V.diagonal.max() ?? 0, 1e-12 * sigmaSquared)
            for _ in 0..<(k * (k + 1) / 2) { scales.append(scale) }
        }
        scales.append(sigmaSquared)
        return scales
    }
}

/// The REML (or ML) score in the variance parameters and its Monte Carlo spread.
///
/// With Sⱼ = Σₗ (b̂ₗb̂ₗ' + Cⱼₗ), Cⱼₗ = Cov(bₗ | y) = σ²Tⱼ Mₗₗ Tⱼ' (M = H⁻¹ for REML, A⁻¹ for ML)
/// and Dⱼ = Σⱼ⁻¹(Sⱼ − ℓⱼΣⱼ)Σⱼ⁻¹, the derivative of the log-likelihood is ½Dⱼ,ᵣᵣ for a variance
/// and Dⱼ,ᵣₛ for a covariance; for σ² it is ½(‖ê‖²/σ⁴ − (n − p − q + tr M_uu)/σ²) (ML: without
/// p). Its zero is the fixed point of EM (``MacKayForm/em``); the traces enter linearly, so each
/// probe gives a sample of the score's stochastic part.
struct VarianceScore {
    var gradient: [Double]
    /// Per probe: the stochastic part of the score (its mean is included in `gradient`).
    var samples: [[Double]]
    /// EM's update from the same quantities: Σⱼ ← Sⱼ/ℓⱼ, σ² ← (‖ê‖² + σ²(q + p − tr M))/n.
    var emStep: [Double]

    init(layout: VarianceParameters, phi: [Double], model: MixedModelOperator, b: [Double], sse: Double,
         estimate: TraceProbes.Estimate, criterion: Criterion) throws {
        let (covariances, sigmaSquared) = layout.split(phi)
        let probes = estimate.traceSamples.count
        var gradient: [Double] = []
        var samples = [[Double]](repeating: [], count: probes)
        var emStep: [Double] = []
        for (j, term) in model.terms.enumerated() {
            let k = term.k
            var S = Matrix(zeros: k, k)
            for l in 0..<term.levelCount {
                let base = term.layout.start(level: l)
                for s in 0..<k { for r in 0..<k { S[r, s] += b[base + r] * b[base + s] } }
            }
            for index in 0..<(k * k) { S.values[index] += sigmaSquared * estimate.termSums[j][index] }
            let inverse = try Self.inverse(covariances[j])
            var deviation = S
            for index in 0..<(k * k) { deviation.values[index] -= Double(term.levelCount) * covariances[j].values[index] }
            let D = Self.sandwich(inverse, deviation)
            for s in 0..<k { for r in s..<k { gradient.append(r == s ? 0.5 * D[r, r] : D[r, s]) } }
            for s in 0..<k { for r in s..<k { emStep.append(S[r, s] / Double(term.levelCount)) } }
            for c in 0..<probes {
                var sample = Matrix(rows: k, columns: k, values: estimate.termSamples[j][c])
                for index in 0..<(k * k) { sample.values[index] *= sigmaSquared }
                let Dc = Self.sandwich(inverse, sample)
                for s in 0..<k { for r in s..<k { samples[c].append(r == s ? 0.5 * Dc[r, r] : Dc[r, s]) } }
            }
        }
        let n = Double(model.observations), p = Double(criterion == .reml ? model.p : 0), q = Double(model.q)
        gradient.append(0.5 * (sse / (sigmaSquared * sigmaSquared) - (n - p - q + estimate.trace) / sigmaSquared))
        emStep.append((sse + sigmaSquared * (q + p - estimate.trace)) / n)
        for c in 0..<probes { samples[c].append(-0.5 * estimate.traceSamples[c] / sigmaSquared) }
        self.gradient = gradient
        self.samples = samples
        self.emStep = emStep
    }

    /// Covariance of the mean of the probes' score samples (count × count).
    var covariance: [Double] {
        let count = gradient.count, probes = Double(samples.count)
        var mean = [Double](repeating: 0, count: count)
        for sample in samples { for a in 0..<count { mean[a] += sample[a] / probes } }
        var C = [Double](repeating: 0, count: count * count)
        for sample in samples {
            for a in 0..<count { for b in 0..<count { C[a + b * count] += (sample[a] - mean[a]) * (sample[b] - mean[b]) } }
        }
        for index in C.indices { C[index] /= (probes - 1) * probes }
        return C
    }

    /// Σⱼ⁻¹. Throws when Σⱼ is not numerically positive definite (its variances differ by more
    /// than the precision can hold, as with a covariate of a very different scale).
    static func inverse(_ V: Matrix) throws -> Matrix {
        let k = V.rows
        var out = Matrix(zeros: k, k)
        var work = [Double](repeating: 0, count: k * k)
        let ok = V.values.withUnsafeBufferPointer { A in
            work.withUnsafeMutableBufferPointer { w in
                out.values.withUnsafeMutableBufferPointer { SmallCholesky.inverse(of: A.baseAddress!, k, work: w.baseAddress!, into: $0.baseAddress!) }
            }
        }
        guard ok else {
            throw IterativeFitError(message: "a covariance matrix of the random effects is not numerically positive definite "
                                    + "(its variances differ by too many orders of magnitude: rescale the covariates of the random effects)")
        }
        return out
    }

    /// A B A for small square matrices.
    static func sandwich(_ A: Matrix, _ B: Matrix) -> Matrix {
        let k = A.rows
        var out = Matrix(zeros: k, k)
        for s in 0..<k {
            for r in 0..<k {
                var sum = 0.0
                for a in 0..<k { for c in 0..<k { sum += A[r, a] * B[a, c] * A[c, s] } }
                out[r, s] = sum
            }
        }
        return out
    }
}

/// Small dense solves for the Newton step.
enum DenseSolve {
    /// x = A⁻¹b for a symmetric positive definite A (column-major), or nil.
    static func solve(_ A: [Double], _ b: [Double]) -> [Double]? {
        let n = b.count
        var L = A
        let info = L.withUnsafeMutableBufferPointer { BLAS.potrfLower(n: n, A: $0.baseAddress!, lda: n) }
        guard info == 0 else { return nil }
        var x = b
        L.withUnsafeBufferPointer { L in
            x.withUnsafeMutableBufferPointer { x in
                SmallCholesky.solveLower(L.baseAddress!, n, x.baseAddress!)
                SmallCholesky.solveUpper(L.baseAddress!, n, x.baseAddress!)
            }
        }
        return x
    }

    /// A⁻¹ for a symmetric positive definite A, or nil.
    static func inverse(_ A: [Double]) -> [Double]? {
        let n = Int(Double(A.count).squareRoot())
        var out = [Double](repeating: 0, count: n * n)
        for c in 0..<n {
            var e = [Double](repeating: 0, count: n)
            e[c] = 1
            guard let column = solve(A, e) else { return nil }
            for r in 0..<n { out[r + c * n] = column[r] }
        }
        return out
    }
}

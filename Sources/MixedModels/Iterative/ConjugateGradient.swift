import Foundation

/// Preconditioned conjugate gradients for H x = b (or A x = b) with several right-hand sides
/// at once: each right-hand side keeps its own step lengths (the iterations are independent),
/// but each iteration makes one pass over the rows for all of them. A right-hand side stops
/// moving once its residual is below `tolerance` relative to its ‖b‖.
///
/// The vector updates run over chunks of coordinates on the operator's threads; their inner
/// products are summed per chunk, then over the chunks in order (chunks fixed by the
/// dimension), so the iterates do not depend on the number of threads.
final class ConjugateGradient {
    let model: MixedModelOperator
    let includeFixed: Bool
    let preconditioner: Preconditioner
    var tolerance: Double
    var maxIterations: Int

    /// What one solve did.
    struct Report {
        /// Iterations until each right-hand side converged (or the limit).
        var iterations: [Int]
        /// Final ‖b − Hx‖/‖b‖ of each.
        var relativeResiduals: [Double]
        /// The relative residual every right-hand side had to reach.
        var tolerance: Double
        var converged: Bool { relativeResiduals.allSatisfy { $0 <= tolerance } }
        /// The largest number of iterations.
        var maxIterations: Int { iterations.max() ?? 0 }
    }

    init(model: MixedModelOperator, includeFixed: Bool, preconditioner: Preconditioner, tolerance: Double = 1e-8,
         maxIterations: Int = 1_000) {
        self.model = model
        self.includeFixed = includeFixed
        self.preconditioner = preconditioner
        self.tolerance = tolerance
        self.maxIterations = maxIterations
    }

    /// Solves for m right-hand sides `b` (dimension × m, coordinate-major), which the solve
    /// overwrites (they become its residuals: one block of vectors less); `x` holds the
    /// starting guess (zeros, or the solution at a nearby θ) and receives the solution.
    ///
    /// Four blocks of dimension × m are live through the solve: the residuals (in `b`), the
    /// search directions, the products H d — which also hold the preconditioned residuals
    /// z = M⁻¹r between one product and the next, as each is dead while the other is needed —
    /// and the operator's workspace.
    func solve(_ b: UnsafeMutablePointer<Double>, count m: Int, x: UnsafeMutablePointer<Double>) -> Report {
        let dimension = model.dimension(includeFixed: includeFixed)
        let size = dimension * m
        let workspace = OperatorWorkspace(model: model, count: m)
        let direction = UnsafeMutablePointer<Double>.allocate(capacity: size)
        let product = UnsafeMutablePointer<Double>.allocate(capacity: size)
        defer { direction.deallocate(); product.deallocate() }
        let r = b, z = product
        let vectors = BlockVectors(dimension: dimension, count: m, threads: model.threads)

        var bNorm = vectors.dots(b, b).map { $0.squareRoot() }
        model.apply(x, count: m, includeFixed: includeFixed, workspace: workspace, into: product)
        vectors.forEach { range in for index in range { r[index] = b[index] - product[index] } }
        var active = [Bool](repeating: true, count: m)
        var iterations = [Int](repeating: 0, count: m)
        var residualNorm = vectors.dots(r, r).map { $0.squareRoot() }
        for c in 0..<m {
            if bNorm[c] == 0 {
                bNorm[c] = 1
                for a in 0..<dimension { x[a * m + c] = 0 }
                residualNorm[c] = 0
            }
            if residualNorm[c] <= tolerance * bNorm[c] { active[c] = false }
        }
        preconditioner.apply(r, count: m, into: z)
        vectors.forEach { range in for index in range { direction[index] = z[index] } }
        var rho = vectors.dots(r, z)
        var iteration = 0
        while active.contains(true) && iteration < maxIterations {
            iteration += 1
            model.apply(direction, count: m, includeFixed: includeFixed, workspace: workspace, into: product)
            let curvature = vectors.dots(direction, product)
            var alpha = [Double](repeating: 0, count: m)
            for c in 0..<m where active[c] { alpha[c] = curvature[c] > 0 ? rho[c] / curvature[c] : 0 }
            // x += α d, r −= α Hd, and ‖r‖² in the same pass.
            residualNorm = alpha.withUnsafeBufferPointer { alpha in
                nonisolated(unsafe) let alpha = alpha
                return vectors.dots(updating: { rows in
                    for a in rows {
                        for c in 0..<m {
                            x[a * m + c] += alpha[c] * direction[a * m + c]
                            r[a * m + c] -= alpha[c] * product[a * m + c]
                        }
                    }
                }, r, r)
            }.map { $0.squareRoot() }
            for c in 0..<m where active[c] {
                iterations[c] = iteration
                if residualNorm[c] <= tolerance * bNorm[c] || curvature[c] <= 0 { active[c] = false }
            }
            preconditioner.apply(r, count: m, into: z)
            let newRho = vectors.dots(r, z)
            var beta = [Double](repeating: 0, count: m), keep = [Double](repeating: 0, count: m)
            for c in 0..<m where active[c] {
                beta[c] = rho[c] != 0 ? newRho[c] / rho[c] : 0
                keep[c] = 1
            }
            beta.withUnsafeBufferPointer { beta in
                keep.withUnsafeBufferPointer { keep in
                    nonisolated(unsafe) let beta = beta, keep = keep
                    vectors.forEach { range in
                        for a in range.lowerBound / m..<range.upperBound / m {
                            for c in 0..<m { direction[a * m + c] = keep[c] * z[a * m + c] + beta[c] * direction[a * m + c] }
                        }
                    }
                }
            }
            rho = newRho
        }
        return Report(iterations: iterations, relativeResiduals: (0..<m).map { residualNorm[$0] / bNorm[$0] }, tolerance: tolerance)
    }
}

/// Loops over blocks of m vectors (dimension × m, coordinate-major) in fixed chunks of
/// coordinates, on several threads; inner products summed per chunk, then over the chunks in
/// order — the same values whatever the number of threads.
struct BlockVectors {
    let dimension: Int
    let count: Int
    let threads: Int
    /// Coordinates per chunk.
    static let chunk = 4_096

    var chunks: Int { (dimension + Self.chunk - 1) / Self.chunk }

    /// Calls `body` with each chunk's range of entries (a multiple of m wide), in parallel.
    func forEach(_ body: @escaping (Range<Int>) -> Void) {
        let m = count, dimension = self.dimension
        Parallel.forEach(chunks, concurrent: chunks > 1, threads: threads) { chunk in
            let start = chunk * Self.chunk, end = min(dimension, start + Self.chunk)
            body((start * m)..<(end * m))
        }
    }

    /// Column-wise inner products u'v of two dimension × m blocks.
    func dots(_ u: UnsafePointer<Double>, _ v: UnsafePointer<Double>) -> [Double] {
        dots(updating: nil, u, v)
    }

    /// Runs `update` on each chunk's coordinates, then takes that chunk's part of u'v.
    func dots(updating update: ((Range<Int>) -> Void)?, _ u: UnsafePointer<Double>, _ v: UnsafePointer<Double>) -> [Double] {
        let m = count, dimension = self.dimension, chunks = self.chunks
        var partial = [Double](repeating: 0, count: max(chunks * m, 1))
        partial.withUnsafeMutableBufferPointer { partial in
            nonisolated(unsafe) let partial = partial.baseAddress!, u = u, v = v
            Parallel.forEach(chunks, concurrent: chunks > 1, threads: threads) { chunk in
                let start = chunk * Self.chunk, end = min(dimension, start + Self.chunk)
                update?(start..<end)
                let sums = partial + chunk * m
                for a in start..<end { for c in 0..<m { sums[c] += u[a * m + c] * v[a * m + c] } }
            }
        }
        var sums = [Double](repeating: 0, count: m)
        for chunk in 0..<chunks { for c in 0..<m { sums[c] += partial[chunk * m + c] } }
        return sums
    }
}

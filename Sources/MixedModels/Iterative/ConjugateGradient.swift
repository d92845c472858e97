import Foundation

/// Preconditioned conjugate gradients for H x = b (or A x = b) with several right-hand sides
/// at once: each right-hand side keeps its own step lengths (the iterations are independent),
/// but each iteration makes one pass over the rows for all of them. A right-hand side stops
/// moving once its residual is below `tolerance` relative to its ‖b‖.
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

    /// Solves for m right-hand sides `b` (dimension × m, coordinate-major); `x` holds the
    /// starting guess (zeros, or the solution at a nearby θ) and receives the solution.
    func solve(_ b: UnsafePointer<Double>, count m: Int, x: UnsafeMutablePointer<Double>) -> Report {
        let dimension = model.dimension(includeFixed: includeFixed)
        let size = dimension * m
        let workspace = OperatorWorkspace(n: model.n, q: model.q, count: m)
        let r = UnsafeMutablePointer<Double>.allocate(capacity: size)
        let z = UnsafeMutablePointer<Double>.allocate(capacity: size)
        let direction = UnsafeMutablePointer<Double>.allocate(capacity: size)
        let product = UnsafeMutablePointer<Double>.allocate(capacity: size)
        defer { r.deallocate(); z.deallocate(); direction.deallocate(); product.deallocate() }

        var bNorm = dots(b, b, dimension, m).map { $0.squareRoot() }
        model.apply(x, count: m, includeFixed: includeFixed, workspace: workspace, into: product)
        for index in 0..<size { r[index] = b[index] - product[index] }
        var active = [Bool](repeating: true, count: m)
        var iterations = [Int](repeating: 0, count: m)
        var residualNorm = dots(r, r, dimension, m).map { $0.squareRoot() }
        for c in 0..<m {
            if bNorm[c] == 0 {
                bNorm[c] = 1
                for a in 0..<dimension { x[a * m + c] = 0 }
                residualNorm[c] = 0
            }
            if residualNorm[c] <= tolerance * bNorm[c] { active[c] = false }
        }
        preconditioner.apply(r, count: m, into: z)
        for index in 0..<size { direction[index] = z[index] }
        var rho = dots(r, z, dimension, m)
        var iteration = 0
        while active.contains(true) && iteration < maxIterations {
            iteration += 1
            model.apply(direction, count: m, includeFixed: includeFixed, workspace: workspace, into: product)
            let curvature = dots(direction, product, dimension, m)
            var alpha = [Double](repeating: 0, count: m)
            for c in 0..<m where active[c] { alpha[c] = curvature[c] > 0 ? rho[c] / curvature[c] : 0 }
            for a in 0..<dimension {
                for c in 0..<m {
                    x[a * m + c] += alpha[c] * direction[a * m + c]
                    r[a * m + c] -= alpha[c] * product[a * m + c]
                }
            }
            residualNorm = dots(r, r, dimension, m).map { $0.squareRoot() }
            for c in 0..<m where active[c] {
                iterations[c] = iteration
                if residualNorm[c] <= tolerance * bNorm[c] || curvature[c] <= 0 { active[c] = false }
            }
            preconditioner.apply(r, count: m, into: z)
            let newRho = dots(r, z, dimension, m)
            for c in 0..<m {
                let beta = active[c] && rho[c] != 0 ? newRho[c] / rho[c] : 0
                for a in 0..<dimension { direction[a * m + c] = active[c] ? z[a * m + c] + beta * direction[a * m + c] : 0 }
            }
            rho = newRho
        }
        return Report(iterations: iterations, relativeResiduals: (0..<m).map { residualNorm[$0] / bNorm[$0] }, tolerance: tolerance)
    }

    /// Column-wise inner products of two dimension × m blocks.
    private func dots(_ u: UnsafePointer<Double>, _ v: UnsafePointer<Double>, _ dimension: Int, _ m: Int) -> [Double] {
        var sums = [Double](repeating: 0, count: m)
        sums.withUnsafeMutableBufferPointer { s in
            for a in 0..<dimension { for c in 0..<m { s[c] += u[a * m + c] * v[a * m + c] } }
        }
        return sums
    }
}

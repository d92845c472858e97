import Foundation

/// Newton steps on the profiled criterion d(θ) with the analytic gradient and the
/// average-information matrix: REML/ML in a handful of iterations, for models whose
/// evaluations are expensive (a dense 10k × 10k block takes seconds to factor, and BOBYQA
/// needs tens of evaluations).
///
/// Each iteration: the information matrix (one solve per parameter), the gradient (one selected
/// inversion), a Newton step kept inside the bounds θ_diag ≥ 0, and a backtracking line search
/// on d (usually one evaluation). A diagonal element heading for a boundary optimum shrinks
/// geometrically and is set to zero at the end when that does not raise the criterion, as a
/// boundary (singular) fit requires.
extension LinearMixedModel {
    struct NewtonOutcome {
        var theta: [Double]
        var objective: Double
        var iterations: Int
        var evaluations: Int
        var converged: Bool
    }

    func fitNewton(criterion: Criterion, start: [Double], maxIterations: Int = 50,
                   tolerance: Double = 1e-6, progress: ((Int, Double, [Double]) -> Void)? = nil) throws -> NewtonOutcome {
        let bounds = parameters.lowerBounds
        var theta = zip(start, bounds).map { max($0, $1) }
        var value = try objective(at: theta, criterion: criterion)
        var evaluations = 1
        var held = Set<Int>()
        var previousHeldCount = 0
        for iteration in 1...maxIterations {
            PhaseLog.mark("  evaluation(s)")
            let H = try AverageInformation.compute(model: self, criterion: criterion)
            PhaseLog.mark("  average information")
            let gradient = try ProfiledGradient.compute(pls, criterion: criterion)
            PhaseLog.mark("  gradient")
            progress?(iteration, value, theta)

            // Active set: parameters held on their bound. A diagonal element that Newton has
            // driven below 1e-4 (lme4's isSingular tolerance; it shrinks geometrically, see
            // below) is set to zero and held there — the criterion is even in it, so its gradient
            // and curvature vanish together and the Newton decrement alone never says "done";
            // what is lost is O(θ²) of the criterion.
            for index in theta.indices where bounds[index] == 0 && !held.contains(index) && theta[index] > 0
                && theta[index] < 1e-4 {
                held.insert(index)
                theta[index] = 0
            }
            if !held.isEmpty && held.contains(where: { theta[$0] != 0 }) == false && previousHeldCount != held.count {
                previousHeldCount = held.count
                value = try objective(at: theta, criterion: criterion)
                evaluations += 1
                continue
            }
            let free = theta.indices.filter { !held.contains($0) && !(bounds[$0] == 0 && theta[$0] <= 0 && gradient[$0] >= 0) }
            var step = [Double](repeating: 0, count: theta.count)
            if !free.isEmpty {
                let direction = Self.newtonDirection(H: H, gradient: gradient, free: free)
                for (a, index) in free.enumerated() { step[index] = direction[a] }
            }
            let decrease = -zip(gradient, step).reduce(0) { $0 + $1.0 * $1.1 }
            PhaseLog.mark("  newton \(iteration): criterion \(value), decrease \(decrease)")
            if decrease < tolerance {
                return try snapToBoundary(NewtonOutcome(theta: theta, objective: value, iterations: iteration,
                                                        evaluations: evaluations, converged: true), criterion: criterion)
            }
            // Backtracking line search. The criterion is even in each diagonal θ, so θ = 0 is
            // always a stationary point a Newton step must not land on: a diagonal element may
            // shrink to a tenth of its value per iteration (reaching a true boundary optimum
            // geometrically), never to zero.
            var length = 1.0
            var accepted = false
            for _ in 0..<12 {
                let candidate = theta.indices.map { index -> Double in
                    let next = theta[index] + length * step[index]
                    return bounds[index] == 0 ? max(next, 0.1 * theta[index]) : next
                }
                let candidateValue = try objective(at: candidate, criterion: criterion)
                evaluations += 1
                if candidateValue <= value - 1e-4 * length * decrease || candidateValue <= value - 1e-12 * abs(value) {
                    let moved = zip(candidate, theta).map { abs($0 - $1) }.max() ?? 0
                    theta = candidate
                    value = candidateValue
                    accepted = true
                    // A full Newton step that promised little leaves far less behind (the
                    // convergence is fast): stop without another gradient.
                    if moved < 1e-10 || (length == 1 && decrease < 1e-3) {
                        return try snapToBoundary(NewtonOutcome(theta: theta, objective: value, iterations: iteration,
                                                                evaluations: evaluations, converged: true), criterion: criterion)
                    }
                    break
                }
                length /= 2
            }
            if !accepted {
                // No decrease along the Newton direction: θ is optimal to working precision.
                return try snapToBoundary(NewtonOutcome(theta: theta, objective: value, iterations: iteration,
                                                        evaluations: evaluations, converged: decrease < 1e-4), criterion: criterion)
            }
        }
        return NewtonOutcome(theta: theta, objective: value, iterations: maxIterations, evaluations: evaluations, converged: false)
    }

    /// Sets diagonal elements that have shrunk towards zero to exactly zero when the criterion
    /// does not get worse (lme4 reports a boundary fit with θ = 0).
    private func snapToBoundary(_ outcome: NewtonOutcome, criterion: Criterion) throws -> NewtonOutcome {
        var result = outcome
        let bounds = parameters.lowerBounds
        let small = result.theta.indices.filter { bounds[$0] == 0 && result.theta[$0] > 0 && result.theta[$0] < 1e-3 }
        guard !small.isEmpty else { return result }
        var candidate = result.theta
        for index in small { candidate[index] = 0 }
        let value = try objective(at: candidate, criterion: criterion)
        result.evaluations += 1
        if value <= result.objective + 1e-9 {
            result.theta = candidate
            result.objective = value
        }
        return result
    }

    /// −H⁻¹g on the free parameters (H regularized if it is not positive definite).
    private static func newtonDirection(H: Matrix, gradient: [Double], free: [Int]) -> [Double] {
        let k = free.count
        var ridge = 0.0
        let scale = free.map { abs(H[$0, $0]) }.max() ?? 1
        while true {
            var A = Matrix(zeros: k, k)
            for (a, i) in free.enumerated() {
                for (c, j) in free.enumerated() { A[a, c] = H[i, j] }
                A[a, a] += ridge
            }
            if let L = SemidefiniteCholesky.factor(A), (0..<k).allSatisfy({ L[$0, $0] > 0 }) {
                var x = free.map { -gradient[$0] }
                for i in 0..<k {
                    for c in 0..<i { x[i] -= L[i, c] * x[c] }
                    x[i] /= L[i, i]
                }
                for i in stride(from: k - 1, through: 0, by: -1) {
                    for c in (i + 1)..<k { x[i] -= L[c, i] * x[c] }
                    x[i] /= L[i, i]
                }
                return x
            }
            ridge = ridge == 0 ? 1e-8 * max(scale, 1e-300) : ridge * 10
            if ridge > 1e12 * max(scale, 1) { return free.map { -gradient[$0] } }
        }
    }
}

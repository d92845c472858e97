import Foundation

/// What certifies that θ minimizes the profiled criterion d(θ) over the box θ_diag ≥ 0: the
/// Newton decrement `λ² = g_F' H_F⁻¹ g_F` on the free parameters F, from the analytic gradient g
/// (``ProfiledGradient``) and the average-information matrix H (``AverageInformation``, the
/// curvature of d). A Newton step predicts the decrease λ²/2, so λ² below ``tolerance`` means
/// the criterion is within about half that of its minimum, and θ within `√λ²` in the metric of H
/// (a fraction of a standard error) — whatever the scale of the data, unlike a change of the
/// objective between two evaluations, which says only that the optimizer slowed down.
///
/// A diagonal θ at its bound 0 is not free: d is even in it, so its gradient and curvature
/// vanish there together and λ² says nothing. It is optimal when d rises as it leaves the
/// bound, i.e. the gradient just inside (at θᵢ = ``boundaryProbe``) points outward (is
/// positive): ``LinearMixedModel/boundaryViolations(theta:criterion:)``.
struct ConvergenceCertificate {
    /// The free parameters (not held at a bound).
    let free: [Int]
    /// The Newton step −H_F⁻¹ g_F on the free parameters, zero on the held ones.
    let step: [Double]
    /// g_F' H_F⁻¹ g_F (−2 log-likelihood units).
    let decrement: Double

    /// λ² at which θ is certified: the criterion within ~5e-7 of its minimum by the quadratic
    /// model, θ within 1e-3 of a standard error. The exact fit then takes that last Newton step
    /// (one evaluation, no gradient), which leaves far less: the tight lme4 optima are matched
    /// to ~1e-9 in the criterion and ~1e-5 in the variance components.
    static let tolerance = 1e-6
    /// How far inside the bound the gradient of a zero diagonal θ is taken (lme4's singular
    /// tolerance).
    static let boundaryProbe = 1e-4

    /// λ² at which an iterative (EM, evidence) fit is certified: the criterion within ~5e-10
    /// of its minimum, the variance components within 1e-4 of the optimum's.
    static let iterativeTolerance = 1e-9

    var isOptimal: Bool { decrement <= Self.tolerance }

    /// - Parameters:
    ///   - held: parameters held on their bound (zero in `theta`, lower bound 0).
    init(theta: [Double], gradient: [Double], information H: Matrix, lowerBounds: [Double], held: Set<Int>) {
        let free = theta.indices.filter { index in
            !held.contains(index) && !(lowerBounds[index] == 0 && theta[index] <= 0 && gradient[index] >= 0)
        }
        var step = [Double](repeating: 0, count: theta.count)
        if !free.isEmpty {
            let direction = Self.newtonDirection(H: H, gradient: gradient, free: free)
            for (a, index) in free.enumerated() { step[index] = direction[a] }
        }
        self.free = free
        self.step = step
        decrement = max(-zip(gradient, step).reduce(0) { $0 + $1.0 * $1.1 }, 0)
    }

    /// −H⁻¹g on the free parameters (H regularized if it is not positive definite).
    static func newtonDirection(H: Matrix, gradient: [Double], free: [Int]) -> [Double] {
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

extension LinearMixedModel {
    /// The diagonal parameters at their bound 0 where d falls as they leave it: the gradient at
    /// θᵢ = ``ConvergenceCertificate/boundaryProbe`` (all such parameters moved together) is
    /// negative. Empty when θ is optimal on its bounds. Costs one evaluation and one gradient
    /// when some parameter is at its bound, nothing otherwise; leaves the factor at the probe.
    func boundaryViolations(theta: [Double], criterion: Criterion) throws -> [Int] {
        let bounds = parameters.lowerBounds
        let atBound = theta.indices.filter { bounds[$0] == 0 && theta[$0] == 0 }
        guard !atBound.isEmpty else { return [] }
        var probe = theta
        for index in atBound { probe[index] = ConvergenceCertificate.boundaryProbe }
        let (_, gradient) = try objectiveAndGradient(at: probe, criterion: criterion)
        return atBound.filter { gradient[$0] < 0 }
    }
}

/// The outcome of ``LinearMixedModel/certifyOptimum(theta:criterion:tolerance:)``.
struct OptimumCheck {
    /// Whether θ is the optimum: decrement below the tolerance, every zero diagonal optimal.
    var certified: Bool
    /// θ with its near-zero diagonals on the bound 0 (the point that was checked).
    var theta: [Double]
    /// The criterion at `theta`.
    var objective: Double
    /// The Newton decrement g'H⁻¹g at `theta`.
    var decrement: Double
    /// The Newton step −H⁻¹g on the free parameters at `theta` (what an iterative method that
    /// has slowed down can take: see the EM loop).
    var step: [Double]
}

extension LinearMixedModel {
    /// Whether θ from any method is the optimum of the criterion: diagonal elements below 1e-4
    /// are set to their bound 0 (what that loses is O(θ²)), then the Newton decrement on the
    /// rest must be below `tolerance` and every zero diagonal must pass the boundary test.
    /// Returns the certified θ (with those zeros) and the Newton step from it. Costs a few
    /// evaluations, one information matrix and one or two gradients.
    func certifyOptimum(theta: [Double], criterion: Criterion, tolerance: Double = ConvergenceCertificate.tolerance) throws
        -> OptimumCheck {
        let bounds = parameters.lowerBounds
        var snapped = theta
        for index in snapped.indices where bounds[index] == 0 && snapped[index] < 1e-4 { snapped[index] = 0 }
        // An iterative method approaches a zero variance slowly (EM: like 1/t): a diagonal below
        // 1e-2 is tried at its bound too, kept there if that does not raise d (the boundary
        // test below then decides).
        var value = try objective(at: snapped, criterion: criterion)
        var trial = snapped
        for index in trial.indices where bounds[index] == 0 && trial[index] < 1e-2 { trial[index] = 0 }
        if trial != snapped {
            let trialValue = try objective(at: trial, criterion: criterion)
            if trialValue <= value + 1e-9 {
                snapped = trial
                value = trialValue
            } else {
                _ = try objective(at: snapped, criterion: criterion)
            }
        }
        let H = try AverageInformation.compute(model: self, criterion: criterion)
        let gradient = try ProfiledGradient.compute(pls, criterion: criterion)
        let held = Set(snapped.indices.filter { bounds[$0] == 0 && snapped[$0] == 0 })
        let certificate = ConvergenceCertificate(theta: snapped, gradient: gradient, information: H,
                                                 lowerBounds: bounds, held: held)
        var check = OptimumCheck(certified: false, theta: snapped, objective: value, decrement: certificate.decrement,
                                 step: certificate.step)
        guard certificate.decrement <= tolerance else { return check }
        check.certified = try boundaryViolations(theta: snapped, criterion: criterion).isEmpty
        return check
    }
}

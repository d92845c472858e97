import Foundation

/// SQUAREM, scheme S3 (Varadhan & Roland 2008, "Simple and globally convergent methods for
/// accelerating the convergence of any EM algorithm", Scand. J. Statist. 35): from x₀, two
/// steps of the fixed-point map F give `r = F(x₀) − x₀` and `v = F(F(x₀)) − F(x₀) − r`; the
/// extrapolation `x' = x₀ − 2αr + α²v` with `α = −‖r‖/‖v‖` (at most −1) is stabilised by one
/// more step, `F(x')`. A geometric approach to the fixed point (EM at a variance heading to
/// zero, where plain EM needs thousands of steps) is jumped in one cycle. When x' raises the
/// criterion, α is halved towards −1, where `x' = F(F(x₀))`, a plain EM step, which never does.
enum SQUAREM {
    /// One evaluation of the map: F(x) and the criterion (−2 log-likelihood) at x.
    typealias Map = (_ x: [Double]) throws -> (next: [Double], objective: Double)

    /// Outcome of a cycle.
    struct Cycle {
        /// The new point (a map evaluation follows it: `F(x')`).
        var x: [Double]
        /// The criterion at the cycle's start, x₀.
        var objective: Double
        /// ‖F(x₀) − x₀‖∞ relative to ‖x₀‖∞: the plain step's change.
        var change: Double
        /// F(x₀), the plain EM step (to certify from).
        var firstStep: [Double]
    }

    /// What to do after a cycle's first step F(x₀) (given it and the step's change).
    enum Decision {
        /// Go on with the cycle.
        case proceed
        /// Stop at F(x₀).
        case stop
        /// End the cycle at this point instead (a better one found otherwise, e.g. a Newton step).
        case jump(to: [Double])
    }

    /// One cycle from x₀: three to six map evaluations.
    static func cycle(from x0: [Double], map: Map, afterFirstStep: ([Double], Double) throws -> Decision) throws
        -> (cycle: Cycle, stopped: Bool) {
        let (x1, f0) = try map(x0)
        let scale = max(x0.map(abs).max() ?? 0, 1e-300)
        let change = zip(x0, x1).map { abs($0 - $1) }.max().map { $0 / scale } ?? 0
        switch try afterFirstStep(x1, change) {
        case .proceed: break
        case .stop: return (Cycle(x: x1, objective: f0, change: change, firstStep: x1), true)
        case .jump(let x): return (Cycle(x: x, objective: f0, change: change, firstStep: x1), false)
        }
        let (x2, _) = try map(x1)
        let r = zip(x1, x0).map { $0 - $1 }
        let v = zip(zip(x2, x1), r).map { $0.0 - $0.1 - $1 }
        let normR = r.reduce(0) { $0 + $1 * $1 }.squareRoot(), normV = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
        guard normV > 0, normR > 0 else { return (Cycle(x: x2, objective: f0, change: change, firstStep: x1), false) }
        var alpha = min(-normR / normV, -1)
        while true {
            let candidate = x0.indices.map { x0[$0] - 2 * alpha * r[$0] + alpha * alpha * v[$0] }
            if alpha == -1 {
                // x' = F(F(x₀)): the map's own step, monotone.
                return (Cycle(x: candidate, objective: f0, change: change, firstStep: x1), false)
            }
            if let (stabilised, value) = try? map(candidate), value.isFinite, value <= f0,
               stabilised.allSatisfy(\.isFinite) {
                return (Cycle(x: stabilised, objective: f0, change: change, firstStep: x1), false)
            }
            alpha = alpha > -1.5 ? -1 : (alpha - 1) / 2
        }
    }
}

import Foundation

/// One step of a fit, as reported to a progress closure (``OptimizerOptions/progress``,
/// ``IterativeOptions/progress``): the exact engine's Newton iterations and BOBYQA evaluations,
/// the matrix-free method's iterations. The library only reports; the command line renders.
public struct FitStep: Sendable {
    /// The optimizer: `newton`, `bobyqa` (or another NLopt algorithm's name), `iterative`.
    public var method: String
    /// 1-based.
    public var step: Int
    /// The REML criterion or deviance at this step, when the method evaluates it (the exact
    /// engine; nil for the matrix-free method, which never forms it before the end).
    public var criterion: Double?
    /// What the method tests for convergence: the Newton decrement, BOBYQA's decrease of the
    /// best criterion, the matrix-free method's largest relative change of a variance.
    public var change: Double
    /// Wall time since the fit started.
    public var elapsed: Double
    /// Estimated wall time to convergence (``StepForecast``); nil when the changes do not yet
    /// shrink.
    public var secondsRemaining: Double?
    /// Method-specific detail for the log (conjugate-gradient iterations, the variances).
    public var detail: String

    public init(method: String, step: Int, criterion: Double?, change: Double, elapsed: Double,
                secondsRemaining: Double?, detail: String = "") {
        self.method = method
        self.step = step
        self.criterion = criterion
        self.change = change
        self.elapsed = elapsed
        self.secondsRemaining = secondsRemaining
        self.detail = detail
    }
}

/// The time left to convergence, from the convergence rate of the steps so far.
///
/// The changes cₖ a method tests (Newton decrement, step size) are taken to shrink
/// geometrically, cₖ₊₁ ≈ r cₖ, with r the geometric mean of the last (up to) three ratios
/// cₖ/cₖ₋₁. The steps still needed to bring the change below the tolerance τ are then
/// ⌈log(τ/cₖ) / log r⌉ (at least one), and the time left is that many steps at the mean wall
/// time of the last (up to) three steps. With no shrinking yet (r ≥ 1, or fewer than two
/// steps) there is no estimate. Newton's quadratic convergence makes the estimate pessimistic
/// near the end (the ratios keep falling), never optimistic.
public struct StepForecast: Sendable {
    /// The convergence tolerance on the change.
    public let tolerance: Double
    private var changes: [Double] = []
    private var times: [Double] = []
    private var last: Double = 0

    public init(tolerance: Double) { self.tolerance = tolerance }

    /// Records a step that ended `elapsed` seconds into the fit with change `change`, and
    /// returns the estimated seconds left (nil when unknown).
    public mutating func record(change: Double, elapsed: Double) -> Double? {
        times.append(elapsed - last)
        last = elapsed
        changes.append(change)
        if changes.count > 4 { changes.removeFirst() }
        if times.count > 3 { times.removeFirst() }
        guard change > tolerance else { return 0 }
        guard changes.count >= 2 else { return nil }
        var logRatios: [Double] = []
        for index in 1..<changes.count where changes[index - 1] > 0 && changes[index] > 0 {
            logRatios.append(log(changes[index] / changes[index - 1]))
        }
        guard !logRatios.isEmpty else { return nil }
        let logRate = logRatios.reduce(0, +) / Double(logRatios.count)
        guard logRate < 0, logRate.isFinite else { return nil }
        let steps = max(1, (log(tolerance / change) / logRate - 1e-9).rounded(.up))
        let perStep = times.reduce(0, +) / Double(times.count)
        return steps * perStep
    }
}

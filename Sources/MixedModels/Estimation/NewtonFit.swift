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
        /// The default most iterations.
        static let iterationLimit = 50
    }

    /// - Parameters:
    ///   - skipsNegligibleLastStep: skip the certified point's last Newton step when it would
    ///     move no variance component by more than ``negligibleStep`` (relative). For the fits of large models,
    ///     where it costs a factorization and a selected inversion; not after BOBYQA (small
    ///     models, cheap evaluations), where it is kept for the last digits.
    ///   - progress: called after each iteration's gradient (criterion, Newton decrement, wall
    ///     time since `begin`, estimated time left).
    func fitNewton(criterion: Criterion, start: [Double], maxIterations: Int = NewtonOutcome.iterationLimit,
                   skipsNegligibleLastStep: Bool = false,
                   progress: (@Sendable (FitStep) -> Void)? = nil, begin: DispatchTime = .now()) throws -> NewtonOutcome {
        let bounds = parameters.lowerBounds
        var theta = zip(start, bounds).map { max($0, $1) }
        var value = try objective(at: theta, criterion: criterion)
        var evaluations = 1
        var held = Set<Int>()
        var released = Set<Int>()
        var previousHeldCount = 0
        var information: Matrix?
        // Near the optimum H changes little: after a full step that promised little, the next
        // certificate reuses it and costs one gradient (a selected inversion), no solves.
        var reuseInformation = false
        var forecast = StepForecast(tolerance: ConvergenceCertificate.tolerance)
        func outcome(_ iteration: Int, converged: Bool) -> NewtonOutcome {
            NewtonOutcome(theta: theta, objective: value, iterations: iteration, evaluations: evaluations, converged: converged)
        }
        for iteration in 1...maxIterations {
            PhaseLog.mark("  evaluation(s)")
            // Active set: parameters held on their bound. A diagonal element that Newton has
            // driven below 1e-4 (lme4's isSingular tolerance; it shrinks geometrically, see
            // below) is set to zero and held there — the criterion is even in it, so its gradient
            // and curvature vanish together and the Newton decrement alone never says "done";
            // what is lost is O(θ²) of the criterion. The bound is checked at the end.
            for index in theta.indices where bounds[index] == 0 && !held.contains(index) && !released.contains(index)
                && theta[index] > 0 && theta[index] < 1e-4 {
                held.insert(index)
                theta[index] = 0
            }
            if !held.isEmpty && held.contains(where: { theta[$0] != 0 }) == false && previousHeldCount != held.count {
                previousHeldCount = held.count
                value = try objective(at: theta, criterion: criterion)
                evaluations += 1
                information = nil
            }
            if information == nil || !reuseInformation {
                information = try AverageInformation.compute(model: self, criterion: criterion)
                PhaseLog.mark("  average information")
            }
            let gradient = try ProfiledGradient.compute(pls, criterion: criterion)
            PhaseLog.mark("  gradient")
            let certificate = ConvergenceCertificate(theta: theta, gradient: gradient, information: information!,
                                                     lowerBounds: bounds, held: held)
            let decrease = certificate.decrement
            if let progress {
                let elapsed = Double(DispatchTime.now().uptimeNanoseconds - begin.uptimeNanoseconds) / 1e9
                progress(FitStep(method: "newton", step: iteration, criterion: value, change: decrease, elapsed: elapsed,
                                 secondsRemaining: forecast.record(change: decrease, elapsed: elapsed)))
            }
            PhaseLog.mark("  newton \(iteration): criterion \(value), decrement \(decrease)")
            // The step's full length when the certificate passes but its last step raises d: the
            // quadratic model is off (a direction where d is flat to fourth order, such as a
            // correlation at ±1), so θ is not yet certified; the line search goes on from half.
            var firstLength = 1.0
            if certificate.isOptimal {
                // The last Newton step: one evaluation, kept unless d rises beyond rounding. When
                // asked, it is skipped if it would move no variance component by more than
                // ``negligibleStep`` (relative): then the selected inverse of this gradient, at this θ, serves the
                // conditional variances, where the step would cost a factorization and another
                // selected inversion (about a fifth of a large fit: issue 13).
                var lastStepRaised = false
                let relativeStep = parameters.largestRelativeChange(theta: theta, step: certificate.step)
                PhaseLog.mark("  last step: largest relative change of a variance component \(relativeStep)")
                let negligible = skipsNegligibleLastStep && relativeStep <= Self.negligibleStep
                if decrease > 0 && !negligible {
                    let candidate = theta.indices.map { index -> Double in
                        let next = theta[index] + certificate.step[index]
                        return bounds[index] == 0 ? max(next, 0.1 * theta[index]) : next
                    }
                    let candidateValue = try objective(at: candidate, criterion: criterion)
                    evaluations += 1
                    if candidateValue <= value + 1e-12 * abs(value) {
                        theta = candidate
                        value = candidateValue
                    } else {
                        // Below 1e-8 the model's promise (5e-9) is lost in rounding and
                        // fourth-order terms alike: nothing left to find.
                        lastStepRaised = decrease > ConvergenceCertificate.tolerance / 100
                    }
                }
                if !lastStepRaised {
                    let snapped = try snapToBoundary(outcome(iteration, converged: true), criterion: criterion)
                    theta = snapped.theta
                    value = snapped.objective
                    evaluations = snapped.evaluations
                    // A zero diagonal is optimal only if d rises as it leaves the bound.
                    if theta.indices.contains(where: { bounds[$0] == 0 && theta[$0] == 0 }) { evaluations += 1 }
                    let violations = try boundaryViolations(theta: theta, criterion: criterion).filter { !released.contains($0) }
                    if violations.isEmpty {
                        if !(pls.hasSolution && pls.theta == theta) { try pls.update(theta: theta) }
                        return outcome(iteration, converged: true)
                    }
                    for index in violations {
                        released.insert(index)
                        held.remove(index)
                        theta[index] = 1e-2
                    }
                    value = try objective(at: theta, criterion: criterion)
                    evaluations += 1
                    information = nil
                    reuseInformation = false
                    continue
                }
                firstLength = 0.5
            }
            // Backtracking line search. The criterion is even in each diagonal θ, so θ = 0 is
            // always a stationary point a Newton step must not land on: a diagonal element may
            // shrink to a tenth of its value per iteration (reaching a true boundary optimum
            // geometrically), never to zero.
            let step = certificate.step
            var length = firstLength
            var accepted = false
            for _ in 0..<12 {
                let candidate = theta.indices.map { index -> Double in
                    let next = theta[index] + length * step[index]
                    return bounds[index] == 0 ? max(next, 0.1 * theta[index]) : next
                }
                let candidateValue = try objective(at: candidate, criterion: criterion)
                evaluations += 1
                if candidateValue <= value - 1e-4 * length * decrease || candidateValue <= value - 1e-12 * abs(value)
                    // At the optimum's last digits d is flat to rounding: the full step the
                    // gradient asks for is taken when it does not raise d beyond that.
                    || (length == 1 && decrease < 1e-6 && candidateValue <= value + 1e-12 * abs(value)) {
                    theta = candidate
                    value = candidateValue
                    accepted = true
                    break
                }
                length /= 2
            }
            if !accepted {
                if reuseInformation {
                    // The reused H may be stale: recompute it at θ before giving up.
                    value = try objective(at: theta, criterion: criterion)
                    evaluations += 1
                    reuseInformation = false
                    continue
                }
                // No decrease along the Newton direction: θ is optimal to working precision when
                // the decrement is at the rounding level of d.
                if !(pls.hasSolution && pls.theta == theta) { _ = try objective(at: theta, criterion: criterion); evaluations += 1 }
                let atRounding = decrease < max(1e-6, 1e-12 * abs(value))
                return try snapToBoundary(outcome(iteration, converged: atRounding), criterion: criterion)
            }
            reuseInformation = length == 1 && decrease < 0.1
        }
        return outcome(maxIterations, converged: false)
    }

    /// The relative change of every variance component (of `Tⱼ Tⱼ'`, at fixed σ²) below which
    /// the certified point's last Newton step is not taken: half the 1e-4 the tight fits are
    /// matched to; the criterion moves by λ²/2 ≤ 5e-7. Large data sets, whose θ are known to a
    /// small fraction of themselves, certify there.
    static let negligibleStep = 5e-5

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
}

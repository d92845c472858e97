import Foundation

/// lme4's likelihood profile (`profile.merMod`, Bates et al. 2015, section 5.1): for each
/// parameter — the standard deviations and correlations of the random effects and σ (lme4's
/// "sdcor" scale), then each β — the ML deviance minimized over the other parameters with this
/// one held fixed, as the signed square root ζ = sign(x − x̂)·√(d(x) − d̂).
///
/// As lme4 does, a REML fit is first refitted by ML, the walk starts 1 % beyond the
/// estimate (β: δ standard errors), takes steps of δ = √χ²₀.₉₉(#parameters)/8 in ζ predicted
/// from the last two points (at most 10 times the last step), stops past that cut-off, at a
/// bound or after 100 points, and each point's other parameters start from the previous one's.
public struct LikelihoodProfile: Sendable {
    /// One parameter's profile: points sorted by the parameter.
    public struct Trace: Sendable {
        public var name: String
        public var parameter: [Double]
        public var zeta: [Double]
        /// The parameter's bounds (lme4 substitutes them where the profile stops short).
        public var lowerBound: Double
        public var upperBound: Double
    }

    public var traces: [Trace]
    /// The ML deviance at the ML estimates.
    public var baseDeviance: Double

    /// lme4's `confint(profile(m), level)`: the parameter where the inverse spline of ζ meets
    /// ∓z; a bound where the profile stops short of it. A non-monotone profile falls back to
    /// linear interpolation (lme4's fallback) and says so in `messages`.
    public func intervals(level: Double) -> ConfidenceIntervals {
        let z = Distributions.normalQuantile((1 + level) / 2)
        var rows: [ConfidenceIntervals.Row] = []
        var messages: [String] = []
        for trace in traces {
            var lower: Double?, upper: Double?
            if let spline = ProfileSpline(parameters: trace.parameter, zeta: trace.zeta) {
                lower = spline.parameter(atZeta: -z)
                upper = spline.parameter(atZeta: z)
            } else {
                messages.append("bad spline fit for \(trace.name): falling back to linear interpolation")
                lower = Self.linear(trace, at: -z)
                upper = Self.linear(trace, at: z)
            }
            rows.append(.init(name: trace.name, lower: lower ?? trace.lowerBound, upper: upper ?? trace.upperBound))
        }
        return ConfidenceIntervals(method: .profile, level: level, rows: rows, messages: messages)
    }

    /// The profile points as lme4's `as.data.frame(profile(m))` in long form:
    /// `parameter,value,zeta`, sorted by parameter value within each parameter.
    public var csv: String {
        var text = "parameter,value,zeta\n"
        for trace in traces {
            for (value, zeta) in zip(trace.parameter, trace.zeta) {
                text += "\(CSVField.quoted(trace.name)),\(value),\(zeta)\n"
            }
        }
        return text
    }

    /// R's `approxfun(ζ, x)(z)`; nil outside the range.
    private static func linear(_ trace: Trace, at z: Double) -> Double? {
        let pairs = zip(trace.zeta, trace.parameter).sorted { $0.0 < $1.0 }
        for (a, b) in zip(pairs, pairs.dropFirst()) where a.0 <= z && z <= b.0 {
            return b.0 == a.0 ? a.1 : a.1 + (b.1 - a.1) * (z - a.0) / (b.0 - a.0)
        }
        return nil
    }
}

extension LinearMixedModel {
    /// The likelihood profile of every parameter, as lme4's `profile(m)` (ML, refitted when
    /// `fit` is REML). `fit` is a fit of this model; its θ starts the ML refit.
    ///
    /// The parameters are profiled in parallel (Dispatch, at most `LMM_THREADS` threads), each
    /// worker on a penalized least-squares solver of its own; a parameter's profile does not
    /// depend on the worker, so the result is the same for any number of threads.
    public func profile(from fit: FitResult, threads: Int? = nil) throws -> LikelihoodProfile {
        // Always (re)fitted by ML from the fit's θ with tight tolerances: the profile's base
        // deviance must be the minimum, or the walk finds a lower one.
        var options = OptimizerOptions()
        options.absoluteFTolerance = 1e-12
        options.absoluteXTolerance = 1e-10
        options.algorithm = .bobyqa
        let ml = try self.fit(criterion: .ml, start: fit.theta, options: options)
        let first = LikelihoodProfiler(model: self, pls: pls, fit: ml)
        try first.checkBase()
        let count = first.parameterCount
        let workers = max(1, min(threads ?? Threading.coreCount, count))
        let profilers = try [first] + (1..<workers).map { _ in
            let common = CholmodCommon()
            return LikelihoodProfiler(model: self, pls: try PenalizedLeastSquares(frame: frame, common: common), fit: ml, common: common)
        }
        let traces = try IndexedWork<LikelihoodProfile.Trace>.run(count: count, workers: workers) { worker, index in
            try profilers[worker].trace(index)
        }
        return LikelihoodProfile(traces: traces.map { $0! }, baseDeviance: ml.objective)
    }
}

/// The walk of ``LikelihoodProfile``, on one model's penalized least squares.
final class LikelihoodProfiler: @unchecked Sendable {
    let model: LinearMixedModel
    /// This profiler's solver (the model's own, or a copy for another thread).
    let pls: PenalizedLeastSquares
    /// The CHOLMOD workspace of a copied solver, kept alive with it.
    let common: CholmodCommon?
    let scale: StandardDeviationScale
    let n: Int
    let p: Int
    /// sdcor values then β at the ML estimates.
    let optimum: [Double]
    let thetaHat: [Double]
    let betaHat: [Double]
    let standardErrors: [Double]
    let base: Double
    /// √χ²₀.₉₉(#parameters) and the step in ζ, as lme4's defaults (alphamax 0.01, delta.cutoff 1/8).
    let cutoff: Double
    let delta: Double
    let maximumPoints = 100

    init(model: LinearMixedModel, pls: PenalizedLeastSquares, fit: FitResult, common: CholmodCommon? = nil) {
        self.model = model
        self.pls = pls
        self.common = common
        scale = StandardDeviationScale(parameters: model.parameters)
        n = model.frame.n
        p = model.frame.X.columns
        thetaHat = fit.theta
        betaHat = fit.fixedEffects
        standardErrors = fit.fixedEffectStandardErrors
        optimum = scale.values(theta: fit.theta, sigma: fit.sigma) + fit.fixedEffects
        base = fit.objective
        cutoff = Distributions.chiSquaredQuantile(0.99, degreesOfFreedom: optimum.count).squareRoot()
        delta = cutoff / 8
    }

    /// Number of profiled parameters: the sdcor values and σ, then β.
    var parameterCount: Int { optimum.count }

    /// The deviance at the estimates must be the fit's (lme4 checks the same).
    func checkBase() throws {
        let check = try deviance(values: Array(optimum[0..<scale.count]))
        if abs(check - base) > 1e-5 * max(1, abs(base)) {
            throw InputError("profiling: the deviance at the estimates (\(check)) differs from the fit's (\(base))")
        }
    }

    /// The profile of parameter `index` (sdcor order, then β).
    func trace(_ index: Int) throws -> LikelihoodProfile.Trace {
        let nvp = scale.count
        let names = scale.names + model.frame.fixedEffectNames
        if index < nvp {
            return try trace(name: names[index], points: varianceParameterPoints(index),
                             lower: scale.lowerBounds[index], upper: scale.upperBounds[index])
        }
        return try trace(name: names[index], points: fixedEffectPoints(index - nvp), lower: -.infinity, upper: .infinity)
    }

    private func trace(name: String, points: [Point], lower: Double, upper: Double) throws -> LikelihoodProfile.Trace {
        var unique: [Double: Double] = [:]
        for point in points where point.zeta.isFinite { unique[point.value] = point.zeta }
        let sorted = unique.sorted { $0.key < $1.key }
        return .init(name: name, parameter: sorted.map(\.key), zeta: sorted.map(\.value), lowerBound: lower, upperBound: upper)
    }

    /// A profiled point: the parameter, ζ, and every sdcor value there (the next start).
    struct Point {
        var value: Double
        var zeta: Double
        var others: [Double]
    }

    // MARK: The deviance

    /// ML deviance at standard deviations, correlations and σ, profiled over β (lme4's `devfun2`):
    /// log det(LL') + r²/σ² + n log(2πσ²).
    func deviance(values: [Double]) throws -> Double {
        guard let (theta, shrinkage) = scale.feasibleTheta(values: values) else { return .infinity }
        try pls.update(theta: theta)
        let sigmaSquared = values[values.count - 1] * values[values.count - 1]
        let deviance = pls.logDetL + pls.penalizedRSS / sigmaSquared + Double(n) * log(2 * Double.pi * sigmaSquared)
        // Outside the feasible correlations: the deviance at the shrunk correlations plus a
        // steep penalty, continuous at the boundary (BOBYQA's models break on infinite values).
        return deviance + 1e4 * shrinkage
    }

    /// ML deviance at θ with βⱼ fixed, profiled over σ² and the other β: the penalized RSS
    /// grows by (βⱼ − β̂ⱼ(θ))² / [(RX'RX)⁻¹]ⱼⱼ over its minimum.
    func fixedEffectDeviance(theta: [Double], j: Int, value: Double) throws -> (deviance: Double, rss: Double) {
        try pls.update(theta: theta)
        let beta = pls.fixedEffects()
        let R = pls.RX()
        // w = RX'⁻¹ eⱼ; [(RX'RX)⁻¹]ⱼⱼ = ‖w‖².
        var w = [Double](repeating: 0, count: p)
        var norm = 0.0
        for i in 0..<p {
            var s = i == j ? 1.0 : 0.0
            for c in 0..<i { s -= R[c, i] * w[c] }
            w[i] = s / R[i, i]
            norm += w[i] * w[i]
        }
        let rss = pls.penalizedRSS + (value - beta[j]) * (value - beta[j]) / norm
        let nd = Double(n)
        return (pls.logDetL + nd * (1 + log(2 * Double.pi * rss / nd)), rss)
    }

    // MARK: Walks

    private func zeta(_ value: Double, estimate: Double, deviance: Double) throws -> Double {
        let difference = deviance - base
        if difference < -1e-6 * max(1, abs(base)) {
            throw InputError("profiling found a lower deviance (\(deviance) < \(base)): the fit did not converge to the optimum")
        }
        return (value < estimate ? -1 : value > estimate ? 1 : 0) * max(difference, 0).squareRoot()
    }

    /// Variance parameter w: the others (standard deviations, correlations, σ) minimized.
    private func varianceParameterPoints(_ w: Int) throws -> [Point] {
        let nvp = scale.count
        let estimate = optimum[w]
        let lowerAll = scale.lowerBounds, upperAll = scale.upperBounds
        var settings = NLoptMinimizer.Settings(lowerBounds: lowerAll.enumerated().filter { $0.offset != w }.map(\.element))
        settings.upperBounds = upperAll.enumerated().filter { $0.offset != w }.map(\.element)
        settings.absoluteFTolerance = 1e-12
        settings.absoluteXTolerance = 1e-10
        let minimizer = NLoptMinimizer(algorithm: .bobyqa, dimension: nvp - 1, settings: settings)
        func evaluate(_ value: Double, start: [Double]) throws -> Point {
            let outcome: NLoptMinimizer.Outcome
            do {
                outcome = try minimizer.minimize(from: start.enumerated().map { index, x in
                    min(max(x, settings.lowerBounds[index]), settings.upperBounds![index])
                }) { x, _ in
                    var values = x
                    values.insert(value, at: w)
                    return (try self.deviance(values: values), nil)
                }
            } catch is PLSError {
                // As lme4: a failed point is NA, left out of the spline; the walk goes on.
                var others = start
                others.insert(value, at: w)
                return Point(value: value, zeta: .nan, others: others)
            }
            var full = outcome.x
            full.insert(value, at: w)
            return Point(value: value, zeta: try zeta(value, estimate: estimate, deviance: outcome.value), others: full)
        }
        let start = Array(optimum[0..<nvp])
        let origin = Point(value: estimate, zeta: 0, others: start)
        var othersOfStart = start
        othersOfStart.remove(at: w)
        let shifted = try evaluate(estimate == 0 ? 0.001 : estimate * 1.01, start: othersOfStart)
        let up = try walk(first: origin, second: shifted, lower: lowerAll[w], upper: upperAll[w]) { value, previous in
            var others = previous.others
            others.remove(at: w)
            return try evaluate(value, start: others)
        }
        let down = estimate > lowerAll[w]
            ? try walk(first: shifted, second: origin, lower: lowerAll[w], upper: upperAll[w]) { value, previous in
                var others = previous.others
                others.remove(at: w)
                return try evaluate(value, start: others)
            }
            : []
        return [origin, shifted] + up + down
    }

    /// Fixed effect j: θ minimized from the estimates (σ² and the other β profiled).
    private func fixedEffectPoints(_ j: Int) throws -> [Point] {
        let estimate = betaHat[j]
        var settings = NLoptMinimizer.Settings(lowerBounds: model.parameters.lowerBounds)
        settings.absoluteFTolerance = 1e-12
        settings.absoluteXTolerance = 1e-10
        let minimizer = NLoptMinimizer(algorithm: .bobyqa, dimension: model.parameters.count, settings: settings)
        func evaluate(_ value: Double) throws -> Point {
            let outcome: NLoptMinimizer.Outcome
            do {
                outcome = try minimizer.minimize(from: thetaHat) { theta, _ in
                    (try self.fixedEffectDeviance(theta: theta, j: j, value: value).deviance, nil)
                }
            } catch is PLSError {
                return Point(value: value, zeta: .nan, others: [])
            }
            return Point(value: value, zeta: try zeta(value, estimate: estimate, deviance: outcome.value), others: [])
        }
        let origin = Point(value: estimate, zeta: 0, others: [])
        let shifted = try evaluate(estimate + delta * standardErrors[j])
        let up = try walk(first: origin, second: shifted, lower: -.infinity, upper: .infinity) { value, _ in try evaluate(value) }
        let down = try walk(first: shifted, second: origin, lower: -.infinity, upper: .infinity) { value, _ in try evaluate(value) }
        return [origin, shifted] + up + down
    }

    /// lme4's `fillmat`/`nextpar`: from the last two points, the step that moves ζ by δ on the
    /// secant (at most 10 times the last step), clamped to the bounds, until |ζ| passes the
    /// cut-off, a bound is reached, or the table (100 rows) is full.
    private func walk(first: Point, second: Point, lower: Double, upper: Double,
                      evaluate: (Double, Point) throws -> Point) throws -> [Point] {
        var previous = first, current = second
        var points: [Point] = []
        var row = 2
        while row < maximumPoints && current.value > lower && current.value < upper
                && (!current.zeta.isFinite || abs(current.zeta) <= cutoff) {
            let difference = current.value - previous.value
            let zetaDifference = current.zeta - previous.zeta
            var step: Double
            if !zetaDifference.isFinite || zetaDifference == 0 {
                step = 1e-6
            } else {
                step = delta * difference / zetaDifference
                if step < 0 {
                    step = 1e-6
                } else if abs(step) > 10 * abs(difference) {
                    step = 10 * abs(difference)
                }
            }
            let sign: Double = difference > 0 ? 1 : difference < 0 ? -1 : 0
            let next = min(upper, max(lower, current.value + sign * step))
            let point = try evaluate(next, current)
            points.append(point)
            previous = current
            current = point
            row += 1
        }
        return points
    }
}

import Foundation

/// The parametric bootstrap of lme4's `bootMer(m, FUN, nsim)` with `confint(…, type = "perc")`:
/// responses simulated from the fit (``ResponseSimulator``), each refitted by the fit's
/// criterion from θ̂, the estimates on lme4's scale (`.sig01`, …, `.sigma`, β) collected.
///
/// Replicates run in parallel (Dispatch), one worker per thread (at most `LMM_THREADS`). Each
/// worker owns a penalized least-squares solver of its own (CHOLMOD's symbolic analysis done
/// once per worker) and only swaps the response between replicates; a replicate's result
/// depends only on its seed and index, so the replicates are the same for any thread count.
public struct ParametricBootstrap {
    let model: LinearMixedModel
    let fit: FitResult
    let simulator: ResponseSimulator

    public init(model: LinearMixedModel, fit: FitResult) throws {
        guard fit.method == .exact || fit.method == .given else {
            throw LMMError.unsupported("the parametric bootstrap needs an exact REML/ML fit")
        }
        self.model = model
        self.fit = fit
        simulator = ResponseSimulator(model: model, fit: fit)
    }

    /// Estimates of every replicate (nil where a refit failed) and the parameter names.
    public struct Replicates: Sendable {
        public var names: [String]
        public var estimates: [[Double]?]
        public var seed: UInt64
        public var criterion: Criterion

        /// lme4's `confint(bootMer(…), type = "perc")`: boot's percentile interval, the order
        /// statistics interpolated on the normal scale (`norm.inter`); failed replicates left out.
        public func percentileIntervals(level: Double) -> ConfidenceIntervals {
            let alphas = [(1 - level) / 2, (1 + level) / 2]
            var rows: [ConfidenceIntervals.Row] = []
            let succeeded = estimates.compactMap { $0 }
            for (c, name) in names.enumerated() {
                let values = succeeded.map { $0[c] }.filter(\.isFinite).sorted()
                let bounds = alphas.map { Self.normalInterpolatedQuantile(values, $0) }
                rows.append(.init(name: name, lower: bounds[0], upper: bounds[1]))
            }
            var messages = ["percentile intervals from \(succeeded.count) parametric bootstrap replicates (seed \(seed), refitted by \(criterion.rawValue))"]
            if succeeded.count < estimates.count {
                messages.append("\(estimates.count - succeeded.count) of \(estimates.count) bootstrap refits failed and were left out")
            }
            if let count = rows.first.map({ _ in succeeded.count }), Double(count + 1) * alphas[0] <= 1 {
                messages.append("extreme order statistics used as endpoints (too few replicates for this level)")
            }
            return ConfidenceIntervals(method: .boot, level: level, rows: rows, messages: messages)
        }

        /// boot's `norm.inter(t, α)` on sorted values.
        static func normalInterpolatedQuantile(_ t: [Double], _ alpha: Double) -> Double? {
            let R = t.count
            guard R > 0 else { return nil }
            let rank = Double(R + 1) * alpha
            let k = Int(rank.rounded(.towardZero))
            if Double(k) == rank { return t[min(max(k, 1), R) - 1] }
            if k == 0 { return t[0] }
            if k >= R { return t[R - 1] }
            let qa = Distributions.normalQuantile(alpha)
            let qk = Distributions.normalQuantile(Double(k) / Double(R + 1))
            let qk1 = Distributions.normalQuantile(Double(k + 1) / Double(R + 1))
            return t[k - 1] + (qa - qk) * (t[k] - t[k - 1]) / (qk1 - qk)
        }

        /// `replicate,.sig01,…,β…`, one row per replicate, NA where the refit failed.
        public var csv: String {
            var text = "replicate," + names.map(CSVField.quoted).joined(separator: ",") + "\n"
            for (index, row) in estimates.enumerated() {
                text += "\(index + 1),"
                text += row.map { $0.map { "\($0)" }.joined(separator: ",") }
                    ?? Array(repeating: "NA", count: names.count).joined(separator: ",")
                text += "\n"
            }
            return text
        }
    }

    /// Runs `replicates` refits. `progress` is called once per finished replicate (from any thread).
    public func run(replicates count: Int, seed: UInt64, threads: Int? = nil,
                    progress: @escaping @Sendable () -> Void = {}) throws -> Replicates {
        guard count >= 1 else { throw InputError("the number of bootstrap replicates must be at least 1 (got \(count))") }
        let scale = StandardDeviationScale(parameters: model.parameters)
        let names = scale.names + model.frame.fixedEffectNames
        let workers = max(1, min(threads ?? Threading.coreCount, count))
        let solvers = try (0..<workers).map { _ in try ReplicateSolver(model: model, criterion: fit.criterion, start: fit.theta) }
        let simulator = self.simulator
        let results = try IndexedWork<[Double]?>.run(count: count, workers: workers) { worker, index in
            let y = simulator.simulate(seed: seed, index: index)
            // A failed refit is a missing replicate (NA), as in bootMer.
            let estimate = try? solvers[worker].refit(y: y, scale: scale)
            progress()
            return estimate
        }
        return Replicates(names: names, estimates: results.map { $0 ?? nil }, seed: seed, criterion: fit.criterion)
    }
}

/// One worker's solver: the model's design, cross-products and factorization (its own CHOLMOD
/// workspace), refitted for each simulated response from θ̂ with BOBYQA, as lme4's `refit`.
final class ReplicateSolver: @unchecked Sendable {
    let pls: PenalizedLeastSquares
    let common: CholmodCommon
    let frame: ModelFrame
    let criterion: Criterion
    let start: [Double]

    init(model: LinearMixedModel, criterion: Criterion, start: [Double]) throws {
        frame = model.frame
        common = CholmodCommon()
        pls = try PenalizedLeastSquares(frame: model.frame, common: common)
        self.criterion = criterion
        self.start = start
    }

    /// Estimates on the bootstrap's scale (sdcor values, σ, β) for response `y`.
    func refit(y: [Double], scale: StandardDeviationScale) throws -> [Double] {
        pls.products.replaceResponse(y, design: pls.design, X: frame.X)
        let objective = ProfiledObjective(n: frame.n, p: frame.X.columns)
        let settings = NLoptMinimizer.Settings(lowerBounds: pls.parameters.lowerBounds)
        let minimizer = NLoptMinimizer(algorithm: .bobyqa, dimension: pls.parameters.count, settings: settings)
        let outcome = try minimizer.minimize(from: start) { theta, _ in
            try self.pls.update(theta: theta)
            return (objective.profiled(self.criterion, logDetL: self.pls.logDetL, logDetRX: self.pls.logDetRX,
                                       penalizedRSS: self.pls.penalizedRSS), nil)
        }
        try pls.update(theta: outcome.x)
        let sigma = objective.sigmaSquared(criterion, penalizedRSS: pls.penalizedRSS).squareRoot()
        let estimates = scale.values(theta: outcome.x, sigma: sigma) + pls.fixedEffects()
        guard outcome.converged, estimates.allSatisfy(\.isFinite) else { throw PLSError.factorizationFailed }
        return estimates
    }
}

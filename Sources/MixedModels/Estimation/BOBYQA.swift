import CNLopt

/// Minimizes a function of a few parameters with bounds by Powell's BOBYQA (derivative-free
/// quadratic models), through NLopt — the optimizer lme4 (`nloptwrap`) and MixedModels.jl use.
///
/// Owns one `nlopt_opt`, destroyed in `deinit`.
final class BOBYQA {
    private let optimizer: nlopt_opt
    let dimension: Int

    /// Settings, defaulting to lme4's `nloptwrap` (`xtol_abs = 1e-8`, `ftol_abs = 1e-8`).
    struct Settings {
        var lowerBounds: [Double]
        /// nil: NLopt's default (¾ of the distance to a bound, or 1), as lme4 gets it.
        var initialStep: [Double]? = nil
        var absoluteXTolerance = 1e-8
        var absoluteFTolerance = 1e-8
        var maxEvaluations = 100_000
    }

    /// Outcome of a minimization.
    struct Outcome {
        var x: [Double]
        var value: Double
        var evaluations: Int
        /// NLopt's result, e.g. `NLOPT_FTOL_REACHED`.
        var status: String
        /// True for NLopt's success codes.
        var converged: Bool
    }

    init(dimension: Int, settings: Settings) {
        precondition(dimension > 0, "BOBYQA needs at least one parameter")
        self.dimension = dimension
        optimizer = nlopt_create(NLOPT_LN_BOBYQA, UInt32(dimension))
        nlopt_set_lower_bounds(optimizer, settings.lowerBounds)
        if let step = settings.initialStep { nlopt_set_initial_step(optimizer, step) }
        nlopt_set_xtol_abs(optimizer, [Double](repeating: settings.absoluteXTolerance, count: dimension))
        nlopt_set_ftol_abs(optimizer, settings.absoluteFTolerance)
        nlopt_set_maxeval(optimizer, Int32(settings.maxEvaluations))
    }

    deinit { nlopt_destroy(optimizer) }

    /// Carries the Swift objective through NLopt's C callback; an error thrown by the
    /// objective stops the optimizer and is rethrown by ``minimize(from:_:)``.
    private final class Context {
        let objective: ([Double]) throws -> Double
        var error: Error?
        var evaluations = 0
        var x: [Double]
        var optimizer: nlopt_opt?
        init(objective: @escaping ([Double]) throws -> Double, dimension: Int) {
            self.objective = objective
            self.x = [Double](repeating: 0, count: dimension)
        }
    }

    /// Minimizes `objective` from `start`.
    func minimize(from start: [Double], _ objective: @escaping ([Double]) throws -> Double) throws -> Outcome {
        let context = Context(objective: objective, dimension: dimension)
        context.optimizer = optimizer
        let unmanaged = Unmanaged.passRetained(context)
        defer { unmanaged.release() }
        let callback: nlopt_func = { n, x, _, data in
            let context = Unmanaged<Context>.fromOpaque(data!).takeUnretainedValue()
            for i in 0..<Int(n) { context.x[i] = x![i] }
            context.evaluations += 1
            do {
                let value = try context.objective(context.x)
                return value.isFinite ? value : .greatestFiniteMagnitude
            } catch {
                context.error = error
                if let optimizer = context.optimizer { nlopt_force_stop(optimizer) }
                return .greatestFiniteMagnitude
            }
        }
        nlopt_set_min_objective(optimizer, callback, unmanaged.toOpaque())
        var x = start
        var value = 0.0
        let result = nlopt_optimize(optimizer, &x, &value)
        if let error = context.error { throw error }
        let status = String(cString: nlopt_result_to_string(result))
        return Outcome(x: x, value: value, evaluations: context.evaluations, status: status,
                       converged: result.rawValue > 0)
    }
}

import CNLopt

/// Bound-constrained minimization of a function of a few parameters through NLopt: Powell's
/// BOBYQA (derivative-free quadratic models — what lme4's `nloptwrap` and MixedModels.jl use)
/// or, with an analytic gradient, L-BFGS or SLSQP.
///
/// Owns one `nlopt_opt`, destroyed in `deinit`.
final class NLoptMinimizer {
    private let optimizer: nlopt_opt
    let dimension: Int
    let algorithm: OptimizerAlgorithm

    /// Settings, defaulting to lme4's `nloptwrap` (`xtol_abs = 1e-8`, `ftol_abs = 1e-8`).
    struct Settings {
        var lowerBounds: [Double]
        /// nil: no upper bounds.
        var upperBounds: [Double]? = nil
        /// nil: NLopt's default (¾ of the distance to a bound, or 1), as lme4 gets it.
        var initialStep: [Double]? = nil
        var absoluteXTolerance = 1e-8
        var absoluteFTolerance = 1e-8
        var relativeFTolerance = 0.0
        var maxEvaluations = 100_000
    }

    /// Outcome of a minimization.
    struct Outcome {
        var x: [Double]
        var value: Double
        var evaluations: Int
        /// NLopt's result, e.g. `NLOPT_FTOL_REACHED`.
        var status: String
        /// NLopt's result code (lme4 prints it as the convergence code).
        var code: Int
        /// True for NLopt's success codes, except a stop at the evaluation or time limit.
        var converged: Bool
        /// Stopped at `maxEvaluations` (or a time limit): not converged.
        var reachedLimit: Bool { code == Int(NLOPT_MAXEVAL_REACHED.rawValue) || code == Int(NLOPT_MAXTIME_REACHED.rawValue) }
    }

    init(algorithm: OptimizerAlgorithm, dimension: Int, settings: Settings) {
        precondition(dimension > 0, "the optimizer needs at least one parameter")
        self.dimension = dimension
        self.algorithm = algorithm
        optimizer = nlopt_create(algorithm.nlopt, UInt32(dimension))
        nlopt_set_lower_bounds(optimizer, settings.lowerBounds)
        if let upper = settings.upperBounds { nlopt_set_upper_bounds(optimizer, upper) }
        if let step = settings.initialStep { nlopt_set_initial_step(optimizer, step) }
        nlopt_set_xtol_abs(optimizer, [Double](repeating: settings.absoluteXTolerance, count: dimension))
        nlopt_set_ftol_abs(optimizer, settings.absoluteFTolerance)
        if settings.relativeFTolerance > 0 { nlopt_set_ftol_rel(optimizer, settings.relativeFTolerance) }
        nlopt_set_maxeval(optimizer, Int32(settings.maxEvaluations))
    }

    deinit { nlopt_destroy(optimizer) }

    /// The function to minimize: its value at x and, when asked, its gradient.
    typealias Objective = (_ x: [Double], _ wantsGradient: Bool) throws -> (value: Double, gradient: [Double]?)

    /// Carries the Swift objective through NLopt's C callback; an error thrown by the
    /// objective stops the optimizer and is rethrown by ``minimize(from:_:)``.
    private final class Context {
        let objective: Objective
        var error: Error?
        var evaluations = 0
        var x: [Double]
        var optimizer: nlopt_opt?
        init(objective: @escaping Objective, dimension: Int) {
            self.objective = objective
            self.x = [Double](repeating: 0, count: dimension)
        }
    }

    /// Minimizes `objective` from `start`.
    func minimize(from start: [Double], _ objective: @escaping Objective) throws -> Outcome {
        let context = Context(objective: objective, dimension: dimension)
        context.optimizer = optimizer
        let unmanaged = Unmanaged.passRetained(context)
        defer { unmanaged.release() }
        let callback: nlopt_func = { n, x, gradient, data in
            let context = Unmanaged<Context>.fromOpaque(data!).takeUnretainedValue()
            for i in 0..<Int(n) { context.x[i] = x![i] }
            context.evaluations += 1
            do {
                let (value, g) = try context.objective(context.x, gradient != nil)
                if let gradient, let g { for i in 0..<Int(n) { gradient[i] = g[i] } }
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
        let limit = result == NLOPT_MAXEVAL_REACHED || result == NLOPT_MAXTIME_REACHED
        return Outcome(x: x, value: value, evaluations: context.evaluations, status: status,
                       code: Int(result.rawValue), converged: result.rawValue > 0 && !limit)
    }
}

/// The NLopt algorithm of a REML/ML fit.
public enum OptimizerAlgorithm: String, Sendable, CaseIterable {
    /// Derivative-free (BOBYQA), as lme4.
    case bobyqa
    /// Limited-memory BFGS with the analytic gradient.
    case lbfgs
    /// Sequential quadratic programming with the analytic gradient.
    case slsqp
    /// Newton steps with the analytic gradient and the average-information matrix (not NLopt).
    case newton

    var usesGradient: Bool { self != .bobyqa }

    fileprivate var nlopt: nlopt_algorithm {
        switch self {
        case .bobyqa: return NLOPT_LN_BOBYQA
        case .lbfgs: return NLOPT_LD_LBFGS
        case .slsqp: return NLOPT_LD_SLSQP
        case .newton: preconditionFailure("Newton steps are not an NLopt algorithm")
        }
    }
}

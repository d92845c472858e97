/// Settings of the matrix-free fit (``IterativeMixedModel/fit(_:)``).
public struct IterativeOptions: Sendable {
    public var criterion: Criterion = .reml
    /// Rademacher probes for the traces and for the log determinant.
    public var probes = 32
    /// Seed of the probes: a fit repeats exactly for a seed, whatever the number of threads.
    public var seed: UInt64 = 1
    /// Stop when a Newton step changes no variance component by more than this, relative to
    /// its term's largest variance.
    public var tolerance = 1e-6
    /// Relative residual at which conjugate gradients stop.
    public var solverTolerance = 1e-8
    public var maxIterations = 50
    public var preconditioner: PreconditionerKind = .blockJacobi
    /// Lanczos steps per probe for the log determinant (at most).
    public var lanczosSteps = 60
    /// Threads of the passes over rows, levels and probes (nil: all cores, or `LMM_THREADS`).
    /// The result is the same, bit for bit, whatever the number: every reduction runs over
    /// chunks fixed by the data's size and is summed in chunk order.
    public var threads: Int?
    /// Called after every iteration.
    public var progress: (@Sendable (IterativeProgress) -> Void)?

    public init() {}
}

/// One iteration of the matrix-free fit, as reported to `progress`.
public struct IterativeProgress: Sendable {
    public var iteration: Int
    /// `em` for the first steps, `newton` (average information) after.
    public var step: String
    /// Conjugate-gradient iterations of the solves of this iteration (response and probes;
    /// working variates).
    public var solverIterations: [Int]
    /// Variance components at the start of the iteration.
    public var varcorr: [VarCorrEntry]
    /// Largest relative change of the step.
    public var change: Double
    /// Wall time since the previous report: the solves at these variances and the step.
    public var seconds: Double
    /// Wall time since the fit started.
    public var elapsed: Double = 0
    /// Estimated wall time to convergence (``StepForecast`` on ``change``); nil when unknown.
    public var secondsRemaining: Double?

    /// The iteration as a ``FitStep`` (`iterative`, no criterion; CG iterations and the
    /// variance components as detail).
    public var fitStep: FitStep {
        let components = varcorr.map { entry in
            "\(entry.grp)\(entry.var1.map { " " + $0 } ?? "")\(entry.var2.map { "," + $0 } ?? "") \(String(format: "%.6g", entry.vcov))"
        }.joined(separator: "; ")
        return FitStep(method: "iterative", step: iteration, criterion: nil, change: change, elapsed: elapsed,
                       secondsRemaining: secondsRemaining,
                       detail: "\(step), CG iterations \(solverIterations.map(String.init).joined(separator: " + ")); \(components)")
    }
}

/// Settings of a streaming Adam fit (``StreamingMixedModel/fit(adam:)``).
///
/// The defaults converge without tuning on crossed user × item data from thousands to tens of
/// millions of rows: a learning rate of 1 in units of a per-level Newton step, batches of up
/// to 65,536 rows, penalties learned by MacKay's evidence form.
public struct AdamOptions: Sendable {
    /// Where the penalties (variance components) come from.
    public enum Penalties: Sendable {
        /// Fixed: the penalized least-squares solution at these variance components.
        case given(VarianceComponents)
        /// Re-estimated between epochs by a MacKay form with the per-level diagonal posterior
        /// variance (see ``StreamingMacKay``).
        case learned(MacKayForm)
    }

    public var penalties: Penalties = .learned(.evidence)
    /// Starting variance components for learned penalties (default: σ² = var(y), each variance
    /// var(y) divided by the number of random effects plus one, scaled by its column's mean square).
    public var start: VarianceComponents?
    /// Step size, relative to a per-level Newton step (1: one epoch moves each level by about its
    /// Newton step; below 2 for stability).
    public var learningRate = 1.0
    /// Adam's first-moment decay β₁ (momentum).
    public var firstMomentDecay = 0.3
    /// Rows per minibatch, at most a chunk of the file (nil: 65,536, fewer for small data so that
    /// an epoch has at least 8 batches).
    public var batchSize: Int?
    /// The most epochs (passes over the data).
    public var maxEpochs = 200
    /// Stop when an epoch changes no fixed effect by more than this relative to its size and no
    /// random effect by more than this times its term's largest |BLUP|. With learned penalties,
    /// at most a tenth of ``penaltyTolerance``: the effects need not be converged far beyond the
    /// precision of the variances they are computed at.
    public var tolerance = 1e-6
    /// Learned penalties: stop re-estimating once no variance component changes by more than
    /// this (relative) in an update; the effects are then converged at those variances.
    public var penaltyTolerance = 1e-4
    /// Epochs between penalty updates (learned penalties).
    public var penaltyInterval = 2
    /// Seed of the chunk order of each epoch.
    public var seed: UInt64 = 1
    /// The likelihood criterion reported (the approximate REML criterion or deviance).
    public var criterion: Criterion = .reml
    /// Run the per-batch work on all cores. Results do not depend on it.
    public var concurrent = true
    /// Called on the calling thread after every chunk and at the end of every epoch.
    public var progress: (@Sendable (AdamProgress) -> Void)?

    public init() {}
}

/// Where a streaming fit is, as reported to ``AdamOptions/progress``.
public struct AdamProgress: Sendable {
    public enum Phase: Sendable, Equatable {
        /// The passes that count levels and form the per-level cross-products.
        case statistics
        /// An epoch of Adam steps.
        case epoch
        /// The final pass (residuals at the estimates).
        case final
    }

    public var phase: Phase
    /// Epoch (1-based) during ``Phase/epoch``.
    public var epoch: Int
    public var maxEpochs: Int
    /// Rows done in the current pass, and in all.
    public var rowsDone: Int
    public var rowCount: Int
    /// Rows per second of the current pass so far.
    public var rowsPerSecond: Double
    /// Seconds since the fit started.
    public var elapsedSeconds: Double
    /// At the end of an epoch: the penalized objective ‖y − Xβ − Zb‖²/σ² + Σ b'V⁻¹b at the start
    /// of the epoch, the epoch's largest relative change, and the variance components.
    public var objective: Double?
    public var change: Double?
    public var varcorr: [VarCorrEntry]
    /// Estimated seconds to convergence at the recent rate of change (nil until known).
    public var secondsRemaining: Double?
    /// True at the end of an epoch (false for the progress within a pass).
    public var epochFinished: Bool
}

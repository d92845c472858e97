/// When and how the streaming fitter re-estimates its penalties between epochs: a MacKay update
/// (``StreamingMacKay``) every `interval` epochs from the epoch's sums, Aitken's extrapolation
/// while it moves geometrically (``MacKayExtrapolation``), and the test that it has settled.
struct PenaltySchedule {
    let form: MacKayForm
    let interval: Int
    /// Settle when every component is within this (relative) of its fixed point.
    let tolerance: Double
    /// The smallest variance kept.
    let floor: Double
    /// No more updates: the effects are converged at the current penalties.
    private(set) var settled = false
    /// The relative steps of the plain updates since the last extrapolation.
    private(set) var steps: [Double] = []
    private var extrapolation = MacKayExtrapolation()

    init(form: MacKayForm, interval: Int, tolerance: Double, floor: Double) {
        self.form = form
        self.interval = max(interval, 1)
        self.tolerance = tolerance
        self.floor = floor
    }

    /// Whether the end of `epoch` updates the penalties: from the second epoch on (its start has
    /// had an epoch of steps), every `interval` epochs, until settled.
    func updates(atEndOf epoch: Int) -> Bool {
        !settled && epoch >= 2 && (epoch - 2) % interval == 0
    }

    /// The next covariances (diagonal) and σ² from the sums at the epoch's start.
    mutating func update(summaries: [AdamSolver.TermSummary], levels: [Int], sse: Double, n: Int, p: Int,
                         covariances: [Matrix], sigmaSquared: Double) -> ([Matrix], Double) {
        var (newCovariances, newSigmaSquared) = StreamingMacKay.update(
            form: form, squares: summaries.map(\.squares), posteriorTraces: summaries.map(\.posteriorTrace),
            levels: levels, sse: sse, n: n, p: p, covariances: covariances, sigmaSquared: sigmaSquared, floor: floor)
        var step = abs(newSigmaSquared - sigmaSquared) / sigmaSquared
        for (old, new) in zip(covariances, newCovariances) {
            for a in 0..<old.rows { step = max(step, abs(new[a, a] - old[a, a]) / max(old[a, a], floor)) }
        }
        // A linearly converging update whose steps shrink by ρ is about step/(1 − ρ) from its
        // fixed point: settle when that is within the tolerance (ρ from two steps in a row).
        var remaining = step / 0.5
        if let previous = steps.last, previous > 0 {
            remaining = step / (1 - min(max(step / previous, 0.5), 0.99))
        }
        settled = !steps.isEmpty && remaining < tolerance
        steps.append(step)
        guard !settled else { return (newCovariances, newSigmaSquared) }
        // Components: every variance, then σ².
        let values = newCovariances.flatMap { V in (0..<V.rows).map { V[$0, $0] } } + [newSigmaSquared]
        let (extrapolated, jumped) = extrapolation.next(values)
        if jumped { steps = [] }
        var position = 0
        for j in newCovariances.indices {
            for a in 0..<newCovariances[j].rows {
                newCovariances[j][a, a] = max(extrapolated[position], floor)
                position += 1
            }
        }
        newSigmaSquared = extrapolated[position]
        return (newCovariances, newSigmaSquared)
    }
}

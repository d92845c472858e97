/// The end of an epoch: what the epoch's pass measured at its starting point (β̂, b̂), the
/// change over the epoch, the rebalancing moves, and the anchors moved on by one epoch.
extension AdamSolver {
    /// Sums over the used levels of one term, at the epoch's starting point b̂.
    struct TermSummary {
        /// Σₗ b̂ₗₐ² per effect a.
        var squares: [Double]
        /// Σₗ (H̃ₗ⁻¹)ₐₐ per effect: the per-level diagonal posterior variances over σ².
        var posteriorTrace: [Double]
        /// Σₗ b̂ₗ'Λ̃b̂ₗ: the penalty at b̂, times σ².
        var penalty: Double
        /// Largest |bₗₐ| per effect, and the largest change |bₗₐ − b̂ₗₐ| over the epoch.
        var largest: [Double]
        var largestChange: [Double]
        /// Levels whose posterior precision H̃ₗ was not positive definite (the fit diverged):
        /// they add nothing to `posteriorTrace`, and the caller stops with an error.
        var singularLevels = 0
    }

    /// The per-term sums at the epoch's start (b̂) and the epoch's changes, over fixed level
    /// ranges added in order (deterministic).
    func summarizeEpoch() -> [TermSummary] {
        states.map { state in
            let k = state.k, ranges = 16
            var parts = [TermSummary](repeating: TermSummary(squares: .init(repeating: 0, count: k),
                                                             posteriorTrace: .init(repeating: 0, count: k), penalty: 0,
                                                             largest: .init(repeating: 0, count: k),
                                                             largestChange: .init(repeating: 0, count: k)), count: ranges)
            parts.withUnsafeMutableBufferPointer { parts in
                nonisolated(unsafe) let parts = parts
                Parallel.forEach(ranges, concurrent: concurrent && state.slotCount >= 65_536) { q in
                    let lo = state.slotCount * q / ranges, hi = state.slotCount * (q + 1) / ranges
                    var part = parts[q]
                    let H = UnsafeMutablePointer<Double>.allocate(capacity: 2 * k * k)
                    defer { H.deallocate() }
                    let inverse = H + k * k
                    for l in lo..<hi {
                        let record = state.record(l)
                        guard state.count(record) > 0 else { continue }
                        let next = record + state.next
                        for a in 0..<k {
                            part.squares[a] += next[a] * next[a]
                            var penaltyRow = 0.0
                            for c in 0..<k { penaltyRow += state.precision[a + c * k] * next[c] }
                            part.penalty += next[a] * penaltyRow
                            part.largest[a] = max(part.largest[a], abs(record[a]))
                            part.largestChange[a] = max(part.largestChange[a], abs(record[a] - next[a]))
                        }
                        state.curvature(record, into: H)
                        guard SmallCholesky.inverse(of: H, k, work: H, into: inverse) else {
                            part.singularLevels += 1
                            continue
                        }
                        for a in 0..<k { part.posteriorTrace[a] += inverse[a + a * k] }
                    }
                    parts[q] = part
                }
            }
            var total = parts[0]
            for part in parts.dropFirst() {
                for a in 0..<k {
                    total.squares[a] += part.squares[a]
                    total.posteriorTrace[a] += part.posteriorTrace[a]
                    total.largest[a] = max(total.largest[a], part.largest[a])
                    total.largestChange[a] = max(total.largestChange[a], part.largestChange[a])
                }
                total.penalty += part.penalty
                total.singularLevels += part.singularLevels
            }
            return total
        }
    }

    /// Applies the rebalancing moves (``Rebalancing``: the modes the per-level steps cannot see),
    /// then moves the anchors on: (β̃, b̃, D) ← (β̂, b̂, the data gradient at b̂) and (β̂, b̂) ← (β, b).
    /// On several processes the data gradient is first summed over them (collective).
    func advanceAnchors(rebalancing: Rebalancing) {
        combineEpochData()
        rebalancing.apply(states: states, beta: &beta)
        for state in states {
            let k = state.k
            Parallel.forEach(16, concurrent: concurrent && state.slotCount >= 65_536) { q in
                let lo = state.slotCount * q / 16, hi = state.slotCount * (q + 1) / 16
                for l in lo..<hi {
                    let record = state.record(l)
                    guard state.count(record) > 0 else { continue }
                    for a in 0..<k {
                        record[state.anchor + a] = record[state.next + a]
                        record[state.next + a] = record[a]
                        record[state.data + a] = record[state.nextData + a]
                        record[state.nextData + a] = 0
                        record[state.acc + a] = 0
                    }
                }
            }
        }
        anchorBeta = nextBeta
        nextBeta = beta
        dataBeta = nextDataBeta
        nextDataBeta = [Double](repeating: 0, count: p)
        nextSSE = 0
        plain = false
    }
}

import Foundation

/// Minibatch Adam on the penalized least-squares objective of a linear mixed model,
///
///     F(β, b) = ‖y − Xβ − Zb‖²/σ² + Σⱼ Σₗ bⱼₗ' Vⱼ⁻¹ bⱼₗ,
///
/// whose minimizer given the variances is the exact PLS solution (β̂ and the BLUPs). The code
/// works in units of σ²: gradients g̃ = σ²∇F/2 and curvatures H̃ = σ²∇²F/2, so that a level's
/// curvature block is H̃ₗ = Zₗ'Zₗ + Λ̃ⱼ with Λ̃ⱼ = σ²Vⱼ⁻¹ and β's is X'X.
///
/// One minibatch B of rows:
/// - **Unbiased gradients.** Row i contributes zᵢeᵢ to the gradient of its level and xᵢeᵢ to
///   β's, and each of level l's nₗ rows carries 1/nₗ of its penalty; the batch gradient of a
///   level is the sum over its rows in B. Over an epoch (every row once) the batch gradients
///   sum to the full gradient, and over a random chunk order their expectation is |B|/N of it.
/// - **Variance reduction** (SVRG with a stale anchor). eᵢ = xᵢ'β + zᵢ'b − (xᵢ'β̃ + zᵢ'b̃)
///   compares the current point with an anchor (β̃, b̃), and the anchor's full data gradient
///   D = Σ z r(b̃) is added in per-row shares: the batch gradient of level l is
///   Σ_{i∈B∩l} [zᵢeᵢ + (Λ̃bₗ − Dₗ)/nₗ]. Its noise vanishes as the point and the anchor approach
///   the optimum, so a constant step converges to the exact solution. The anchor is the point
///   at the start of the previous epoch: the residuals at the start of each epoch, r(b̂), are
///   computed along the way and give the next anchor's D (and the exact objective there).
/// - **Adam with a known curvature.** Lazy Adam: only the levels present in B are touched, with
///   the first moment mₗ ← β₁mₗ + (1 − β₁)g̃ₗ and bias correction by the global step count (as
///   sparse Adam implementations do). Adam's second moment √v̂ rescales each coordinate by
///   the size of its noisy gradients, which does not depend on how many rows a level has; the
///   step here is instead scaled by the level's exact curvature block (as AdaHessian uses the
///   Hessian diagonal): Δbₗ = −η H̃ₗ⁻¹ m̂ₗ, Δβ = −η (X'X)⁻¹ m̂_β. An epoch at η = 1 then moves
///   every level by about one Newton step, whatever its number of rows.
/// - **Gauss–Seidel within the batch.** β is updated first, then the terms in order, each seeing
///   the steps already taken in the batch (eᵢ is corrected by xᵢ'Δβ and zᵢ'Δb of the earlier
///   terms), so crossed and nested factors do not all absorb the same residual at once.
///
/// Parallel and deterministic: the row work of a batch runs over 16 fixed slices whose partial
/// sums are added in slice order, and the level work is partitioned by level ranges, each
/// partition scanning the batch's rows in order and touching only its own levels. No two
/// threads write one location, and results do not depend on the number of threads.
///
/// Distributed (a ``ProcessGroup`` of K processes): each process holds only its own rows of a
/// batch (its part of the chunk the batch is cut from) and does their row work, over 16 slices
/// of its rows — the slice sums are then summed over the processes (one sum) — and in each term
/// phase accumulates the gradients of its rows' levels; the processes then sum those gradients
/// (one sum per term: a level index and k partial sums per level a process touched) and every
/// process takes the same Adam steps of every level touched (replicated state). The next
/// anchor's data gradient is summed once per epoch (``combineEpochData()``). The sums are added
/// per process, then over processes: the same as one process up to rounding.
final class AdamSolver: @unchecked Sendable {
    let states: [TermState]
    /// Number of fixed effects.
    let p: Int
    /// Complete rows in the file.
    let n: Int
    var learningRate: Double
    let firstMomentDecay: Double
    let concurrent: Bool
    /// Level partitions of the term phases.
    let partitions: Int
    /// Fixed slices of the row phase (results do not depend on the thread count).
    static let slices = 16
    /// Rows whose records are loaded ahead of the work on them (32 KB of records: L1-sized).
    static let touchBlock = 256

    // β and its state (see the type's documentation).
    var beta: [Double]
    var anchorBeta: [Double]
    var nextBeta: [Double]
    var momentBeta: [Double]
    /// Σ x r(β̃, b̃) over all rows, and Σ x r(β̂, b̂) over the rows seen this epoch.
    var dataBeta: [Double]
    var nextDataBeta: [Double]
    /// Cholesky factor of X'X (lower, p × p, column-major).
    let gramFactor: [Double]

    /// True in the first epoch: no anchor yet, plain minibatch gradients (eᵢ = −rᵢ).
    var plain = true
    /// Adam steps taken (batches), for the bias correction; also each batch's stamp.
    private(set) var steps: UInt32 = 0
    /// Σ r(b̂)² over the rows seen this epoch.
    var nextSSE = 0.0

    // Per-batch scratch.
    private let capacity: Int
    private let e: UnsafeMutablePointer<Double>
    private let rn: UnsafeMutablePointer<Double>
    /// Per slice: Σr², Σ x e (p), Σ x r (p).
    private let partials: UnsafeMutablePointer<Double>
    /// Per partition: the levels touched in the batch, and a k × k work area.
    let touched: [UnsafeMutablePointer<Int32>]
    /// Per term: the batch's rows grouped by the partition owning their level (within each
    /// slice, in row order), and the start of each (slice, partition) group.
    private let owned: [UnsafeMutablePointer<Int32>]
    private let groupStarts: [UnsafeMutablePointer<Int>]
    /// Where the touch loops leave their sums (never read; it keeps the loads).
    private let sinks: UnsafeMutablePointer<Double>
    let work: [UnsafeMutablePointer<Double>]
    private var deltaBeta: [Double]
    /// The processes sharing each batch's rows (this one alone by default).
    let group: any ProcessGroup
    /// The message of a term's gradient sum (reused: no allocation per batch once grown).
    var exchange: [Double] = []
    /// Levels touched by each partition in the term phase just run.
    var touchedCounts: [Int]

    init(states: [TermState], p: Int, n: Int, gram: [Double], start beta: [Double], batchCapacity: Int,
         learningRate: Double, firstMomentDecay: Double, concurrent: Bool, group: any ProcessGroup = SingleProcess()) {
        self.states = states
        self.group = group
        self.p = p
        self.n = n
        self.learningRate = learningRate
        self.firstMomentDecay = firstMomentDecay
        self.concurrent = concurrent
        partitions = concurrent ? max(1, Threading.coreCount) : 1
        touchedCounts = [Int](repeating: 0, count: partitions)
        self.beta = beta
        anchorBeta = beta
        nextBeta = beta
        momentBeta = [Double](repeating: 0, count: p)
        dataBeta = momentBeta
        nextDataBeta = momentBeta
        deltaBeta = momentBeta
        var factor = gram
        let ok = p == 0 || factor.withUnsafeMutableBufferPointer { SmallCholesky.factorInPlace($0.baseAddress!, p) }
        precondition(ok, "X'X of the kept columns is positive definite")
        gramFactor = factor
        let capacity = max(batchCapacity, 1), partitionCount = partitions
        self.capacity = capacity
        e = .allocate(capacity: capacity)
        rn = .allocate(capacity: capacity)
        partials = .allocate(capacity: Self.slices * (1 + 2 * max(p, 1)))
        touched = (0..<partitionCount).map { _ in .allocate(capacity: capacity) }
        owned = states.map { _ in .allocate(capacity: capacity) }
        sinks = .allocate(capacity: Self.slices + partitionCount)
        groupStarts = states.map { _ in .allocate(capacity: Self.slices * (partitionCount + 1)) }
        let k = states.map(\.k).max() ?? 1
        work = (0..<partitionCount).map { _ in .allocate(capacity: 3 * k * k + 2 * k) }
    }

    deinit {
        e.deallocate()
        rn.deallocate()
        partials.deallocate()
        for pointer in touched { pointer.deallocate() }
        for pointer in owned { pointer.deallocate() }
        sinks.deallocate()
        for pointer in groupStarts { pointer.deallocate() }
        for pointer in work { pointer.deallocate() }
    }

    // MARK: - One minibatch

    /// One Adam step on the rows `rows` of `chunk` (at most the batch capacity).
    ///
    /// On K processes (collective) `rows` are this process's rows of a batch of `batchRows`
    /// rows (possibly none), and `rankRows` every process's count of them, by rank.
    func step(_ chunk: DesignChunk, rows: Range<Int>, batchRows: Int? = nil, rankRows: [Int] = []) {
        let total = batchRows ?? rows.count
        guard total > 0 else { return }
        precondition(rows.count <= capacity && (group.size == 1 || rankRows.count == group.size))
        steps &+= 1
        rowPhase(chunk, rows: rows)
        betaStep(batchRows: total)
        for j in states.indices { termPhase(j, chunk, rows: rows, rankRows: rankRows) }
    }

    /// eᵢ, the next anchor's residuals r(b̂)ᵢ, and the slice sums Σr(b̂)², Σxe, Σx r(b̂).
    private func rowPhase(_ chunk: DesignChunk, rows: Range<Int>) {
        let p = self.p, slices = Self.slices, width = 1 + 2 * p
        let first = rows.lowerBound, count = rows.count
        let X = chunk.X + first, y = chunk.y + first, stride = chunk.capacity
        let views = states.map(\.view)
        let slots = chunk.slots.map { $0 + first }
        let Z = chunk.Z.map { $0 + first }
        let plain = self.plain
        let e = self.e, rn = self.rn, partials = self.partials
        let owned = self.owned, groupStarts = self.groupStarts, partitions = self.partitions
        let sinks = self.sinks
        let slotCounts = states.map(\.slotCount)
        // β, β̃, β̂ side by side.
        var betas = [Double](repeating: 0, count: 3 * p)
        for t in 0..<p { betas[3 * t] = beta[t]; betas[3 * t + 1] = anchorBeta[t]; betas[3 * t + 2] = nextBeta[t] }
        Parallel.forEach(slices, concurrent: concurrent && count >= 4_096) { s in
            let lo = count * s / slices, hi = count * (s + 1) / slices
            let out = partials + s * width
            for c in 0..<width { out[c] = 0 }
            betas.withUnsafeBufferPointer { betas in
            views.withUnsafeBufferPointer { views in
            slots.withUnsafeBufferPointer { slots in
            Z.withUnsafeBufferPointer { Z in
                var blockStart = lo
                while blockStart < hi {
                let blockEnd = min(blockStart &+ Self.touchBlock, hi)
                // Touch the block's records first: a tight loop of independent loads keeps many
                // cache misses in flight; the loop below then finds the records in cache.
                var sink = 0.0
                for i in blockStart..<blockEnd {
                    for j in 0..<views.count { sink += views[j].record(slots[j][i])[0] }
                }
                sinks[s] = sink
                for i in blockStart..<blockEnd {
                    var current = 0.0, anchor = 0.0, next = 0.0
                    for t in 0..<p {
                        let x = X[t * stride + i]
                        current += x * betas[3 * t]
                        anchor += x * betas[3 * t + 1]
                        next += x * betas[3 * t + 2]
                    }
                    for j in 0..<views.count {
                        let view = views[j]
                        let record = view.record(slots[j][i])
                        if view.interceptOnly {
                            current += record[0]
                            anchor += record[1]
                            next += record[2]
                        } else {
                            let k = view.k
                            for a in 0..<k {
                                let z = Z[j][a * stride + i]
                                current += z * record[a]
                                anchor += z * record[k + a]
                                next += z * record[2 * k + a]
                            }
                        }
                    }
                    let ei = plain ? current - y[i] : current - anchor
                    let ri = y[i] - next
                    e[i] = ei
                    rn[i] = ri
                    out[0] += ri * ri
                    for t in 0..<p {
                        let x = X[t * stride + i]
                        out[1 + t] += x * ei
                        out[1 + p + t] += x * ri
                    }
                }
                blockStart = blockEnd
                }
                // Group the slice's rows by the partition that owns their level (a counting
                // sort, without branches), so that the term phases need not skip rows.
                for j in 0..<views.count {
                    let starts = groupStarts[j] + s * (partitions + 1)
                    let order = owned[j], levels = slots[j], slotCount = Int64(slotCounts[j])
                    for q in 0...partitions { starts[q] = 0 }
                    for i in lo..<hi { starts[Int(Int64(levels[i]) &* Int64(partitions) / slotCount) &+ 1] &+= 1 }
                    starts[0] = lo
                    for q in 0..<partitions { starts[q + 1] &+= starts[q] }
                    var next = [Int](repeating: 0, count: partitions)
                    for q in 0..<partitions { next[q] = starts[q] }
                    for i in lo..<hi {
                        let q = Int(Int64(levels[i]) &* Int64(partitions) / slotCount)
                        order[next[q]] = Int32(truncatingIfNeeded: i)
                        next[q] &+= 1
                    }
                }
            }
            }
            }
            }
        }
        if group.size > 1 {
            // Every process's slice sums, added slot by slot.
            var sums = Array(UnsafeBufferPointer(start: partials, count: slices * width))
            group.sum(&sums)
            for c in sums.indices { partials[c] = sums[c] }
        }
    }

    /// The step of β from the slice sums (serial: p is small), and the epoch's sums.
    private func betaStep(batchRows: Int) {
        let width = 1 + 2 * p
        var xe = [Double](repeating: 0, count: p)
        for s in 0..<Self.slices {
            let sums = partials + s * width
            nextSSE += sums[0]
            for t in 0..<p {
                xe[t] += sums[1 + t]
                nextDataBeta[t] += sums[1 + p + t]
            }
        }
        let fraction = Double(batchRows) / Double(n)
        let decay = firstMomentDecay
        let correction = 1 / (1 - pow(decay, Double(steps)))
        var direction = [Double](repeating: 0, count: p)
        for t in 0..<p {
            let gradient = plain ? xe[t] : xe[t] - fraction * dataBeta[t]
            momentBeta[t] = decay * momentBeta[t] + (1 - decay) * gradient
            direction[t] = momentBeta[t] * correction
        }
        gramFactor.withUnsafeBufferPointer { L in
            direction.withUnsafeMutableBufferPointer { d in
                guard p > 0 else { return }
                SmallCholesky.solveLower(L.baseAddress!, p, d.baseAddress!)
                SmallCholesky.solveUpper(L.baseAddress!, p, d.baseAddress!)
            }
        }
        for t in 0..<p {
            deltaBeta[t] = -learningRate * direction[t]
            beta[t] += deltaBeta[t]
        }
    }

    /// Term j: correct eᵢ by the previous block's step, accumulate the batch gradients and the
    /// next anchor's data gradient of the levels present, and take their Adam steps. Partition q
    /// owns the levels l with ⌊l·Q/L⌋ = q and visits their rows in row order.
    private func termPhase(_ j: Int, _ chunk: DesignChunk, rows: Range<Int>, rankRows: [Int]) {
        let first = rows.lowerBound, count = rows.count
        let view = states[j].view
        let previous: TermView? = j > 0 ? states[j - 1].view : nil
        let stride = chunk.capacity
        let X = chunk.X + first
        let slots = chunk.slots[j] + first
        let Z = chunk.Z[j] + first
        let previousSlots = j > 0 ? chunk.slots[j - 1] + first : slots
        let previousZ = j > 0 ? chunk.Z[j - 1] + first : Z
        let e = self.e, rn = self.rn, p = self.p, slices = Self.slices
        let deltaBeta = self.deltaBeta
        let partitions = self.partitions
        let order = owned[j], starts = groupStarts[j]
        let stamp = steps
        let learningRate = self.learningRate, decay = firstMomentDecay
        let correction = 1 / (1 - pow(decay, Double(steps)))
        let touchedLists = touched, works = work, sinks = self.sinks
        let k = view.k
        let precision = states[j].precision
        let curvature = states[j].curvature
        let distributed = group.size > 1
        touchedCounts.withUnsafeMutableBufferPointer { touchedCounts in
        nonisolated(unsafe) let touchedCounts = touchedCounts
        Parallel.forEach(partitions, concurrent: concurrent && partitions > 1 && count >= 4_096) { q in
            let list = touchedLists[q], scratch = works[q]
            var touchedCount = 0
            deltaBeta.withUnsafeBufferPointer { deltaBeta in
            precision.withUnsafeBufferPointer { precision in
                let lambda = precision[0]
                for s in 0..<slices {
                    let groups = starts + s * (partitions + 1)
                    var blockStart = groups[q]
                    while blockStart < groups[q + 1] {
                    let blockEnd = min(blockStart &+ Self.touchBlock, groups[q + 1])
                    var sink = 0.0
                    for position in blockStart..<blockEnd {
                        let i = Int(order[position])
                        sink += view.record(slots[i])[0]
                        if let previous { sink += previous.record(previousSlots[i])[0] }
                    }
                    sinks[Self.slices + q] = sink
                    for position in blockStart..<blockEnd {
                        let i = Int(order[position])
                        let l = slots[i]
                        // Gauss–Seidel: the steps already taken in this batch.
                        var ei = e[i]
                        if let previous {
                            let record = previous.record(previousSlots[i])
                            if previous.interceptOnly {
                                ei += record[previous.acc]
                            } else {
                                for a in 0..<previous.k { ei += previousZ[a &* stride &+ i] * record[previous.acc &+ a] }
                            }
                        } else {
                            for t in 0..<p { ei += X[t &* stride &+ i] * deltaBeta[t] }
                        }
                        e[i] = ei
                        let record = view.record(l)
                        // First row of the level in this batch: note it, start its gradient.
                        let fresh = view.stamp(record) != stamp
                        view.setStamp(record, stamp)
                        list[touchedCount] = l
                        touchedCount &+= fresh ? 1 : 0
                        if view.interceptOnly {
                            let share = (lambda * record[0] - record[view.data]) / Double(view.count(record))
                            record[view.acc] = (fresh ? 0 : record[view.acc]) + (ei + share)
                            record[view.nextData] += rn[i]
                        } else {
                            if fresh { Self.setShare(view, record, precision) }
                            for a in 0..<k {
                                let z = Z[a &* stride &+ i]
                                record[view.acc &+ a] = (fresh ? 0 : record[view.acc &+ a]) + (z * ei + record[view.share &+ a])
                                record[view.nextData &+ a] += z * rn[i]
                            }
                        }
                    }
                    blockStart = blockEnd
                    }
                }
                // Adam steps of the levels present (distributed: after the gradients' sum).
                if distributed {
                    touchedCounts[q] = touchedCount
                } else {
                    for t in 0..<touchedCount {
                        Self.adamStep(view, view.record(list[t]), scratch: scratch, curvature: curvature, lambda: lambda,
                                      learningRate: learningRate, decay: decay, correction: correction)
                    }
                }
            }
            }
        }
        }
        if distributed { combineTerm(j, rankRows: rankRows, correction: correction) }
    }

    /// One level's Adam step from its batch gradient (in `acc`, replaced by the step taken).
    @inline(__always)
    static func adamStep(_ view: TermView, _ record: UnsafeMutablePointer<Double>, scratch: UnsafeMutablePointer<Double>,
                         curvature: (UnsafeMutablePointer<Double>, UnsafeMutablePointer<Double>) -> Void, lambda: Double,
                         learningRate: Double, decay: Double, correction: Double) {
        let k = view.k
        if view.interceptOnly {
            let m = decay * record[view.moment] + (1 - decay) * record[view.acc]
            record[view.moment] = m
            let delta = -learningRate * m * correction / (Double(view.count(record)) + lambda)
            record[0] += delta
            record[view.acc] = delta
        } else {
            let H = scratch, d = scratch + k * k
            for a in 0..<k {
                let m = decay * record[view.moment + a] + (1 - decay) * record[view.acc + a]
                record[view.moment + a] = m
                d[a] = m * correction
            }
            curvature(record, H)
            _ = SmallCholesky.factorInPlace(H, k)
            SmallCholesky.solveLower(H, k, d)
            SmallCholesky.solveUpper(H, k, d)
            for a in 0..<k {
                let delta = -learningRate * d[a]
                record[a] += delta
                record[view.acc + a] = delta
            }
        }
    }

    /// The penalty's share per row of a level, (Λ̃bₗ − Dₗ)/nₗ, fixed during a batch.
    @inline(__always)
    private static func setShare(_ view: TermView, _ record: UnsafeMutablePointer<Double>, _ precision: UnsafeBufferPointer<Double>) {
        let k = view.k
        let reciprocal = 1 / Double(view.count(record))
        for a in 0..<k {
            var s = -record[view.data + a]
            for c in 0..<k { s += precision[a + c * k] * record[c] }
            record[view.share + a] = s * reciprocal
        }
    }
}

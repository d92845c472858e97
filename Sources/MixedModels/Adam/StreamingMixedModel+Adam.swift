import Foundation

extension StreamingMixedModel {
    /// Fits by streaming minibatch Adam: epochs over the file's chunks in a seeded random order,
    /// each chunk split into minibatches of ``AdamOptions/batchSize`` rows; penalties given, or
    /// re-estimated every ``AdamOptions/penaltyInterval`` epochs by a MacKay form.
    ///
    /// Stops when an epoch changes every estimate by less than ``AdamOptions/tolerance``
    /// (relative) and the penalties have settled, or after ``AdamOptions/maxEpochs``. The same
    /// seed gives the same result, whatever the number of threads.
    /// - Throws: ``LMMError``: ``LMMError/input(_:)`` for bad variance components or a chunk
    ///   that cannot be read, ``LMMError/fit(_:)`` when the fit diverges.
    public func fit(adam options: AdamOptions) throws(LMMError) -> FitResult {
        try LMMError.wrapping { try fitAdam(options) }
    }

    /// The work of ``fit(adam:)`` (which wraps its errors).
    func fitAdam(_ options: AdamOptions) throws -> FitResult {
        let begin = DispatchTime.now()
        func seconds() -> Double { Double(DispatchTime.now().uptimeNanoseconds - begin.uptimeNanoseconds) / 1e9 }
        let labels = design.termLabels
        let effectNames = design.terms.map(\.effects.names)
        var messages = dataMessages

        // Penalties: given, or a start for the MacKay updates.
        var covariances: [Matrix]
        var sigmaSquared: Double
        var learned: MacKayForm?
        switch options.penalties {
        case .given(let variances):
            (covariances, sigmaSquared) = try variances.resolve(labels: labels, effectNames: effectNames)
        case .learned(let form):
            try StreamingMacKay.check(form)
            learned = form
            if let start = options.start {
                (covariances, sigmaSquared) = try start.resolve(labels: labels, effectNames: effectNames)
            } else {
                (covariances, sigmaSquared) = defaultStart()
            }
            if states.contains(where: { $0.k > 1 }) {
                messages.append("the MacKay forms keep each covariance block diagonal (uncorrelated effects)")
                covariances = covariances.map { V in
                    var D = Matrix(zeros: V.rows, V.rows)
                    for a in 0..<V.rows { D[a, a] = V[a, a] }
                    return D
                }
            }
        }
        let floor = 1e-10 * responseVariance
        let tolerance = learned == nil ? options.tolerance : max(options.tolerance, options.penaltyTolerance / 10)
        if learned != nil { covariances = covariances.map { Self.clampDiagonal($0, floor) } }
        for label in try setPenalties(covariances, sigmaSquared: sigmaSquared, labels: labels) {
            messages.append("the covariance of group '\(label)' is singular (a boundary fit): its effects are held within "
                            + "about 1e-10 of its null space (10⁻¹⁰σ² added to its variances)")
        }

        // The solver, from the least-squares fit of the fixed effects.
        let p = keptFixed.count, n = statistics.n
        let batchSize = min(options.batchSize ?? Self.defaultBatchSize(n: n), reader.rowsPerChunk)
        let solver = AdamSolver(states: states, p: p, n: n, gram: gram, start: Self.solve(gram, crossXy, p),
                                batchCapacity: min(batchSize, reader.chunkCapacity), learningRate: options.learningRate,
                                firstMomentDecay: options.firstMomentDecay, concurrent: options.concurrent, group: reader.group)
        let rebalancing = Rebalancing(design: design, states: states, levelConstants: levelConstants)
        let kinds = reader.columns.map(\.kind)
        var binary = LMMBinaryChunk()
        let chunk = DesignChunk(design: design, capacity: reader.chunkCapacity)
        var generator = SplitMix64(seed: options.seed)
        var order = Array(0..<reader.chunkCount)
        let ranks = reader.group.size, rank = reader.group.rank
        var rankRows = [Int](repeating: 0, count: ranks)

        var trajectory: [TrajectoryPoint] = []
        var converged = false
        var schedule = learned.map { PenaltySchedule(form: $0, interval: options.penaltyInterval,
                                                     tolerance: options.penaltyTolerance, floor: floor) }
        var epoch = 0
        var changes: [Double] = []
        var epochSeconds: [Double] = []
        var objective = Double.nan
        var lastUpdate = 0
        while epoch < options.maxEpochs {
            epoch += 1
            let epochStart = seconds()
            Self.shuffle(&order, &generator)
            var rowsDone = 0
            for c in order {
                if ranks == 1 {
                    try reader.readChunk(c, into: &binary)
                    chunk.load(binary, design: design, kinds: kinds, complete: statistics.completeChunks[c])
                    var first = 0
                    while first < chunk.rowCount {
                        let last = min(first + batchSize, chunk.rowCount)
                        solver.step(chunk, rows: first..<last)
                        first = last
                    }
                } else {
                    // This rank's part of the chunk; the batches are cut from the whole chunk's
                    // complete rows (the parts one after another), each rank doing its rows of each.
                    try reader.readOwnPart(c, into: &binary)
                    chunk.load(binary, design: design, kinds: kinds,
                               complete: statistics.partIsComplete(c, rank: rank, rows: reader.rowCount(ofChunk: c)))
                    let total = statistics.chunkRows[c]
                    var first = 0
                    while first < total {
                        let last = min(first + batchSize, total)
                        var own = 0..<0, start = 0
                        for r in 0..<ranks {
                            let held = statistics.partRows[c * ranks + r]
                            let lo = max(first, start), hi = min(last, start + held)
                            rankRows[r] = max(hi - lo, 0)
                            if r == rank && hi > lo { own = lo - start..<hi - start }
                            start += held
                        }
                        solver.step(chunk, rows: own, batchRows: last - first, rankRows: rankRows)
                        first = last
                    }
                }
                rowsDone += reader.rowCount(ofChunk: c)
                if let progress = options.progress {
                    let elapsed = seconds() - epochStart
                    progress(AdamProgress(phase: .epoch, epoch: epoch, maxEpochs: options.maxEpochs, rowsDone: rowsDone,
                                          rowCount: statistics.rowCount, rowsPerSecond: Double(rowsDone) / max(elapsed, 1e-9),
                                          elapsedSeconds: seconds(), objective: nil, change: nil, varcorr: [],
                                          secondsRemaining: nil, epochFinished: false))
                }
            }

            // What the pass measured at the epoch's start (β̂, b̂), and the epoch's change.
            let summaries = solver.summarizeEpoch()
            if let j = summaries.firstIndex(where: { $0.singularLevels > 0 }) {
                let count = summaries[j].singularLevels
                throw InputError("epoch \(epoch): the posterior precision of \(count) level\(count == 1 ? "" : "s") of group '\(labels[j])' "
                                 + "is not positive definite (the fit diverged); try a smaller --learning-rate")
            }
            let sse = solver.nextSSE
            objective = (sse + summaries.reduce(0) { $0 + $1.penalty }) / sigmaSquared
            var change = 0.0
            let largestBeta = solver.beta.map(abs).max() ?? 0
            for t in 0..<p {
                let scale = max(abs(solver.beta[t]), 1e-6 * largestBeta, 1e-300)
                change = max(change, abs(solver.beta[t] - solver.nextBeta[t]) / scale)
            }
            for summary in summaries {
                for a in summary.largest.indices where summary.largest[a] > 0 {
                    change = max(change, summary.largestChange[a] / summary.largest[a])
                }
            }
            trajectory.append(TrajectoryPoint(iteration: epoch, objective: objective, sigma: sigmaSquared.squareRoot(),
                                              varcorr: varCorr(covariances, sigmaSquared: sigmaSquared, labels: labels),
                                              fixef: solver.nextBeta))

            // Penalties from the sums at (β̂, b̂).
            var updated = false
            if schedule?.updates(atEndOf: epoch) == true {
                (covariances, sigmaSquared) = schedule!.update(summaries: summaries, levels: states.map(\.usedCount), sse: sse,
                                                               n: n, p: p, covariances: covariances, sigmaSquared: sigmaSquared)
                try setPenalties(covariances, sigmaSquared: sigmaSquared, labels: labels)
                updated = true
                lastUpdate = epoch
            }
            solver.advanceAnchors(rebalancing: rebalancing)

            // A step too long for this design shows as a change that keeps growing over epochs
            // with fixed penalties: halve it.
            if epoch >= lastUpdate + 4, changes.count >= 2, change > 1e3 * tolerance,
               change > changes[changes.count - 1], changes[changes.count - 1] > changes[changes.count - 2],
               change > 2 * changes[changes.count - 2], solver.learningRate > 1.0 / 16 {
                solver.learningRate /= 2
                messages.append(String(format: "epoch %d: the change grew for two epochs (%.3g, %.3g, %.3g); learning rate halved to %.4g",
                                       epoch, changes[changes.count - 2], changes[changes.count - 1], change, solver.learningRate))
            }
            changes.append(change)
            epochSeconds.append(seconds() - epochStart)
            let settled = schedule?.settled ?? true
            if epoch >= 3, settled, !updated, change < tolerance {
                converged = true
            }
            if let progress = options.progress {
                let remaining = Self.remainingEpochs(changes: changes, tolerance: tolerance,
                                                     penaltyChanges: settled ? [] : schedule?.steps ?? [],
                                                     penaltyTolerance: options.penaltyTolerance,
                                                     interval: options.penaltyInterval)
                progress(AdamProgress(phase: .epoch, epoch: epoch, maxEpochs: options.maxEpochs, rowsDone: rowsDone,
                                      rowCount: statistics.rowCount, rowsPerSecond: Double(rowsDone) / max(epochSeconds.last!, 1e-9),
                                      elapsedSeconds: seconds(), objective: objective, change: change,
                                      varcorr: varCorr(covariances, sigmaSquared: sigmaSquared, labels: labels),
                                      secondsRemaining: remaining.map { $0 * (epochSeconds.last ?? 0) }, epochFinished: true))
            }
            if converged { break }
        }
        if !converged {
            messages.append("adam did not converge in \(options.maxEpochs) epochs (last relative change \(String(format: "%.3g", changes.last ?? .nan))\(schedule?.settled == false ? ", penalties still changing" : ""))")
        }
        let perEpoch = epochSeconds.isEmpty ? 0 : epochSeconds.reduce(0, +) / Double(epochSeconds.count)
        messages.append(String(format: "adam: %d epochs of %d rows in batches of %d, %.3g s per epoch (%.3g rows/s)",
                               epoch, statistics.rowCount, batchSize, perEpoch, Double(statistics.rowCount) / max(perEpoch, 1e-9)))
        PhaseLog.mark("adam epochs")
        let final = try finalPass(solver: solver, progress: options.progress, epoch: epoch, maxEpochs: options.maxEpochs,
                                  started: seconds)
        PhaseLog.mark("adam final pass")
        return try result(solver: solver, covariances: covariances, sigmaSquared: sigmaSquared, final: final,
                          criterion: options.criterion, epochs: epoch, converged: converged, messages: messages,
                          trajectory: trajectory, labels: labels, elapsed: seconds)
    }

    // MARK: - Pieces

    /// Default starting variances for learned penalties: σ² = var(y)/2 and the other half split
    /// evenly between the random effects, each scaled by its column's mean square.
    func defaultStart() -> ([Matrix], Double) {
        let half = responseVariance / 2
        let effects = Double(states.reduce(0) { $0 + $1.k })
        let n = Double(statistics.n)
        let covariances = states.indices.map { j -> Matrix in
            var V = Matrix(zeros: states[j].k, states[j].k)
            for a in 0..<states[j].k {
                let meanSquare = max(statistics.effectSquares[j][a] / n, .leastNormalMagnitude)
                V[a, a] = half / effects / meanSquare
            }
            return V
        }
        return (covariances, half)
    }

    static func clampDiagonal(_ V: Matrix, _ floor: Double) -> Matrix {
        var W = V
        for a in 0..<V.rows { W[a, a] = max(W[a, a], floor) }
        return W
    }

    /// Sets every term's Λ̃ = σ²V⁻¹. A singular covariance (a zero variance, a correlation of
    /// ±1: a boundary fit) has no finite penalty; it gets 10⁻¹⁰σ² added to its diagonal, which
    /// holds the effects in its null space within about 10⁻¹⁰ of zero.
    /// - Returns: the labels of the terms so regularized.
    @discardableResult
    func setPenalties(_ covariances: [Matrix], sigmaSquared: Double, labels: [String]) throws -> [String] {
        var regularized: [String] = []
        for (j, state) in states.enumerated() where !state.setPrecision(covariance: covariances[j], sigmaSquared: sigmaSquared) {
            var V = covariances[j]
            for a in 0..<V.rows { V[a, a] += 1e-10 * sigmaSquared }
            guard state.setPrecision(covariance: V, sigmaSquared: sigmaSquared) else {
                throw InputError("the covariance matrix of group '\(labels[j])' is not positive semi-definite")
            }
            regularized.append(labels[j])
        }
        return regularized
    }

    /// 65,536 rows, or fewer so that an epoch has at least 8 minibatches.
    static func defaultBatchSize(n: Int) -> Int {
        min(65_536, max(16, (n + 7) / 8))
    }

    /// x = A⁻¹b for a small symmetric positive definite A (p × p).
    static func solve(_ A: [Double], _ b: [Double], _ p: Int) -> [Double] {
        guard p > 0 else { return [] }
        var L = A, x = b
        L.withUnsafeMutableBufferPointer { L in
            x.withUnsafeMutableBufferPointer { x in
                _ = SmallCholesky.factorInPlace(L.baseAddress!, p)
                SmallCholesky.solveLower(L.baseAddress!, p, x.baseAddress!)
                SmallCholesky.solveUpper(L.baseAddress!, p, x.baseAddress!)
            }
        }
        return x
    }

    /// Fisher–Yates with a seeded generator: the chunk order of an epoch.
    static func shuffle(_ order: inout [Int], _ generator: inout SplitMix64) {
        for i in stride(from: order.count - 1, to: 0, by: -1) {
            let j = Int(generator.next() % UInt64(i + 1))
            order.swapAt(i, j)
        }
    }

    /// Epochs left at the recent geometric rates of change, or nil while unknown.
    static func remainingEpochs(changes: [Double], tolerance: Double, penaltyChanges: [Double],
                                penaltyTolerance: Double, interval: Int) -> Double? {
        func left(_ values: [Double], _ goal: Double) -> Double? {
            guard values.count >= 3, let last = values.last, last > 0 else { return nil }
            if last < goal { return 0 }
            let rate = pow(last / values[values.count - 3], 0.5)
            guard rate > 0, rate < 1 else { return nil }
            return log(goal / last) / log(rate)
        }
        let parameters = left(changes, tolerance)
        if penaltyChanges.isEmpty { return parameters }
        guard let penalties = left(penaltyChanges, penaltyTolerance) else { return nil }
        return max(penalties * Double(max(interval, 1)), parameters ?? 0)
    }

    /// lme4's `as.data.frame(VarCorr(m))` for covariances `covariances` and σ².
    func varCorr(_ covariances: [Matrix], sigmaSquared: Double, labels: [String]) -> [VarCorrEntry] {
        VarianceComponents(covariances: covariances, sigmaSquared: sigmaSquared, labels: labels,
                           effectNames: design.terms.map(\.effects.names)).entries
    }
}

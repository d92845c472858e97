import Foundation

/// The last pass of a streaming fit: the residuals at the estimates.
extension StreamingMixedModel {
    /// What the last pass measured at the estimates.
    struct FinalPass {
        /// ‖y − Xβ − Zb‖².
        var sse: Double
        /// Residuals of every row, or of an evenly spaced sample of about a million rows.
        var residuals: [Double]
        var sampled: Bool
        /// The touch loops' sum (kept so that their loads are not optimized away).
        var touched: Double
    }

    /// Residuals at the final estimates, in file order.
    ///
    /// In a group of K processes (the reader's) the pass is divided: each process reads from
    /// disk what it owns (``LMMBinaryReader/ownChunks``: whole chunks, or its part of each), and the sums of squares per chunk and the
    /// sampled residuals are combined in one sum of C + (sampled rows) doubles; the sum of
    /// squares is then added in chunk order, the same bits on every process (one process adds
    /// the rows in file order: the same up to rounding). Collective.
    func finalPass(solver: AdamSolver, progress: (@Sendable (AdamProgress) -> Void)?, epoch: Int, maxEpochs: Int,
                   started seconds: () -> Double) throws -> FinalPass {
        let n = statistics.n
        let every = max(1, n / 1_000_000)
        let group = reader.group
        let sampleCount = n == 0 ? 0 : (n - 1) / every + 1
        // One process: the residuals appended in order. K processes: each its chunks' samples
        // in place (zero elsewhere), and each chunk's sum of squares, then summed.
        var residuals: [Double] = []
        var chunkSSE: [Double] = []
        if group.size == 1 {
            residuals.reserveCapacity(sampleCount)
        } else {
            residuals = [Double](repeating: 0, count: sampleCount)
            chunkSSE = [Double](repeating: 0, count: reader.chunkCount)
        }
        // Complete rows before each chunk (the sample's positions).
        var firstRow = [Int](repeating: 0, count: reader.chunkCount)
        for c in 1..<max(reader.chunkCount, 1) { firstRow[c] = firstRow[c - 1] + statistics.chunkRows[c - 1] }
        var sse = 0.0, rowsDone = 0, touched = 0.0
        let kinds = reader.columns.map(\.kind)
        var binary = LMMBinaryChunk()
        let chunk = DesignChunk(design: design, capacity: reader.chunkCapacity)
        let views = states.map(\.view)
        let beta = solver.beta
        let passStart = seconds()
        try group.agreeing {
        let parts = reader.readsParts, rank = group.rank
        for c in reader.ownChunks {
            try reader.readChunk(c, into: &binary, shared: false)
            let rows = reader.rowCount(ofChunk: c)
            chunk.load(binary, design: design, kinds: kinds,
                       complete: parts ? statistics.partIsComplete(c, rank: rank, rows: rows) : statistics.completeChunks[c])
            var seen = firstRow[c] + (parts ? statistics.partStart(c, rank: rank) : 0), chunkSum = 0.0
            var blockStart = 0
            while blockStart < chunk.rowCount {
            let blockEnd = min(blockStart + AdamSolver.touchBlock, chunk.rowCount)
            var sink = 0.0
            for i in blockStart..<blockEnd {
                for (j, view) in views.enumerated() { sink += view.record(chunk.slots[j][i])[0] }
            }
            touched += sink
            for i in blockStart..<blockEnd {
                let fitted = chunk.conditionalFit(row: i, marginal: chunk.marginalFit(row: i, beta: beta), views: views)
                let r = chunk.y[i] - fitted
                if group.size == 1 {
                    sse += r * r
                    if seen % every == 0 { residuals.append(r) }
                } else {
                    chunkSum += r * r
                    if seen % every == 0 { residuals[seen / every] = r }
                }
                seen += 1
            }
            blockStart = blockEnd
            }
            if group.size > 1 { chunkSSE[c] = chunkSum }
            rowsDone += binary.rowCount
            if let progress {
                let elapsed = seconds() - passStart
                // On K processes: this one's rows times K, an estimate of the whole pass's progress.
                let estimate = min(rowsDone * group.size, statistics.rowCount)
                progress(AdamProgress(phase: .final, epoch: epoch, maxEpochs: maxEpochs, rowsDone: estimate,
                                      rowCount: statistics.rowCount, rowsPerSecond: Double(estimate) / max(elapsed, 1e-9),
                                      elapsedSeconds: seconds(), objective: nil, change: nil, varcorr: [],
                                      secondsRemaining: nil, epochFinished: false))
            }
        }
        }
        if group.size > 1 {
            var combined = chunkSSE + residuals
            group.sum(&combined)
            sse = 0
            for c in 0..<reader.chunkCount { sse += combined[c] }
            residuals = Array(combined[reader.chunkCount...])
        }
        return FinalPass(sse: sse, residuals: residuals, sampled: every > 1, touched: touched)
    }
}

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
    func finalPass(solver: AdamSolver, progress: (@Sendable (AdamProgress) -> Void)?, epoch: Int, maxEpochs: Int,
                   started seconds: () -> Double) throws -> FinalPass {
        let n = statistics.n
        let every = max(1, n / 1_000_000)
        var residuals: [Double] = []
        residuals.reserveCapacity(n / every + 1)
        var sse = 0.0, seen = 0, rowsDone = 0, touched = 0.0
        let kinds = reader.columns.map(\.kind)
        var binary = LMMBinaryChunk()
        let chunk = DesignChunk(design: design, capacity: reader.chunkCapacity)
        let views = states.map(\.view)
        let beta = solver.beta
        let passStart = seconds()
        for c in 0..<reader.chunkCount {
            try reader.readChunk(c, into: &binary)
            chunk.load(binary, design: design, kinds: kinds, complete: statistics.completeChunks[c])
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
                sse += r * r
                if seen % every == 0 { residuals.append(r) }
                seen += 1
            }
            blockStart = blockEnd
            }
            rowsDone += binary.rowCount
            if let progress {
                let elapsed = seconds() - passStart
                progress(AdamProgress(phase: .final, epoch: epoch, maxEpochs: maxEpochs, rowsDone: rowsDone,
                                      rowCount: statistics.rowCount, rowsPerSecond: Double(rowsDone) / max(elapsed, 1e-9),
                                      elapsedSeconds: seconds(), objective: nil, change: nil, varcorr: [],
                                      secondsRemaining: nil, epochFinished: false))
            }
        }
        return FinalPass(sse: sse, residuals: residuals, sampled: every > 1, touched: touched)
    }
}

import Foundation

/// `lmm fit … --method adam --residuals`: the fitted values and residuals of a streaming fit,
/// written in one more pass over the file (memory: one chunk, whatever the number of rows).
extension StreamingMixedModel {
    /// Writes ``FittedValues/csv()``'s columns — `row,fitted,fitted_marginal,residual,pearson` —
    /// for every complete row of the file, in file order: the row's number in the data file
    /// (from 1; rows skipped for a missing value keep their numbers, as R's na.omit), `Xβ̂ + Zb̂`,
    /// `Xβ̂`, `y − Xβ̂ − Zb̂` and that over σ̂. β̂ and σ̂ are `result`'s, b̂ the model's levels after
    /// the fit (so `result` must be this model's last fit).
    ///
    /// On several processes (the reader's group) every process calls it (the chunks are read
    /// collectively), and only the one with a `file` (rank 0) computes and writes the rows; its
    /// write error is every process's, after the pass.
    /// - Throws: ``LMMError/input(_:)`` for a chunk that cannot be read; the file's write errors.
    package func writeFittedValues(_ result: FitResult, to file: StreamingOutputFile?) throws {
        try LMMError.wrapping {
            let p = keptFixed.count
            guard result.fixedEffects.count == p else {
                throw LMMError.numerical("internal error: the fit's fixed effects are not the model's")
            }
            let beta = result.fixedEffects, sigma = result.sigma
            let kinds = reader.columns.map(\.kind)
            var binary = LMMBinaryChunk()
            let chunk = DesignChunk(design: design, capacity: reader.rowsPerChunk)
            let views = states.map(\.view)
            // A write error stops the writing, not the reading: the other processes read on.
            var writeError: (any Error)?
            do { try file?.write("row,fitted,fitted_marginal,residual,pearson\n") } catch { writeError = error }
            var text = ""
            for c in 0..<reader.chunkCount {
                try reader.readChunk(c, into: &binary)
                guard let file, writeError == nil else { continue }
                chunk.load(binary, design: design, kinds: kinds, complete: statistics.completeChunks[c])
                let sourceRows = chunk.sourceRows
                text.removeAll(keepingCapacity: true)
                for i in 0..<chunk.rowCount {
                    let marginal = chunk.marginalFit(row: i, beta: beta)
                    let fitted = chunk.conditionalFit(row: i, marginal: marginal, views: views)
                    let residual = chunk.y[i] - fitted
                    let row = chunk.firstRow + (sourceRows.map { Int($0[i]) } ?? i) + 1
                    text += "\(row),\(fitted),\(marginal),\(residual),\(residual / sigma)\n"
                }
                do { try file.write(text) } catch { writeError = error }
            }
            try reader.group.agreeing { if let writeError { throw writeError } }
        }
    }
}

import ArgumentParser
import Foundation
import MixedModels

extension PreconditionerKind: ExpressibleByArgument {}

extension FitCommand {
    /// `--method iterative`: the matrix-free fit (conjugate gradients, stochastic traces).
    func fitIterative(_ model: IterativeMixedModel, dataName: String) throws {
        var options = IterativeOptions()
        options.criterion = ml ? .ml : .reml
        options.probes = probes ?? 32
        options.seed = seed
        if let tolerance { options.tolerance = tolerance }
        options.maxIterations = maxIterations
        options.preconditioner = preconditioner
        if Processes.isReporting {
            options.progress = { progress in
                let components = progress.varcorr.map { entry in
                    "\(entry.grp)\(entry.var1.map { " " + $0 } ?? "")\(entry.var2.map { "," + $0 } ?? "") \(String(format: "%.6g", entry.vcov))"
                }.joined(separator: "; ")
                FileHandle.standardError.write(Data(String(format: "lmm: iterative %d (%@): CG iterations %d + %d, change %.2e, %.2f s; %@\n",
                    progress.iteration, progress.step, progress.solverIterations[0], progress.solverIterations[1],
                    progress.change, progress.seconds, components).utf8))
            }
        }
        let result = try model.fit(options)
        PhaseLog.mark("fit")
        // With lmm-mpi every rank computed the same fit; rank 0 reports it and writes the outputs.
        guard Processes.isReporting else { return }
        try deliver(result, dataName: dataName)
    }

    /// `--method iterative` on the ranks of an MPI job: each rank reads the chunks it owns
    /// (c mod K = rank) and keeps only their rows; the products and sums over rows are
    /// combined by collectives (see ``IterativeMixedModel/init(formula:share:group:)``).
    func fitIterativeDistributed(_ formula: Formula, _ reader: LMMBinaryReader) throws {
        let group = reader.group
        guard reader.chunkCount >= group.size else {
            throw InputError("the file has \(reader.chunkCount) chunk\(reader.chunkCount == 1 ? "" : "s") for \(group.size) ranks: "
                             + "every rank needs one (convert it again with a smaller --rows-per-chunk)", file: reader.path)
        }
        let share = try reader.readShare()
        PhaseLog.mark("read this rank's chunks")
        let model = try IterativeMixedModel(formula: formula, share: share, group: group)
        if !quiet {
            FileHandle.standardError.write(Data("lmm-mpi: rank \(group.rank) of \(group.size) holds \(model.rowsHeld) of \(model.observationCount) rows (chunks \(share.chunks.map { String($0 + 1) }.joined(separator: ", ")) of \(reader.chunkCount))\n".utf8))
        }
        try fitIterative(model, dataName: share.table.source)
    }
}

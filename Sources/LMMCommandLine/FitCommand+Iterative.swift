import ArgumentParser
import Foundation
import MixedModels

extension PreconditionerKind: ExpressibleByArgument {}

extension FitCommand {
    /// `--method iterative`: the matrix-free fit (conjugate gradients, stochastic traces).
    func fitIterative(_ formula: Formula, _ table: DataTable) throws {
        let model = try IterativeMixedModel(formula: formula, data: table)
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
        try deliver(result, dataName: table.source)
    }
}

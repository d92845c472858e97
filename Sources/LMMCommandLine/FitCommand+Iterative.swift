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
        let reporter = FitProgressReporter(quiet: quiet, criterion: options.criterion)
        options.progress = { reporter.report($0.fitStep) }
        let result = try model.fit(options)
        reporter.finish()
        PhaseLog.mark("fit")
        var extra: [(text: String, path: String)] = []
        if let save {
            let saved = try SavedModel(iterative: model, result: result, data: table, dataPath: data)
            extra.append((try saved.json.serialized(), save))
        }
        if let residuals { extra.append((try FittedValues(iterative: model, result: result).csv(), residuals)) }
        try deliver(result, dataName: table.source, also: extra)
    }
}

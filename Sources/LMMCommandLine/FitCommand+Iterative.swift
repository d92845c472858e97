import ArgumentParser
import Foundation
import MixedModels

extension PreconditionerKind: ExpressibleByArgument {}

extension FitCommand {
    /// The matrix-free model of the data `read` returns, and the data itself when `--save` or
    /// `--residuals` needs it (with the model frame's rows). Otherwise neither the data nor the
    /// frame's rows outlive this call: the fit needs only the operator's sorted copy of the rows.
    func iterativeModel(_ formula: Formula, _ read: () throws -> DataTable) throws -> (IterativeMixedModel, DataTable?, String) {
        var table: DataTable? = try read()
        PhaseLog.mark("read data")
        let source = table!.source
        let keep = save != nil || residuals != nil
        let data = table!
        if !keep { table = nil }    // the model's initializer then holds the only copy, and frees it
        let model = try IterativeMixedModel(formula: formula, data: consume data, keepingRows: keep)
        return (model, table, source)
    }

    /// `--method iterative`: the matrix-free fit (conjugate gradients, stochastic traces).
    /// - Parameter table: the whole data (one process), for `--save` and `--residuals`; nil
    ///   without them, and for a rank of an MPI job, which holds only its share of the rows.
    func fitIterative(_ model: IterativeMixedModel, table: DataTable?, dataName: String) throws {
        var options = IterativeOptions()
        options.criterion = ml ? .ml : .reml
        options.probes = probes ?? 32
        options.seed = seed
        if let tolerance { options.tolerance = tolerance }
        options.maxIterations = maxIterations
        options.preconditioner = preconditioner
        // With lmm-mpi every rank computes the same fit; rank 0 reports it and writes the outputs.
        let reporter = FitProgressReporter(quiet: quiet || !Processes.isReporting, criterion: options.criterion)
        options.progress = { reporter.report($0.fitStep) }
        let result = try model.fit(options)
        reporter.finish()
        PhaseLog.mark("fit")
        guard Processes.isReporting else { return }
        var extra: [(text: String, path: String)] = []
        if let table {
            if let save {
                let saved = try SavedModel(iterative: model, result: result, data: table, dataPath: data)
                extra.append((try saved.json.serialized(), save))
            }
            if let residuals { extra.append((try FittedValues(iterative: model, result: result).csv(), residuals)) }
        }
        try deliver(result, dataName: dataName, also: extra)
    }

    /// `--method iterative` on the ranks of an MPI job: each rank reads the chunks it owns
    /// (c mod K = rank; from a shard set, its shard's part of every chunk) and keeps only their rows; the products and sums over rows are
    /// combined by collectives (see ``IterativeMixedModel/init(formula:share:group:)``).
    func fitIterativeDistributed(_ formula: Formula, _ reader: LMMBinaryReader) throws {
        let group = reader.group
        guard save == nil && residuals == nil else {
            throw ValidationError("--save and --residuals need the whole data in one process: not available on more than one rank")
        }
        guard reader.shardCount > 1 || reader.chunkCount >= group.size else {
            throw InputError("the file has \(reader.chunkCount) chunk\(reader.chunkCount == 1 ? "" : "s") for \(group.size) ranks: "
                             + "every rank needs one (convert it again with a smaller --rows-per-chunk)", file: reader.path)
        }
        let share = try reader.readShare()
        PhaseLog.mark("read this rank's chunks")
        let model = try IterativeMixedModel(formula: formula, share: share, group: group)
        if !quiet {
            FileHandle.standardError.write(Data("lmm-mpi: rank \(group.rank) of \(group.size) holds \(model.rowsHeld) of \(model.observationCount) rows (\(share.held))\n".utf8))
        }
        try fitIterative(model, table: nil, dataName: share.table.source)
    }
}

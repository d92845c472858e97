import ArgumentParser
import Foundation
import MixedModels

/// `lmm fit … --method adam`: the streaming fitter, from an `.lmmbin` file or a CSV file
/// (converted to a temporary `.lmmbin` first, streaming: the conversion's memory grows with the
/// number of levels, not of rows; its disk space with the rows).
extension FitCommand {
    func validateAdam() throws {
        guard method == .adam else {
            let given = [("--learning-rate", learningRate != nil), ("--batch-size", batchSize != nil),
                         ("--epochs", epochs != nil), ("--penalties", penalties != nil)].filter(\.1).map(\.0)
            if let first = given.first { throw ValidationError("\(first) applies to --method adam only") }
            return
        }
        if let learningRate, !(learningRate > 0 && learningRate < 2) {
            throw ValidationError("--learning-rate must be between 0 and 2 (a fraction of a Newton step)")
        }
        if let batchSize, batchSize < 1 { throw ValidationError("--batch-size must be at least 1") }
        if let epochs, epochs < 1 { throw ValidationError("--epochs must be at least 1") }
        if variances != nil && (start != nil || penalties != nil) {
            throw ValidationError("--variances fixes the penalties; --start and --penalties apply when adam learns them")
        }
        if fullCovariance || traces != .exact { throw ValidationError("--full-covariance and --traces apply to the MacKay methods") }
    }

    func fitAdam(_ formula: Formula) throws {
        PhaseLog.mark("start")
        let reporter = AdamProgressReporter()
        let (path, temporary) = try streamablePath(for: formula, reporter: reporter)
        defer {
            if let temporary {
                unlink(temporary)
                SignalCleanup.unregister(temporary)
            }
        }
        // Every rank opens the file (its shard) and the variance files; if any cannot, all stop
        // here (the reader agrees on its own failures, collectively).
        let group = Processes.group
        let reader = try LMMBinaryReader.openForStreaming(path: path, group: group)
        let (given, startValues) = try group.agreeing {
            (try variances.map { try VarianceComponents.load(path: $0) },
             try start.map { try VarianceComponents.load(path: $0) })
        }
        let model = try StreamingMixedModel(formula: formula, reader: reader) { rows in
            if Processes.isReporting { reporter.statistics(rows: rows, of: reader.rowCount) }
        }
        PhaseLog.mark("statistics pass")
        var options = AdamOptions()
        if let given {
            options.penalties = .given(given)
        } else {
            options.penalties = .learned(penalties ?? .evidence)
            options.start = startValues
        }
        if let learningRate { options.learningRate = learningRate }
        options.batchSize = batchSize
        if let epochs { options.maxEpochs = epochs }
        if let tolerance { options.tolerance = tolerance }
        options.seed = seed
        options.criterion = ml ? .ml : .reml
        if Processes.isReporting { options.progress = { reporter.report($0) } }
        let result = try model.fit(adam: options)
        reporter.finish()
        PhaseLog.mark("fit")
        if group.size > 1 && !quiet {
            // What this rank read from disk and received from the others (chunks' bytes), so far.
            FileHandle.standardError.write(Data("lmm-mpi: rank \(group.rank) of \(group.size) read \(reader.rowsReadFromDisk) rows from disk and received \(reader.chunkBytesReceived) bytes of chunks from other ranks\n".utf8))
        }
        // The residuals: one more pass over the file (collective: every rank reads, rank 0
        // writes), streamed to a temporary file that deliver() moves into place with the other
        // outputs (or removes).
        var streamed: [StreamingOutputFile] = []
        if let residuals {
            let file = try group.agreeing { Processes.isReporting ? try StreamingOutputFile(path: residuals) : nil }
            do {
                try model.writeFittedValues(result, to: file)
            } catch {
                file?.discard()
                throw error
            }
            if let file { streamed.append(file) }
            PhaseLog.mark("residuals pass")
        }
        // The other ranks computed the same fit; rank 0 reports it and writes the outputs.
        guard Processes.isReporting else { return }

        var extra: [(text: String, path: String)] = []
        if let save {
            let saved = try SavedModel(streaming: model, options: options, result: result, dataPath: data)
            extra.append((try saved.json.serialized(), save))
        }
        let dataName = LMMBinaryFormat.isBinaryFile(path: data) ? model.source : URL(fileURLWithPath: data).lastPathComponent
        try deliver(result, dataName: dataName, also: extra, streamed: streamed)
    }

    /// The `.lmmbin` file to stream: `data` itself, or a temporary conversion of the CSV file's
    /// columns that the formula uses (grouping columns as factors).
    private func streamablePath(for formula: Formula, reporter: AdamProgressReporter) throws -> (String, String?) {
        if LMMBinaryFormat.isBinaryFile(path: data) { return (data, nil) }
        let header = try CSVReader.readHeader(path: data)
        let available = Set(header)
        for (name, span) in formula.columnReferences where !available.contains(name) {
            throw FormulaError("unknown column '\(name)'; available columns: \(header.joined(separator: ", "))",
                               formula: formula.text, span: span)
        }
        let temporary = FileManager.default.temporaryDirectory
            .appendingPathComponent("lmm-adam-\(getpid())-\(UUID().uuidString).lmmbin").path
        SignalCleanup.register(temporary)
        reporter.note("converting \(URL(fileURLWithPath: data).lastPathComponent) to a temporary .lmmbin file")
        do {
            // A plain response column must hold numbers: the conversion says where it does not.
            let response: Set<String> = formula.expressions[formula.response] == nil ? [formula.response] : []
            let summary = try CSVConversion.convert(csv: data, to: temporary, select: formula.columnsUsed,
                                                    categorical: formula.factorColumns, numeric: response)
            if summary.rowCount == 0 {
                throw InputError("no data rows: the file has a header only (expected rows of values below it)",
                                 file: URL(fileURLWithPath: data).lastPathComponent)
            }
        } catch {
            unlink(temporary)
            SignalCleanup.unregister(temporary)
            throw error
        }
        PhaseLog.mark("convert CSV")
        return (temporary, temporary)
    }
}

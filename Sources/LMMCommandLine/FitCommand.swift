import ArgumentParser
import Foundation
import MixedModels

/// `lmm fit DATA.csv --formula F [...]`.
struct FitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fit",
        abstract: "Fit a linear mixed model and print lme4's summary.",
        discussion: """
        Examples:
          lmm fit sleepstudy.csv --formula 'Reaction ~ 1 + Days + (1 + Days | Subject)'
          lmm fit sleepstudy.csv --formula 'Reaction ~ Days + (Days | Subject)' --ml --json fit.json
          lmm fit sleepstudy.csv --formula 'Reaction ~ Days + (Days | Subject)' --variances fit.json --ranef blups.csv
        """
    )

    @Argument(help: "CSV file with a header row, or an .lmmbin file (lmm convert).")
    var data: String

    // Unconditional: the next argument is the formula even when it starts with '-'.
    @Option(name: .shortAndLong, parsing: .unconditional, help: "Model formula in lme4 syntax, e.g. 'y ~ 1 + x + (1 + x | g)'.")
    var formula: String

    @Option(help: ArgumentHelp("Fix the variance components: a JSON file with a 'varcorr' list (lme4's key names; any fit's --json output).", valueName: "V.json"))
    var variances: String?

    @Option(help: ArgumentHelp("Prior weights (lmer's weights=): the residual variance of row i is σ²/w_i. Exact method only; weights must be positive, rows with a missing weight are dropped.", valueName: "COL"))
    var weights: String?

    @Option(help: ArgumentHelp("A column added to the linear predictor with coefficient 1, as offset(COL) in the formula.", valueName: "COL"))
    var offset: String?

    @Option(help: "Coding of unordered factors, as R's options(contrasts=): treatment (default), sum or helmert.")
    var contrasts: ContrastCoding = .treatment

    @Flag(help: "Maximum likelihood instead of REML.")
    var ml = false

    @Option(help: "exact (REML/ML by the sparse Cholesky, default), mackay-quick, mackay (evidence), em, adam (streaming minibatch Adam), or iterative (matrix-free: conjugate gradients and stochastic traces).")
    var method: FitMethod = .exact

    @Flag(help: "mackay-quick: update the full covariance of each term instead of its diagonal.")
    var fullCovariance = false

    @Option(help: ArgumentHelp("Starting variance components for the MacKay forms (same format as --variances).", valueName: "V.json"))
    var start: String?

    @Option(help: "mackay-quick: stop when no variance component changes by more than this (relative; default 1e-10); em and mackay stop when the REML/ML optimum is certified (Newton decrement), checked once a step changes them by less than this (or 1e-6). Adam: when an epoch changes no estimate by more than this (default 1e-6). Iterative: when a Newton step changes no variance component by more than this (default 1e-6).")
    var tolerance: Double?

    @Option(help: "MacKay forms and iterative: the most iterations.")
    var maxIterations: Int = 2_000

    @Option(help: "MacKay evidence and EM forms: posterior covariances 'exact' (selected inverse) or 'stochastic' (Hutchinson).")
    var traces: TraceChoice = .exact

    @Option(help: "Rademacher probes: per iteration for stochastic traces (default 100); for --method iterative, fixed for the fit (default 32).")
    var probes: Int?

    @Option(help: "--method iterative: the preconditioner of conjugate gradients, block-jacobi (default) or gauss-seidel.")
    var preconditioner: PreconditionerKind = .blockJacobi

    @Option(help: "Seed of the stochastic traces and of iterative's probes, and of adam's chunk order.")
    var seed: UInt64 = 1

    @Option(help: ArgumentHelp("Write the fit as JSON (the reference JSON key names).", valueName: "OUT.json"))
    var json: String?

    @Option(help: ArgumentHelp("Write the random effects and conditional SDs as CSV.", valueName: "OUT.csv"))
    var ranef: String?

    @Option(help: ArgumentHelp("Write diagnostic plots (SVG) into this directory: caterpillar and QQ plots of the conditional modes, residuals vs fitted, QQ plot of the residuals.", valueName: "DIR"))
    var plot: String?

    @Option(help: ArgumentHelp("Save the fitted model for lmm predict and lmm plot (versioned JSON, see README); with --method adam or iterative the file lists what is approximate and has no covariance for conditional intervals.", valueName: "MODEL.lmm"))
    var save: String?

    @Option(help: ArgumentHelp("Write row, fitted (conditional), fitted (marginal), residual and Pearson residual as CSV (--method adam: one more pass over the file).", valueName: "OUT.csv"))
    var residuals: String?

    @Flag(name: .shortAndLong, help: "Do not print the summary.")
    var quiet = false

    // Streaming Adam (FitCommand+Adam.swift).
    @Option(help: "Adam: step size relative to a per-level Newton step (default 1).")
    var learningRate: Double?

    @Option(help: "Adam: rows per minibatch (default 65536, at most a chunk of the file).")
    var batchSize: Int?

    @Option(help: "Adam: the most epochs (default 200).")
    var epochs: Int?

    @Option(help: "Adam without --variances: the MacKay form that learns the penalties, evidence (default) or quick.")
    var penalties: MacKayForm?

    enum TraceChoice: String, ExpressibleByArgument, CaseIterable {
        case exact
        case stochastic
    }

    /// The model settings beyond the formula.
    var modelOptions: ModelOptions {
        ModelOptions(weights: weights, offset: offset, contrasts: contrasts)
    }

    func validate() throws {
        if weights != nil && method != .exact {
            throw ValidationError("--weights applies to --method exact only")
        }
        if method == .adam && (offset != nil || contrasts != .treatment) {
            throw ValidationError("--offset and --contrasts apply to the in-memory methods (exact, mackay-quick, mackay, em), not to --method adam")
        }
        if fullCovariance && method != .mackay(.quick) {
            throw ValidationError("--full-covariance applies to --method mackay-quick only")
        }
        if start != nil && method.mackayForm == nil && method != .adam {
            throw ValidationError("--start applies to the MacKay forms (mackay-quick, mackay, em) and adam")
        }
        try validateAdam()
        if variances != nil && method != .exact && method != .adam {
            throw ValidationError("--variances fixes the variance components; it cannot be combined with --method \(method.name)")
        }
        if let tolerance, tolerance <= 0 || !tolerance.isFinite { throw ValidationError("--tolerance must be positive") }
        if maxIterations < 1 { throw ValidationError("--max-iterations must be at least 1") }
        if let probes, probes < 2 { throw ValidationError("--probes must be at least 2") }
        if plot != nil && method == .adam {
            throw ValidationError("--plot needs an in-memory fit (not --method adam); save the model with --save and draw the conditional modes with lmm plot MODEL")
        }
        if method == .iterative && (weights != nil || offset != nil || contrasts != .treatment || plot != nil || variances != nil) {
            throw ValidationError("--weights, --offset, --contrasts, --variances and --plot are not available with --method iterative (--plot: save the model with --save and use lmm plot MODEL DATA)")
        }
    }

    func run() throws {
        try reportingErrors(fit)
    }

    private func fit() throws {
        PhaseLog.mark("start")
        try checkOutputPaths()
        let parsed = try Formula.parse(formula)
        if Processes.group.size > 1 {
            guard (method == .adam && LMMBinaryFormat.isBinaryFile(path: data)) || (method == .iterative && LMMBinaryFormat.isBinaryFile(path: data)) else {
                throw ValidationError("on more than one rank, lmm-mpi fits --method adam or iterative from an .lmmbin file "
                                      + "(convert a CSV file first with lmm convert)")
            }
        }
        if method == .adam { return try fitAdam(parsed) }
        if method == .iterative && LMMBinaryFormat.isBinaryFile(path: data) {
            // Every rank opens the file (if any cannot, all stop); the chunks are read collectively.
            let group = Processes.group
            let reader = try LMMBinaryReader(path: data, group: group)
            guard group.size > 1 else {
                let (model, table, source) = try iterativeModel(parsed) { try reader.readAll() }
                return try fitIterative(model, table: table, dataName: source)
            }
            return try fitIterativeDistributed(parsed, reader)
        }
        // An .lmmbin file (recognised by its magic number, whatever its name) is read whole for
        // the in-memory methods, as a CSV file would be.
        let read = { () throws -> DataTable in
            LMMBinaryFormat.isBinaryFile(path: data)
                ? try LMMBinaryReader(path: data).readAll()
                : try CSVReader.read(path: data, for: parsed, options: modelOptions)
        }
        if method == .iterative {
            let (model, table, source) = try iterativeModel(parsed, read)
            return try fitIterative(model, table: table, dataName: source)
        }
        let table = try read()
        PhaseLog.mark("read data")
        // The model (and its factorization: 400 MB of dense Schur complement for 10,000 items)
        // goes before the outputs are written, which hold the fit's text in memory.
        let (result, extra) = try fitAndExtras(parsed, table: table)
        try deliver(result, dataName: table.source, also: extra)
    }

    /// The fit of the exact engine and the outputs that need the model (--save, --residuals, --plot).
    private func fitAndExtras(_ parsed: Formula, table: DataTable) throws
        -> (FitResult, [(text: String, path: String)]) {
        let model = try LinearMixedModel(formula: parsed, data: table, options: modelOptions)
        let criterion: Criterion = ml ? .ml : .reml
        let result: FitResult
        if let variances {
            result = try model.fit(given: try VarianceComponents.load(path: variances), criterion: criterion)
        } else if let form = method.mackayForm {
            var options = MacKayOptions(form: form)
            options.fullCovariance = fullCovariance
            options.start = try start.map { try VarianceComponents.load(path: $0) }
            options.tolerance = tolerance ?? 1e-10
            options.maxIterations = maxIterations
            options.criterion = criterion
            if traces == .stochastic { options.traces = .stochastic(probes: probes ?? 100, seed: seed) }
            options.progress = { progress in
                let components = progress.varcorr.map { entry in
                    "\(entry.grp)\(entry.var1.map { " " + $0 } ?? "")\(entry.var2.map { "," + $0 } ?? "") \(String(format: "%.6g", entry.vcov))"
                }.joined(separator: "; ")
                FileHandle.standardError.write(Data(String(format: "lmm: %@ iteration %d: %@ %.6f; %@\n",
                    form.rawValue, progress.iteration, criterion == .reml ? "REML criterion" : "deviance",
                    progress.objective, components).utf8))
            }
            result = try model.fit(mackay: options)
        } else {
            let reporter = FitProgressReporter(quiet: quiet, criterion: criterion)
            var options = OptimizerOptions()
            options.progress = { reporter.report($0) }
            result = try model.fit(criterion: criterion, options: options)
            reporter.finish()
        }
        PhaseLog.mark("fit")
        var extra: [(text: String, path: String)] = []
        if let save {
            let saved = try SavedModel(model: model, result: result, data: table, dataPath: data, options: modelOptions)
            extra.append((try saved.json.serialized(), save))
        }
        if let residuals { extra.append((try FittedValues(model: model, result: result).csv(), residuals)) }
        // The same files as lmm plot MODEL DATA draws from the saved model.
        if let plot { extra += try PlotDirectory.files(model.diagnosticPlots(result), in: plot, option: "--plot") }
        return (result, extra)
    }

    /// No output may overwrite an input or another output (same device and inode, any name).
    func checkOutputPaths() throws {
        let inputs = [(data, "the data file"), (variances, "--variances"), (start, "--start")]
            .compactMap { path, role in path.map { (path: $0, role: role) } }
        let outputs = [(json, "--json"), (ranef, "--ranef"), (save, "--save"), (residuals, "--residuals")]
            .compactMap { path, role in path.map { (path: $0, role: role) } }
        try OutputFiles.checkDistinct(inputs: inputs, outputs: outputs)
    }

    /// Writes the JSON and ranef files and `extra` (all or none), then moves the `streamed`
    /// files, already written, into place; prints the summary; without the summary (`--quiet`)
    /// its messages go to standard error.
    func deliver(_ result: FitResult, dataName: String, also extra: [(text: String, path: String)] = [],
                 streamed: [StreamingOutputFile] = []) throws {
        var outputs = OutputFiles()
        do {
            if let json {
                let document = result.json
                PhaseLog.mark("JSON document")
                let text = try document.serialized()
                PhaseLog.mark("JSON text")
                try outputs.stage(text, at: json)
                PhaseLog.mark("JSON file")
            }
            if let ranef { try outputs.stage(try result.ranefCSV(), at: ranef) }
            for file in extra { try outputs.stage(file.text, at: file.path) }
            try outputs.commit()
        } catch {
            outputs.discard()
            for file in streamed { file.discard() }
            throw error
        }
        for (index, file) in streamed.enumerated() {
            do {
                try file.commit()
            } catch {
                for later in streamed[(index + 1)...] { later.discard() }
                throw error
            }
        }
        PhaseLog.mark("write outputs")
        if !quiet { print(result.summary(dataName: dataName), terminator: "") }
        if quiet {
            for message in result.messages { FileHandle.standardError.write(Data("lmm: \(message)\n".utf8)) }
        }
    }
}

extension ContrastCoding: ExpressibleByArgument {}

import ArgumentParser
import Foundation
import MixedModels

/// `lmm-bench scaling --out DIR`: the scaling suite. For each shape and size of the grid it
/// generates data with datagen (known truth), fits it with every method of `lmm fit` and, when
/// Rscript with lme4 is installed, with lme4 — each as a separate process, timed with its peak
/// memory — and writes `results.csv`, `results.md` and `scaling.svg` into `--out`.
struct ScalingCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scaling",
        abstract: "Scaling benchmark: methods × data sizes, side by side with lme4.",
        discussion: """
        --quick runs the 10k and 100k rows cells only (under two minutes); --rows replaces the grid's sizes (a tiny
        --rows 2000 checks the wiring); --ml32m adds datagen's ml-32m shape (32M rows, 200k users × 84k items: the
        matrix-free and Adam methods only, long); --shape keeps only the shapes named (--shape ml-32m: that shape alone,
        at 32M rows).
        """
    )

    @Option(help: "Directory for the data, results.csv, results.md and scaling.svg.")
    var out: String

    @Flag(help: "Small grid (10k and 100k rows).")
    var quick = false

    @Option(help: "Seconds after which a run (ours or lme4's) is stopped and shown as \"> cap\".")
    var cap: Double = 600

    @Option(help: "Methods of lmm fit to run (exact, mackay, em, adam, iterative).")
    var method: [String] = ["exact", "mackay", "em", "adam", "iterative"]

    @Option(help: "Sizes of the grid in rows (default 10k, 100k, 1M, 10M; --quick 10k, 100k).")
    var rows: [Int] = []

    @Flag(help: "Add the ml-32m shape (datagen --preset ml-32m, 32M rows; with --rows, at those sizes).")
    var ml32m = false

    @Option(help: "Run only these shapes of the grid (crossed, crossed-intercepts, nested, single, ml-32m); default all.")
    var shape: [String] = []

    @Flag(help: "Do not run lme4 even when Rscript is installed.")
    var noLme4 = false

    @Option(help: "The R script that fits with lme4.")
    var rScript = "Benchmarks/lme4/lme4_reference.R"

    @Option(help: "Keep generated data files up to this many rows (larger ones are deleted after use).")
    var keepRows = 1_000_000

    @Option(help: "A results.csv of an earlier run: its cells of the methods and sizes not run now are kept in the outputs (results.md says which run each column comes from).")
    var merge: String?

    func run() throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: out, withIntermediateDirectories: true)
        let (lmm, datagen) = try Harness.siblingTools()
        let haveR = !noLme4 && Self.rscriptHasLme4() && fm.fileExists(atPath: rScript)
        let earlier = try merge.map { try ScalingResult.load(csv: $0) } ?? []
        var results: [ScalingResult] = []
        let started = Harness.now()
        let grid = ScalingCase.grid(quick: quick, rows: rows.isEmpty ? nil : rows, movieLens: ml32m || shape.contains("ml-32m"))
        let known = Set(ScalingCase.grid(quick: quick, rows: [1_000], movieLens: true).map(\.shape))
        if let unknown = shape.first(where: { !known.contains($0) }) {
            throw ValidationErrorText("--shape \(unknown): the grid's shapes are \(known.sorted().joined(separator: ", "))")
        }
        for item in grid where shape.isEmpty || shape.contains(item.shape) {
            let stem = "\(item.shape)-\(item.rows)"
            let data = "\(out)/\(stem).csv", truthPath = "\(out)/\(stem).truth.json"
            var arguments = item.datagenArguments
            if item.shape == "single" {
                let spec = "\(out)/single-\(item.rows).json"
                try ScalingCase.singleSpec(rows: item.rows).write(toFile: spec, atomically: true, encoding: .utf8)
                arguments = ["--spec", spec]
            }
            if !fm.fileExists(atPath: data) {
                let made = try Subprocess.run(datagen, arguments + ["--rows", "\(item.rows)", "--seed", "1", "--out", data,
                                                                    "--truth", truthPath, "--no-ranef", "--quiet"], cap: 3600)
                guard made.status == 0 else { throw ValidationErrorText("datagen failed for \(stem): \(made.stderr)") }
            }
            let truth = try Truth(path: truthPath)
            for name in method {
                results.append(try measure(lmm: lmm, method: name, item: item, data: data, truth: truth))
                report(results.last!)
            }
            if haveR {
                results.append(try measureLme4(item: item, data: data, truth: truth))
                report(results.last!)
            }
            if item.rows > keepRows { try? fm.removeItem(atPath: data) }
        }
        var environment = "\(ProcessInfo.processInfo.activeProcessorCount) cores, \(Self.cpuName()), \(Self.date())"
        if let merge {
            // The earlier run's cells that this one did not measure, in its order, this run's after.
            let measured = Set(results.map { "\($0.shape)/\($0.rows)/\($0.method)" })
            let kept = earlier.filter { !measured.contains("\($0.shape)/\($0.rows)/\($0.method)") }
            let methodsNow = ScalingReport.unique(results.map(\.method)).joined(separator: ", ")
            environment = "Columns \(methodsNow): \(environment); the other columns from \(merge)"
                + (Self.environment(ofResultsBeside: merge).map { " (\($0))" } ?? "")
            results = kept + results
        }
        try ScalingReport(results: results, environment: environment, command: CommandLine.arguments.joined(separator: " "),
                          lme4: haveR || results.contains { $0.method == "lme4" }).write(to: out)
        print(String(format: "wrote %@/results.csv, results.md, scaling.svg (%.0f s)", out, Harness.now() - started))
    }

    private func report(_ r: ScalingResult) {
        let time = r.status == "ok" ? Harness.format(seconds: r.seconds) : r.status
        print("\(r.shape) \(r.rows) rows, \(r.method): \(time), \(Int(r.peakMegabytes)) MB\(r.note.isEmpty ? "" : " (\(r.note))")")
    }

    private func measure(lmm: String, method name: String, item: ScalingCase, data: String, truth: Truth) throws -> ScalingResult {
        var result = ScalingResult(shape: item.shape, rows: item.rows, levels: item.levels, method: name, status: "ok",
                                   seconds: 0, peakMegabytes: 0, note: "")
        if name == "exact" || name == "mackay" || name == "em", item.denseBlock > 24_000 {
            result.status = "skipped"
            result.note = "dense block of \(item.denseBlock) levels: use adam"
            return result
        }
        let json = "\(out)/.fit-\(getpid()).json"
        defer { unlink(json) }
        var arguments = ["fit", data, "--formula", item.formula, "--json", json, "--quiet"]
        switch name {
        case "exact": break
        case "mackay", "em": arguments += ["--method", name, "--tolerance", "1e-6", "--max-iterations", "500"]
        default: arguments += ["--method", name]
        }
        let outcome = try Subprocess.run(lmm, arguments, cap: cap)
        result.seconds = outcome.seconds
        result.peakMegabytes = Double(outcome.peakBytes) / 1e6
        if outcome.timedOut { result.status = "timeout"; return result }
        guard outcome.status == 0 else {
            result.status = "failed"
            result.note = outcome.stderr.split(separator: "\n").last.map(String.init) ?? ""
            return result
        }
        let fit = try FitReport.load(path: json)
        result.iterations = fit.iterations
        result.objective = fit.objective
        result.maxRelativeError = truth.maxRelativeError(fit.varcorr)
        return result
    }

    private func measureLme4(item: ScalingCase, data: String, truth: Truth) throws -> ScalingResult {
        var result = ScalingResult(shape: item.shape, rows: item.rows, levels: item.levels, method: "lme4", status: "ok",
                                   seconds: 0, peakMegabytes: 0, note: "")
        let outcome = try Subprocess.run("Rscript", [rScript, data, item.formula, "REML", "--no-ranef"], cap: cap)
        result.seconds = outcome.seconds
        result.peakMegabytes = Double(outcome.peakBytes) / 1e6
        if outcome.timedOut { result.status = "timeout"; return result }
        guard outcome.status == 0, let fit = try? FitReport.decode(Data(outcome.stdout.utf8), source: "lme4 output") else {
            result.status = "failed"
            result.note = outcome.stderr.split(separator: "\n").last.map(String.init) ?? ""
            return result
        }
        result.objective = fit.objective
        result.maxRelativeError = truth.maxRelativeError(fit.varcorr)
        return result
    }

    /// The machine and date line of the results.md beside an earlier results.csv, if any.
    static func environment(ofResultsBeside csv: String) -> String? {
        let markdown = URL(fileURLWithPath: csv).deletingLastPathComponent().appendingPathComponent("results.md").path
        guard let text = try? String(contentsOfFile: markdown, encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.contains(". Produced by") }),
              let end = line.range(of: ". Produced by") else { return nil }
        return String(line[..<end.lowerBound])
    }

    static func rscriptHasLme4() -> Bool {
        guard let outcome = try? Subprocess.run("Rscript", ["-e", "suppressMessages(library(lme4)); library(jsonlite)"], cap: 60) else { return false }
        return outcome.status == 0
    }

    static func cpuName() -> String {
        let text = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").first { $0.hasPrefix("model name") }?
            .split(separator: ":").last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "unknown CPU"
    }

    static func date() -> String {
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyy-MM-dd"
        return formatter.string(from: Date())
    }
}

/// datagen's truth: variance components by group and names.
struct Truth {
    var components: [String: Double] = [:]

    init(path: String) throws {
        for entry in try VarianceComponents.load(path: path).entries where entry.var2 == nil {
            components[Self.key(entry)] = entry.vcov
        }
    }

    static func key(_ entry: VarCorrEntry) -> String {
        // lme4 names a second term of one factor `g.1`; compare by the factor's own name.
        let group = entry.grp.replacingOccurrences(of: #"\.[0-9]+$"#, with: "", options: .regularExpression)
        return group + "/" + (entry.var1 ?? "")
    }

    /// The largest relative error of a variance (σ² included) in `fitted`.
    func maxRelativeError(_ fitted: [VarCorrEntry]) -> Double? {
        var worst: Double?
        for entry in fitted where entry.var2 == nil {
            guard let true_ = components[Self.key(entry)], true_ > 0 else { continue }
            let value = entry.vcov
            let error = abs(value - true_) / true_
            worst = max(worst ?? 0, error)
        }
        return worst
    }
}

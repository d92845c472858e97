import ArgumentParser
import Foundation
import MixedModels

/// `lmm-bench truth`: how close each method's variance components come to datagen's truth,
/// over seeds and sizes. A fit at 10M rows cannot be checked against the exact engine (its
/// dense block would not fit), so it is judged against the truth instead, next to the exact
/// engine's errors at a size it can fit, scaled: sampling errors shrink as 1/√(size) when rows
/// and levels grow together (datagen's presets keep rows per level fixed), so the exact
/// engine's root-mean-square error over several seeds at `n₀` rows, times √(n₀/n), is the
/// error to expect of an exact fit at n rows.
struct TruthCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "truth",
        abstract: "Variance components against datagen's truth: methods × sizes × seeds.",
        discussion: """
        Each --run METHOD:ROWS:SEEDS (seeds as 1-5 or 1,2,7) generates `datagen --preset P --rows ROWS --seed S`
        (.lmmbin) and fits it with `lmm fit --method METHOD` (exact: the default method). Printed (and written to
        OUT/truth.md): per fit the time, peak memory and the error of every component — relative for variances,
        absolute on the correlation scale for covariances; then per run the root mean square over its seeds, and
        that error scaled to the largest size, RMS·√(rows/largest). The first --run is the reference: every other
        fit's errors at the largest size are given as multiples of the reference's scaled RMS.
        Example (issue 16): --preset users-items-intercepts --formula 'y ~ 1 + x1 + x2 + (1 | user) + (1 | item)'
        --run exact:1000000:1-5 --run iterative:10000000:1 --run adam:10000000:1
        """
    )

    @Option(help: "datagen preset (users-items, users-items-intercepts, nested, ml-32m, ml-1m, instructors).")
    var preset: String

    @Option(name: [.customShort("f"), .long], help: "The model formula.")
    var formula: String

    @Option(name: .customLong("run"), help: "METHOD:ROWS:SEEDS; repeat. The first is the reference.")
    var runs: [String]

    @Option(help: "Directory for the data files, the fits' JSON and truth.md.")
    var out: String

    @Option(help: "Seconds after which a fit is stopped.")
    var cap: Double = 3600

    @Option(help: "Keep generated data files up to this many rows (larger ones are deleted after use).")
    var keepRows = 1_000_000

    @Flag(help: "Use a fit's JSON already in --out (OUT/PRESET-ROWS-sSEED.METHOD.json) instead of fitting again; its time and memory are not known then.")
    var reuse = false

    struct Run {
        var method: String
        var rows: Int
        var seeds: [Int]
    }

    /// One fit's errors against the truth, by component name.
    struct Measured {
        var run: Int
        var seed: Int
        var seconds: Double
        var peakMegabytes: Double
        var errors: [String: Double]
    }

    func run() throws {
        let plan = try runs.map(Self.parse)
        guard !plan.isEmpty else { throw ValidationError("give at least one --run METHOD:ROWS:SEEDS") }
        let fm = FileManager.default
        try fm.createDirectory(atPath: out, withIntermediateDirectories: true)
        let (lmm, datagen) = try Harness.siblingTools()
        var components: [String] = []
        var measured: [Measured] = []
        for (index, run) in plan.enumerated() {
            for seed in run.seeds {
                let stem = "\(out)/\(preset)-\(run.rows)-s\(seed)"
                let data = stem + ".lmmbin", truthPath = stem + ".truth.json"
                let json = "\(stem).\(run.method).json"
                let reused = reuse && fm.fileExists(atPath: json) && fm.fileExists(atPath: truthPath)
                if !reused && (!fm.fileExists(atPath: data) || !fm.fileExists(atPath: truthPath)) {
                    let made = try Subprocess.run(datagen, ["--preset", preset, "--rows", "\(run.rows)", "--seed", "\(seed)",
                                                            "--out", data, "--truth", truthPath, "--no-ranef", "--quiet"], cap: 3600)
                    guard made.status == 0 else { throw ValidationErrorText("datagen failed: \(made.stderr)") }
                }
                var seconds = Double.nan, peak = Double.nan
                if !reused {
                    var arguments = ["fit", data, "--formula", formula, "--json", json, "--quiet"]
                    if run.method != "exact" { arguments += ["--method", run.method] }
                    let outcome = try Subprocess.run(lmm, arguments, cap: cap)
                    if run.rows > keepRows { try? fm.removeItem(atPath: data) }
                    guard !outcome.timedOut else { throw ValidationErrorText("\(run.method) at \(run.rows) rows passed the cap of \(cap) s") }
                    guard outcome.status == 0 else { throw ValidationErrorText("lmm fit failed: \(outcome.stderr)") }
                    seconds = outcome.seconds
                    peak = Double(outcome.peakBytes) / 1e6
                }
                let truth = try VarianceComponents.load(path: truthPath).entries
                let fitted = try FitReport.load(path: json).varcorr
                let errors = try Self.errors(fitted: fitted, truth: truth)
                for name in errors.keys.sorted() where !components.contains(name) { components.append(name) }
                let m = Measured(run: index, seed: seed, seconds: seconds, peakMegabytes: peak, errors: errors)
                measured.append(m)
                print("\(run.method) \(run.rows) rows seed \(seed): \(Self.time(m)), \(Self.memory(m)); "
                      + components.compactMap { name in errors[name].map { String(format: "%@ %+.2e", name, $0) } }.joined(separator: ", "))
            }
        }
        let text = Self.report(plan: plan, measured: measured, components: components, preset: preset, formula: formula)
        print(text)
        try text.write(toFile: out + "/truth.md", atomically: true, encoding: .utf8)
    }

    static func parse(_ text: String) throws -> Run {
        let parts = text.split(separator: ":").map(String.init)
        guard parts.count == 3, let rows = Int(parts[1]), rows > 0 else {
            throw ValidationError("--run \(text): expected METHOD:ROWS:SEEDS, e.g. exact:1000000:1-5")
        }
        var seeds: [Int] = []
        for piece in parts[2].split(separator: ",") {
            let bounds = piece.split(separator: "-").map { Int($0) }
            if bounds.count == 1, let seed = bounds[0] {
                seeds.append(seed)
            } else if bounds.count == 2, let low = bounds[0], let high = bounds[1], low <= high {
                seeds += Array(low...high)
            } else {
                throw ValidationError("--run \(text): seeds as 1-5 or 1,2,7, not \"\(piece)\"")
            }
        }
        guard !seeds.isEmpty else { throw ValidationError("--run \(text): no seeds") }
        return Run(method: parts[0], rows: rows, seeds: seeds)
    }

    /// Relative errors of the variances, absolute errors of the correlations, by component.
    static func errors(fitted: [VarCorrEntry], truth: [VarCorrEntry]) throws -> [String: Double] {
        func name(_ e: VarCorrEntry) -> String {
            e.grp + (e.var1.map { " " + $0 } ?? "") + (e.var2.map { " × " + $0 } ?? "")
        }
        var errors: [String: Double] = [:]
        for entry in truth {
            guard let estimate = fitted.first(where: { $0.grp == entry.grp && $0.var1 == entry.var1 && $0.var2 == entry.var2 }) else {
                throw ValidationErrorText("the fit has no component \(name(entry))")
            }
            if entry.var2 == nil {
                errors[name(entry)] = (estimate.vcov - entry.vcov) / entry.vcov
            } else {
                guard let r = estimate.sdcor, let r0 = entry.sdcor else { throw ValidationErrorText("no correlation for \(name(entry))") }
                errors[name(entry) + " (corr.)"] = r - r0
            }
        }
        return errors
    }

    static func time(_ m: Measured) -> String { m.seconds.isNaN ? "reused" : Harness.format(seconds: m.seconds) }
    static func memory(_ m: Measured) -> String { m.peakMegabytes.isNaN ? "" : String(format: "%.0f MB", m.peakMegabytes) }

    static func report(plan: [Run], measured: [Measured], components: [String], preset: String, formula: String) -> String {
        let largest = plan.map(\.rows).max() ?? 1
        var lines = ["# Variance components against datagen's truth", "",
                     "`--preset \(preset)`, `\(formula)`, \(ProcessInfo.processInfo.activeProcessorCount) cores, "
                        + "\(ScalingCommand.cpuName()), \(ScalingCommand.date()). Errors: relative for variances, "
                        + "absolute for correlations.", "",
                     "| method | rows | seed | time | peak | " + components.joined(separator: " | ") + " |",
                     "| --- | ---: | ---: | ---: | ---: |" + String(repeating: " ---: |", count: components.count)]
        for m in measured {
            let run = plan[m.run]
            lines.append("| \(run.method) | \(run.rows) | \(m.seed) | \(time(m)) | \(memory(m)) | "
                         + components.map { m.errors[$0].map { String(format: "%+.2e", $0) } ?? "" }.joined(separator: " | ") + " |")
        }
        // RMS per run, and scaled to the largest size.
        func rms(_ run: Int, _ name: String) -> Double? {
            let values = measured.filter { $0.run == run }.compactMap { $0.errors[name] }
            guard !values.isEmpty else { return nil }
            return (values.reduce(0) { $0 + $1 * $1 } / Double(values.count)).squareRoot()
        }
        lines += ["", "Root mean square over the seeds, and scaled to \(largest) rows (× √(rows/\(largest))):", "",
                  "| method | rows | seeds | " + components.map { "\($0) RMS | scaled" }.joined(separator: " | ") + " |",
                  "| --- | ---: | ---: |" + String(repeating: " ---: | ---: |", count: components.count)]
        for (index, run) in plan.enumerated() {
            let scale = (Double(run.rows) / Double(largest)).squareRoot()
            lines.append("| \(run.method) | \(run.rows) | \(run.seeds.count) | " + components.map { name in
                guard let value = rms(index, name) else { return " | " }
                return String(format: "%.2e | %.2e", value, value * scale)
            }.joined(separator: " | ") + " |")
        }
        // Every fit at the largest size against the reference's scaled RMS.
        let reference = plan[0]
        let referenceScale = (Double(reference.rows) / Double(largest)).squareRoot()
        lines += ["", "Fits at \(largest) rows: |error| ÷ the reference's scaled RMS "
                  + "(\(reference.method), \(reference.rows) rows, \(reference.seeds.count) seeds; about 1 is the sampling "
                  + "error an exact fit of that size would make, ≤ 2–3 is within it):", "",
                  "| method | seed | " + components.joined(separator: " | ") + " |",
                  "| --- | ---: |" + String(repeating: " ---: |", count: components.count)]
        for m in measured where plan[m.run].rows == largest && m.run != 0 {
            lines.append("| \(plan[m.run].method) | \(m.seed) | " + components.map { name in
                guard let error = m.errors[name], let r = rms(0, name), r > 0 else { return "" }
                return String(format: "%.2f", abs(error) / (r * referenceScale))
            }.joined(separator: " | ") + " |")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

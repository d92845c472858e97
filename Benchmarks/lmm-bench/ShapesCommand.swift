import ArgumentParser
import Foundation
import MixedModels

/// `lmm-bench shapes --out DIR`: the REML/ML performance targets — whole `lmm fit` processes on
/// datagen's versions of the benchmark shapes, with wall time and peak memory (issue 14's
/// targets):
///
/// - `instructors`: 73,421 rows, crossed factors of 2,972 and 1,128 levels and a 28-level
///   interaction factor (like lme4's InstEval), ML;
/// - `users-items` 200k rows: `(1 + x | user)` of 20k levels + `(1 | item)` of 2k, REML;
/// - `ml-1m`: 1M rows, 6,040 users × 3,706 items, `(1 | user) + (1 | item)`, REML;
/// - `users-items` 1M rows: 100k users + 10k items, REML (skipped with `--skip-large`);
/// - `users-items` 2M rows: 200k users + 20k items, REML (with `--two-million`);
/// - lme4's InstEval itself, REML, when `--insteval` names its CSV export (R:
///   `write.csv(transform(lme4::InstEval, service = as.integer(service) - 1L), "insteval.csv",
///   row.names = FALSE)`).
///
/// The large shapes are fitted from `.lmmbin` files (`lmm convert`), as the README's figures.
struct ShapesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shapes",
        abstract: "Whole-process REML/ML fits of the benchmark shapes (time and peak memory)."
    )

    @Option(help: "Directory for the generated data.")
    var out: String

    @Option(help: "Repetitions of each fit (the best and the median are reported).")
    var repeats = 3

    @Flag(help: "Skip the 1M-row users × items shape.")
    var skipLarge = false

    @Flag(help: "Add the 2M-row shape: 200k users × 20k items (one run: minutes).")
    var twoMillion = false

    @Option(help: ArgumentHelp("lme4's InstEval as CSV (service as 0/1): adds its REML fit.", valueName: "CSV"))
    var insteval: String?

    struct Shape {
        var name: String
        var datagen: [String]
        var formula: String
        var ml: Bool
        var target: String
        var binary = false
        var repeats: Int? = nil
        /// A data file to use as it is (no datagen).
        var path: String? = nil
    }

    func run() throws {
        let bin = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        let lmm = bin.appendingPathComponent("lmm").path, datagen = bin.appendingPathComponent("datagen").path
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        var shapes = [
            Shape(name: "instructors 73,421 rows (s 2,972 × d 1,128 × dept:service 28), ML",
                  datagen: ["--preset", "instructors", "--rows", "73421"],
                  formula: "y ~ 1 + service + (1 | s) + (1 | d) + (1 | dept:service)", ml: true, target: "≤ 0.25 s"),
            Shape(name: "users-items 200k rows (user 20k with slope × item 2k), REML",
                  datagen: ["--preset", "users-items", "--rows", "200000"],
                  formula: "y ~ 1 + x + (1 + x | user) + (1 | item)", ml: false, target: "≤ 1.5 s"),
            Shape(name: "ml-1m 1M rows (user 6,040 × item 3,706), REML",
                  datagen: ["--preset", "ml-1m"],
                  formula: "y ~ 1 + (1 | user) + (1 | item)", ml: false, target: "≤ 3 s"),
        ]
        if let insteval {
            shapes.append(Shape(name: "lme4's InstEval, REML", datagen: [],
                                formula: "y ~ 1 + service + (1 | s) + (1 | d) + (1 | dept:service)", ml: false,
                                target: "≤ 0.25 s", path: insteval))
        }
        if !skipLarge {
            shapes.append(Shape(name: "users-items 1M rows (user 100k with slope × item 10k), REML, .lmmbin",
                                datagen: ["--preset", "users-items", "--rows", "1000000"],
                                formula: "y ~ 1 + x + (1 + x | user) + (1 | item)", ml: false, target: "≤ 30 s, ≤ 0.8 GB",
                                binary: true))
        }
        if twoMillion {
            shapes.append(Shape(name: "users-items 2M rows (user 200k with slope × item 20k), REML, .lmmbin",
                                datagen: ["--preset", "users-items", "--rows", "2000000", "--levels", "user=200000,item=20000"],
                                formula: "y ~ 1 + x + (1 + x | user) + (1 | item)", ml: false, target: "≤ 3 min, ≤ 2.5 GB",
                                binary: true, repeats: 1))
        }
        print("| shape | target | best | median | peak memory | evaluations |")
        print("| --- | --- | ---: | ---: | ---: | ---: |")
        for (index, shape) in shapes.enumerated() {
            let csv = "\(out)/shape-\(index).csv"
            var data = shape.path ?? (shape.binary ? "\(out)/shape-\(index).lmmbin" : csv)
            if shape.path == nil && !FileManager.default.fileExists(atPath: data) {
                if !FileManager.default.fileExists(atPath: csv) {
                    let made = try Subprocess.run(datagen, shape.datagen + ["--seed", "1", "--out", csv, "--quiet"], cap: 3600)
                    guard made.status == 0 else { throw ValidationErrorText("datagen: \(made.stderr)") }
                }
                if shape.binary {
                    let converted = try Subprocess.run(lmm, ["convert", csv, data, "--categorical", "user,item"], cap: 3600)
                    guard converted.status == 0 else { throw ValidationErrorText("lmm convert: \(converted.stderr)") }
                }
            }
            data = (data as NSString).standardizingPath
            var times: [Double] = [], peak = 0
            var evaluations = 0
            let json = "\(out)/shape-\(index).fit.json"
            for _ in 0..<(shape.repeats ?? repeats) {
                var arguments = ["fit", data, "--formula", shape.formula, "--quiet", "--json", json]
                if shape.ml { arguments.append("--ml") }
                let outcome = try Subprocess.run(lmm, arguments, cap: 3600)
                guard outcome.status == 0 else { throw ValidationErrorText("lmm fit failed: \(outcome.stderr)") }
                times.append(outcome.seconds)
                peak = max(peak, outcome.peakBytes)
                evaluations = try FitReport.load(path: json).iterations ?? 0
            }
            let sorted = times.sorted()
            print("| \(shape.name) | \(shape.target) | \(Harness.format(seconds: sorted[0])) | \(Harness.format(seconds: sorted[sorted.count / 2])) | \(peak / 1_000_000) MB | \(evaluations) |")
        }
    }
}

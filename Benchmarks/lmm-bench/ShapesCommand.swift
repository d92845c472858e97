import ArgumentParser
import Foundation
import MixedModels

/// `lmm-bench shapes --out DIR`: the REML/ML performance targets — whole `lmm fit` processes on
/// datagen's versions of the three benchmark shapes, with wall time and peak memory:
///
/// - `instructors`: 73,421 rows, crossed factors of 2,972 and 1,128 levels and a 28-level
///   interaction factor (like lme4's InstEval), ML;
/// - `users-items` 200k rows: `(1 + x | user)` of 20k levels + `(1 | item)` of 2k, REML;
/// - `users-items` 1M rows: 100k users + 10k items, REML.
struct ShapesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shapes",
        abstract: "Whole-process REML/ML fits of the benchmark shapes (time and peak memory)."
    )

    @Option(help: "Directory for the generated data.")
    var out: String

    @Option(help: "Repetitions of each fit (the best and the median are reported).")
    var repeats = 3

    @Flag(help: "Skip the 1M-row shape.")
    var skipLarge = false

    struct Shape {
        var name: String
        var datagen: [String]
        var formula: String
        var ml: Bool
        var target: String
    }

    func run() throws {
        let bin = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        let lmm = bin.appendingPathComponent("lmm").path, datagen = bin.appendingPathComponent("datagen").path
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        var shapes = [
            Shape(name: "instructors 73,421 rows (s 2,972 × d 1,128 × dept:service 28), ML",
                  datagen: ["--preset", "instructors", "--rows", "73421"],
                  formula: "y ~ 1 + service + (1 | s) + (1 | d) + (1 | dept:service)", ml: true, target: "≤ 0.3 s"),
            Shape(name: "users-items 200k rows (user 20k with slope × item 2k), REML",
                  datagen: ["--preset", "users-items", "--rows", "200000"],
                  formula: "y ~ 1 + x + (1 + x | user) + (1 | item)", ml: false, target: "≤ 1.5 s"),
        ]
        if !skipLarge {
            shapes.append(Shape(name: "users-items 1M rows (user 100k with slope × item 10k), REML",
                                datagen: ["--preset", "users-items", "--rows", "1000000"],
                                formula: "y ~ 1 + x + (1 + x | user) + (1 | item)", ml: false, target: "≤ 100 s, ≤ 1.5 GB"))
        }
        print("| shape | target | best | median | peak memory | evaluations |")
        print("| --- | --- | ---: | ---: | ---: | ---: |")
        for (index, shape) in shapes.enumerated() {
            let data = "\(out)/shape-\(index).csv"
            if !FileManager.default.fileExists(atPath: data) {
                let made = try Subprocess.run(datagen, shape.datagen + ["--seed", "1", "--out", data, "--quiet"], cap: 3600)
                guard made.status == 0 else { throw ValidationErrorText("datagen: \(made.stderr)") }
            }
            var times: [Double] = [], peak = 0
            var evaluations = 0
            let json = "\(out)/shape-\(index).fit.json"
            for _ in 0..<repeats {
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

import ArgumentParser
import Foundation
import MixedModels

/// `lmm-bench evaluate DATA --formula F`: cost of one objective evaluation on a data set.
struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Time objective evaluations (refactorization + solves) and describe the factor."
    )

    @Argument var data: String
    @Option(name: .shortAndLong) var formula: String
    @Option var seconds = 3.0

    func run() throws {
        let t0 = Harness.now()
        let parsed = try Formula.parse(formula)
        let table = try CSVReader.read(path: data, for: parsed)
        let t1 = Harness.now()
        let model = try LinearMixedModel(formula: parsed, data: table)
        let t2 = Harness.now()
        print("read \(Harness.format(seconds: t1 - t0)), setup (Z, Z'Z, analyze) \(Harness.format(seconds: t2 - t1))")
        print(model.factorDescription)
        let theta = model.parameters.initialTheta
        let timing = try Harness.measure(seconds: seconds) { _ = try model.objective(at: theta) }
        print("evaluation: median \(Harness.format(seconds: timing.median)), min \(Harness.format(seconds: timing.minimum))")
    }
}

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
    @Option(help: "θ to evaluate at (comma-separated; default: lme4's start).") var theta: String?
    @Flag(help: "Time the objective with its analytic gradient (a selected inversion) and print both.")
    var gradient = false
    @Flag var ml = false

    func run() throws {
        let t0 = Harness.now()
        let parsed = try Formula.parse(formula)
        let table = try CSVReader.read(path: data, for: parsed)
        let t1 = Harness.now()
        let model = try LinearMixedModel(formula: parsed, data: table)
        let t2 = Harness.now()
        print("read \(Harness.format(seconds: t1 - t0)), setup (Z, Z'Z, analyze) \(Harness.format(seconds: t2 - t1))")
        print(model.factorDescription)
        let theta = try self.theta.map { text in
            try text.split(separator: ",").map { part -> Double in
                guard let value = Double(part.trimmingCharacters(in: .whitespaces)) else {
                    throw ValidationError("--theta: '\(part)' is not a number")
                }
                return value
            }
        } ?? model.parameters.initialTheta
        let criterion: Criterion = ml ? .ml : .reml
        if gradient {
            let (value, g) = try model.objectiveAndGradient(at: theta, criterion: criterion)
            print("objective \(String(format: "%.17g", value)), gradient \(g.map { String(format: "%.17g", $0) }.joined(separator: " "))")
            let timing = try Harness.measure(seconds: seconds) { _ = try model.objectiveAndGradient(at: theta, criterion: criterion) }
            print("evaluation + gradient: median \(Harness.format(seconds: timing.median)), min \(Harness.format(seconds: timing.minimum))")
            return
        }
        print("objective \(String(format: "%.17g", try model.objective(at: theta, criterion: criterion)))")
        let timing = try Harness.measure(seconds: seconds) { _ = try model.objective(at: theta, criterion: criterion) }
        print("evaluation: median \(Harness.format(seconds: timing.median)), min \(Harness.format(seconds: timing.minimum))")
    }
}

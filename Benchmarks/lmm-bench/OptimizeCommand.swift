import ArgumentParser
import Foundation
import MixedModels

/// `lmm-bench optimize DATA --formula F`: evaluations and time of the REML/ML optimizer
/// under different settings.
struct OptimizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "optimize",
        abstract: "Evaluations and time of REML/ML fits under optimizer settings."
    )

    @Argument var data: String
    @Option(name: .shortAndLong) var formula: String
    @Flag var ml = false
    @Option var ftol: [Double] = [1e-8]
    @Option var xtol: [Double] = [1e-8]
    @Option var step: [Double] = []
    @Option(help: "Starting θ, comma separated.") var start: String?
    @Option(help: "bobyqa, lbfgs or slsqp (repeatable).") var algorithm: [String] = ["bobyqa"]

    func run() throws {
        let parsed = try Formula.parse(formula)
        let table = try CSVReader.read(path: data, for: parsed)
        let model = try LinearMixedModel(formula: parsed, data: table)
        let steps: [Double?] = step.isEmpty ? [nil] : step.map { $0 }
        let theta0 = start.map { $0.split(separator: ",").map { Double($0)! } }
        for name in algorithm {
            guard let chosen = OptimizerAlgorithm(rawValue: name) else { throw ValidationError("unknown algorithm \(name)") }
            for f in ftol {
                for x in xtol {
                    for s in steps {
                        var options = OptimizerOptions()
                        options.absoluteFTolerance = f
                        options.absoluteXTolerance = x
                        options.initialStep = s
                        options.algorithm = chosen
                        let t0 = Harness.now()
                        let fit = try model.fit(criterion: ml ? .ml : .reml, start: theta0, options: options)
                        let elapsed = Harness.now() - t0
                        print(String(format: "%@ ftol %.0e xtol %.0e step %@: %d evaluations, %@, objective %.8f, θ %@",
                                     name, f, x, s.map { String($0) } ?? "default", fit.iterations, Harness.format(seconds: elapsed),
                                     fit.objective, fit.theta.map { String(format: "%.6f", $0) }.joined(separator: " ")))
                    }
                }
            }
        }
    }
}

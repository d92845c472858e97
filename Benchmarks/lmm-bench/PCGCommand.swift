import ArgumentParser
import Foundation
import MixedModels

/// `lmm-bench pcg DATA --formula F [--variances V.json]`: conjugate-gradient iterations to a
/// relative residual, for each preconditioner of the iterative method.
struct PCGCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pcg",
        abstract: "Iterations of preconditioned conjugate gradients (block Jacobi, Gauss–Seidel) on the mixed-model equations."
    )

    @Argument var data: String
    @Option(name: .shortAndLong) var formula: String
    @Option(help: "Variance components (any fit's --json); default lme4's start θ.") var variances: String?
    @Option var tolerance = 1e-8

    func run() throws {
        let parsed = try Formula.parse(formula)
        let table = try CSVReader.read(path: data, for: parsed)
        let model = try IterativeMixedModel(formula: parsed, data: table)
        let theta = try variances.map { try model.theta(given: try VarianceComponents.load(path: $0)) } ?? model.initialTheta
        print("θ = \(theta.map { String(format: "%.4g", $0) }.joined(separator: ", ")); n = \(model.frame.n)")
        for includeFixed in [true, false] {
            for kind in PreconditionerKind.allCases {
                let measured = model.measureSolve(theta: theta, preconditioner: kind, includeFixed: includeFixed, tolerance: tolerance)
                print(String(format: "%@ %-13@ iterations %5d  residual %.2e  %@", includeFixed ? "H (u, β)" : "A (u)   ",
                             kind.rawValue as NSString, measured.iterations, measured.relativeResidual,
                             Harness.format(seconds: measured.seconds)))
            }
        }
    }
}

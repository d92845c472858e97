import Foundation
import Testing
@testable import MixedModels

/// The matrix-free method against the exact engine.
@Suite struct IterativeTests {
    static func model(_ file: String, _ formula: String) throws -> (LinearMixedModel, IterativeMixedModel) {
        let parsed = try Formula.parse(formula)
        let table = try CSVReader.read(path: Fixtures.path(file), for: parsed)
        return (try LinearMixedModel(formula: parsed, data: table), try IterativeMixedModel(formula: parsed, data: table))
    }

    static let cases: [(String, String)] = [
        ("sleepstudy.csv", "Reaction ~ 1 + Days + (1 + Days | Subject)"),
        ("Penicillin.csv", "diameter ~ 1 + (1 | plate) + (1 | sample)"),
        ("synthetic_crossed.csv", "y ~ 1 + x + (1 + x | user) + (1 | item)"),
    ]

    @Test(arguments: [PreconditionerKind.blockJacobi, .gaussSeidel], [0, 1, 2])
    func pcgSolutionEqualsExactPLS(kind: PreconditionerKind, index: Int) throws {
        let (file, formula) = Self.cases[index]
        let (exact, iterative) = try Self.model(file, formula)
        let theta = exact.parameters.initialTheta.map { $0 == 1 ? 0.8 : 0.1 }
        try exact.pls.update(theta: theta)
        let u = try exact.pls.sphericalEffects()
        let beta = exact.pls.fixedEffects()
        let solution = iterative.solvePLS(theta: theta, preconditioner: kind, tolerance: 1e-12)
        #expect(solution.report.converged)
        let uScale = u.map(abs).max()!, betaScale = beta.map(abs).max()!
        for (a, b) in zip(u, solution.u) { #expect(abs(a - b) <= 1e-8 * uScale) }
        for (a, b) in zip(beta, solution.beta) { #expect(abs(a - b) <= 1e-8 * betaScale) }
    }
}

import Foundation
import Testing
@testable import MixedModels

/// The analytic gradient of the profiled REML/ML criterion against central differences.
@Suite("Analytic gradient")
struct GradientTests {
    static func check(_ model: LinearMixedModel, theta: [Double], criterion: Criterion) throws {
        let (_, gradient) = try model.objectiveAndGradient(at: theta, criterion: criterion)
        for k in theta.indices {
            let h = 1e-6 * max(1, abs(theta[k]))
            var plus = theta, minus = theta
            plus[k] += h
            minus[k] -= h
            let numeric = (try model.objective(at: plus, criterion: criterion) - model.objective(at: minus, criterion: criterion)) / (2 * h)
            #expect(abs(gradient[k] - numeric) <= 1e-4 * max(1, abs(numeric)),
                    "∂/∂θ\(k) (\(criterion)): analytic \(gradient[k]) vs numeric \(numeric)")
        }
    }

    static func perturbed(_ theta: [Double], _ diagonal: [Bool]) -> [Double] {
        theta.enumerated().map { index, value in diagonal[index] ? value * 0.8 + 0.05 : value + 0.07 }
    }

    @Test("lme4 examples", arguments: ["sleepstudy_reml", "sleepstudy_zerocorr_reml", "penicillin_reml", "machines_slopes_reml", "pastes_reml", "cake_reml", "machines_reml"])
    func examples(_ name: String) throws {
        let (model, reference) = try Fixtures.model(for: name)
        let theta = Self.perturbed(reference.theta, model.parameters.isDiagonal)
        try Self.check(model, theta: theta, criterion: .reml)
        try Self.check(model, theta: theta, criterion: .ml)
    }

    @Test("crossed, both factorizations", arguments: FactorizationTests.formulas)
    func crossed(_ text: String) throws {
        let data = FactorizationTests.crossedData(rows: 4000, users: 500, items: 200, stores: 5, seed: 3)
        let formula = try Formula.parse(text)
        for engine in [PenalizedLeastSquares.Engine.sparseCholesky, .blockedDense] {
            let model = try LinearMixedModel(formula: formula, data: data, engine: engine)
            var theta = model.parameters.initialTheta
            for index in theta.indices { theta[index] = model.parameters.isDiagonal[index] ? 0.4 + 0.1 * Double(index) : -0.05 }
            try Self.check(model, theta: theta, criterion: .reml)
            try Self.check(model, theta: theta, criterion: .ml)
        }
    }
}

import Foundation
import Testing
@testable import MixedModels

/// `--residuals` of a fit with prior weights and an offset, against lme4 1.1-31
/// (`Fixtures/weighted_residuals.json`, made by `R/weighted_residuals_reference.R`): fitted
/// values include the offset, and neither they nor the residuals carry the weights' √wᵢ.
@Suite("Residuals with weights and an offset")
struct WeightedResidualsTests {
    struct Reference: Decodable {
        var formula: String
        var data: String
        var weights: String
        var varcorr: [VarCorrEntry]
        var fitted: [Double]
        var marginal: [Double]
        var residual: [Double]
        var scaled: [Double]
    }

    @Test("fitted (conditional, marginal), residual and scaled residual to 1e-8 at lme4's variance components")
    func matchesLme4() throws {
        let expected = try JSONDecoder().decode(Reference.self, from: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("weighted_residuals.json"))))
        let path = Fixtures.path(expected.data)
        let formula = try Formula.parse(expected.formula)
        let options = ModelOptions(weights: expected.weights)
        let table = try CSVReader.read(path: path, for: formula, options: options)
        let model = try LinearMixedModel(formula: formula, data: table, options: options)
        let result = try model.fit(given: VarianceComponents(entries: expected.varcorr))
        let values = try FittedValues(model: model, result: result)
        #expect(values.fitted.count == expected.fitted.count)
        func close(_ a: [Double], _ b: [Double], _ what: String) {
            for (i, (x, y)) in zip(a, b).enumerated() {
                #expect(abs(x - y) <= 1e-8 * max(abs(y), 1), "\(what) row \(i + 1): \(x) vs lme4 \(y)")
            }
        }
        close(values.fitted, expected.fitted, "fitted")
        close(values.marginal, expected.marginal, "marginal")
        close(values.residuals, expected.residual, "residual")
        close(values.residuals.map { $0 / values.sigma }, expected.scaled, "scaled residual")
    }
}

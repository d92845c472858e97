import Foundation
import Testing
import MixedModels  // not @testable: the example uses the public API only

/// The usage example of the DocC overview (MixedModels.docc/MixedModels.md) and of
/// ``LinearMixedModel``, run as written with the bundled sleepstudy data.
@Suite("Documentation example")
struct DocumentationExampleTests {
    @Test("the overview's example fits sleepstudy as lme4 does")
    func overviewExample() throws {
        let path = Fixtures.path("sleepstudy.csv")
        // --- the example, with the data path replaced ---
        let formula = try Formula.parse("Reaction ~ 1 + Days + (1 + Days | Subject)")
        let data = try CSVReader.read(path: path, for: formula)
        let model = try LinearMixedModel(formula: formula, data: data)
        let fit = try model.fit(criterion: .reml)
        let summary = fit.summary(dataName: data.source)
        // --- end of the example ---
        #expect(summary.hasPrefix("Linear mixed model fit by REML ['lmerMod']\nFormula: Reaction ~ 1 + Days + (1 + Days | Subject)"))
        #expect(summary.contains("REML criterion at convergence: 1743.6"))
        #expect(fit.method == .exact)
    }
}

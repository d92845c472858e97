import Foundation
import Testing
@testable import MixedModels

/// Issue 3's acceptance: REML and ML estimates match lme4's reference fits.
@Suite("REML and ML estimation")
struct LikelihoodFitTests {
    @Test("matches lme4", arguments: Fixtures.allReferences)
    func matchesLme4(_ name: String) throws {
        let (model, reference) = try Fixtures.model(for: name)
        let fit = try model.fit(criterion: reference.criterion)
        #expect(fit.converged)
        Compare.likelihood(fit, reference)
        for (ours, theirs) in zip(fit.theta, reference.theta) {
            #expect(abs(ours - theirs) <= max(1e-3 * abs(theirs), 1e-4), "θ \(fit.theta) vs \(reference.theta)")
        }
        #expect(fit.theta.count == reference.theta.count)
        #expect(Compare.relative(fit.sigma, reference.sigma) <= 1e-3)
        #expect(fit.fixedEffectNames.count == reference.fixef.count)
        for (name, value) in zip(fit.fixedEffectNames, fit.fixedEffects) {
            guard let theirs = Compare.named(reference.fixef, name, "fixef") else { continue }
            #expect(Compare.relative(value, theirs) <= 1e-5, "β \(name): \(value) vs \(theirs)")
        }
        for (name, value) in zip(fit.fixedEffectNames, fit.fixedEffectStandardErrors) {
            guard let theirs = Compare.named(reference.fixefSE, name, "fixef_se") else { continue }
            #expect(Compare.relative(value, theirs) <= 1e-3, "SE \(name): \(value) vs \(theirs)")
        }
        Compare.ranef(fit.randomEffects, reference.ranef, tolerance: 1e-3, sdTolerance: 1e-3)
        // Variance components and covariances, matched by group and names.
        Compare.varCorr(fit.varianceComponents, reference.varcorr, tolerance: 2e-3, floor: 1e-6)
    }
}

/// The Newton optimizer (analytic gradient, average information) and BOBYQA reach the same
/// optimum as lme4 on every reference, whichever factorization is used.
@Suite("Optimizers agree with lme4")
struct OptimizerTests {
    @Test("Newton steps", arguments: Fixtures.allReferences)
    func newton(_ name: String) throws {
        let (model, reference) = try Fixtures.model(for: name)
        var options = OptimizerOptions()
        options.algorithm = .newton
        let fit = try model.fit(criterion: reference.criterion, options: options)
        #expect(fit.converged)
        Compare.likelihood(fit, reference)
        for (ours, theirs) in zip(fit.theta, reference.theta) {
            #expect(abs(ours - theirs) <= max(1e-3 * abs(theirs), 1e-4), "θ \(fit.theta) vs \(reference.theta)")
        }
    }

    @Test("blocked factorization", arguments: Fixtures.syntheticReferences + ["penicillin_reml", "machines_reml", "pastes_reml"])
    func blocked(_ name: String) throws {
        let reference = try Fixtures.reference(name)
        let formula = try Formula.parse(reference.formula)
        let data = try CSVReader.read(path: Fixtures.path(Fixtures.dataFile(for: name)), for: formula)
        let model = try LinearMixedModel(formula: formula, data: data, engine: .blockedDense)
        let fit = try model.fit(criterion: reference.criterion)
        Compare.likelihood(fit, reference)
        Compare.ranef(fit.randomEffects, reference.ranef, tolerance: 1e-3, sdTolerance: 1e-3)
    }
}

/// A boundary fit (lme4's Dyestuff2: the batch variance is zero) is reported as lme4 does.
@Suite("Boundary fits")
struct BoundaryFitTests {
    @Test("Dyestuff2: θ = 0 and lme4's singular-fit message", arguments: [OptimizerAlgorithm.bobyqa, .newton])
    func singular(_ algorithm: OptimizerAlgorithm) throws {
        let (model, reference) = try Fixtures.model(for: "dyestuff2_reml")
        var options = OptimizerOptions()
        options.algorithm = algorithm
        let fit = try model.fit(criterion: .reml, options: options)
        #expect(fit.isSingular)
        #expect(fit.messages.contains("boundary (singular) fit: see help('isSingular')"))
        #expect(abs(fit.theta[0]) <= 1e-4)
        Compare.likelihood(fit, reference)
        #expect(Compare.relative(fit.sigma, reference.sigma) <= 1e-3)
    }
}

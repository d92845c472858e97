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
        // Objective within 1e-4, or lower than lme4's.
        #expect(fit.objective - reference.objective <= 1e-4, "objective \(fit.objective) vs \(reference.objective)")
        #expect(abs(fit.logLikelihood - reference.logLik) <= 1e-4 || fit.logLikelihood > reference.logLik)
        #expect(abs(fit.AIC - reference.AIC) <= 2e-4 || fit.AIC < reference.AIC)
        #expect(abs(fit.BIC - reference.BIC) <= 2e-4 || fit.BIC < reference.BIC)
        for (ours, theirs) in zip(fit.theta, reference.theta) {
            #expect(abs(ours - theirs) <= max(1e-3 * abs(theirs), 1e-4), "θ \(fit.theta) vs \(reference.theta)")
        }
        #expect(fit.theta.count == reference.theta.count)
        #expect(Compare.relative(fit.sigma, reference.sigma) <= 1e-3)
        for (name, value) in zip(fit.fixedEffectNames, fit.fixedEffects) {
            #expect(Compare.relative(value, reference.fixef[name]!) <= 1e-5, "β \(name)")
        }
        for (name, value) in zip(fit.fixedEffectNames, fit.fixedEffectStandardErrors) {
            #expect(Compare.relative(value, reference.fixef_se[name]!) <= 1e-3, "SE \(name)")
        }
        Compare.ranef(fit.randomEffects, reference.ranef, tolerance: 1e-3, sdTolerance: 1e-3)
        // Variance components, matched by group and names.
        #expect(fit.varianceComponents.count == reference.varcorr.count)
        for entry in reference.varcorr {
            let mine = fit.varianceComponents.first { $0.grp == entry.grp && $0.var1 == entry.var1 && $0.var2 == entry.var2 }
            #expect(mine != nil, "varcorr \(entry.grp) \(entry.var1 ?? "") \(entry.var2 ?? "")")
            if let mine, entry.var2 == nil {
                #expect(abs(mine.vcov - entry.vcov) <= max(2e-3 * abs(entry.vcov), 1e-6), "vcov \(entry.grp) \(entry.var1 ?? "")")
            }
        }
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
        #expect(fit.objective - reference.objective <= 1e-4, "objective \(fit.objective) vs \(reference.objective)")
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
        #expect(fit.objective - reference.objective <= 1e-4)
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
        #expect(fit.objective - reference.objective <= 1e-4)
        #expect(Compare.relative(fit.sigma, reference.sigma) <= 1e-3)
    }
}

import Foundation
import Testing
@testable import MixedModels

/// Issue 2's acceptance: given lme4's REML variance components, the exact PLS solve
/// reproduces lme4's fixed effects, standard errors, BLUPs and conditional SDs.
@Suite("Given variance components")
struct GivenVariancesTests {
    @Test("matches lme4", arguments: ["sleepstudy_reml", "sleepstudy_zerocorr_reml", "dyestuff_reml", "penicillin_reml"] + Fixtures.moreReferences)
    func matchesLme4(_ name: String) throws {
        let (model, reference) = try Fixtures.model(for: name)
        let variances = try VarianceComponents.load(path: Fixtures.path(name + ".json"))
        let fit = try model.fit(given: variances, criterion: reference.criterion)

        #expect(Set(fit.fixedEffectNames) == Set(reference.fixef.names))
        for (name, value) in zip(fit.fixedEffectNames, fit.fixedEffects) {
            guard let theirs = Compare.named(reference.fixef, name, "fixef") else { continue }
            #expect(Compare.relative(value, theirs) <= 1e-6, "β \(name): \(value) vs \(theirs)")
        }
        for (name, value) in zip(fit.fixedEffectNames, fit.fixedEffectStandardErrors) {
            guard let theirs = Compare.named(reference.fixefSE, name, "fixef_se") else { continue }
            #expect(Compare.relative(value, theirs) <= 1e-5, "SE \(name): \(value) vs \(theirs)")
        }
        Compare.ranef(fit.randomEffects, reference.ranef, tolerance: 1e-4, sdTolerance: 1e-4)
        for (ours, theirs) in zip(fit.theta, reference.theta) {
            #expect(abs(ours - theirs) <= 1e-8 * max(1, abs(theirs)))
        }
        #expect(abs(fit.objective - reference.objective) <= 1e-6)
        #expect(Set(fit.groups.map(\.name)) == Set(reference.ngroups.names))
        for group in fit.groups { #expect(reference.ngroups[group.name] == group.levels) }
    }

    @Test("a covariance that is not positive semi-definite names its group")
    func rejectsIndefiniteCovariance() throws {
        let (model, _) = try Fixtures.model(for: "sleepstudy_reml")
        let variances = VarianceComponents(entries: [
            VarCorrEntry(grp: "Subject", var1: "(Intercept)", var2: nil, vcov: 1, sdcor: nil),
            VarCorrEntry(grp: "Subject", var1: "Days", var2: nil, vcov: 1, sdcor: nil),
            VarCorrEntry(grp: "Subject", var1: "(Intercept)", var2: "Days", vcov: 2, sdcor: nil),
            VarCorrEntry(grp: "Residual", var1: nil, var2: nil, vcov: 1, sdcor: nil),
        ], source: "V.json")
        #expect {
            _ = try model.fit(given: variances)
        } throws: { error in
            "\(error)".contains("group 'Subject' is not positive semi-definite") && "\(error)".hasPrefix("V.json")
        }
    }

    @Test("unknown groups and missing residual are errors")
    func rejectsIncompleteVariances() throws {
        let (model, _) = try Fixtures.model(for: "sleepstudy_reml")
        let wrongGroup = VarianceComponents(entries: [
            VarCorrEntry(grp: "Patient", var1: "(Intercept)", var2: nil, vcov: 1, sdcor: nil),
        ], source: "V.json")
        #expect { _ = try model.fit(given: wrongGroup) } throws: { "\($0)".contains("no random-effects term with group 'Patient'") }
        let noResidual = VarianceComponents(entries: [
            VarCorrEntry(grp: "Subject", var1: "(Intercept)", var2: nil, vcov: 1, sdcor: nil),
            VarCorrEntry(grp: "Subject", var1: "Days", var2: nil, vcov: 1, sdcor: nil),
        ], source: "V.json")
        #expect { _ = try model.fit(given: noResidual) } throws: { "\($0)".contains("Residual") }
    }
}

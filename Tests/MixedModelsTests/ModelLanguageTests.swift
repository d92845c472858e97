import Foundation
import Testing
@testable import MixedModels

/// A fit compared with a tight lme4 1.1-31 fit (Fixtures/Language, made by
/// ../shared/tools/lme4_reference.R with `--tight`): names equal, fixed effects and their
/// standard errors within 1e-5, variance components within 1e-4 (relative, or absolute near
/// zero), the objective within 1e-6.
enum LanguageReference {
    static func check(_ name: String, data: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let reference = try Fixtures.reference("Language/" + name)
        let formula = try Formula.parse(reference.formula)
        let table = try CSVReader.read(path: Fixtures.path("Language/" + data), for: formula)
        let model = try LinearMixedModel(formula: formula, data: table)
        var optimizer = OptimizerOptions()
        optimizer.absoluteFTolerance = 1e-14
        optimizer.absoluteXTolerance = 1e-12
        optimizer.relativeFTolerance = 1e-15
        let fit = try model.fit(criterion: reference.criterion, options: optimizer)
        compare(fit, reference, sourceLocation: sourceLocation)
    }

    static func compare(_ fit: FitResult, _ reference: Fixtures.Reference, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(fit.nobs == reference.nobs, sourceLocation: sourceLocation)
        #expect(abs(fit.objective - reference.objective) <= 1e-6, "objective \(fit.objective) vs \(reference.objective)", sourceLocation: sourceLocation)
        #expect(Set(fit.fixedEffectNames) == Set(reference.fixef.keys), "names \(fit.fixedEffectNames) vs \(reference.fixef.keys.sorted())", sourceLocation: sourceLocation)
        for (name, value) in zip(fit.fixedEffectNames, fit.fixedEffects) {
            guard let theirs = reference.fixef[name] else { continue }
            #expect(abs(value - theirs) <= 1e-5 * max(abs(theirs), 1), "β \(name) \(value) vs \(theirs)", sourceLocation: sourceLocation)
        }
        for (name, value) in zip(fit.fixedEffectNames, fit.fixedEffectStandardErrors) {
            guard let theirs = reference.fixef_se[name] else { continue }
            #expect(abs(value - theirs) <= 1e-5 * max(abs(theirs), 1), "SE \(name) \(value) vs \(theirs)", sourceLocation: sourceLocation)
        }
        #expect(fit.varianceComponents.count == reference.varcorr.count, sourceLocation: sourceLocation)
        for entry in reference.varcorr {
            let mine = fit.varianceComponents.first { $0.grp == entry.grp && $0.var1 == entry.var1 && $0.var2 == entry.var2 }
            #expect(mine != nil, "varcorr \(entry.grp) \(entry.var1 ?? "")", sourceLocation: sourceLocation)
            if let mine {
                #expect(abs(mine.vcov - entry.vcov) <= 1e-4 * max(abs(entry.vcov), 1), "vcov \(entry.grp) \(entry.var1 ?? "") \(mine.vcov) vs \(entry.vcov)", sourceLocation: sourceLocation)
            }
        }
    }
}

/// Issue 12: a numeric column used both as a covariate and as a grouping factor keeps its
/// type in the fixed part (R: a grouping term makes it a factor only inside that term).
@Suite("Covariate and grouping factor from one column")
struct CovariateAndGroupingTests {
    @Test("sleepstudy Reaction ~ 1 + Days + (1 | Subject) + (1 | Days)", arguments: ["reml", "ml"])
    func sleepstudy(_ method: String) throws {
        try LanguageReference.check("sleepstudy_DaysCrossed_\(method)_tight", data: "../sleepstudy.csv")
    }

    @Test("Orthodont distance ~ 1 + age + Sex + (1 | Subject) + (1 | age): one age slope, singular", arguments: ["reml", "ml"])
    func orthodont(_ method: String) throws {
        try LanguageReference.check("Orthodont_AgeCrossed_\(method)_tight", data: "Orthodont.csv")
    }

    @Test("the singular fit is reported as lme4 reports it")
    func singularMessage() throws {
        let formula = try Formula.parse("distance ~ 1 + age + Sex + (1 | Subject) + (1 | age)")
        let table = try CSVReader.read(path: Fixtures.path("Language/Orthodont.csv"), for: formula)
        let fit = try LinearMixedModel(formula: formula, data: table).fit(criterion: .reml)
        #expect(fit.isSingular)
        #expect(fit.messages.contains("boundary (singular) fit: see help('isSingular')"))
        #expect(fit.fixedEffectNames == ["(Intercept)", "age", "SexMale"])
    }
}

import Foundation
import Testing
@testable import MixedModels

/// A fit compared with a tight lme4 1.1-31 fit (Fixtures/Language, made by
/// ../shared/tools/lme4_reference.R with `--tight`): names equal, fixed effects and their
/// standard errors within 1e-5, variance components within 1e-4 (relative, or absolute near
/// zero), the objective within 1e-6, BLUPs within 1e-4 of the term's largest and conditional
/// SDs within 1e-4 (except at a boundary θ that lme4 leaves at ~1e-9).
enum LanguageReference {
    static func check(_ name: String, data: String, formula text: String? = nil, options: ModelOptions = ModelOptions(),
                      sourceLocation: SourceLocation = #_sourceLocation) throws {
        let reference = try Fixtures.reference("Language/" + name)
        let formula = try Formula.parse(text ?? reference.formula)
        let table = try CSVReader.read(path: Fixtures.path("Language/" + data), for: formula, options: options)
        let model = try LinearMixedModel(formula: formula, data: table, options: options)
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
        #expect(Set(fit.fixedEffectNames) == Set(reference.fixef.names), "names \(fit.fixedEffectNames) vs \(reference.fixef.names.sorted())", sourceLocation: sourceLocation)
        for (name, value) in zip(fit.fixedEffectNames, fit.fixedEffects) {
            guard let theirs = reference.fixef[name] else { continue }
            #expect(abs(value - theirs) <= 1e-5 * max(abs(theirs), 1), "β \(name) \(value) vs \(theirs)", sourceLocation: sourceLocation)
        }
        for (name, value) in zip(fit.fixedEffectNames, fit.fixedEffectStandardErrors) {
            guard let theirs = reference.fixefSE[name] else { continue }
            #expect(abs(value - theirs) <= 1e-5 * max(abs(theirs), 1), "SE \(name) \(value) vs \(theirs)", sourceLocation: sourceLocation)
        }
        // At a boundary lme4 stops at a θ of ~1e-9 where we reach 0: BLUPs of that term are
        // ~1e-13 against 0 and condSDs differ in relative terms, so only regular fits compare them.
        if !reference.theta.contains(where: { $0 != 0 && abs($0) < 1e-6 }) {
            Compare.ranef(fit.randomEffects, reference.ranef, tolerance: 1e-4, sdTolerance: 1e-4, sourceLocation: sourceLocation)
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

/// Issue 12: prior weights (`--weights`) and contrasts (`--contrasts`) against lme4.
@Suite("Weights and contrasts against lme4")
struct WeightsAndContrastsTests {
    /// sleepstudy_weights.csv: w = 1, 1.5, 2, 1, … by row.
    @Test("--weights w: sleepstudy with a random slope", arguments: ["reml", "ml"])
    func weights(_ method: String) throws {
        try LanguageReference.check("sleepstudyWeights_DaysSlope_\(method)_tight", data: "sleepstudy_weights.csv",
                                    options: ModelOptions(weights: "w"))
    }

    @Test("--weights with lme4's variance components given reproduces its fit", arguments: ["reml", "ml"])
    func weightsGiven(_ method: String) throws {
        let name = "Language/sleepstudyWeights_DaysSlope_\(method)_tight"
        let reference = try Fixtures.reference(name)
        let formula = try Formula.parse(reference.formula)
        let options = ModelOptions(weights: "w")
        let table = try CSVReader.read(path: Fixtures.path("Language/sleepstudy_weights.csv"), for: formula, options: options)
        let model = try LinearMixedModel(formula: formula, data: table, options: options)
        let fit = try model.fit(given: try VarianceComponents.load(path: Fixtures.path(name + ".json")), criterion: reference.criterion)
        LanguageReference.compare(fit, reference)
    }

    @Test("non-positive weights are refused with the row", arguments: [("0", "is zero"), ("-1", "is negative (lme4: all(weights >= 0) is not TRUE)")])
    func badWeights(_ weight: String, _ message: String) throws {
        let csv = "y,x,g,w\n1,1,a,\(weight)\n2,2,a,1\n3,1,b,1\n5,2,b,1\n4,3,c,1\n7,1,c,1\n"
        let formula = try Formula.parse("y ~ x + (1 | g)")
        let table = try CSVReader.read(bytes: Array(csv.utf8), source: "w.csv")
        let error = #expect(throws: InputError.self) {
            _ = try ModelFrame(formula: formula, data: table, options: ModelOptions(weights: "w"))
        }
        #expect(error?.message.contains("data row 1, \(message)") == true, "\(String(describing: error))")
    }

    @Test("a missing weight drops the row (na.omit)")
    func missingWeight() throws {
        let csv = "y,x,g,w\n1,1,a,NA\n2,2,a,1\n3,1,b,2\n5,2,b,1\n4,3,c,1\n7,1,c,1\n"
        let formula = try Formula.parse("y ~ x + (1 | g)")
        let table = try CSVReader.read(bytes: Array(csv.utf8), source: "w.csv")
        let frame = try ModelFrame(formula: formula, data: table, options: ModelOptions(weights: "w"))
        #expect(frame.n == 5)
        #expect(frame.droppedRowCount == 1)
        #expect(abs(frame.logWeightSum - log(2)) < 1e-15)
    }

    /// The REML criterion depends on the coding (log|RX|² does); ML does not.
    @Test("--contrasts on Machines: score ~ Machine + (1 | Worker)", arguments: [
        (ContrastCoding.treatment, "MachineInt"), (.sum, "ContrSum"), (.helmert, "ContrHelmert"),
    ], ["reml", "ml"])
    func contrasts(_ coding: (ContrastCoding, String), _ method: String) throws {
        let (coding, name) = coding
        try LanguageReference.check("Machines_\(name)_\(method)_tight", data: "Machines.csv", options: ModelOptions(contrasts: coding))
    }

    @Test("contrast matrices are R's contr.sum and contr.helmert")
    func matrices() {
        let levels = ["A", "B", "C", "D"]
        #expect(ContrastCoding.sum.matrix(levels: levels).rows == [[1, 0, 0], [0, 1, 0], [0, 0, 1], [-1, -1, -1]])
        #expect(ContrastCoding.helmert.matrix(levels: levels).rows == [[-1, -1, -1], [1, -1, -1], [0, 2, -1], [0, 0, 3]])
        #expect(ContrastCoding.treatment.matrix(levels: levels).rows == [[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
        #expect(ContrastCoding.sum.matrix(levels: levels).suffixes == ["1", "2", "3"])
        #expect(ContrastCoding.treatment.matrix(levels: levels).suffixes == ["B", "C", "D"])
    }
}

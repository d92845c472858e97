import Foundation
import Testing
@testable import MixedModels

/// Issue 4's acceptance: the three forms of MacKay's loop on sleepstudy and Penicillin.
@Suite("MacKay's loop")
struct MacKayTests {
    /// sleepstudy with the published start: V = [[410, 10], [10, 22]], σ² = var(y)/4.
    static func sleepstudy(_ formula: String) throws -> (LinearMixedModel, VarianceComponents) {
        let parsed = try Formula.parse(formula)
        let data = try CSVReader.read(path: Fixtures.path("sleepstudy.csv"), for: parsed)
        let model = try LinearMixedModel(formula: parsed, data: data)
        let y = model.frame.y
        let mean = y.reduce(0, +) / Double(y.count)
        let variance = y.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(y.count - 1)
        let labels = model.frame.termLabels
        var entries: [VarCorrEntry] = []
        if labels.count == 1 {
            entries = [VarCorrEntry(grp: "Subject", var1: "(Intercept)", var2: nil, vcov: 410, sdcor: nil),
                       VarCorrEntry(grp: "Subject", var1: "Days", var2: nil, vcov: 22, sdcor: nil),
                       VarCorrEntry(grp: "Subject", var1: "(Intercept)", var2: "Days", vcov: 10, sdcor: nil)]
        } else {
            entries = [VarCorrEntry(grp: labels[0], var1: "(Intercept)", var2: nil, vcov: 410, sdcor: nil),
                       VarCorrEntry(grp: labels[1], var1: "Days", var2: nil, vcov: 22, sdcor: nil)]
        }
        entries.append(VarCorrEntry(grp: "Residual", var1: nil, var2: nil, vcov: variance / 4, sdcor: nil))
        return (model, VarianceComponents(entries: entries, source: "published start"))
    }

    /// The fit of `form` on sleepstudy from the published start, with `fullCovariance` for the quick form.
    static func fitSleepstudy(_ formula: String, form: MacKayForm, fullCovariance: Bool = false) throws -> FitResult {
        let (model, start) = try sleepstudy(formula)
        var options = MacKayOptions(form: form)
        options.start = start
        options.fullCovariance = fullCovariance
        return try model.fit(mackay: options)
    }

    /// The `vcov` of one `varcorr` entry; a missing entry fails the test.
    static func value(_ entries: [VarCorrEntry], _ grp: String, _ var1: String?, _ var2: String? = nil,
                      sourceLocation: SourceLocation = #_sourceLocation) throws -> Double {
        let entry = entries.first { $0.grp == grp && $0.var1 == var1 && $0.var2 == var2 }
        return try #require(entry, "no varcorr entry \(grp) \(var1 ?? "") \(var2 ?? "")", sourceLocation: sourceLocation).vcov
    }

    static func value(_ fit: FitResult, _ grp: String, _ var1: String?, _ var2: String? = nil,
                      sourceLocation: SourceLocation = #_sourceLocation) throws -> Double {
        try value(fit.varianceComponents, grp, var1, var2, sourceLocation: sourceLocation)
    }

    /// Every variance and covariance of lme4's fit `reference` within `tolerance` (relative).
    static func expectVarCorr(_ fit: FitResult, matches reference: String, tolerance: Double,
                              sourceLocation: SourceLocation = #_sourceLocation) throws {
        let lme4 = try Fixtures.reference(reference)
        Compare.varCorr(fit.varianceComponents, lme4.varcorr, tolerance: tolerance, sourceLocation: sourceLocation)
    }

    static func significant(_ a: Double, _ b: Double, digits: Double = 5) -> Bool {
        abs(a - b) <= 0.5 * pow(10, floor(log10(abs(b))) - digits + 1)
    }

    @Test("quick form: the published fixed point, well under REML")
    func quick() throws {
        let fit = try Self.fitSleepstudy("Reaction ~ 1 + Days + (1 + Days | Subject)", form: .quick)
        #expect(fit.converged)
        #expect(fit.method == .mackay(.quick))
        // The published fixed point of the quick form (not an lme4 fit).
        #expect(Self.significant(try Self.value(fit, "Subject", "(Intercept)"), 371.458), "\(fit.varianceComponents)")
        #expect(Self.significant(try Self.value(fit, "Subject", "Days"), 29.146))
        #expect(try Self.value(fit, "Subject", "(Intercept)", "Days") == 0)
        #expect(Self.significant(try Self.value(fit, "Residual", nil), 556.22))
        // β̂ of this balanced design does not depend on the variances: lme4's, to 5 digits.
        let reml = try Fixtures.reference("sleepstudy_reml")
        #expect(fit.fixedEffectNames == ["(Intercept)", "Days"])
        for (name, value) in zip(fit.fixedEffectNames, fit.fixedEffects) {
            let theirs = try #require(reml.fixef[name], "lme4 has no fixed effect '\(name)'")
            #expect(Self.significant(value, theirs), "β \(name): \(value) vs lme4 \(theirs)")
        }
        #expect(try Self.value(fit, "Subject", "(Intercept)") < 0.7 * Self.value(reml.varcorr, "Subject", "(Intercept)"))
    }

    @Test("quick form with a full covariance: the collapse is detected within 10 iterations")
    func quickCollapse() throws {
        var thrown: String?
        do {
            _ = try Self.fitSleepstudy("Reaction ~ 1 + Days + (1 + Days | Subject)", form: .quick, fullCovariance: true)
        } catch LMMError.fit(let message) { thrown = message }
        let message = try #require(thrown)
        #expect(message.contains("factor 'Subject' collapsed at iteration"))
        let word = message.split(separator: " ").drop { $0 != "iteration" }.dropFirst().first
        let iteration = try #require(word.flatMap { Int($0.trimmingCharacters(in: .punctuationCharacters)) }, "\(message)")
        #expect(iteration <= 10)
    }

    @Test("evidence form on (1 + Days || Subject) reaches lme4's uncorrelated REML")
    func evidence() throws {
        let fit = try Self.fitSleepstudy("Reaction ~ 1 + Days + (1 + Days || Subject)", form: .evidence)
        #expect(fit.converged)
        try Self.expectVarCorr(fit, matches: "sleepstudy_zerocorr_reml", tolerance: 1e-4)
    }

    @Test("EM on (1 + Days | Subject) reaches lme4's REML")
    func em() throws {
        let fit = try Self.fitSleepstudy("Reaction ~ 1 + Days + (1 + Days | Subject)", form: .em)
        #expect(fit.converged)
        try Self.expectVarCorr(fit, matches: "sleepstudy_reml", tolerance: 1e-4)
    }

    @Test("EM on Penicillin reaches REML, with the exact solve's β at every iteration")
    func emPenicillin() throws {
        let (model, _) = try Fixtures.model(for: "penicillin_reml")
        let fit = try model.fit(mackay: MacKayOptions(form: .em))
        #expect(fit.converged)
        try Self.expectVarCorr(fit, matches: "penicillin_reml", tolerance: 1e-4)
        // β of each iteration equals the exact solve given that iteration's variances.
        let (check, _) = try Fixtures.model(for: "penicillin_reml")
        for point in fit.trajectory.prefix(20) {
            let exact = try check.fit(given: VarianceComponents(entries: point.varcorr))
            for (a, b) in zip(point.fixef, exact.fixedEffects) { #expect(abs(a - b) <= 1e-9 * abs(b)) }
        }
        #expect(fit.trajectory.count == fit.iterations)
    }
}

/// The Hutchinson estimate of the posterior covariance traces, against the exact blocks.
@Suite("Stochastic traces")
struct StochasticTraceTests {
    @Test("estimates lie within four standard errors of the exact traces")
    func agreesWithExact() throws {
        let data = FactorizationTests.crossedData(rows: 5000, users: 600, items: 150, stores: 5, seed: 21)
        let formula = try Formula.parse("y ~ 1 + x + (1 + x | user) + (1 | item) + (1 | store)")
        let model = try LinearMixedModel(formula: formula, data: data)
        var theta = model.parameters.initialTheta
        for index in theta.indices { theta[index] = model.parameters.isDiagonal[index] ? 0.5 : 0.1 }
        _ = try model.objective(at: theta)
        let sigmaSquared = 1.3
        let (estimate, errors) = try PosteriorCovariance.stochastic(pls: model.pls, sigmaSquared: sigmaSquared, probes: 400, seed: 5)
        let exact = try PosteriorCovariance.exact(pls: model.pls, sigmaSquared: sigmaSquared)
        for j in exact.summedBlocks.indices {
            for index in exact.summedBlocks[j].indices {
                let e = exact.summedBlocks[j][index], s = estimate.summedBlocks[j][index]
                #expect(abs(s - e) <= 4 * errors[j][index] + 1e-9 * abs(e), "term \(j) entry \(index): \(s) ± \(errors[j][index]) vs \(e)")
                // The estimate is informative: its error is small relative to a diagonal trace.
                if index == 0 { #expect(errors[j][index] < 0.1 * abs(e)) }
            }
        }
        #expect(abs(estimate.residualTrace - exact.residualTrace) <= 0.02 * exact.residualTrace)
    }

    @Test("EM with stochastic traces lands near the exact REML fit")
    func emWithStochasticTraces() throws {
        let data = FactorizationTests.crossedData(rows: 5000, users: 600, items: 150, stores: 5, seed: 22)
        let formula = try Formula.parse("y ~ 1 + x + (1 | user) + (1 | item)")
        let exact = try LinearMixedModel(formula: formula, data: data).fit()
        var options = MacKayOptions(form: .em)
        options.traces = .stochastic(probes: 200, seed: 3)
        options.tolerance = 1e-4
        options.maxIterations = 300
        let stochastic = try LinearMixedModel(formula: formula, data: data).fit(mackay: options)
        for (a, b) in zip(stochastic.varianceComponents, exact.varianceComponents) {
            #expect(Compare.relative(a.vcov, b.vcov) <= 0.05, "\(a.grp): \(a.vcov) vs \(b.vcov)")
        }
    }
}

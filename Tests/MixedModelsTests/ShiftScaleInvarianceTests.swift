import Foundation
import Testing
@testable import MixedModels

/// Issue 11, item 4: a constant added to the response or to a covariate, or a change of their
/// units, changes only what it should. The responses are multiples of 1/64, so y + s is exact
/// for every shift tested and the shifted data are exactly the same data.
@Suite("Shift and scale invariance")
struct ShiftScaleInvarianceTests {
    /// sleepstudy with Reaction rounded to 1/64, `y ↦ a·y + b` and `Days ↦ c·Days + d`.
    static func sleepstudy(y: (Double) -> Double = { $0 }, days: (Double) -> Double = { $0 }) throws -> DataTable {
        let text = try String(contentsOfFile: Fixtures.path("sleepstudy.csv"), encoding: .utf8)
        var lines = text.split(whereSeparator: \.isNewline).map(String.init)
        for index in 1..<lines.count {
            let fields = lines[index].split(separator: ",").map(String.init)
            let reaction = (Double(fields[0])! * 64).rounded() / 64
            lines[index] = "\(y(reaction).description),\(days(Double(fields[1])!).description),\(fields[2])"
        }
        return try CSVReader.read(bytes: Array((lines.joined(separator: "\n") + "\n").utf8), source: "sleepstudy")
    }

    enum Method: String, CaseIterable, CustomTestStringConvertible {
        case reml, ml, em, mackay, mackayQuick, iterative
        var testDescription: String { rawValue }
    }

    static func fit(_ formula: String, _ data: DataTable, _ method: Method) throws -> FitResult {
        let parsed = try Formula.parse(formula)
        switch method {
        case .reml: return try LinearMixedModel(formula: parsed, data: data).fit(criterion: .reml)
        case .ml: return try LinearMixedModel(formula: parsed, data: data).fit(criterion: .ml)
        case .em: return try LinearMixedModel(formula: parsed, data: data).fit(mackay: MacKayOptions(form: .em))
        case .mackay: return try LinearMixedModel(formula: parsed, data: data).fit(mackay: MacKayOptions(form: .evidence))
        case .mackayQuick: return try LinearMixedModel(formula: parsed, data: data).fit(mackay: MacKayOptions(form: .quick))
        case .iterative: return try IterativeMixedModel(formula: parsed, data: data).fit(IterativeOptions())
        }
    }

    static let slopes = "Reaction ~ 1 + Days + (1 + Days | Subject)"
    /// The evidence form updates variances only: uncorrelated slopes.
    static func slopes(_ method: Method) -> String {
        method == .mackay ? "Reaction ~ 1 + Days + (1 + Days || Subject)" : slopes
    }
    static let intercepts = "Reaction ~ 1 + Days + (1 | Subject)"

    static func relative(_ a: Double, _ b: Double) -> Double { abs(a - b) / max(abs(b), 1e-300) }

    /// Variance components scaled by `factors` (one per entry) agree to 1e-6.
    static func expectComponents(_ fit: FitResult, _ base: FitResult, factors: [Double]? = nil,
                                 _ comment: Comment) {
        #expect(fit.varianceComponents.count == base.varianceComponents.count, comment)
        for (index, (ours, theirs)) in zip(fit.varianceComponents, base.varianceComponents).enumerated() {
            let expected = theirs.vcov * (factors?[index] ?? 1)
            #expect(relative(ours.vcov, expected) <= 1e-6, "\(comment): \(ours.grp) \(ours.var1 ?? "") \(ours.var2 ?? ""): \(ours.vcov) vs \(expected)")
        }
    }

    @Test("y + s, s = 1e3 … 1e12: same θ, σ and standard errors; the intercept moves by s; same logLik",
          arguments: Method.allCases, [1e3, 1e6, 1e8, 1e10, 1e12])
    func responseShift(method: Method, shift: Double) throws {
        let base = try Self.fit(Self.slopes(method), Self.sleepstudy(), method)
        let fit = try Self.fit(Self.slopes(method), Self.sleepstudy(y: { $0 + shift }), method)
        Self.expectComponents(fit, base, "shift \(shift)")
        let interceptError = abs(fit.fixedEffects[0] - shift - base.fixedEffects[0])
        #expect(interceptError <= 1e-6 * abs(base.fixedEffects[0]) + 4 * shift.ulp, "intercept \(fit.fixedEffects[0])")
        #expect(Self.relative(fit.fixedEffects[1], base.fixedEffects[1]) <= 1e-6)
        for (ours, theirs) in zip(fit.fixedEffectStandardErrors, base.fixedEffectStandardErrors) {
            #expect(Self.relative(ours, theirs) <= 1e-6)
        }
        #expect(abs(fit.logLikelihood - base.logLikelihood) <= 1e-8 * abs(base.logLikelihood))
        #expect(abs(fit.AIC - base.AIC) <= 1e-8 * abs(base.AIC))
    }

    @Test("s·y, s = 1e-12 … 1e12: variances × s², β × s, logLik − (n − p)·log s (REML) or n·log s (ML)",
          arguments: Method.allCases, [1e-12, 1e-6, 1e6, 1e12])
    func responseScale(method: Method, scale: Double) throws {
        let base = try Self.fit(Self.slopes(method), Self.sleepstudy(), method)
        let fit = try Self.fit(Self.slopes(method), Self.sleepstudy(y: { $0 * scale }), method)
        Self.expectComponents(fit, base, factors: base.varianceComponents.map { _ in scale * scale }, "scale \(scale)")
        for (ours, theirs) in zip(fit.theta, base.theta) { #expect(abs(ours - theirs) <= 1e-6 * max(abs(theirs), 1e-2)) }
        for (ours, theirs) in zip(fit.fixedEffects, base.fixedEffects) { #expect(Self.relative(ours, theirs * scale) <= 1e-6) }
        for (ours, theirs) in zip(fit.fixedEffectStandardErrors, base.fixedEffectStandardErrors) {
            #expect(Self.relative(ours, theirs * scale) <= 1e-6)
        }
        let n = Double(base.nobs), p = Double(base.fixedEffects.count)
        let expected = base.logLikelihood - (base.criterion == .reml ? n - p : n) * log(scale)
        #expect(abs(fit.logLikelihood - expected) <= 1e-8 * max(abs(expected), abs(base.logLikelihood)),
                "logLik \(fit.logLikelihood) vs \(expected)")
    }

    @Test("Days + s in the fixed part only: same variances, slope and its SE; intercept − s·slope; same logLik",
          arguments: Method.allCases, [1e3, 1e5, 1e7])
    func covariateShift(method: Method, shift: Double) throws {
        let base = try Self.fit(Self.intercepts, Self.sleepstudy(), method)
        let fit = try Self.fit(Self.intercepts, Self.sleepstudy(days: { $0 + shift }), method)
        #expect(fit.fixedEffectNames == ["(Intercept)", "Days"], "no column dropped")
        Self.expectComponents(fit, base, "Days + \(shift)")
        #expect(Self.relative(fit.fixedEffects[1], base.fixedEffects[1]) <= 1e-6)
        #expect(Self.relative(fit.fixedEffects[0], base.fixedEffects[0] - shift * base.fixedEffects[1]) <= 1e-6)
        #expect(Self.relative(fit.fixedEffectStandardErrors[1], base.fixedEffectStandardErrors[1]) <= 1e-6)
        #expect(abs(fit.logLikelihood - base.logLikelihood) <= 1e-8 * abs(base.logLikelihood))
    }

    @Test("s·Days in the fixed part only: the slope / s; same variances; REML's logLik − log s, ML's unchanged",
          arguments: Method.allCases, [1e-12, 1e-6, 1e6, 1e12])
    func covariateScale(method: Method, scale: Double) throws {
        let base = try Self.fit(Self.intercepts, Self.sleepstudy(), method)
        let fit = try Self.fit(Self.intercepts, Self.sleepstudy(days: { $0 * scale }), method)
        Self.expectComponents(fit, base, "Days × \(scale)")
        #expect(Self.relative(fit.fixedEffects[0], base.fixedEffects[0]) <= 1e-6)
        #expect(Self.relative(fit.fixedEffects[1], base.fixedEffects[1] / scale) <= 1e-6)
        #expect(Self.relative(fit.fixedEffectStandardErrors[1], base.fixedEffectStandardErrors[1] / scale) <= 1e-6)
        // REML's log det(X'V⁻¹X) is for the user's columns (as lme4's): it grows by 2 log s.
        let expected = base.logLikelihood - (base.criterion == .reml ? log(scale) : 0)
        #expect(abs(fit.logLikelihood - expected) <= 1e-8 * abs(expected), "logLik \(fit.logLikelihood) vs \(expected)")
    }

    /// y = 1 + 2x + b_g + ε with 20 groups, σ_b² ≈ 1.9 and σ² = 1, rounded to 1/64.
    static func synthetic(shift: Double) throws -> DataTable {
        var random = SplitMix64(seed: 11)
        func normal() -> Double {
            let u = (Double(random.next() >> 11) + 0.5) / 9007199254740992, v = Double(random.next() >> 11) / 9007199254740992
            return (-2 * log(u)).squareRoot() * cos(2 * Double.pi * v)
        }
        let groupEffects = (0..<20).map { _ in 1.4 * normal() }
        var text = "y,x,g\n"
        for i in 0..<400 {
            let g = i % 20, x = (normal() * 64).rounded() / 64
            let y = ((1 + 2 * x + groupEffects[g] + normal()) * 64).rounded() / 64
            text += "\((y + shift).description),\(x.description),g\(g)\n"
        }
        return try CSVReader.read(bytes: Array(text.utf8), source: "synthetic")
    }

    @Test("y ~ x + (1 | g) with y + 1e11 (the issue's second case)", arguments: [Method.reml, .ml, .iterative])
    func issueReproduction(method: Method) throws {
        let base = try Self.fit("y ~ x + (1 | g)", Self.synthetic(shift: 0), method)
        let fit = try Self.fit("y ~ x + (1 | g)", Self.synthetic(shift: 1e11), method)
        Self.expectComponents(fit, base, "y + 1e11")
        #expect(base.varianceComponents[0].vcov > 0.5 && base.varianceComponents[0].vcov < 10)
    }

    /// ML deviance of `y ~ 0 + x + (1 | g)` at θ, straight from the definition: V₀ = I + θ²ZZ'
    /// is block diagonal, each group's block I + θ²11'.
    static func bruteForceDeviance(y: [Double], x: [Double], groups: [Int], theta: Double) -> Double {
        let n = y.count
        let groupCount = (groups.max() ?? 0) + 1
        var count = [Double](repeating: 0, count: groupCount), sumX = count, sumY = count
        for i in 0..<n { count[groups[i]] += 1; sumX[groups[i]] += x[i]; sumY[groups[i]] += y[i] }
        var xx = 0.0, xy = 0.0, yy = 0.0, logDet = 0.0
        for i in 0..<n { xx += x[i] * x[i]; xy += x[i] * y[i]; yy += y[i] * y[i] }
        for g in 0..<groupCount {
            let w = theta * theta / (1 + theta * theta * count[g])
            xx -= w * sumX[g] * sumX[g]; xy -= w * sumX[g] * sumY[g]; yy -= w * sumY[g] * sumY[g]
            logDet += log(1 + theta * theta * count[g])
        }
        let r2 = yy - xy * xy / xx
        return logDet + Double(n) * (1 + log(2 * Double.pi * r2 / Double(n)))
    }

    @Test("without an intercept (y ~ 0 + x + (1 | g)) a shift of y is a different model, fitted as such")
    func noIntercept() throws {
        for shift in [0.0, 1e3] {
            let data = try Self.synthetic(shift: shift)
            let fit = try Self.fit("y ~ 0 + x + (1 | g)", data, .ml)
            #expect(fit.fixedEffectNames == ["x"])
            guard case .numeric(let y)? = data["y"], case .numeric(let x)? = data["x"],
                  case .categorical(let g)? = data["g"] else {
                Issue.record("unexpected column types"); return
            }
            let groups = g.codes.map(Int.init)
            let deviance = Self.bruteForceDeviance(y: y, x: x, groups: groups, theta: fit.theta[0])
            #expect(abs(fit.objective - deviance) <= 1e-9 * abs(deviance), "shift \(shift): \(fit.objective) vs \(deviance)")
            // θ̂ is the optimum of that deviance, not of the model with an intercept.
            for factor in [0.99, 1.01] {
                #expect(Self.bruteForceDeviance(y: y, x: x, groups: groups, theta: fit.theta[0] * factor) > deviance)
            }
            if shift > 0 {
                // The random intercepts absorb the shift: their variance is of order shift².
                #expect(fit.varianceComponents[0].vcov > 1e5)
            }
        }
    }
}

import Foundation
import Testing
@testable import MixedModels

/// Issue 11, item 7: given variance components are reported exactly as given, or the fit
/// fails with the reason — never quietly changed.
@Suite("Given variances are kept or refused")
struct GivenVariancesExactnessTests {
    static let formula = "Reaction ~ 1 + Days + (1 + Days | Subject)"

    /// lme4's REML variances of sleepstudy with the intercept variance (and covariance) replaced.
    static func variances(intercept: Double, days: Double = 35.07, covariance: Double = 9.6) -> VarianceComponents {
        VarianceComponents(entries: [
            VarCorrEntry(grp: "Subject", var1: "(Intercept)", var2: nil, vcov: intercept, sdcor: nil),
            VarCorrEntry(grp: "Subject", var1: "Days", var2: nil, vcov: days, sdcor: nil),
            VarCorrEntry(grp: "Subject", var1: "(Intercept)", var2: "Days", vcov: covariance, sdcor: nil),
            VarCorrEntry(grp: "Residual", var1: nil, var2: nil, vcov: 654.94, sdcor: nil),
        ], source: "V.json")
    }

    static func model() throws -> LinearMixedModel {
        let parsed = try Formula.parse(formula)
        return try LinearMixedModel(formula: parsed, data: CSVReader.read(path: Fixtures.path("sleepstudy.csv"), for: parsed))
    }

    /// Every given entry is reported, to rounding (a covariance relative to its variances).
    static func expectReportedAsGiven(_ fit: FitResult, _ given: VarianceComponents) {
        func reported(_ entry: VarCorrEntry) -> Double? {
            fit.varianceComponents.first { $0.grp == entry.grp && $0.var1 == entry.var1 && $0.var2 == entry.var2 }?.vcov
        }
        for entry in given.entries {
            guard let value = reported(entry) else { Issue.record("\(entry.grp) \(entry.var1 ?? "") missing"); continue }
            var scale = abs(entry.vcov)
            if let var2 = entry.var2 {
                let first = given.entries.first { $0.grp == entry.grp && $0.var1 == entry.var1 && $0.var2 == nil }!.vcov
                let second = given.entries.first { $0.grp == entry.grp && $0.var1 == var2 && $0.var2 == nil }!.vcov
                scale = (first * second).squareRoot()
            }
            #expect(abs(value - entry.vcov) <= 1e-10 * scale, "\(entry.grp) \(entry.var1 ?? "") \(entry.var2 ?? ""): \(value) vs \(entry.vcov)")
        }
    }

    @Test("an intercept variance of 1e12 keeps the slope variance 35.07 (was reported as 9.2e-11)",
          arguments: [1e8, 1e10, 1e12])
    func largeNextToSmall(intercept: Double) throws {
        let given = Self.variances(intercept: intercept)
        let fit = try Self.model().fit(given: given)
        Self.expectReportedAsGiven(fit, given)
        #expect(fit.theta[2] > 0)
        #expect(!fit.isSingular)
        #expect(fit.fixedEffects.allSatisfy(\.isFinite) && fit.logLikelihood.isFinite)
    }

    @Test("a tiny slope variance next to a unit intercept variance is kept", arguments: [1e-8, 1e-14])
    func smallNextToLarge(days: Double) throws {
        let given = Self.variances(intercept: 612.09, days: days, covariance: 0)
        let fit = try Self.model().fit(given: given)
        Self.expectReportedAsGiven(fit, given)
    }

    @Test("a singular covariance matrix (correlation 1) is kept as given")
    func perfectCorrelation() throws {
        let given = Self.variances(intercept: 100, days: 4, covariance: 20)
        let fit = try Self.model().fit(given: given)
        Self.expectReportedAsGiven(fit, given)
    }

    @Test("variances that leave Λ'Z'ZΛ + I beyond double precision are refused with the reason")
    func illConditionedIsRefused() throws {
        #expect {
            _ = try Self.model().fit(given: Self.variances(intercept: 1e16))
        } throws: { error in
            let text = "\(error)"
            return text.hasPrefix("V.json") && text.contains("too ill-conditioned for double precision")
                && text.contains("condition number")
        }
    }

    @Test("the semidefinite Cholesky factor keeps each variance to its own precision")
    func choleskyTolerance() throws {
        var V = Matrix(zeros: 2, 2)
        V[0, 0] = 1e12; V[1, 1] = 35.07; V[0, 1] = 9.6; V[1, 0] = 9.6
        let L = try #require(SemidefiniteCholesky.factor(V, perEntry: true))
        #expect(abs(L[1, 0] * L[1, 0] + L[1, 1] * L[1, 1] - 35.07) <= 1e-12 * 35.07)
        // Relative to the largest variance (the Newton steps' test of definiteness) it is a zero pivot.
        let coarse = try #require(SemidefiniteCholesky.factor(V))
        #expect(coarse[1, 1] == 0)
        // Not positive semi-definite is still refused.
        V[0, 1] = 1e7; V[1, 0] = 1e7
        #expect(SemidefiniteCholesky.factor(V, perEntry: true) == nil)
    }

    // MARK: The command line

    static func writeVariances(_ given: VarianceComponents, to url: URL) throws {
        let entries = given.entries.map { entry -> String in
            var fields = ["\"grp\": \"\(entry.grp)\"", "\"vcov\": \(entry.vcov)"]
            if let var1 = entry.var1 { fields.append("\"var1\": \"\(var1)\"") }
            if let var2 = entry.var2 { fields.append("\"var2\": \"\(var2)\"") }
            return "{" + fields.joined(separator: ", ") + "}"
        }
        try ("{\"varcorr\": [" + entries.joined(separator: ", ") + "]}").write(to: url, atomically: true, encoding: .utf8)
    }

    @Test("lmm fit --variances: reported as given, or exit 1 with the reason and no output file")
    func commandLine() throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let kept = directory.appendingPathComponent("kept.json"), refused = directory.appendingPathComponent("refused.json")
        try Self.writeVariances(Self.variances(intercept: 1e12), to: kept)
        try Self.writeVariances(Self.variances(intercept: 1e16), to: refused)
        let data = Fixtures.path("sleepstudy.csv")

        let out = directory.appendingPathComponent("fit.json")
        let ok = try CommandRunner.run(["fit", data, "-f", Self.formula, "--variances", kept.path, "--json", out.path])
        #expect(ok.status == 0, "\(ok.stderr)")
        let report = try FitReport.load(path: out.path)
        let days = report.varcorr.first { $0.var1 == "Days" && $0.var2 == nil }?.vcov ?? .nan
        #expect(abs(days - 35.07) <= 1e-10 * 35.07, "Days \(days)")

        let failedOut = directory.appendingPathComponent("refused-fit.json")
        let failed = try CommandRunner.run(["fit", data, "-f", Self.formula, "--variances", refused.path, "--json", failedOut.path])
        #expect(failed.status == 1 && !failed.signaled)
        #expect(failed.stderr.contains("too ill-conditioned for double precision"), "\(failed.stderr)")
        #expect(!FileManager.default.fileExists(atPath: failedOut.path))
    }
}

import Foundation
import Testing
@testable import MixedModels

/// The Monte Carlo standard errors of the matrix-free fit (issue 16): present for every
/// stochastic estimate, positive on crossed factors, about 1/√N in the number of probes, and
/// written to the JSON report (`mc_se`) and the summary.
@Suite struct IterativeMonteCarloErrorTests {
    static let file = "synthetic_crossed.csv"
    static let formula = "y ~ 1 + x + (1 + x | user) + (1 | item)"

    static func fit(probes: Int, criterion: Criterion = .reml) throws -> FitResult {
        let parsed = try Formula.parse(formula)
        let table = try CSVReader.read(path: Fixtures.path(file), for: parsed)
        var options = IterativeOptions()
        options.probes = probes
        options.criterion = criterion
        return try IterativeMixedModel(formula: parsed, data: table).fit(options)
    }

    /// Every standard error, named as in the JSON report.
    static func named(_ errors: MonteCarloErrors) -> [(String, Double)] {
        var out: [(String, Double)] = []
        for (index, value) in errors.theta.enumerated() { out.append(("theta[\(index)]", value)) }
        out.append(("sigma", errors.sigma))
        for entry in errors.varcorr {
            let name = "\(entry.grp) \(entry.var1 ?? "") \(entry.var2 ?? "")"
            out.append(("vcov " + name, entry.vcov))
            out.append(("sdcor " + name, entry.sdcor ?? .nan))
        }
        out += [("objective", errors.objective), ("logLik", errors.logLik), ("AIC", errors.AIC), ("BIC", errors.BIC)]
        for entry in errors.condSD {
            out.append(("condSD median \(entry.factor) \(entry.term)", entry.relativeMedian))
            out.append(("condSD max \(entry.factor) \(entry.term)", entry.relativeMax))
        }
        return out
    }

    @Test(arguments: [Criterion.reml, .ml])
    func presentAndPositive(criterion: Criterion) throws {
        let fit = try Self.fit(probes: 16, criterion: criterion)
        let errors = try #require(fit.monteCarloErrors)
        #expect(errors.probes == 16)
        #expect(errors.theta.count == fit.theta.count)
        #expect(errors.varcorr.map(\.grp) == fit.varianceComponents.map(\.grp))
        #expect(errors.varcorr.map(\.var1) == fit.varianceComponents.map(\.var1))
        #expect(errors.varcorr.map(\.var2) == fit.varianceComponents.map(\.var2))
        #expect(Set(errors.condSD.map { "\($0.factor) \($0.term)" }) == ["user (Intercept)", "user x", "item (Intercept)"])
        for (name, value) in Self.named(errors) {
            #expect(value > 0 && value.isFinite, "\(name): \(value)")
        }
        #expect(errors.logLik == errors.objective / 2)
        // Each variance's error is small against the variance itself (a sound fit).
        for (entry, estimate) in zip(errors.varcorr, fit.varianceComponents) where entry.var2 == nil {
            #expect(entry.vcov < 0.5 * estimate.vcov, "\(entry.grp) \(entry.var1 ?? ""): ± \(entry.vcov) of \(estimate.vcov)")
        }
    }

    /// 8 → 64 probes: every standard error about √8 ≈ 2.8 times smaller (a standard error from
    /// 8 probes is itself uncertain by about a quarter, hence the loose factor).
    @Test func shrinkWithProbes() throws {
        let few = try #require(try Self.fit(probes: 8).monteCarloErrors)
        let many = try #require(try Self.fit(probes: 64).monteCarloErrors)
        let expected = 8.0.squareRoot()
        var ratios: [Double] = []
        for ((name, a), (_, b)) in zip(Self.named(few), Self.named(many)) {
            let ratio = a / b
            ratios.append(ratio)
            #expect(ratio > expected / 2.5 && ratio < expected * 2.5, "\(name): \(a) at 8 probes, \(b) at 64 (ratio \(ratio))")
        }
        let geometricMean = exp(ratios.map(log).reduce(0, +) / Double(ratios.count))
        #expect(geometricMean > expected / 1.6 && geometricMean < expected * 1.6, "geometric mean ratio \(geometricMean)")
    }

    /// One grouping factor: the per-level blocks are the whole system, nothing is stochastic.
    @Test func singleFactorHasNoMonteCarloError() throws {
        let parsed = try Formula.parse("Reaction ~ 1 + Days + (1 + Days | Subject)")
        let table = try CSVReader.read(path: Fixtures.path("sleepstudy.csv"), for: parsed)
        let fit = try IterativeMixedModel(formula: parsed, data: table).fit(IterativeOptions())
        let errors = try #require(fit.monteCarloErrors)
        for (name, value) in Self.named(errors) { #expect(value < 1e-6, "\(name): \(value)") }
    }

    /// `lmm fit --method iterative --json`: the `mc_se` object with the estimates' key names,
    /// read back; the summary marks the approximate quantities. The exact method writes none.
    @Test func inJSONAndSummary() throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let json = directory.appendingPathComponent("fit.json").path
        let data = Fixtures.path(Self.file)
        let run = try CommandRunner.run(["fit", data, "-f", Self.formula, "--method", "iterative", "--probes", "8", "--json", json])
        #expect(run.status == 0, "\(run.stderr)")
        let text = try String(contentsOfFile: json, encoding: .utf8)
        for key in ["\"mc_se\"", "\"relative_median\"", "\"relative_max\"", "\"probes\": 8"] {
            #expect(text.contains(key), "\(key) missing")
        }
        let report = try FitReport.load(path: json)
        let errors = try #require(report.mcSE)
        #expect(errors.varcorr.count == report.varcorr.count)
        #expect(errors.theta.count == report.theta.count)
        #expect(run.stdout.contains("REML criterion at convergence:"))
        #expect(run.stdout.contains("(approximate: Monte Carlo s.e. "))
        #expect(run.stdout.contains("Approximate (stochastic traces, 8 probes); Monte Carlo standard errors:"))
        #expect(run.stdout.contains("condSD approximate, relative Monte Carlo s.e.: user (Intercept) median "))

        let exactJSON = directory.appendingPathComponent("exact.json").path
        let exact = try CommandRunner.run(["fit", data, "-f", Self.formula, "--json", exactJSON, "--quiet"])
        #expect(exact.status == 0, "\(exact.stderr)")
        #expect(try FitReport.load(path: exactJSON).mcSE == nil)
        #expect(!(try String(contentsOfFile: exactJSON, encoding: .utf8)).contains("mc_se"))
    }
}

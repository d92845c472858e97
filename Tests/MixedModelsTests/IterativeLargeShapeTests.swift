import Foundation
import Testing
@testable import MixedModels

/// Issue 16's accuracy targets on the 1M-row users × items shape (datagen `users-items`, seed 1:
/// 96,454 users with a random slope × 10,000 items), `y ~ 1 + x + (1 + x | user) + (1 | item)`,
/// REML, 32 probes, against the exact engine's fit of the same file (stored in
/// `Fixtures/users-items-1m-exact.json`: its estimates and a sample of about 1 in 200 levels of
/// each term's BLUPs and condSDs, with each term's largest |BLUP|). About 15 s.
@Suite struct IterativeLargeShapeTests {
    struct Reference: Decodable {
        struct Entry: Decodable {
            var grp: String
            var var1: String?
            var var2: String?
            var vcov: Double
        }
        struct Level: Decodable {
            var factor: String
            var term: String
            var level: String
            var value: Double
            var condSD: Double
        }
        var nobs: Int
        var fixef: [String: Double]
        var varcorr: [Entry]
        var objective: Double
        var ranef_largest: [String: Double]
        var ranef_sample: [Level]
    }

    @Test func oneMillionRowsAgainstTheExactFit() throws {
        let reference = try JSONDecoder().decode(Reference.self,
                                                 from: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("users-items-1m-exact.json"))))
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let data = directory.appendingPathComponent("ui1m.csv").path
        let made = try CommandRunner.run("datagen", ["--preset", "users-items", "--rows", "1000000", "--seed", "1", "--out", data,
                                                      "--no-ranef", "--quiet"])
        try #require(made.status == 0, "\(made.stderr)")
        let formula = try Formula.parse("y ~ 1 + x + (1 + x | user) + (1 | item)")
        let model = try IterativeMixedModel(formula: formula, data: try CSVReader.read(path: data, for: formula))
        let fit = try model.fitWithErrors(IterativeOptions())
        let result = fit.result
        #expect(result.nobs == reference.nobs && result.converged)

        // Every variance within 0.2 % of the exact one, the covariance within 0.2 % of √(var·var).
        let exact = reference.varcorr, estimated = result.varianceComponents
        try #require(exact.count == estimated.count)
        func variance(_ grp: String, _ name: String) -> Double { exact.first { $0.grp == grp && $0.var1 == name && $0.var2 == nil }!.vcov }
        for (e, i) in zip(exact, estimated) {
            #expect(e.grp == i.grp && e.var1 == i.var1 && e.var2 == i.var2)
            let scale = e.var2.map { (variance(e.grp, e.var1!) * variance(e.grp, $0)).squareRoot() } ?? e.vcov
            #expect(abs(i.vcov - e.vcov) <= 0.002 * scale, "\(e.grp) \(e.var1 ?? "") \(e.var2 ?? ""): exact \(e.vcov), iterative \(i.vcov)")
        }
        // β within 1e-5; the REML criterion within 1 unit (either side).
        for (name, value) in zip(result.fixedEffectNames, result.fixedEffects) {
            let e = try #require(reference.fixef[name])
            #expect(abs(value - e) <= 1e-5 * max(abs(e), 1), "\(name): exact \(e), iterative \(value)")
        }
        #expect(abs(result.objective - reference.objective) <= 1, "REML criterion: exact \(reference.objective), iterative \(result.objective)")

        // BLUPs within 1e-3 of the term's largest; condSDs within 2 % for at least 95 % of the
        // sampled levels of each term (over all levels: 99.9 % of users, 98.7 % of items; the
        // worst few, 0.27 for a user intercept, 0.46 for an item, are the stochastic diagonal's
        // misses, see README).
        var byKey: [String: RanefRow] = [:]
        for effect in result.randomEffects { byKey["\(effect.factor)|\(effect.term)|\(effect.level)"] = effect }
        var condSDErrors: [String: [Double]] = [:]
        for level in reference.ranef_sample {
            let effect = try #require(byKey["\(level.factor)|\(level.term)|\(level.level)"])
            let largest = try #require(reference.ranef_largest["\(level.factor) \(level.term)"])
            #expect(abs(effect.value - level.value) <= 1e-3 * largest, "\(level.factor) \(level.term) \(level.level)")
            condSDErrors["\(level.factor) \(level.term)", default: []].append(abs(effect.condSD - level.condSD) / level.condSD)
        }
        for (term, errors) in condSDErrors {
            let within = Double(errors.filter { $0 <= 0.02 }.count) / Double(errors.count)
            #expect(within >= 0.95, "\(term): \(within) of \(errors.count) sampled condSDs within 2 %")
        }
    }
}

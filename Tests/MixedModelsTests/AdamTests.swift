import Foundation
import Testing
@testable import MixedModels

/// Issue 5's acceptance for streaming Adam: given the same variance components, β̂ within 1e-4
/// relative and every BLUP within 1e-3 of its term's largest |BLUP| of the exact sparse
/// Cholesky solution — on sleepstudy, lme4's other example data (crossed, nested, interaction
/// and factor-valued terms) and a crossed synthetic set of 200k rows (20k users, 2k items);
/// learned penalties close to the exact REML fit; and the same result for the same seed,
/// whatever the number of threads.
@Suite("Streaming Adam")
struct AdamTests {
    /// The exact fit (``LinearMixedModel/fit(given:criterion:)``) and the streamed model of a CSV
    /// file, converted to an `.lmmbin` file in `directory` as `lmm fit --method adam` does.
    static func models(csv: String, formula text: String, in directory: URL) throws -> (LinearMixedModel, StreamingMixedModel) {
        let formula = try Formula.parse(text)
        let exact = try LinearMixedModel(formula: formula, data: try CSVReader.read(path: csv, for: formula))
        let binary = directory.appendingPathComponent(UUID().uuidString + ".lmmbin").path
        try CSVConversion.convert(csv: csv, to: binary, select: formula.columnsUsed, categorical: formula.groupingColumns)
        return (exact, try StreamingMixedModel(formula: formula, reader: try LMMBinaryReader(path: binary)))
    }

    static func given(_ variances: VarianceComponents) -> AdamOptions {
        var options = AdamOptions()
        options.penalties = .given(variances)
        return options
    }

    /// β within `beta` relative and every BLUP within `blup` of its term's largest |BLUP|.
    static func expectClose(_ adam: FitResult, _ exact: FitResult, beta: Double = 1e-4, blup: Double = 1e-3,
                            sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(adam.fixedEffectNames == exact.fixedEffectNames, sourceLocation: sourceLocation)
        for (name, (ours, theirs)) in zip(exact.fixedEffectNames, zip(adam.fixedEffects, exact.fixedEffects)) {
            #expect(Compare.relative(ours, theirs) <= beta, "β \(name): \(ours) vs \(theirs)", sourceLocation: sourceLocation)
        }
        #expect(adam.randomEffects.count == exact.randomEffects.count, sourceLocation: sourceLocation)
        var largest: [String: Double] = [:]
        for row in exact.randomEffects { largest[row.factor + "/" + row.term, default: 0] = max(largest[row.factor + "/" + row.term, default: 0], abs(row.value)) }
        let ours = Dictionary(uniqueKeysWithValues: adam.randomEffects.map { ($0.factor + "/" + $0.term + "/" + $0.level, $0.value) })
        var worst = 0.0
        for row in exact.randomEffects {
            guard let value = ours[row.factor + "/" + row.term + "/" + row.level] else {
                Issue.record("missing random effect \(row.factor) \(row.term) \(row.level)", sourceLocation: sourceLocation)
                continue
            }
            worst = max(worst, abs(value - row.value) / max(largest[row.factor + "/" + row.term]!, 1e-12))
        }
        #expect(worst <= blup, "largest BLUP error \(worst) of the term's largest |BLUP|", sourceLocation: sourceLocation)
    }

    @Test("given lme4's variances, matches the exact solve", arguments: [
        "sleepstudy_reml", "sleepstudy_zerocorr_reml", "dyestuff_reml", "penicillin_reml", "pastes_reml", "cake_reml",
        "machines_reml", "machines_slopes_reml", "ergostool_ml", "oxide_reml",
    ])
    func matchesExactSolve(_ name: String) throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let reference = try Fixtures.reference(name)
        let (exact, streamed) = try Self.models(csv: Fixtures.path(Fixtures.dataFile(for: name)), formula: reference.formula,
                                                in: directory)
        let variances = try VarianceComponents.load(path: Fixtures.path(name + ".json"))
        let exactFit = try exact.fit(given: variances, criterion: reference.criterion)
        let adamFit = try streamed.fit(adam: Self.given(variances))
        #expect(adamFit.converged)
        #expect(adamFit.method == .adam)
        Self.expectClose(adamFit, exactFit)
        #expect(Set(adamFit.groups.map(\.name)) == Set(exactFit.groups.map(\.name)))
        for (ours, theirs) in zip(adamFit.groups, exactFit.groups) { #expect(ours.levels == theirs.levels) }
    }

    @Test("sleepstudy: one grouping factor, so the diagonal blocks give the exact condSD and criterion")
    func singleFactorExtras() throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (exact, streamed) = try Self.models(csv: Fixtures.path("sleepstudy.csv"),
                                                formula: "Reaction ~ 1 + Days + (1 + Days | Subject)", in: directory)
        let variances = try VarianceComponents.load(path: Fixtures.path("sleepstudy_reml.json"))
        let exactFit = try exact.fit(given: variances)
        let adamFit = try streamed.fit(adam: Self.given(variances))
        Compare.ranef(adamFit.randomEffects, exactFit.randomEffects, tolerance: 1e-3, sdTolerance: 1e-6)
        #expect(abs(adamFit.objective - exactFit.objective) < 1e-4)
        for (ours, theirs) in zip(adamFit.fixedEffectStandardErrors, exactFit.fixedEffectStandardErrors) {
            #expect(Compare.relative(ours, theirs) < 1e-6)
        }
    }

    /// The crossed synthetic set of the issue: 200k rows, 20k users with random slopes, 2k items.
    @Test("200k rows, 20k users × 2k items: matches the exact solve at the generating variances")
    func crossedSynthetic() throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let data = directory.appendingPathComponent("crossed.lmmbin").path
        let truth = directory.appendingPathComponent("truth.json").path
        let made = try CommandRunner.run("datagen", ["--preset", "users-items", "--rows", "200000", "--seed", "5",
                                                     "--out", data, "--truth", truth, "--no-ranef", "--quiet"])
        try #require(made.status == 0, "\(made.stderr)")
        let formula = try Formula.parse("y ~ 1 + x + (1 + x | user) + (1 | item)")
        let reader = try LMMBinaryReader(path: data)
        let exact = try LinearMixedModel(formula: formula, data: try reader.readAll())
        let variances = try VarianceComponents.load(path: truth)
        let exactFit = try exact.fit(given: variances)
        let adamFit = try StreamingMixedModel(formula: formula, reader: reader).fit(adam: Self.given(variances))
        #expect(adamFit.converged)
        #expect(adamFit.groups.map(\.levels) == exactFit.groups.map(\.levels))
        Self.expectClose(adamFit, exactFit)
        // The approximate standard errors (each term's exact contribution, added) stay close.
        for (ours, theirs) in zip(adamFit.fixedEffectStandardErrors, exactFit.fixedEffectStandardErrors) {
            #expect(Compare.relative(ours, theirs) < 0.02, "SE \(ours) vs \(theirs)")
        }
    }

    /// MacKay's evidence form with the per-level diagonal posterior variances, against the exact
    /// REML fit of the same data (crossed users × items, intercepts).
    @Test("learned penalties are close to the exact REML estimates")
    func learnedPenalties() throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let data = directory.appendingPathComponent("crossed.lmmbin").path
        let made = try CommandRunner.run("datagen", ["--preset", "users-items-intercepts", "--rows", "60000", "--seed", "2",
                                                     "--out", data, "--quiet"])
        try #require(made.status == 0, "\(made.stderr)")
        let formula = try Formula.parse("y ~ 1 + x1 + x2 + (1 | user) + (1 | item)")
        let reader = try LMMBinaryReader(path: data)
        let exactFit = try LinearMixedModel(formula: formula, data: try reader.readAll()).fit(criterion: .reml)
        let adamFit = try StreamingMixedModel(formula: formula, reader: reader).fit(adam: AdamOptions())
        #expect(adamFit.converged)
        for (ours, theirs) in zip(adamFit.varianceComponents, exactFit.varianceComponents) {
            #expect(ours.grp == theirs.grp)
            #expect(Compare.relative(ours.vcov, theirs.vcov) < 0.05, "\(ours.grp) \(ours.vcov) vs REML \(theirs.vcov)")
        }
    }

    @Test("the same seed gives the same fit, whatever the number of threads; another seed the same answer")
    func determinism() throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let data = directory.appendingPathComponent("small.lmmbin").path
        let made = try CommandRunner.run("datagen", ["--preset", "users-items", "--rows", "30000", "--seed", "9",
                                                     "--rows-per-chunk", "4096", "--out", data, "--quiet"])
        try #require(made.status == 0, "\(made.stderr)")
        let formula = try Formula.parse("y ~ 1 + x + (1 + x | user) + (1 | item)")
        func fit(seed: UInt64, concurrent: Bool) throws -> FitResult {
            var options = AdamOptions()
            options.seed = seed
            options.concurrent = concurrent
            options.batchSize = 8_192
            return try StreamingMixedModel(formula: formula, reader: try LMMBinaryReader(path: data)).fit(adam: options)
        }
        let first = try fit(seed: 3, concurrent: true)
        let again = try fit(seed: 3, concurrent: true)
        let serial = try fit(seed: 3, concurrent: false)
        for other in [again, serial] {
            #expect(other.fixedEffects == first.fixedEffects)
            #expect(other.varianceComponents == first.varianceComponents)
            #expect(other.randomEffects == first.randomEffects)
            #expect(other.iterations == first.iterations)
        }
        let reseeded = try fit(seed: 4, concurrent: true)
        #expect(reseeded.trajectory.map(\.objective) != first.trajectory.map(\.objective))
        for (ours, theirs) in zip(reseeded.varianceComponents, first.varianceComponents) {
            #expect(Compare.relative(ours.vcov, theirs.vcov) < 0.01)
        }
    }
}

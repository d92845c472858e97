import Foundation
import Testing
@testable import MixedModels

/// The matrix-free method against the exact engine.
@Suite struct IterativeTests {
    static func model(_ file: String, _ formula: String) throws -> (LinearMixedModel, IterativeMixedModel) {
        let parsed = try Formula.parse(formula)
        let table = try CSVReader.read(path: Fixtures.path(file), for: parsed)
        return (try LinearMixedModel(formula: parsed, data: table), try IterativeMixedModel(formula: parsed, data: table))
    }

    static let cases: [(String, String)] = [
        ("sleepstudy.csv", "Reaction ~ 1 + Days + (1 + Days | Subject)"),
        ("Penicillin.csv", "diameter ~ 1 + (1 | plate) + (1 | sample)"),
        ("synthetic_crossed.csv", "y ~ 1 + x + (1 + x | user) + (1 | item)"),
    ]

    @Test(arguments: [PreconditionerKind.blockJacobi, .gaussSeidel], [0, 1, 2])
    func pcgSolutionEqualsExactPLS(kind: PreconditionerKind, index: Int) throws {
        let (file, formula) = Self.cases[index]
        let (exact, iterative) = try Self.model(file, formula)
        let theta = exact.parameters.initialTheta.map { $0 == 1 ? 0.8 : 0.1 }
        try exact.pls.update(theta: theta)
        let u = try exact.pls.sphericalEffects()
        let beta = exact.pls.fixedEffects()
        let solution = iterative.solvePLS(theta: theta, preconditioner: kind, tolerance: 1e-12)
        #expect(solution.report.converged)
        let uScale = u.map(abs).max()!, betaScale = beta.map(abs).max()!
        for (a, b) in zip(u, solution.u) { #expect(abs(a - b) <= 1e-8 * uScale) }
        for (a, b) in zip(beta, solution.beta) { #expect(abs(a - b) <= 1e-8 * betaScale) }
    }
}

/// The iterative REML fit against the exact one, on each fixture once (cached).
@Suite struct IterativeFitTests {
    struct Pair: Sendable {
        let exact: FitResult
        let iterative: IterativeFit
        let logDetL: Double
    }

    nonisolated(unsafe) static var cache: [String: Pair] = [:]
    static let lock = NSLock()

    static func pair(_ index: Int, probes: Int = 32, criterion: Criterion = .reml) throws -> Pair {
        let (file, formula) = IterativeTests.cases[index]
        let key = "\(file) \(probes) \(criterion)"
        lock.lock()
        defer { lock.unlock() }
        if let cached = cache[key] { return cached }
        let (exactModel, iterativeModel) = try IterativeTests.model(file, formula)
        let exact = try exactModel.fit(criterion: criterion)
        var options = IterativeOptions()
        options.probes = probes
        options.criterion = criterion
        let iterative = try iterativeModel.fitWithErrors(options)
        try exactModel.pls.update(theta: iterative.result.theta)
        let pair = Pair(exact: exact, iterative: iterative, logDetL: exactModel.pls.logDetL)
        cache[key] = pair
        return pair
    }

    /// Every variance component within 4 Monte Carlo standard errors (plus 5e-5 of the largest
    /// variance, for the tolerances of the two optimizers) of the exact estimate.
    @Test(arguments: [(0, Criterion.reml), (1, .reml), (2, .reml), (0, .ml), (1, .ml)])
    func varianceComponentsAgreeWithinStandardErrors(index: Int, criterion: Criterion) throws {
        let pair = try Self.pair(index, criterion: criterion)
        let exact = pair.exact.varianceComponents, iterative = pair.iterative.result.varianceComponents
        let errors = Self.errorsInVarCorrOrder(pair.iterative)
        let scale = exact.map { abs($0.vcov) }.max()!
        for ((e, i), se) in zip(zip(exact, iterative), errors) {
            #expect(abs(e.vcov - i.vcov) <= 4 * se + 5e-5 * scale, "\(e.grp) \(e.var1 ?? "") \(e.var2 ?? ""): exact \(e.vcov), iterative \(i.vcov) ± \(se)")
        }
        #expect(pair.iterative.result.converged)
    }

    /// One grouping factor: the per-level blocks are A itself, so the traces are exact and the
    /// fit is the exact one to the tolerances of the two optimizers (BOBYQA's θ is good to
    /// about 1e-5).
    @Test func singleFactorIsExact() throws {
        let pair = try Self.pair(0)
        let scale = pair.exact.varianceComponents.map { abs($0.vcov) }.max()!
        for (e, i) in zip(pair.exact.varianceComponents, pair.iterative.result.varianceComponents) {
            #expect(abs(e.vcov - i.vcov) <= 5e-5 * scale)
        }
        #expect(pair.iterative.componentStandardErrors.allSatisfy { $0 < 1e-10 })
        #expect(abs(pair.exact.objective - pair.iterative.result.objective) < 1e-4)
    }

    /// Crossed factors: fixed effects and BLUPs near the exact ones, the REML criterion within
    /// 4 standard errors of the log determinant (at the iterative θ̂).
    @Test(arguments: [1, 2])
    func estimatesAndCriterion(index: Int) throws {
        let pair = try Self.pair(index)
        let exact = pair.exact, fit = pair.iterative.result
        for (a, b) in zip(exact.fixedEffects, fit.fixedEffects) { #expect(abs(a - b) <= 1e-3 * max(abs(a), 1)) }
        let largest = exact.randomEffects.map { abs($0.value) }.max()!
        for (a, b) in zip(exact.randomEffects, fit.randomEffects) { #expect(abs(a.value - b.value) <= 0.02 * largest) }
        // The SLQ log det against the exact one at the same θ: compare through the criterion.
        let logDetError = abs(fit.objective - exact.objective)
        #expect(logDetError <= 4 * pair.iterative.objectiveStandardError + 0.5, "criterion \(fit.objective) vs \(exact.objective)")
    }

    /// condSD from the stochastic diagonal: for the large majority of levels within 2 % of
    /// lme4's (the exact selected inverse), on crossed factors.
    @Test func conditionalStandardDeviations() throws {
        let pair = try Self.pair(2)
        var byTerm: [String: [Double]] = [:]
        for (a, b) in zip(pair.exact.randomEffects, pair.iterative.result.randomEffects) {
            #expect(a.level == b.level && a.term == b.term)
            byTerm[a.factor + " " + a.term, default: []].append(abs(a.condSD - b.condSD) / a.condSD)
        }
        for (name, errors) in byTerm {
            let sorted = errors.sorted()
            #expect(sorted[sorted.count / 2] < 0.02, "\(name): median relative error \(sorted[sorted.count / 2])")
            #expect(Double(errors.filter { $0 > 0.02 }.count) <= 0.4 * Double(errors.count), "\(name)")
        }
    }

    /// More probes, smaller Monte Carlo errors (about 1/√N: 8 → 128 probes, a quarter), and the
    /// estimates nearer the exact ones.
    @Test func standardErrorsShrinkWithProbes() throws {
        let few = try Self.pair(1, probes: 8), many = try Self.pair(1, probes: 128)
        for (a, b) in zip(few.iterative.componentStandardErrors, many.iterative.componentStandardErrors) {
            #expect(b < 0.6 * a)
        }
        #expect(many.iterative.objectiveStandardError < 0.6 * few.iterative.objectiveStandardError)
        let exact = many.exact.varianceComponents.map(\.vcov)
        let errorFew = zip(exact, few.iterative.result.varianceComponents).map { abs($0 - $1.vcov) / abs($0) }.max()!
        let errorMany = zip(exact, many.iterative.result.varianceComponents).map { abs($0 - $1.vcov) / abs($0) }.max()!
        #expect(errorMany < errorFew)
    }

    /// A fit repeats exactly for a seed.
    @Test func deterministicForSeed() throws {
        let (file, formula) = IterativeTests.cases[1]
        let (_, model) = try IterativeTests.model(file, formula)
        var options = IterativeOptions()
        options.probes = 8
        let first = try model.fit(options), second = try model.fit(options)
        #expect(first.varianceComponents == second.varianceComponents)
        #expect(first.objective == second.objective)
        #expect(first.randomEffects == second.randomEffects)
    }

    /// The standard errors, reordered from φ's order (per term, lower triangle column by
    /// column, then σ²) to VarCorr's (per term: variances, then covariances; Residual last).
    static func errorsInVarCorrOrder(_ fit: IterativeFit) -> [Double] {
        var out: [Double] = []
        var index = 0
        var grouped: [[Double]] = []
        let entries = fit.result.varianceComponents.filter { $0.grp != "Residual" }
        var position = 0
        while position < entries.count {
            let group = entries[position].grp
            let count = entries[position...].prefix { $0.grp == group }.count
            let k = Int((Double(8 * count + 1).squareRoot() - 1) / 2)
            var lower = [[Double]](repeating: [Double](repeating: 0, count: k), count: k)
            for s in 0..<k { for r in s..<k { lower[r][s] = fit.componentStandardErrors[index]; index += 1 } }
            var ordered: [Double] = (0..<k).map { lower[$0][$0] }
            for s in 0..<k { for r in (s + 1)..<max(s + 1, k) { ordered.append(lower[r][s]) } }
            grouped.append(ordered)
            position += count
        }
        for g in grouped { out.append(contentsOf: g) }
        out.append(fit.componentStandardErrors[index])
        return out
    }
}

@Suite struct LanczosQuadratureTests {
    /// The tridiagonal eigensolver against e₁'log(T)e₁ computed by Jacobi rotations on the dense T.
    @Test func tridiagonalQuadratureMatchesDenseJacobi() {
        var generator = SplitMix64(seed: 7)
        let s = 12
        let alpha = (0..<s).map { _ in 1 + generator.nextDouble() }
        let beta = (0..<(s - 1)).map { _ in 0.4 * generator.nextDouble() }
        let (values, first) = TridiagonalEigen.decompose(diagonal: alpha, offDiagonal: beta)
        var T = Matrix(zeros: s, s)
        for i in 0..<s { T[i, i] = alpha[i] }
        for i in 0..<(s - 1) { T[i, i + 1] = beta[i]; T[i + 1, i] = beta[i] }
        let dense = SymmetricEigenvalues.of(T).sorted()
        for (a, b) in zip(values.sorted(), dense) { #expect(abs(a - b) < 1e-12) }
        #expect(abs(first.reduce(0) { $0 + $1 * $1 } - 1) < 1e-12)
        // e₁'T e₁ = Σ τ² λ and e₁'T²e₁ = α₁² + β₁².
        #expect(abs(zip(values, first).reduce(0) { $0 + $1.1 * $1.1 * $1.0 } - alpha[0]) < 1e-12)
        #expect(abs(zip(values, first).reduce(0) { $0 + $1.1 * $1.1 * $1.0 * $1.0 } - (alpha[0] * alpha[0] + beta[0] * beta[0])) < 1e-12)
    }
}

/// `lmm fit --method iterative` end to end, from CSV and from .lmmbin.
@Suite struct IterativeCommandTests {
    @Test func fitsPenicillinFromCSVAndLMMBinary() throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let csv = Fixtures.path("Penicillin.csv")
        let binary = directory.appendingPathComponent("penicillin.lmmbin").path
        let formula = "diameter ~ 1 + (1 | plate) + (1 | sample)"
        let converted = try CommandRunner.run(["convert", csv, binary])
        #expect(converted.status == 0, "\(converted.stderr)")
        var documents: [[String: Any]] = []
        for (index, data) in [csv, binary].enumerated() {
            let json = directory.appendingPathComponent("fit\(index).json").path
            let ranef = directory.appendingPathComponent("ranef\(index).csv").path
            let result = try CommandRunner.run(["fit", data, "-f", formula, "--method", "iterative", "--probes", "16", "--seed", "3",
                                                "--json", json, "--ranef", ranef])
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout.contains("Linear mixed model fit by iterative"))
            #expect(result.stdout.contains("Monte Carlo standard errors"))
            #expect(result.stderr.contains("CG iterations"))
            documents.append(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as! [String: Any])
            let rows = try String(contentsOfFile: ranef, encoding: .utf8).split(separator: "\n")
            #expect(rows.count == 1 + 24 + 6)
        }
        #expect(documents[0]["varcorr"] as? NSArray == documents[1]["varcorr"] as? NSArray)
    }

    @Test func rejectsVariancesAndTooFewProbes() throws {
        let csv = Fixtures.path("Penicillin.csv")
        let formula = "diameter ~ 1 + (1 | plate) + (1 | sample)"
        let few = try CommandRunner.run(["fit", csv, "-f", formula, "--method", "iterative", "--probes", "1"])
        #expect(few.status != 0)
        #expect(few.stderr.contains("--probes must be at least 2"))
    }
}

import Foundation
import Testing
@testable import MixedModels

/// The matrix-free fit is the same, bit for bit, for a seed whatever the number of threads
/// (issue 16): on data with several row chunks (``MixedModelOperator/rowChunk``) and level
/// chunks (``MixedModelOperator/levelChunk``), so that the passes really split.
@Suite struct IterativeThreadingTests {
    /// Runs `body` on 20,000 rows, 6,000 users (about 5,000 occur) × 200 items (datagen's
    /// users-items shape) in a temporary directory, removed afterwards.
    static func withData<T>(_ body: (String) throws -> T) throws -> T {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("threads.csv").path
        let made = try CommandRunner.run("datagen", ["--preset", "users-items", "--rows", "20000", "--levels", "user=6000,item=200",
                                                     "--seed", "3", "--out", path, "--quiet"])
        guard made.status == 0 else { throw IterativeFitError(message: "datagen failed: \(made.stderr)") }
        return try body(path)
    }
    static let formula = "y ~ 1 + x + (1 + x | user) + (1 | item)"

    @Test func sameFitWithOneAndTwoThreads() throws {
        try Self.withData { path in
            let parsed = try Formula.parse(Self.formula)
            let table = try CSVReader.read(path: path, for: parsed)
            let model = try IterativeMixedModel(formula: parsed, data: table)
            #expect(model.model.n > MixedModelOperator.rowChunk)
            #expect(model.model.terms[0].levelCount > MixedModelOperator.levelChunk)
            var fits: [FitResult] = []
            for threads in [1, 2] {
                var options = IterativeOptions()
                options.probes = 4
                options.threads = threads
                fits.append(try model.fit(options))
            }
            for other in fits.dropFirst() {
                #expect(other.varianceComponents == fits[0].varianceComponents)
                #expect(other.theta == fits[0].theta)
                #expect(other.fixedEffects == fits[0].fixedEffects)
                #expect(other.fixedEffectStandardErrors == fits[0].fixedEffectStandardErrors)
                #expect(other.objective == fits[0].objective)
                #expect(other.randomEffects == fits[0].randomEffects)
                #expect(other.monteCarloErrors == fits[0].monteCarloErrors)
                #expect(other.iterations == fits[0].iterations)
            }
        }
    }

    /// The command line: `LMM_THREADS=1` and `LMM_THREADS=2` write the same JSON text, but for
    /// the wall time.
    @Test func sameReportWithLMMThreads() throws {
        try Self.withData { path in
            let directory = URL(fileURLWithPath: path).deletingLastPathComponent()
            var texts: [[Substring]] = []
            for threads in ["1", "2"] {
                let json = directory.appendingPathComponent("fit-\(threads).json").path
                let run = try CommandRunner.run("lmm", ["fit", path, "-f", Self.formula, "--method", "iterative", "--probes", "4",
                                                        "--json", json, "--quiet"], environment: ["LMM_THREADS": threads])
                #expect(run.status == 0, "\(run.stderr)")
                let text = try String(contentsOfFile: json, encoding: .utf8)
                texts.append(text.split(separator: "\n").filter { !$0.contains("\"elapsed_seconds\"") })
            }
            #expect(texts[0].count == texts[1].count)
            let differing = zip(texts[0], texts[1]).filter { $0 != $1 }
            #expect(differing.isEmpty, "\(differing.count) lines differ, first: \(differing.first.map { "\($0.0) | \($0.1)" } ?? "")")
        }
    }
}

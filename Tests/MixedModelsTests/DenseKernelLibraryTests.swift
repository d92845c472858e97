import Foundation
import Testing
@testable import MixedModels

/// The dense kernels' library (``BLASLibrary``) changes no result beyond rounding: the same
/// fits at fixed variance components with the library `.ci/run` installs and with the
/// system's BLAS/LAPACK (`LMM_BLAS=system`), number by number.
@Suite("Dense kernel library")
struct DenseKernelLibraryTests {
    static let fits: [(data: String, formula: String, reference: String)] = [
        ("synthetic_crossed.csv", "y ~ 1 + x + (1 + x | user) + (1 | item)", "synthetic_crossed_reml.json"),
        ("synthetic_three.csv", "y ~ 1 + service + (1 | s) + (1 | d) + (1 | dept:service)", "synthetic_three_ml.json"),
        ("sleepstudy.csv", "Reaction ~ 1 + Days + (1 + Days | Subject)", "sleepstudy_reml.json"),
    ]

    @Test("a current OpenBLAS is loaded")
    func currentLibraryLoaded() {
        #expect(BLASLibrary.current.description.hasPrefix("libscipy_openblas.so"),
                "\(BLASLibrary.current.description): run .ci/run --install-only to install libscipy_openblas.so")
    }

    @Test("same estimates with the system BLAS, to 1e-10", arguments: fits)
    func sameResults(_ fit: (data: String, formula: String, reference: String)) throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var documents: [Any] = []
        for library in ["system", nil] as [String?] {
            let out = directory.appendingPathComponent("\(library ?? "current").json").path
            let run = try CommandRunner.run("lmm", ["fit", Fixtures.path(fit.data), "-f", fit.formula, "--quiet",
                                                    "--variances", Fixtures.path(fit.reference), "--json", out],
                                            environment: library.map { ["LMM_BLAS": $0] } ?? [:])
            try #require(run.status == 0, "\(run.stderr)")
            documents.append(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out))))
        }
        var compared = 0
        compare(documents[0], documents[1], path: "$", compared: &compared)
        #expect(compared > 20)
    }

    /// Every number of `a` within 1e-10 (relative to the larger magnitude, or 1e-12 absolute) of `b`'s.
    private func compare(_ a: Any, _ b: Any, path: String, compared: inout Int) {
        switch (a, b) {
        case let (a as [String: Any], b as [String: Any]):
            #expect(Set(a.keys) == Set(b.keys), "\(path): keys")
            for (key, value) in a where key != "elapsed_seconds" {
                if let other = b[key] { compare(value, other, path: path + "." + key, compared: &compared) }
            }
        case let (a as [Any], b as [Any]):
            #expect(a.count == b.count, "\(path): length")
            for (index, pair) in zip(a, b).enumerated() { compare(pair.0, pair.1, path: "\(path)[\(index)]", compared: &compared) }
        case let (a as NSNumber, b as NSNumber):
            let (x, y) = (a.doubleValue, b.doubleValue)
            #expect(abs(x - y) <= max(1e-10 * max(abs(x), abs(y)), 1e-12), "\(path): \(x) vs \(y)")
            compared += 1
        default:
            break
        }
    }
}

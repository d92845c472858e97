import Foundation
import Testing
@testable import MixedModels

/// The per-level blocks of the joint covariance (``LevelCovariance``, for models with one random
/// term too large for the dense C) against the dense path on small models.
@Suite("Per-level blocks of the joint covariance")
struct LevelCovarianceTests {
    static let cases: [(formula: String, data: String, weights: String?)] = [
        ("Reaction ~ 1 + Days + (1 + Days | Subject)", "sleepstudy.csv", nil),
        ("Reaction ~ 1 + Days + (1 | Subject)", "sleepstudy_weighted.csv", "w"),
        ("score ~ 1 + Machine + (1 + Machine | Worker)", "Machines.csv", nil),
    ]

    @Test("C_bb(l) and C_bβ(l) equal the dense C's blocks to 1e-10; intervals from them equal the dense path's",
          arguments: 0..<3)
    func matchesDense(_ index: Int) throws {
        let (formula, data, weights) = Self.cases[index]
        let options = ModelOptions(weights: weights)
        let path = Fixtures.path(data)
        let parsed = try Formula.parse(formula)
        let table = try CSVReader.read(path: path, for: parsed, options: options)
        let model = try LinearMixedModel(formula: parsed, data: table, options: options)
        let result = try model.fit()
        let sigmaSquared = result.sigma * result.sigma
        let C = try #require(JointCovariance.packed(frame: model.frame, parameters: model.parameters, theta: result.theta,
                                                    sigmaSquared: sigmaSquared))
        let blocks = try #require(LevelCovariance(frame: model.frame, parameters: model.parameters, theta: result.theta,
                                                  sigmaSquared: sigmaSquared))
        let term = model.frame.randomTerms[0]
        let k = term.effectCount, p = model.frame.X.columns, q = term.columnCount, m = q + p
        var scale = 0.0
        for d in 0..<m { scale = max(scale, JointCovariance.entry(C, m, d, d)) }
        var worst = 0.0
        for l in 0..<term.levelCount {
            for r in 0..<k {
                for s in 0..<k { worst = max(worst, abs(blocks.bb(l, r, s) - JointCovariance.entry(C, m, l * k + r, l * k + s))) }
                for c in 0..<p { worst = max(worst, abs(blocks.bBeta(l, r, c) - JointCovariance.entry(C, m, l * k + r, q + c))) }
            }
        }
        #expect(worst <= 1e-10 * scale, "largest difference \(worst), scale \(scale)")

        // Intervals: the dense file against one with only the blocks (through the file format).
        var saved = try SavedModel(model: model, result: result, data: table, dataPath: path, options: options)
        #expect(saved.jointCovariance != nil && saved.levelCovariance == nil)
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let newData = directory.appendingPathComponent("new.csv").path
        let levels = term.levels
        var csv = "Days,Subject,Machine,Worker\n"
        for row in 0..<12 {
            csv += "\(Double(row) * 0.8),\(row % 5 == 4 ? "new" : levels[row % levels.count]),"
            csv += "\(["A", "B", "C"][row % 3]),\(row % 5 == 4 ? "new" : levels[row % levels.count])\n"
        }
        try csv.write(toFile: newData, atomically: true, encoding: .utf8)
        let dense = directory.appendingPathComponent("dense.csv").path
        let perLevel = directory.appendingPathComponent("blocks.csv").path
        _ = try Predictor.predict(saved, newData: newData, output: dense, options: PredictionOptions(interval: .prediction))
        saved.jointCovariance = nil
        saved.levelCovariance = blocks
        let loaded = try SavedModel.decode(Data(try saved.json.serialized().utf8), name: "blocks.lmm")
        #expect(loaded == saved)
        _ = try Predictor.predict(loaded, newData: newData, output: perLevel, options: PredictionOptions(interval: .prediction))
        let a = try PredictionIntervalTests.read(dense), b = try PredictionIntervalTests.read(perLevel)
        #expect(a.count == 12 && b.count == 12)
        for (x, y) in zip(a, b) {
            for (u, v) in zip(x, y) { #expect(PredictionIntervalTests.close(u, v, 1e-10), "\(x) vs \(y)") }
        }
    }
}

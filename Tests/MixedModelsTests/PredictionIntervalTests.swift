import Foundation
import Testing
@testable import MixedModels

/// `lmm predict --interval` against the same quantities computed with lme4 1.1-31
/// (`Fixtures/prediction_intervals.json`, made by `R/prediction_intervals_reference.R`), at
/// lme4's variance components.
@Suite("Prediction intervals")
struct PredictionIntervalTests {
    struct Reference: Decodable {
        var formula: String
        var data: String
        var newdata: String
        var varcorr: [VarCorrEntry]
        var level: Double
        var conditional: [Double?]
        var lower: [Double?]
        var upper: [Double?]
        var cond_conf: [Double?]
        var cond_pred: [Double?]
        var pop_conf: [Double?]
        var pop_pred: [Double?]
    }

    static let reference: [String: Reference] = {
        let data = try! Data(contentsOf: URL(fileURLWithPath: Fixtures.path("prediction_intervals.json")))
        return try! JSONDecoder().decode([String: Reference].self, from: data)
    }()

    /// `row,prediction,se,lower,upper` rows (nil for NA).
    static func read(_ path: String) throws -> [[Double?]] {
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        #expect(lines.first == "row,prediction,se,lower,upper")
        return lines.dropFirst().map { line in line.split(separator: ",").map { $0 == "NA" ? nil : Double($0)! } }
    }

    static func close(_ a: Double?, _ b: Double?, _ tolerance: Double) -> Bool {
        switch (a, b) {
        case (nil, nil): return true
        case (let a?, let b?): return abs(a - b) <= tolerance * max(abs(b), 1e-300)
        default: return false
        }
    }

    @Test("standard errors and bounds within 1e-6 (relative) of lme4's, conditional and population level, unseen levels",
          arguments: ["sleepstudy", "penicillin", "machines"])
    func matchesLme4(_ name: String) throws {
        let expected = Self.reference[name]!
        let (_, _, saved) = try AfterTheFitTests.saved(expected.formula, data: expected.data, varcorr: expected.varcorr)
        #expect(saved.jointCovariance != nil)
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let cases: [(Bool, PredictionOptions.Interval, [Double?])] = [
            (false, .confidence, expected.cond_conf), (false, .prediction, expected.cond_pred),
            (true, .confidence, expected.pop_conf), (true, .prediction, expected.pop_pred),
        ]
        for (population, interval, se) in cases {
            let out = directory.appendingPathComponent("\(population)-\(interval).csv").path
            _ = try Predictor.predict(saved, newData: Fixtures.path(expected.newdata), output: out,
                                      options: PredictionOptions(populationLevel: population, interval: interval, level: expected.level))
            let rows = try Self.read(out)
            #expect(rows.count == se.count)
            for (i, row) in rows.enumerated() {
                #expect(row[0] == Double(i + 1))
                #expect(Self.close(row[2], se[i], 1e-6), "\(name) \(interval) population=\(population) row \(i + 1): se \(String(describing: row[2])) vs \(String(describing: se[i]))")
                if let prediction = row[1], let s = row[2] {
                    let z = Distributions.normalQuantile(0.975)
                    #expect(row[3] == prediction - z * s && row[4] == prediction + z * s)
                }
                if !population && interval == .confidence {
                    #expect(Self.close(row[1], expected.conditional[i], 1e-8))
                    #expect(Self.close(row[3], expected.lower[i], 1e-6) && Self.close(row[4], expected.upper[i], 1e-6),
                            "\(name) row \(i + 1): [\(String(describing: row[3])), \(String(describing: row[4]))] vs lme4's")
                }
            }
        }
    }

    @Test("the joint covariance's β block is vcov(β̂); its b diagonal is at least condSD²")
    func jointCovarianceBlocks() throws {
        let expected = Self.reference["sleepstudy"]!
        let (_, result, saved) = try AfterTheFitTests.saved(expected.formula, data: expected.data, varcorr: expected.varcorr)
        let C = try #require(saved.jointCovariance)
        let q = saved.randomEffectCount, p = saved.beta.count, m = q + p
        for r in 0..<p {
            for s in 0..<p {
                let ours = JointCovariance.entry(C, m, q + r, q + s), vcov = result.fixedEffectCovariance[r, s]
                #expect(abs(ours - vcov) <= 1e-9 * abs(vcov))
            }
        }
        let sds = saved.terms.flatMap(\.conditionalSD)
        for d in 0..<q { #expect(JointCovariance.entry(C, m, d, d) >= sds[d] * sds[d] * (1 - 1e-12)) }
    }

    @Test("a version-1 model file is read, and intervals from it stop with a clear error; no output file")
    func versionOneFile() throws {
        let expected = Self.reference["sleepstudy"]!
        let (_, _, saved) = try AfterTheFitTests.saved(expected.formula, data: expected.data)
        // A version-1 document: no fixef.vcov, no joint_covariance.
        var old = saved
        old.fixedEffectCovariance = nil
        old.jointCovariance = nil
        let text = try old.json.serialized().replacingOccurrences(of: "\"version\": \(SavedModel.formatVersion)", with: "\"version\": 1")
            .replacingOccurrences(of: "\"version\":\(SavedModel.formatVersion)", with: "\"version\":1")
        let loaded = try SavedModel.decode(Data(text.utf8), name: "old.lmm")
        #expect(loaded.fixedEffectCovariance == nil && loaded.beta == saved.beta)
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let out = directory.appendingPathComponent("pred.csv").path
        _ = try Predictor.predict(loaded, newData: Fixtures.path(expected.newdata), output: out)
        try FileManager.default.removeItem(atPath: out)
        #expect {
            try Predictor.predict(loaded, newData: Fixtures.path(expected.newdata), output: out,
                                  options: PredictionOptions(interval: .confidence))
        } throws: { "\($0)".contains("format version 1") && "\($0)".contains("lmm fit … --save") }
        #expect(!FileManager.default.fileExists(atPath: out))
        // A file of version 2 or later without fixef.vcov is corrupt.
        let broken = try old.json.serialized()
        #expect(throws: InputError.self) { try SavedModel.decode(Data(broken.utf8), name: "broken.lmm") }
    }
}

extension PredictionIntervalTests {
    @Test("conditional intervals without the joint covariance (q + p > 1000) say so; population-level ones still work")
    func withoutJointCovariance() throws {
        let expected = Self.reference["sleepstudy"]!
        var (_, _, saved) = try AfterTheFitTests.saved(expected.formula, data: expected.data)
        saved.jointCovariance = nil
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let out = directory.appendingPathComponent("pred.csv").path
        #expect {
            try Predictor.predict(saved, newData: Fixtures.path(expected.newdata), output: out,
                                  options: PredictionOptions(interval: .prediction))
        } throws: { "\($0)".contains("stored for q + p ≤ 1000 (this model: 38)") }
        #expect(!FileManager.default.fileExists(atPath: out))
        _ = try Predictor.predict(saved, newData: Fixtures.path(expected.newdata), output: out,
                                  options: PredictionOptions(populationLevel: true, interval: .prediction))
        #expect(try Self.read(out).count == expected.pop_pred.count)
    }

    @Test("the model file stores the joint covariance only up to q + p = 1000")
    func sizeLimit() throws {
        // 1,200 groups of 2 rows: q + p = 1,201.
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let data = directory.appendingPathComponent("many.csv").path
        var text = "y,g\n"
        for row in 0..<2_400 { text += "\(sin(Double(row)) + Double(row % 1_200 % 7)),g\(row % 1_200)\n" }
        try text.write(toFile: data, atomically: true, encoding: .utf8)
        let formula = try Formula.parse("y ~ 1 + (1 | g)")
        let table = try CSVReader.read(path: data, for: formula)
        let model = try LinearMixedModel(formula: formula, data: table)
        let saved = try SavedModel(model: model, result: try model.fit(), data: table, dataPath: data)
        #expect(saved.jointCovariance == nil && saved.fixedEffectCovariance != nil)
        // One random term: the per-level blocks replace it, and conditional intervals work.
        #expect(saved.levelCovariance?.bb.count == 1_200 && saved.levelCovariance?.bBeta.count == 1_200)
        let newData = directory.appendingPathComponent("new.csv").path
        try "g\ng3\nnew\n".write(toFile: newData, atomically: true, encoding: .utf8)
        let out = directory.appendingPathComponent("pred.csv").path
        _ = try Predictor.predict(saved, newData: newData, output: out, options: PredictionOptions(interval: .confidence))
        #expect(try Self.read(out).count == 2)
    }
}

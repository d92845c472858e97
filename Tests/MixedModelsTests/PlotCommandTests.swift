import Foundation
import Testing
@testable import MixedModels

/// `lmm plot MODEL [DATA] --out DIR`: the files of `lmm fit … --plot DIR`, byte for byte, from
/// the saved model (and the data it was fitted to, checked by its fingerprint).
@Suite("lmm plot command")
struct PlotCommandTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var data: String
        var formula: String
        var extra: [String] = []
        /// Expected files with their number of `circle` elements (dots of the caterpillar and QQ plots).
        var circles: [String: Int]
        var testDescription: String { "\(data) \(formula) \(extra.joined(separator: " "))" }
    }

    static let cases: [Case] = [
        Case(data: "sleepstudy.csv", formula: "Reaction ~ 1 + Days + (1 + Days | Subject)",
             circles: ["caterpillar_Subject.svg": 36, "qq_ranef_Subject.svg": 36, "residuals_vs_fitted.svg": 180, "qq_residuals.svg": 180]),
        // Crossed: two grouping factors.
        Case(data: "Penicillin.csv", formula: "diameter ~ 1 + (1 | plate) + (1 | sample)",
             circles: ["caterpillar_plate.svg": 24, "qq_ranef_plate.svg": 24, "caterpillar_sample.svg": 6, "qq_ranef_sample.svg": 6,
                       "residuals_vs_fitted.svg": 144, "qq_residuals.svg": 144]),
        // Dropped rows (na.omit keeps 177 of 180).
        Case(data: "sleepstudy_na.csv", formula: "Reaction ~ 1 + Days + (1 | Subject)",
             circles: ["caterpillar_Subject.svg": 18, "qq_ranef_Subject.svg": 18, "residuals_vs_fitted.svg": 177, "qq_residuals.svg": 177]),
        // Function calls, an offset() term and an offset column (the model file records them).
        Case(data: "sleepstudy_weighted.csv", formula: "log(Reaction) ~ 1 + poly(Days, 2) + scale(Days):I(Days^2) + offset(o) + (1 | Subject)",
             extra: ["--offset", "w"],
             circles: ["caterpillar_Subject.svg": 18, "qq_ranef_Subject.svg": 18, "residuals_vs_fitted.svg": 180, "qq_residuals.svg": 180]),
        // Sum contrasts.
        Case(data: "Machines.csv", formula: "score ~ 1 + Machine + (1 | Worker)", extra: ["--contrasts", "sum"],
             circles: ["caterpillar_Worker.svg": 6, "qq_ranef_Worker.svg": 6, "residuals_vs_fitted.svg": 54, "qq_residuals.svg": 54]),
    ]

    static func files(_ directory: String) throws -> [String: String] {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory)
        return try Dictionary(uniqueKeysWithValues: names.map {
            ($0, try String(contentsOfFile: (directory as NSString).appendingPathComponent($0), encoding: .utf8))
        })
    }

    @Test("lmm plot MODEL DATA writes lmm fit --plot's files byte for byte; MODEL alone the plots of the modes", arguments: cases)
    func sameAsFitPlot(_ test: Case) throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let model = directory.appendingPathComponent("m.lmm").path
        let fitPlots = directory.appendingPathComponent("fit").path
        let fit = try CommandRunner.run(["fit", Fixtures.path(test.data), "-f", test.formula, "--save", model, "--plot", fitPlots, "-q"] + test.extra)
        #expect(fit.status == 0, "\(fit.stderr)")
        let withData = directory.appendingPathComponent("with-data").path
        let plot = try CommandRunner.run(["plot", model, Fixtures.path(test.data), "--out", withData])
        #expect(plot.status == 0, "\(plot.stderr)")
        let modelOnly = directory.appendingPathComponent("model-only").path
        let alone = try CommandRunner.run(["plot", model, "--out", modelOnly])
        #expect(alone.status == 0, "\(alone.stderr)")

        let expected = try Self.files(fitPlots)
        #expect(Set(expected.keys) == Set(test.circles.keys))
        for (name, svg) in expected {
            #expect(try PlotTests.elements(svg)["circle"] == test.circles[name], "\(name)")
        }
        #expect(try Self.files(withData) == expected)
        let modes = expected.filter { !$0.key.contains("residuals") }
        #expect(try Self.files(modelOnly) == modes)
    }

    @Test("weighted fit: lmm plot rebuilds the weighted residuals (the model file records the weights column)")
    func weighted() throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let lines = try String(contentsOfFile: Fixtures.path("sleepstudy.csv"), encoding: .utf8).split(separator: "\n")
        let data = directory.appendingPathComponent("weighted.csv").path
        let text = ([lines[0] + ",w"] + lines.dropFirst().enumerated().map { "\($1),\(1 + $0 % 3)" }).joined(separator: "\n") + "\n"
        try text.write(toFile: data, atomically: true, encoding: .utf8)
        let model = directory.appendingPathComponent("m.lmm").path
        let fitPlots = directory.appendingPathComponent("fit").path
        let fit = try CommandRunner.run(["fit", data, "-f", "Reaction ~ 1 + Days + (1 | Subject)", "--weights", "w",
                                         "--save", model, "--plot", fitPlots, "-q"])
        #expect(fit.status == 0, "\(fit.stderr)")
        let out = directory.appendingPathComponent("out").path
        let plot = try CommandRunner.run(["plot", model, data, "--out", out])
        #expect(plot.status == 0, "\(plot.stderr)")
        #expect(try Self.files(out) == Self.files(fitPlots))
        #expect(try SavedModel.load(path: model).weights == "w")
    }

    @Test("another data file, or the same name with other contents: the fingerprint error, no plot written")
    func fingerprint() throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let data = directory.appendingPathComponent("sleepstudy.csv").path
        try FileManager.default.copyItem(atPath: Fixtures.path("sleepstudy.csv"), toPath: data)
        let model = directory.appendingPathComponent("m.lmm").path
        let fit = try CommandRunner.run(["fit", data, "-f", "Reaction ~ 1 + Days + (1 | Subject)", "--save", model, "-q"])
        #expect(fit.status == 0, "\(fit.stderr)")
        let saved = try SavedModel.load(path: model)

        // Same name, same size, one digit changed.
        var contents = try String(contentsOfFile: data, encoding: .utf8)
        let range = try #require(contents.range(of: "249.56"))
        contents.replaceSubrange(range, with: "249.57")
        try contents.write(toFile: data, atomically: true, encoding: .utf8)
        for other in [data, Fixtures.path("sleepstudy_na.csv")] {
            let out = directory.appendingPathComponent("plots").path
            let result = try CommandRunner.run(["plot", model, other, "--out", out])
            #expect(result.status != 0)
            #expect(result.stderr.contains("the model was fitted to a different data file (fingerprint of sleepstudy.csv: \(saved.data.bytes) bytes, hash \(saved.data.hash); this file:"),
                    "\(result.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out))
        }
    }
}

import Foundation
import Testing
@testable import MixedModels

/// `lmm fit --save/--residuals`, `lmm predict` and `lmm anova` end to end: outputs on success;
/// on bad input a clear message, a non-zero exit and no output file.
@Suite("lmm predict and anova commands")
struct AfterTheFitCommandTests {
    let sleepstudy = Fixtures.path("sleepstudy.csv")
    let formula = "Reaction ~ 1 + Days + (1 + Days | Subject)"

    @Test("fit --save --residuals, then predict conditional and population-level")
    func saveAndPredict() throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let model = directory.appendingPathComponent("sleep.lmm").path
        let residuals = directory.appendingPathComponent("res.csv").path
        let fit = try CommandRunner.run(["fit", sleepstudy, "-f", formula, "--save", model, "--residuals", residuals, "-q"])
        #expect(fit.status == 0, "\(fit.stderr)")
        let lines = try String(contentsOfFile: residuals, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 181 && lines[0] == "row,fitted,fitted_marginal,residual,pearson")
        let document = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: model))) as! [String: Any]
        #expect(document["format"] as? String == "lmm-model" && document["version"] as? Int == SavedModel.formatVersion)
        #expect((document["data"] as! [String: Any])["rows"] as? Int == 180)

        let out = directory.appendingPathComponent("pred.csv").path
        let predict = try CommandRunner.run(["predict", model, Fixtures.path("sleepstudy_newdata.csv"), "--out", out])
        #expect(predict.status == 0, "\(predict.stderr)")
        #expect(predict.stderr.contains("7 rows predicted; 1 with missing values written as NA; 2 with a grouping level the fit did not see"))
        let rows = try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n")
        #expect(rows.count == 8 && rows[5] == "5,NA")
        let population = try CommandRunner.run(["predict", model, Fixtures.path("sleepstudy_newdata.csv"), "--out", out, "--re-form", "none"])
        #expect(population.status == 0, "\(population.stderr)")
        let interval = try CommandRunner.run(["predict", model, Fixtures.path("sleepstudy_newdata.csv"), "--out", out,
                                              "--interval", "prediction", "--level", "0.9"])
        #expect(interval.status == 0, "\(interval.stderr)")
        let withInterval = try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n")
        #expect(withInterval.count == 8 && withInterval[0] == "row,prediction,se,lower,upper" && withInterval[5] == "5,NA,NA,NA,NA")
        let fields = withInterval[1].split(separator: ",").compactMap { Double($0) }
        #expect(fields.count == 5 && fields[3] < fields[1] && fields[1] < fields[4])
        #expect(abs((fields[4] - fields[3]) / 2 - 1.6448536269514722 * fields[2]) <= 1e-9 * fields[2])
    }

    struct BadInput: CustomTestStringConvertible, Sendable {
        var name: String
        var arguments: @Sendable (String, String) -> [String]   // (model path, output path)
        var setup: String?                            // contents written to a file named "input"
        var expected: [String]
        var testDescription: String { name }
    }

    static let badInputs: [BadInput] = [
        BadInput(name: "model from another data file's columns", arguments: { model, out in
            ["predict", model, Fixtures.path("Penicillin.csv"), "--out", out] },
                 expected: ["Penicillin.csv:1: the model needs columns 'Days', 'Subject', missing from the header; the columns are: diameter, plate, sample"]),
        BadInput(name: "new-data column missing", arguments: { model, out in ["predict", model, "INPUT", "--out", out] },
                 setup: "Subject,x\n308,1\n", expected: ["needs column 'Days', missing from the header"]),
        BadInput(name: "not a number in a numeric column", arguments: { model, out in ["predict", model, "INPUT", "--out", out] },
                 setup: "Subject,Days\n308,1\n309,two\n", expected: ["input:3:2: column 'Days' is numeric in the model; expected a number, found \"two\""]),
        BadInput(name: "unseen level with --new-levels error", arguments: { model, out in
            ["predict", model, "INPUT", "--out", out, "--new-levels", "error"] },
                 setup: "Subject,Days\n308,1\n999,2\n", expected: ["input:3:1: level '999' of the grouping factor 'Subject' was not in the fitted data"]),
        BadInput(name: "an infinite covariate in new data", arguments: { model, out in ["predict", model, "INPUT", "--out", out] },
                 setup: "Subject,Days\n308,1\n308,Inf\n", expected: ["input:3:2: \"Inf\" in column 'Days' (column 2), which the model uses"]),
        BadInput(name: "a number beyond the double range in new data", arguments: { model, out in ["predict", model, "INPUT", "--out", out] },
                 setup: "Subject,Days\n308,1e400\n", expected: ["input:2:2: \"1e400\" (beyond the range of a double: Inf) in column 'Days'"]),
        BadInput(name: "corrupt model file", arguments: { _, out in ["predict", "INPUT", Fixtures.path("sleepstudy.csv"), "--out", out] },
                 setup: "{\"format\": \"lmm-model\", \"version\": 1, \"formula\": ", expected: ["input: not a model file: the JSON is malformed or truncated"]),
        BadInput(name: "a CSV file given as the model", arguments: { _, out in ["predict", Fixtures.path("sleepstudy.csv"), Fixtures.path("sleepstudy.csv"), "--out", out] },
                 expected: ["sleepstudy.csv: not a model file"]),
        BadInput(name: "anova of models that are not nested", arguments: { _, out in
            ["anova", Fixtures.path("Penicillin.csv"), "-f", "diameter ~ 1 + (1 | plate)", "-f", "diameter ~ 1 + (1 | sample)", "--json", out] },
                 expected: ["the models are not nested: m1 (diameter ~ 1 + (1 | plate)) has the random effect '(Intercept)' of 'plate', which m2 (diameter ~ 1 + (1 | sample)) lacks"]),
        BadInput(name: "anova with different fixed effects not nested", arguments: { _, out in
            ["anova", Fixtures.path("Machines.csv"), "-f", "score ~ 1 + Machine + (1 | Worker)", "-f", "score ~ 0 + Machine + (1 | Worker) + (1 | Worker:Machine)", "--json", out] },
                 expected: ["has the fixed effect '(Intercept)'"]),
        BadInput(name: "plot with a data file the model was not fitted to", arguments: { model, out in
            ["plot", model, Fixtures.path("sleepstudy_na.csv"), "--out", out] },
                 expected: ["sleepstudy_na.csv: the model was fitted to a different data file (fingerprint of sleepstudy.csv: 3061 bytes"]),
        BadInput(name: "predict --level outside (0, 1)", arguments: { model, out in
            ["predict", model, Fixtures.path("sleepstudy_newdata.csv"), "--out", out, "--interval", "confidence", "--level", "95"] },
                 expected: ["--level must be strictly between 0 and 1"]),
        BadInput(name: "fit --save with as.numeric() of a factor", arguments: { _, out in
            ["fit", Fixtures.path("Machines.csv"), "-f", "score ~ as.numeric(Machine) + (1 | Worker)", "--save", out] },
                 expected: ["the model file cannot record 'as.numeric(Machine)'"]),
        BadInput(name: "fit --save with a bad formula", arguments: { _, out in
            ["fit", Fixtures.path("sleepstudy.csv"), "-f", "Reaction ~ Dayz + (1 | Subject)", "--save", out] },
                 expected: ["unknown column 'Dayz'"]),
    ]

    @Test("bad input: clear error, non-zero exit, no output file", arguments: badInputs)
    func badInput(_ bad: BadInput) throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let model = directory.appendingPathComponent("sleep.lmm").path
        let fit = try CommandRunner.run(["fit", sleepstudy, "-f", formula, "--save", model, "-q"])
        #expect(fit.status == 0, "\(fit.stderr)")
        let input = directory.appendingPathComponent("input").path
        if let setup = bad.setup { try setup.write(toFile: input, atomically: true, encoding: .utf8) }
        let out = directory.appendingPathComponent("out.file").path
        let result = try CommandRunner.run(bad.arguments(model, out).map { $0 == "INPUT" ? input : $0 })
        #expect(result.status != 0)
        for text in bad.expected { #expect(result.stderr.contains(text), "stderr: \(result.stderr)") }
        #expect(!FileManager.default.fileExists(atPath: out))
        let left = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.contains(".tmp-") }
        #expect(left.isEmpty, "temporary files left: \(left)")
    }

    @Test("--plot is refused with --method adam and iterative, pointing to lmm plot (--save works: ApproximateSavedModelTests)")
    func plotRefused() throws {
        let adam = try CommandRunner.run(["fit", sleepstudy, "-f", formula, "--method", "adam", "--plot", "/tmp/never-plots"])
        #expect(adam.status != 0)
        #expect(adam.stderr.contains("--plot needs an in-memory fit (not --method adam); save the model with --save and draw the conditional modes with lmm plot MODEL"))
        let iterative = try CommandRunner.run(["fit", sleepstudy, "-f", formula, "--method", "iterative", "--plot", "/tmp/never-plots"])
        #expect(iterative.status != 0)
        #expect(iterative.stderr.contains("save the model with --save and use lmm plot MODEL DATA"))
        #expect(!FileManager.default.fileExists(atPath: "/tmp/never-plots"))
    }
}

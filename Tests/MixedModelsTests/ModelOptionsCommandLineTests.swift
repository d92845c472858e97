import Foundation
import Testing
@testable import MixedModels

/// `lmm fit` with the model options of issue 12 (--weights, --offset, --contrasts) and the
/// `transformations` record of the JSON output.
@Suite("lmm fit: weights, offset, contrasts, transformations")
struct ModelOptionsCommandLineTests {
    @Test("--contrasts sum names the columns as R does; --json records the coding and the functions")
    func contrastsAndTransformations() throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let json = directory.appendingPathComponent("fit.json").path
        let result = try CommandRunner.run(["fit", Fixtures.path("Language/Machines.csv"), "-f", "log(score) ~ Machine + scale(score) + (1 | Worker)",
                                            "--contrasts", "sum", "--json", json, "--quiet"])
        #expect(result.status == 0, "\(result.stderr)")
        let document = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as! [String: Any]
        let fixef = document["fixef"] as! [String: Double]
        #expect(Set(fixef.keys) == ["(Intercept)", "Machine1", "Machine2", "scale(score)"])
        let records = document["transformations"] as! [[String: Any]]
        #expect(records.map { $0["variable"] as! String } == ["log(score)", "Machine", "scale(score)"])
        #expect(records[0]["role"] as? String == "response")
        #expect(records[1]["levels"] as? [String] == ["A", "B", "C"])
        #expect(records[1]["contrasts"] as? String == "contr.sum")
        #expect(records[2]["center"] is Double && records[2]["scale"] is Double)
    }

    @Test("bad weights and options stop with a clear message and no output", arguments: [
        (["--weights", "w"], "0", "weight 0 in column 'w', data row 1, is zero"),
        (["--weights", "w"], "-2", "is negative (lme4: all(weights >= 0) is not TRUE)"),
        (["--weights", "v"], "1", "column 'v' (--weights) is not in the data"),
        (["--weights", "w", "--method", "em"], "1", "--weights applies to --method exact only"),
        (["--offset", "w", "--method", "adam"], "1", "--offset and --contrasts apply to the in-memory methods"),
    ])
    func badOptions(_ options: [String], _ firstWeight: String, _ message: String) throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var csv = "y,x,g,w\n"
        for i in 0..<24 { csv += "\(Double(i % 7) + Double(i / 6) * 0.5),\(i % 4),g\(i / 6),\(i == 0 ? firstWeight : "1")\n" }
        let data = directory.appendingPathComponent("d.csv")
        try csv.write(to: data, atomically: true, encoding: .utf8)
        let json = directory.appendingPathComponent("fit.json").path
        let result = try CommandRunner.run(["fit", data.path, "-f", "y ~ x + (1 | g)", "--json", json] + options)
        #expect(result.status != 0)
        #expect(result.stderr.contains(message), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: json))
    }
}

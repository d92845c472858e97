import Foundation
import Testing
@testable import MixedModels

/// `lmm fit --method adam|iterative --save`, then `lmm predict` on new data with unseen levels:
/// the predictions equal x'β + z'b computed here from the fit's own `--json` and `--ranef`
/// outputs; what these model files cannot support is refused with a reason and no output file.
@Suite("saved models of --method adam and iterative")
struct ApproximateSavedModelTests {
    /// β by name and b by factor, level and effect, read from a fit's --json and --ranef files.
    struct FitOutputs {
        var beta: [String: Double]
        var modes: [String: [String: [String: Double]]]

        /// b of `effect` for `level` of `factor`, 0 for a level the fit did not see.
        func mode(_ factor: String, _ level: String, _ effect: String) -> Double { modes[factor]?[level]?[effect] ?? 0 }
    }

    /// Fits with `arguments` plus --save, --json and --ranef into `directory`.
    static func fit(_ arguments: [String], in directory: URL, name: String) throws -> (model: String, outputs: FitOutputs) {
        let model = directory.appendingPathComponent("\(name).lmm").path
        let json = directory.appendingPathComponent("\(name).json").path
        let ranef = directory.appendingPathComponent("\(name)-ranef.csv").path
        let run = try CommandRunner.run(["fit"] + arguments + ["--save", model, "--json", json, "--ranef", ranef, "-q"])
        try #require(run.status == 0, "\(run.stderr)")
        let document = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as! [String: Any]
        let beta = (document["fixef"] as! [String: Any]).mapValues { ($0 as! NSNumber).doubleValue }
        var modes: [String: [String: [String: Double]]] = [:]
        for row in try csvRows(ranef).rows {
            modes[row[0], default: [:]][row[2], default: [:]][row[1]] = Double(row[3])!
        }
        return (model, FitOutputs(beta: beta, modes: modes))
    }

    /// The header and rows of a small CSV file without commas inside fields (quotes removed).
    static func csvRows(_ path: String) throws -> (header: [String], rows: [[String]]) {
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        let split = lines.map { $0.split(separator: ",", omittingEmptySubsequences: false).map { $0.replacingOccurrences(of: "\"", with: "") } }
        return (split[0], Array(split.dropFirst()))
    }

    /// Runs `lmm predict` and returns the predictions (nil for NA) in row order.
    static func predict(_ model: String, _ newData: String, in directory: URL, _ extra: [String] = []) throws -> [Double?] {
        let out = directory.appendingPathComponent("pred.csv").path
        let run = try CommandRunner.run(["predict", model, newData, "--out", out] + extra)
        try #require(run.status == 0, "\(run.stderr)")
        let (header, rows) = try csvRows(out)
        #expect(header == ["row", "prediction"])
        #expect(rows.map { Int($0[0])! } == Array(1...rows.count))
        return rows.map { Double($0[1]) }
    }

    static func expectClose(_ ours: [Double?], _ expected: [Double?], _ label: String) {
        #expect(ours.count == expected.count, "\(label): \(ours.count) rows, expected \(expected.count)")
        for (i, (a, b)) in zip(ours, expected).enumerated() {
            guard let a, let b else {
                #expect(a == nil && b == nil, "\(label) row \(i + 1): \(String(describing: a)) vs \(String(describing: b))")
                continue
            }
            #expect(abs(a - b) <= 1e-12 * max(1, abs(b)), "\(label) row \(i + 1): \(a) vs \(b)")
        }
    }

    @Test("sleepstudy: conditional and population-level predictions are x'β + z'b of the fit's outputs",
          arguments: ["adam", "iterative"])
    func sleepstudy(method: String) throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (model, fit) = try Self.fit([Fixtures.path("sleepstudy.csv"), "-f", "Reaction ~ 1 + Days + (1 + Days | Subject)",
                                         "--method", method], in: directory, name: method)
        let document = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: model))) as! [String: Any]
        #expect(document["version"] as? Int == SavedModel.formatVersion && document["algorithm"] as? String == method)
        let approximate = (document["approximate"] as? [[String: String]] ?? []).compactMap { $0["quantity"] }
        #expect(approximate.contains("condSD") && approximate.contains("theta") && approximate.contains("joint_covariance"))

        let newData = Fixtures.path("sleepstudy_newdata.csv")
        let rows = try Self.csvRows(newData).rows
        let population: [Double?] = rows.map { row in Double(row[0]).map { fit.beta["(Intercept)"]! + fit.beta["Days"]! * $0 } }
        let conditional: [Double?] = zip(rows, population).map { row, marginal in
            guard let marginal, let days = Double(row[0]) else { return nil }
            return marginal + fit.mode("Subject", row[1], "(Intercept)") + fit.mode("Subject", row[1], "Days") * days
        }
        #expect(rows.contains { fit.modes["Subject"]?[$0[1]] == nil }, "the new data has unseen levels")
        Self.expectClose(try Self.predict(model, newData, in: directory), conditional, "\(method) conditional")
        Self.expectClose(try Self.predict(model, newData, in: directory, ["--re-form", "none"]), population, "\(method) population")
    }

    @Test("users × items from datagen (.lmmbin): adam and iterative models predict new users and items",
          arguments: ["adam", "iterative"])
    func usersItems(method: String) throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let data = directory.appendingPathComponent("ratings.lmmbin").path
        let made = try CommandRunner.run("datagen", ["--preset", "users-items", "--rows", "20000", "--seed", "3",
                                                     "--rows-per-chunk", "4096", "--out", data, "--quiet"])
        try #require(made.status == 0, "\(made.stderr)")
        let (model, fit) = try Self.fit([data, "-f", "y ~ 1 + x + (1 + x | user) + (1 | item)", "--method", method],
                                        in: directory, name: method)
        let users = fit.modes["user"]!.keys.sorted().prefix(6), items = fit.modes["item"]!.keys.sorted().prefix(6)
        var csv = "user,x,item\n"
        var expected: [Double?] = [], population: [Double?] = []
        for (i, (user, item)) in zip(Array(users) + ["no-such-user"], Array(items.reversed()) + ["no-such-item"]).enumerated() {
            let x = Double(i) * 0.37 - 1.1
            csv += "\(user),\(x),\(item)\n"
            let marginal = fit.beta["(Intercept)"]! + fit.beta["x"]! * x
            population.append(marginal)
            expected.append(marginal + fit.mode("user", user, "(Intercept)") + fit.mode("user", user, "x") * x
                            + fit.mode("item", item, "(Intercept)"))
        }
        csv += "\(users.first!),NA,\(items.first!)\n"
        expected.append(nil)
        population.append(nil)
        let newData = directory.appendingPathComponent("new.csv").path
        try csv.write(toFile: newData, atomically: true, encoding: .utf8)
        Self.expectClose(try Self.predict(model, newData, in: directory), expected, "\(method) conditional")
        Self.expectClose(try Self.predict(model, newData, in: directory, ["--re-form", "none"]), population, "\(method) population")
    }

    @Test("adam with an interaction grouping factor (class:school): levels are saved as R's labels")
    func interactionGrouping() throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let data = directory.appendingPathComponent("nested.lmmbin").path
        let made = try CommandRunner.run("datagen", ["--preset", "nested", "--rows", "5000", "--seed", "2", "--out", data, "--quiet"])
        try #require(made.status == 0, "\(made.stderr)")
        let (model, fit) = try Self.fit([data, "-f", "y ~ 1 + x + (1 | school) + (1 | class:school)", "--method", "adam"],
                                        in: directory, name: "nested")
        let seen = try #require(fit.modes["class:school"]?.keys.sorted().first)
        let parts = seen.split(separator: ":").map(String.init)
        let rows = [(0.5, parts[1], parts[0]), (1.0, parts[1], "no-such-class"), (-1.0, "no-such-school", parts[0])]
        let newData = directory.appendingPathComponent("new.csv").path
        try ("x,school,class\n" + rows.map { "\($0.0),\($0.1),\($0.2)\n" }.joined()).write(toFile: newData, atomically: true, encoding: .utf8)
        let expected: [Double?] = rows.map { x, school, classLabel in
            fit.beta["(Intercept)"]! + fit.beta["x"]! * x + fit.mode("school", school, "(Intercept)")
                + fit.mode("class:school", "\(classLabel):\(school)", "(Intercept)")
        }
        #expect(fit.mode("class:school", seen, "(Intercept)") != 0)
        Self.expectClose(try Self.predict(model, newData, in: directory), expected, "class:school")
    }

    @Test("adam with scale() and a categorical fixed effect: the training centre, scale and levels are saved")
    func transformationsAndFactors() throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        // scale(Days): centre and scale computed here from the training column.
        let (scaled, fit) = try Self.fit([Fixtures.path("sleepstudy.csv"), "-f", "Reaction ~ 1 + scale(Days) + (1 | Subject)",
                                          "--method", "adam"], in: directory, name: "scaled")
        let (header, training) = try Self.csvRows(Fixtures.path("sleepstudy.csv"))
        let days = training.map { Double($0[header.firstIndex(of: "Days")!])! }
        let mean = days.reduce(0, +) / Double(days.count)
        let sd = (days.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(days.count - 1)).squareRoot()
        let newData = Fixtures.path("sleepstudy_newdata.csv")
        let expected: [Double?] = try Self.csvRows(newData).rows.map { row in
            Double(row[0]).map { fit.beta["(Intercept)"]! + fit.beta["scale(Days)"]! * ($0 - mean) / sd + fit.mode("Subject", row[1], "(Intercept)") }
        }
        let ours = try Self.predict(scaled, newData, in: directory)
        // The saved centre and scale are the file's (one pass, summed in another order): 1e-12 relative.
        Self.expectClose(ours, expected, "scale(Days)")

        let (machines, machineFit) = try Self.fit([Fixtures.path("Machines.csv"), "-f", "score ~ 1 + Machine + (1 | Worker)",
                                                   "--method", "adam"], in: directory, name: "machines")
        let machineData = Fixtures.path("Machines_newdata.csv")
        let machineExpected: [Double?] = try Self.csvRows(machineData).rows.map { row in
            machineFit.beta["(Intercept)"]! + (row[0] == "A" ? 0 : machineFit.beta["Machine" + row[0]]!)
                + machineFit.mode("Worker", row[1], "(Intercept)")
        }
        Self.expectClose(try Self.predict(machines, machineData, in: directory), machineExpected, "Machine")
        let document = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: machines))) as! [String: Any]
        let columns = document["columns"] as! [[String: Any]]
        #expect(columns.first { $0["name"] as? String == "Machine" }?["levels"] as? [String] == ["A", "B", "C"])
    }

    @Test("--residuals: the fitted values are lmm predict's on the training data", arguments: ["iterative", "adam"])
    func residuals(method: String) throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let residuals = directory.appendingPathComponent("res.csv").path
        let data = Fixtures.path("sleepstudy.csv")
        let (model, _) = try Self.fit([data, "-f", "Reaction ~ 1 + Days + (1 + Days | Subject)", "--method", method,
                                       "--residuals", residuals], in: directory, name: method)
        let (header, rows) = try Self.csvRows(residuals)
        #expect(header == ["row", "fitted", "fitted_marginal", "residual", "pearson"] && rows.count == 180)
        #expect(rows.map { Int($0[0])! } == Array(1...180))
        Self.expectClose(try Self.predict(model, data, in: directory), rows.map { Double($0[1]) }, "fitted")
        Self.expectClose(try Self.predict(model, data, in: directory, ["--re-form", "none"]), rows.map { Double($0[2]) }, "marginal")
        let saved = try SavedModel.load(path: model)
        let (dataHeader, dataRows) = try Self.csvRows(data)
        let reaction = dataHeader.firstIndex(of: "Reaction")!
        Self.expectClose(rows.map { Double($0[3]) }, zip(dataRows, rows).map { Double($0[reaction])! - Double($1[1])! }, "residual")
        Self.expectClose(rows.map { Double($0[4]) }, rows.map { Double($0[3])! / saved.sigma }, "pearson")
    }

    @Test("adam --residuals numbers the rows of the data file as na.omit does, and writes nothing when the fit's outputs fail")
    func adamResidualRows() throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let data = Fixtures.path("sleepstudy_na.csv")
        let formula = "Reaction ~ 1 + Days + (1 | Subject)"
        var numbers: [[Int]] = []
        for method in ["exact", "adam"] {
            let out = directory.appendingPathComponent("\(method).csv").path
            let run = try CommandRunner.run(["fit", data, "-f", formula, "--method", method, "--residuals", out, "-q"])
            try #require(run.status == 0, "\(run.stderr)")
            numbers.append(try Self.csvRows(out).rows.map { Int($0[0])! })
        }
        #expect(numbers[0] == numbers[1] && numbers[0].count < 180)
        // --residuals (streamed after the fit) may not replace the data file it reads.
        let copy = directory.appendingPathComponent("data.csv").path
        try FileManager.default.copyItem(atPath: data, toPath: copy)
        let before = try Data(contentsOf: URL(fileURLWithPath: copy))
        let overwrite = try CommandRunner.run(["fit", copy, "-f", formula, "--method", "adam", "--residuals", copy, "-q"])
        #expect(overwrite.status != 0 && overwrite.stderr.contains("--residuals would overwrite the data file"), "\(overwrite.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: copy)) == before)
        let out = directory.appendingPathComponent("never.csv").path
        let failed = try CommandRunner.run(["fit", data, "-f", formula, "--method", "adam", "--residuals", out,
                                            "--json", directory.appendingPathComponent("missing/fit.json").path, "-q"])
        #expect(failed.status != 0)
        #expect(!FileManager.default.fileExists(atPath: out))
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).allSatisfy { !$0.contains("never") })
    }

    @Test("what the files cannot support is refused with the reason and no output")
    func refusals() throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let data = Fixtures.path("sleepstudy.csv"), newData = Fixtures.path("sleepstudy_newdata.csv")
        let formula = "Reaction ~ 1 + Days + (1 + Days | Subject)"
        let (adam, _) = try Self.fit([data, "-f", formula, "--method", "adam"], in: directory, name: "adam")
        let (iterative, _) = try Self.fit([data, "-f", formula, "--method", "iterative"], in: directory, name: "iterative")
        let out = directory.appendingPathComponent("out.csv").path

        for (model, method) in [(adam, "adam"), (iterative, "iterative")] {
            let conditional = try CommandRunner.run(["predict", model, newData, "--out", out, "--interval", "confidence"])
            #expect(conditional.status != 0)
            #expect(conditional.stderr.contains("the model was fitted by --method \(method), which does not compute the covariance of the conditional modes b̂ with β̂ that conditional intervals need"),
                    "\(conditional.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out))
            // Population-level intervals need vcov(β), which the file has.
            let population = try CommandRunner.run(["predict", model, newData, "--out", out, "--interval", "prediction", "--re-form", "none"])
            #expect(population.status == 0, "\(population.stderr)")
            #expect(population.stderr.contains("fitted by --method \(method): the interval is conditional on its approximate θ and σ"))
            let lines = try Self.csvRows(out)
            #expect(lines.header == ["row", "prediction", "se", "lower", "upper"] && lines.rows.count == 7)
            try FileManager.default.removeItem(atPath: out)
        }

        // lmm plot: the conditional modes from the file (condSD stored, flagged approximate);
        // the residual plots of an adam model would need a streaming pass.
        let plots = directory.appendingPathComponent("plots").path
        let refused = try CommandRunner.run(["plot", adam, data, "--out", plots])
        #expect(refused.status != 0 && refused.stderr.contains("the residual plots of a --method adam model need a streaming pass"),
                "\(refused.stderr)")
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: plots)) ?? []).isEmpty)
        for (model, withData) in [(adam, false), (iterative, true)] {
            let drawn = try CommandRunner.run(["plot", model] + (withData ? [data] : []) + ["--out", plots])
            #expect(drawn.status == 0, "\(drawn.stderr)")
            #expect(drawn.stderr.contains("its conditional SDs are approximate"))
            let files = try FileManager.default.contentsOfDirectory(atPath: plots)
            #expect(files.contains { $0.hasPrefix("caterpillar") } && files.contains { $0.contains("residual") } == withData, "\(files)")
            try FileManager.default.removeItem(atPath: plots)
        }
    }
}

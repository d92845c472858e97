import Foundation
import Testing
@testable import MixedModels

/// `lmm fit` end to end: good runs write their outputs; bad input gives a clear message, a
/// non-zero exit and no output file.
@Suite("lmm fit command")
struct CommandLineTests {
    let sleepstudy = Fixtures.path("sleepstudy.csv")
    let formula = "Reaction ~ 1 + Days + (1 + Days | Subject)"

    @Test("fits sleepstudy and writes JSON and ranef CSV")
    func fitsSleepstudy() throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let json = directory.appendingPathComponent("fit.json").path
        let ranef = directory.appendingPathComponent("ranef.csv").path
        let result = try CommandRunner.run(["fit", sleepstudy, "--formula", formula, "--json", json, "--ranef", ranef])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("Linear mixed model fit by REML"))
        #expect(result.stdout.contains("Number of obs: 180, groups:  Subject, 18"))
        let report = try FitReport.load(path: json)
        let days = try #require(report.fixef["Days"], "no fixef Days in \(report.fixef.names)")
        let lme4Days = try #require(Fixtures.reference("sleepstudy_reml").fixef["Days"])
        #expect(abs(days - lme4Days) < 1e-5)
        #expect(report.algorithm == .exact)
        let rows = try String(contentsOfFile: ranef, encoding: .utf8).split(separator: "\n")
        #expect(rows.first == "factor,term,level,value,condSD")
        #expect(rows.count == 1 + 36)

        // The JSON output can be fed back as --variances.
        let again = try CommandRunner.run(["fit", sleepstudy, "--formula", formula, "--variances", json, "--quiet"])
        #expect(again.status == 0, "\(again.stderr)")
    }

    /// Each case: arguments after the data file, the CSV contents (nil: sleepstudy), and text
    /// the error message must contain.
    struct BadInput: CustomTestStringConvertible, Sendable {
        var name: String
        var formula: String
        var csv: String?
        var variances: String?
        var expected: [String]
        var testDescription: String { name }
    }

    static let badInputs: [BadInput] = [
        BadInput(name: "unknown column", formula: "Reaction ~ 1 + Dayz + (1 | Subject)", expected: [
            "unknown column 'Dayz'; available columns: Reaction, Days, Subject",
            "  Reaction ~ 1 + Dayz + (1 | Subject)\n                 ^~~~"]),
        // Issue 11, item 8: a removed term's columns are still the formula's (R's model frame).
        BadInput(name: "unknown column in a removed term", formula: "Reaction ~ Days - Foo + (1 | Subject)", expected: [
            "unknown column 'Foo'; available columns: Reaction, Days, Subject",
            "  Reaction ~ Days - Foo + (1 | Subject)\n                    ^~~"]),
        BadInput(name: "unbalanced parenthesis", formula: "Reaction ~ 1 + Days + (1 | Subject", expected: ["unmatched '('", "^"]),
        BadInput(name: "empty term", formula: "Reaction ~ 1 + + Days + (1 | Subject)", expected: ["^"]),
        BadInput(name: "one-level grouping factor", formula: "y ~ 1 + (1 | g)",
                 csv: "y,g\n1,a\n2,a\n3,a\n", expected: ["grouping factor 'g' has 1 level", "^"]),
        BadInput(name: "as many levels as observations", formula: "y ~ 1 + (1 | g)",
                 csv: "y,g\n1,a\n2,b\n3,c\n", expected: ["grouping factor 'g' has 3 levels for 3 observations", "^"]),
        BadInput(name: "categorical response", formula: "g ~ 1 + (1 | h)",
                 csv: "g,h\na,x\nb,x\nc,y\nd,y\n", expected: ["response 'g' must be numeric"]),
        BadInput(name: "wrong number of fields", formula: "y ~ 1 + x + (1 | g)",
                 csv: "y,x,g\n1,2,a\n2,3\n", expected: [":3", "expected 3 fields"]),
        BadInput(name: "unterminated quote", formula: "y ~ 1 + x + (1 | g)",
                 csv: "y,x,g\n1,2,\"a\n2,3,b\n", expected: [":2"]),
        BadInput(name: "variances not positive semi-definite", formula: "Reaction ~ 1 + Days + (1 + Days | Subject)",
                 variances: #"{"varcorr": [{"grp": "Subject", "var1": "(Intercept)", "vcov": 1}, {"grp": "Subject", "var1": "Days", "vcov": 1}, {"grp": "Subject", "var1": "(Intercept)", "var2": "Days", "vcov": 5}, {"grp": "Residual", "vcov": 1}]}"#,
                 expected: ["group 'Subject' is not positive semi-definite"]),
        BadInput(name: "variances for an unknown group", formula: "Reaction ~ 1 + Days + (1 | Subject)",
                 variances: #"{"varcorr": [{"grp": "Patient", "var1": "(Intercept)", "vcov": 1}, {"grp": "Residual", "vcov": 1}]}"#,
                 expected: ["no random-effects term with group 'Patient'"]),
        BadInput(name: "variances file is not JSON", formula: "Reaction ~ 1 + Days + (1 | Subject)",
                 variances: "varcorr: nope", expected: ["V.json"]),
    ]

    @Test("bad input: clear error, non-zero exit, no output file", arguments: badInputs)
    func rejectsBadInput(_ input: BadInput) throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var dataPath = sleepstudy
        if let csv = input.csv {
            dataPath = directory.appendingPathComponent("data.csv").path
            try csv.write(toFile: dataPath, atomically: true, encoding: .utf8)
        }
        let json = directory.appendingPathComponent("out.json").path
        let ranef = directory.appendingPathComponent("out.csv").path
        var arguments = ["fit", dataPath, "--formula", input.formula, "--json", json, "--ranef", ranef]
        if let variances = input.variances {
            let path = directory.appendingPathComponent("V.json").path
            try variances.write(toFile: path, atomically: true, encoding: .utf8)
            arguments += ["--variances", path]
        }
        let result = try CommandRunner.run(arguments)
        #expect(result.status != 0)
        for text in input.expected {
            #expect(result.stderr.contains(text), "stderr lacks \(text.debugDescription):\n\(result.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: json))
        #expect(!FileManager.default.fileExists(atPath: ranef))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.contains(".tmp-") }
        #expect(leftovers.isEmpty)
    }

    @Test("missing data file")
    func missingFile() throws {
        let result = try CommandRunner.run(["fit", "/nonexistent/data.csv", "--formula", formula])
        #expect(result.status != 0)
        #expect(result.stderr.contains("data.csv"))
    }

    @Test("rows with missing values are dropped and counted")
    func dropsMissingRows() throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var lines = try String(contentsOfFile: sleepstudy, encoding: .utf8).split(separator: "\n").map(String.init)
        lines[5] = "NA,4,\"308\""
        lines[20] = "300.5,,\"309\""
        let path = directory.appendingPathComponent("na.csv").path
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        let result = try CommandRunner.run(["fit", path, "--formula", formula])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("2 rows with missing values dropped"))
        #expect(result.stdout.contains("Number of obs: 178"))
    }

    @Test("an output directory that does not exist is an error, and nothing is written")
    func unwritableOutput() throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let json = directory.appendingPathComponent("fit.json").path
        let result = try CommandRunner.run(["fit", sleepstudy, "--formula", formula, "--json", json,
                                            "--ranef", "/nonexistent/dir/ranef.csv"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("ranef.csv"))
        #expect(!FileManager.default.fileExists(atPath: json))
    }
}

/// `lmm fit --method …` for the MacKay forms.
@Suite("lmm fit --method")
struct MacKayCommandLineTests {
    let sleepstudy = Fixtures.path("sleepstudy.csv")

    @Test("em prints progress, converges to REML and writes its trajectory")
    func em() throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let json = directory.appendingPathComponent("em.json").path
        let result = try CommandRunner.run(["fit", sleepstudy, "-f", "Reaction ~ 1 + Days + (1 + Days | Subject)",
                                            "--method", "em", "--json", json, "-q"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("em iteration 1:"))
        let report = try FitReport.load(path: json)
        #expect(report.algorithm == .mackay(.em))
        let trajectory = try #require(report.trajectory)
        #expect(trajectory.count == report.iterations)
        #expect(try abs(report.objective - Fixtures.reference("sleepstudy_reml").objective) < 1e-4)
    }

    @Test("the collapse of the full quick form is an error naming the factor, with no output")
    func collapse() throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let json = directory.appendingPathComponent("quick.json").path
        let result = try CommandRunner.run(["fit", sleepstudy, "-f", "Reaction ~ 1 + Days + (1 + Days | Subject)",
                                            "--method", "mackay-quick", "--full-covariance", "--json", json])
        #expect(result.status != 0)
        #expect(result.stderr.contains("factor 'Subject' collapsed at iteration"))
        #expect(!FileManager.default.fileExists(atPath: json))
    }

    @Test("options that do not go together are refused")
    func badOptions() throws {
        let full = try CommandRunner.run(["fit", sleepstudy, "-f", "Reaction ~ Days + (Days | Subject)", "--full-covariance"])
        #expect(full.status != 0)
        #expect(full.stderr.contains("--full-covariance applies to --method mackay-quick only"))
        let unknown = try CommandRunner.run(["fit", sleepstudy, "-f", "Reaction ~ Days + (Days | Subject)", "--method", "newton"])
        #expect(unknown.status != 0)
        #expect(unknown.stderr.contains("newton"))
    }
}

/// Data problems lme4 refuses, and rank-deficient fixed effects, which it fits after dropping columns.
@Suite("Degenerate data")
struct DegenerateDataTests {
    static func fit(_ csv: String, _ formula: String) throws -> CommandRunner.Result {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("data.csv").path
        try csv.write(toFile: path, atomically: true, encoding: .utf8)
        return try CommandRunner.run(["fit", path, "--formula", formula])
    }

    @Test("a constant response is an error")
    func constantResponse() throws {
        let result = try Self.fit("y,g\n1,a\n1,a\n1,b\n1,b\n1,c\n", "y ~ 1 + (1 | g)")
        #expect(result.status != 0)
        #expect(result.stderr.contains("the response 'y' is constant"))
    }

    @Test("no more observations than fixed effects is an error")
    func tooFewObservations() throws {
        let result = try Self.fit("y,x,z,g\n1,1,2,a\n2,3,1,a\n3,1,1,b\n", "y ~ 1 + x + z + (1 | g)")
        #expect(result.status != 0)
        #expect(result.stderr.contains("3 observations for 3 fixed effects"))
    }

    @Test("aliased fixed-effect columns are dropped with lme4's message")
    func rankDeficient() throws {
        var lines = ["Reaction,Days,Days2,Subject"]
        let sleep = try String(contentsOfFile: Fixtures.path("sleepstudy.csv"), encoding: .utf8).split(separator: "\n").dropFirst()
        for line in sleep {
            let fields = line.split(separator: ",")
            lines.append("\(fields[0]),\(fields[1]),\(2 * Double(fields[1])!),\(fields[2])")
        }
        let result = try Self.fit(lines.joined(separator: "\n") + "\n", "Reaction ~ 1 + Days + Days2 + (1 | Subject)")
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("fixed-effect model matrix is rank deficient so dropping 1 column / coefficient: Days2"))
        #expect(!result.stdout.contains("Days2   "))
    }

    @Test("a formula without random effects is an error")
    func noRandomEffects() throws {
        let result = try Self.fit("y,x\n1,2\n2,3\n3,5\n", "y ~ 1 + x")
        #expect(result.status != 0)
        #expect(result.stderr.contains("no random-effects terms"))
    }
}

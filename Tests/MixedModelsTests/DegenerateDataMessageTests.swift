import Foundation
import Testing
@testable import MixedModels

/// Issue 11, "Messages that mislead": each case stops with a specific message (and the file,
/// line and column where the data is at fault), the same for every method, exit status 1.
@Suite("messages for degenerate data")
struct DegenerateDataMessageTests {
    static let methods = ["exact", "em", "mackay", "iterative", "adam"]

    /// Writes `csv` to a scratch directory.
    func write(_ csv: String, name: String = "d.csv") throws -> (URL, String) {
        let directory = try CommandRunner.temporaryDirectory()
        let path = directory.appendingPathComponent(name).path
        try csv.write(toFile: path, atomically: true, encoding: .utf8)
        return (directory, path)
    }

    /// `y,x,g` with 60 rows: y from `response(i, x, group)`, x = i mod 10, g = i mod 6.
    func data(_ response: (Int, Int, Int) -> String) -> String {
        "y,x,g\n" + (0..<60).map { i in "\(response(i, i % 10, i % 6)),\(i % 10),g\(i % 6)" }.joined(separator: "\n") + "\n"
    }

    /// Runs every method on `path` with `formula` and expects exit 1 with `expected` in the message.
    func expectEveryMethod(_ path: String, _ formula: String, _ expected: String, methods: [String] = methods,
                           sourceLocation: SourceLocation = #_sourceLocation) throws {
        for method in methods {
            let json = URL(fileURLWithPath: path).deletingLastPathComponent().appendingPathComponent("out.json").path
            let result = try CommandRunner.run(["fit", path, "-f", formula, "--method", method, "-q", "--json", json])
            #expect(result.status == 1 && !result.signaled, "\(method): \(result.stderr)", sourceLocation: sourceLocation)
            #expect(result.stderr.contains(expected), "\(method): \(result.stderr)", sourceLocation: sourceLocation)
            #expect(!result.stderr.contains("internal error"), "\(method): \(result.stderr)", sourceLocation: sourceLocation)
            #expect(!FileManager.default.fileExists(atPath: json), sourceLocation: sourceLocation)
        }
    }

    @Test("y = 3x + 1: the fixed effects reproduce the response, for every method")
    func perfectFit() throws {
        let (directory, path) = try write(data { _, x, _ in "\(3 * x + 1)" })
        defer { try? FileManager.default.removeItem(at: directory) }
        try expectEveryMethod(path, "y ~ x + (1 | g)", "the fixed effects reproduce the response 'y' exactly",
                              methods: ["exact", "em", "mackay", "iterative"])
        // adam's statistics pass does not see it; its fit ends with a residual variance of 0.
        try expectEveryMethod(path, "y ~ x + (1 | g)", "reproduces the response 'y' exactly", methods: ["adam"])
    }

    @Test("a response that the groups explain: a message naming the grouping factor (EM said 'X is rank deficient')")
    func explainedByGroups() throws {
        let (directory, path) = try write(data { _, _, g in "\(3 * g + 2)" })
        defer { try? FileManager.default.removeItem(at: directory) }
        try expectEveryMethod(path, "y ~ x + (1 | g)", "is constant within each level of 'g'", methods: ["exact", "em", "mackay", "iterative"])
        try expectEveryMethod(path, "y ~ x + (1 | g)", "reproduces the response 'y' exactly", methods: ["adam"])
        // The fixed effects plus a constant per group.
        let (both, bothPath) = try write(data { _, x, g in "\(3 * x + 1 + 2 * g)" })
        defer { try? FileManager.default.removeItem(at: both) }
        try expectEveryMethod(bothPath, "y ~ x + (1 | g)", "is the fixed effects plus a constant for each level of 'g'",
                              methods: ["exact", "em", "mackay", "iterative"])
        // Slopes per group: exact within each level of g.
        let (slopes, slopesPath) = try write(data { _, x, g in "\((g + 1) * x + g)" })
        defer { try? FileManager.default.removeItem(at: slopes) }
        try expectEveryMethod(slopesPath, "y ~ 1 + (1 + x | g)", "an exact function of the term's effects within each level of 'g'",
                              methods: ["exact", "em"])
    }

    @Test("small noise is still data: no false alarm")
    func nearlyExactIsFitted() throws {
        // (Noise of 0.001 here makes the exact fit fail in the Schur complement instead: θ runs
        // to ~1e4. That belongs to the numerics of issue 11, item 4.)
        let (directory, path) = try write(data { i, x, g in "\(3 * x + 1 + g)\(i % 7 == 0 ? ".3" : i % 7 == 1 ? ".6" : "")" })
        defer { try? FileManager.default.removeItem(at: directory) }
        let result = try CommandRunner.run(["fit", path, "-f", "y ~ x + (1 | g)", "-q"])
        #expect(result.status == 0, "\(result.stderr)")
    }

    @Test("y × 1e200 and y × 1e-200: too large or too small to fit, for every method (the exact fit hung)")
    func magnitudes() throws {
        let lines = try String(contentsOfFile: Fixtures.path("sleepstudy.csv"), encoding: .utf8).split(separator: "\n")
        for (factor, expected) in [(1e200, "is too large to fit: it reaches 4.663535e+202"), (1e-200, "is too small to fit")] {
            let scaled = [String(lines[0])] + lines.dropFirst().map { line -> String in
                var fields = line.split(separator: ",").map(String.init)
                fields[0] = "\(Double(fields[0])! * factor)"
                return fields.joined(separator: ",")
            }
            let (directory, path) = try write(scaled.joined(separator: "\n") + "\n")
            defer { try? FileManager.default.removeItem(at: directory) }
            try expectEveryMethod(path, "Reaction ~ 1 + Days + (1 + Days | Subject)", expected,
                                  methods: ["exact", "em", "iterative", "adam"])
        }
    }

    @Test("a constant response: the same message for adam as for the exact fit")
    func constantResponse() throws {
        let (directory, path) = try write(data { _, _, _ in "5" })
        defer { try? FileManager.default.removeItem(at: directory) }
        try expectEveryMethod(path, "y ~ x + (1 | g)", "the response 'y' is constant (every used row is 5)")
        try expectEveryMethod(path, "y ~ x + (1 + x | g)", "the response 'y' is constant (every used row is 5)", methods: ["exact", "adam"])
    }

    @Test("a header-only CSV: 'no data rows' with the file name, for every method")
    func headerOnly() throws {
        let (directory, path) = try write("Reaction,Days,Subject\n", name: "empty.csv")
        defer { try? FileManager.default.removeItem(at: directory) }
        try expectEveryMethod(path, "Reaction ~ Days + (1 | Subject)", "empty.csv: no data rows: the file has a header only")
    }

    @Test("the exact method reads an .lmmbin file (it parsed it as CSV)")
    func exactFromBinary() throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let binary = directory.appendingPathComponent("s.lmmbin").path
        try CSVConversion.convert(csv: Fixtures.path("sleepstudy.csv"), to: binary, categorical: ["Subject"])
        let formula = "Reaction ~ 1 + Days + (1 + Days | Subject)"
        for method in ["exact", "em"] {
            let fromBinary = try CommandRunner.run(["fit", binary, "-f", formula, "--method", method])
            let fromCSV = try CommandRunner.run(["fit", Fixtures.path("sleepstudy.csv"), "-f", formula, "--method", method])
            #expect(fromBinary.status == 0, "\(fromBinary.stderr)")
            let body = { (text: String) in text.split(separator: "\n").filter { !$0.contains("Data:") } }
            #expect(body(fromBinary.stdout) == body(fromCSV.stdout))
        }
    }

    @Test("malformed variances JSON: the line and column of the problem")
    func variancesPosition() throws {
        let cases: [(String, String)] = [
            ("{\"varcorr\": [\n  {\"grp\": \"Subject\" \"vcov\": 612}\n]}\n", "v.json:2:21: not valid JSON: expected ',' or '}' after a member, found '\"'"),
            ("{\"varcorr\": [\n  {\"grp\": \"Subject\", \"vcov\": 6x12}\n]}\n", "v.json:2:31: not valid JSON: expected ',' or '}' after a member, found 'x'"),
            ("{\"varcorr\": [\n", "v.json:2:1: not valid JSON: expected a value"),
            ("{\"varcorr\": [{\"grp\": \"a\tb\"}]}", "v.json:1:24: not valid JSON: expected '\"' to close the string"),
        ]
        for (text, expected) in cases {
            let (directory, path) = try write(text, name: "v.json")
            defer { try? FileManager.default.removeItem(at: directory) }
            let result = try CommandRunner.run(["fit", Fixtures.path("sleepstudy.csv"), "-f", "Reaction ~ Days + (1 | Subject)",
                                                "--variances", path, "-q"])
            #expect(result.status == 1 && result.stderr.contains(expected), "\(result.stderr)")
        }
        #expect(JSONSyntax.firstProblem(Array("{\"a\": [1, -2.5e3, true, null, \"\\u00e9\"], \"b\": {}}".utf8)) == nil)
        #expect(JSONSyntax.firstProblem(Array(String(repeating: "[", count: 100_000).utf8))?.message.hasPrefix("nesting deeper") == true)
    }

    @Test("a formula starting with '-' is taken as the formula, not as an option")
    func formulaStartingWithMinus() throws {
        let sleepstudy = Fixtures.path("sleepstudy.csv")
        for arguments in [["fit", sleepstudy, "-f", "-1 + Days"], ["fit", sleepstudy, "--formula", "- 1"],
                          ["confint", sleepstudy, "-f", "-1"], ["anova", sleepstudy, "-f", "-1", "-f", "Reaction ~ Days + (1 | Subject)"]] {
            let result = try CommandRunner.run(arguments)
            #expect(result.status == 1 && result.stderr.contains("missing '~'"), "\(arguments): \(result.stderr)")
            #expect(!result.stderr.contains("Missing value for"))
        }
        let fitted = try CommandRunner.run(["fit", sleepstudy, "-f", "Reaction ~ -1 + Days + (1 | Subject)", "-q"])
        #expect(fitted.status == 0, "\(fitted.stderr)")
    }

    @Test("--save and --residuals naming the data file are refused, the data intact (the catalogue found them overwriting it)")
    func saveAndResidualsOverInput() throws {
        let (directory, path) = try write(try String(contentsOfFile: Fixtures.path("sleepstudy.csv"), encoding: .utf8), name: "in.csv")
        defer { try? FileManager.default.removeItem(at: directory) }
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        for option in ["--save", "--residuals"] {
            let result = try CommandRunner.run(["fit", path, "-f", "Reaction ~ Days + (1 | Subject)", option, path, "-q"])
            #expect(result.status == 1 && result.stderr.contains(option), "\(option): \(result.stderr)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
        }
    }
}

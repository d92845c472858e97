import Foundation
import Testing
@testable import MixedModels

/// `datagen` end to end (the built executable): determinism, the two output formats agreeing,
/// level frequencies, the truth file, and clear errors with no output for bad specs.
@Suite("datagen")
struct DatagenTests {
    static func run(_ arguments: [String]) throws -> CommandRunner.Result {
        try CommandRunner.run("datagen", arguments)
    }

    static func contents(_ url: URL) throws -> Data { try Data(contentsOf: url) }

    /// The rows of a CSV file written by datagen (no quoting), header first.
    static func csvRows(_ url: URL) throws -> [[Substring]] {
        let text = try String(contentsOf: url, encoding: .utf8)
        return text.split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false) }
    }

    static func truth(_ url: URL) throws -> TruthFile { try TruthFile.load(url.path) }

    @Test("the same arguments give the same bytes; another seed gives other data")
    func determinism() throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        func generate(_ name: String, seed: String, format: String) throws -> (Data, Data) {
            let out = directory.appendingPathComponent(name + "." + format)
            let truth = directory.appendingPathComponent(name + ".json")
            let result = try Self.run(["--preset", "users-items", "--rows", "30000", "--seed", seed,
                                       "--out", out.path, "--truth", truth.path, "--quiet"])
            #expect(result.status == 0, "\(result.stderr)")
            return (try Self.contents(out), try Self.contents(truth))
        }
        for format in ["csv", "lmmbin"] {
            let first = try generate("a", seed: "11", format: format)
            let second = try generate("b", seed: "11", format: format)
            let other = try generate("c", seed: "12", format: format)
            #expect(first.0 == second.0, "\(format) data differ between identical runs")
            #expect(first.1 == second.1, "truth differs between identical runs")
            #expect(first.0 != other.0)
        }
    }

    @Test("CSV and lmmbin hold the same rows; the truth counts the levels that occur")
    func formatsAgree() throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let csv = directory.appendingPathComponent("d.csv"), binary = directory.appendingPathComponent("d.lmmbin")
        let truth = directory.appendingPathComponent("t.json")
        let common = ["--preset", "users-items", "--rows", "10000", "--seed", "5", "--rows-per-chunk", "999", "--quiet"]
        #expect(try Self.run(common + ["--out", csv.path, "--truth", truth.path]).status == 0)
        #expect(try Self.run(common + ["--out", binary.path]).status == 0)

        let rows = try Self.csvRows(csv)
        #expect(rows.first == ["y", "x", "user", "item"])
        #expect(rows.count == 10_001)
        let reader = try LMMBinaryReader(path: binary.path)
        #expect(reader.rowCount == 10_000)
        #expect(reader.rowsPerChunk == 999)
        let table = try reader.readAll()
        guard case .numeric(let y)? = table["y"], case .numeric(let x)? = table["x"],
              case .categorical(let user)? = table["user"], case .categorical(let item)? = table["item"] else {
            Issue.record("wrong columns in the lmmbin file")
            return
        }
        #expect(user.levels.count == 1000 && user.levels.first == "u0001" && user.levels.last == "u1000")
        #expect(user.levels == user.levels.sorted())
        for (i, row) in rows.dropFirst().enumerated() {
            #expect(abs(Double(row[0])! - y[i]) <= 5e-9 * abs(y[i]))
            #expect(abs(Double(row[1])! - x[i]) <= 5e-9 * abs(x[i]))
            #expect(row[2] == user.levels[Int(user.codes[i])])
            #expect(row[3] == item.levels[Int(item.codes[i])])
        }

        let document = try Self.truth(truth)
        let users = try #require(document.ngroups["user"]), items = try #require(document.ngroups["item"])
        #expect(users == Set(rows.dropFirst().map { $0[2] }).count)
        #expect(items == Set(rows.dropFirst().map { $0[3] }).count)
        #expect(document.ranef?.count == 2 * users + items)
        #expect(document.formula == "y ~ 1 + x + (1 + x | user) + (1 | item)")
        #expect(Dictionary(uniqueKeysWithValues: zip(document.fixef.names, document.fixef.values)) == ["(Intercept)": 1, "x": 0.5])
        #expect(document.sigma == 1)
    }

    @Test("Zipf and uniform level frequencies")
    func frequencies() throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let csv = directory.appendingPathComponent("z.csv")
        let n = 200_000
        let result = try Self.run(["--preset", "users-items", "--rows", String(n), "--levels", "user=100,item=10",
                                   "--seed", "3", "--out", csv.path, "--quiet"])
        #expect(result.status == 0, "\(result.stderr)")
        let rows = try Self.csvRows(csv).dropFirst()
        for (column, levels) in [(2, 100), (3, 10)] {
            var counts: [Substring: Int] = [:]
            for row in rows { counts[row[column], default: 0] += 1 }
            #expect(counts.count == levels)
            let observed = counts.values.sorted(by: >)
            let weights = (1...levels).map { pow(Double($0), -0.8) }
            let total = weights.reduce(0, +)
            for (rank, count) in observed.enumerated() {
                let expected = Double(n) * weights[rank] / total
                #expect(abs(Double(count) - expected) <= 5 * expected.squareRoot() + 0.01 * expected,
                        "rank \(rank + 1) of column \(column): \(count) rows, expected \(expected)")
            }
            if levels == 100 {
                // The most frequent users are not simply the first labels: ranks are shuffled.
                let labels = counts.keys.sorted()
                #expect(counts[labels[0]] != observed[0] || counts[labels[1]] != observed[1])
            }
        }

        // Nested preset: classes uniform within uniform schools.
        let nested = directory.appendingPathComponent("n.csv")
        #expect(try Self.run(["--preset", "nested", "--rows", String(n), "--levels", "school=20,class=200",
                              "--out", nested.path, "--quiet"]).status == 0)
        let nestedRows = try Self.csvRows(nested)
        #expect(nestedRows.first == ["y", "x", "school", "class"])
        var classCounts: [Substring: Int] = [:]
        var schoolOf: [Substring: Substring] = [:]
        for row in nestedRows.dropFirst() {
            classCounts[row[3], default: 0] += 1
            #expect(schoolOf[row[3]] == nil || schoolOf[row[3]] == row[2], "class \(row[3]) in two schools")
            schoolOf[row[3]] = row[2]
        }
        #expect(classCounts.count == 200)
        #expect(Set(schoolOf.values).count == 20)
        let expected = Double(n) / 200
        for count in classCounts.values { #expect(abs(Double(count) - expected) <= 5 * expected.squareRoot()) }
    }

    @Test("a spec file with a categorical covariate, nesting and explicit covariances")
    func specFile() throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let spec = directory.appendingPathComponent("spec.json")
        try Data("""
            {
              "rows": 2000, "seed": 9, "response": "score", "intercept": 2, "sigma": 0.5,
              "covariates": [{"name": "age", "coefficient": 0.1, "mean": 10, "sd": 2}],
              "factors": [
                {"name": "region", "labels": ["east", "north", "west"], "probabilities": [0.5, 0.3, 0.2],
                 "coefficients": {"north": 0.4, "west": -0.2}},
                {"name": "school", "levels": 12, "prefix": "sch"},
                {"name": "class", "levels": 60, "parent": "school", "distribution": "zipf", "exponent": 1}
              ],
              "random": [
                {"group": "class:school", "effects": ["(Intercept)", "age"], "covariance": [[0.09, 0.003], [0.003, 0.0025]]},
                {"group": "school", "sd": 0.4}
              ]
            }
            """.utf8).write(to: spec)
        let out = directory.appendingPathComponent("d.csv"), truth = directory.appendingPathComponent("t.json")
        let result = try Self.run(["--spec", spec.path, "--out", out.path, "--truth", truth.path, "--quiet"])
        #expect(result.status == 0, "\(result.stderr)")
        let rows = try Self.csvRows(out)
        #expect(rows.first == ["score", "age", "region", "school", "class"])
        #expect(rows.count == 2001)
        #expect(rows[1][3].hasPrefix("sch") && rows[1][4].hasPrefix("c"))
        let document = try Self.truth(truth)
        #expect(document.formula == "score ~ 1 + age + region + (1 + age | class:school) + (1 | school)")
        #expect(Dictionary(uniqueKeysWithValues: zip(document.fixef.names, document.fixef.values))
                == ["(Intercept)": 2, "age": 0.1, "regionnorth": 0.4, "regionwest": -0.2])
        let varcorr = document.varcorr
        #expect(varcorr.map(\.grp) == ["class:school", "class:school", "class:school", "school", "Residual"])
        let sdcor = try #require(varcorr.count > 2 ? varcorr[2].sdcor : nil)
        #expect(abs(sdcor - 0.003 / (0.3 * 0.05)) < 1e-12)
        #expect(document.ranef?.first?.level.contains(":sch") == true)

        // The spec printed back is a spec that regenerates the same data.
        let printed = try Self.run(["--spec", spec.path, "--print-spec"])
        #expect(printed.status == 0)
        let respec = directory.appendingPathComponent("respec.json")
        try Data(printed.stdout.utf8).write(to: respec)
        let again = directory.appendingPathComponent("again.csv")
        #expect(try Self.run(["--spec", respec.path, "--out", again.path, "--quiet"]).status == 0)
        #expect(try Self.contents(again) == Self.contents(out))
    }

    /// A bad spec or command line: the arguments (with `SPEC` standing for a spec file holding
    /// `spec`), and text the error must contain.
    struct BadSpec: CustomTestStringConvertible, Sendable {
        var name: String
        var arguments: [String]
        var spec: String?
        var expected: String
        var testDescription: String { name }
    }

    static let validSpec = """
        {"rows": 100, "sigma": 1, "covariates": [{"name": "x", "coefficient": 1}],
         "factors": [{"name": "g", "levels": 10}], "random": [RANDOM]}
        """

    static func spec(random: String) -> String { validSpec.replacingOccurrences(of: "RANDOM", with: random) }

    static let badSpecs: [BadSpec] = [
        BadSpec(name: "unknown preset", arguments: ["--preset", "movies"], expected: "unknown preset 'movies'; the presets are users-items"),
        BadSpec(name: "zero levels", arguments: ["--preset", "users-items", "--levels", "user=0"],
                expected: "factor 'user' must have at least 1 level, got 0"),
        BadSpec(name: "unknown factor in --levels", arguments: ["--preset", "users-items", "--levels", "users=10"],
                expected: "no factor 'users'"),
        BadSpec(name: "zero rows", arguments: ["--preset", "nested", "--rows", "0"], expected: "rows: the number of rows must be at least 1"),
        BadSpec(name: "negative SD", arguments: ["--spec", "SPEC"],
                spec: spec(random: #"{"group": "g", "effects": ["(Intercept)", "x"], "sd": [0.5, -0.2]}"#),
                expected: "random[0].sd[1]: the standard deviation of 'x' for 'g' must not be negative, got -0.2"),
        BadSpec(name: "covariance not positive semi-definite", arguments: ["--spec", "SPEC"],
                spec: spec(random: #"{"group": "g", "effects": ["(Intercept)", "x"], "covariance": [[1, 2], [2, 1]]}"#),
                expected: "random[0]: the covariance matrix of 'g' is not positive semi-definite"),
        BadSpec(name: "correlation above 1", arguments: ["--spec", "SPEC"],
                spec: spec(random: #"{"group": "g", "effects": ["(Intercept)", "x"], "sd": [1, 1], "correlation": [[1, 1.5], [1.5, 1]]}"#),
                expected: "correlations must be between -1 and 1"),
        BadSpec(name: "unknown grouping factor", arguments: ["--spec", "SPEC"],
                spec: spec(random: #"{"group": "h", "sd": 1}"#), expected: "random[0].group: 'h' is not a factor"),
        BadSpec(name: "unknown effect", arguments: ["--spec", "SPEC"],
                spec: spec(random: #"{"group": "g", "effects": ["(Intercept)", "z"], "sd": [1, 1]}"#),
                expected: "'z' is neither \"(Intercept)\" nor a numeric covariate"),
        BadSpec(name: "negative residual SD", arguments: ["--spec", "SPEC"],
                spec: #"{"rows": 10, "sigma": -1}"#, expected: "sigma: the residual standard deviation must be positive, got -1"),
        BadSpec(name: "unknown key", arguments: ["--spec", "SPEC"],
                spec: #"{"rows": 10, "sigma": 1, "factor": []}"#, expected: "spec: unknown key 'factor'"),
        BadSpec(name: "not JSON", arguments: ["--spec", "SPEC"], spec: "{rows: 10", expected: "not valid JSON"),
        BadSpec(name: "unsorted labels", arguments: ["--spec", "SPEC"],
                spec: #"{"rows": 10, "sigma": 1, "factors": [{"name": "f", "labels": ["b", "a"]}]}"#,
                expected: "labels must be distinct and in R's sorted order"),
        BadSpec(name: "no preset or spec", arguments: [], expected: "give --preset NAME or --spec FILE"),
    ]

    @Test("bad specs: a clear error, a non-zero exit, no file written", arguments: badSpecs)
    func badSpec(_ bad: BadSpec) throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var arguments = bad.arguments
        if let spec = bad.spec {
            let path = directory.appendingPathComponent("spec.json")
            try Data(spec.utf8).write(to: path)
            arguments = arguments.map { $0 == "SPEC" ? path.path : $0 }
        }
        let out = directory.appendingPathComponent("out.csv"), truth = directory.appendingPathComponent("truth.json")
        let result = try Self.run(arguments + ["--out", out.path, "--truth", truth.path])
        #expect(result.status != 0)
        #expect(result.stderr.contains(bad.expected), "stderr: \(result.stderr)")
        let left = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0 != "spec.json" }
        #expect(left.isEmpty, "files left: \(left)")
    }
}

import Foundation
import Testing
@testable import MixedModels

/// Issue 11, item 5: an infinite number (`Inf`, `-Inf`, `1e400`, a 10 MB digit string) in a
/// column the model uses is an error naming the file, line and column, for every method, as R's
/// `lm`/`lmer` stop on "NA/NaN/Inf in 'x'"; `NA`, an empty field and `NaN` are missing values
/// and drop the row (na.omit), as R reads them.
@Suite("non-finite input")
struct NonFiniteInputTests {
    let formula = "Reaction ~ 1 + Days + (1 + Days | Subject)"

    /// sleepstudy.csv with field `column` (0-based) of data row `row` (1-based) replaced.
    func sleepstudy(replacing row: Int, column: Int, with value: String) throws -> (URL, String) {
        var lines = try String(contentsOfFile: Fixtures.path("sleepstudy.csv"), encoding: .utf8)
            .split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var fields = lines[row].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        fields[column] = value
        lines[row] = fields.joined(separator: ",")
        let directory = try CommandRunner.temporaryDirectory()
        let path = directory.appendingPathComponent("data.csv").path
        try lines.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return (directory, path)
    }

    /// The field texts; "10 MB of digits" stands for a 10,000,000-digit number (R reads it as Inf).
    static let infinities = ["Inf", "-Inf", "inf", "-Infinity", "1e400", "-2.5e999", "10 MB of digits"]

    @Test("an infinite covariate is an error at its file, line and column, for every method", arguments: infinities)
    func covariate(_ value: String) throws {
        let text = value == "10 MB of digits" ? String(repeating: "9", count: 10_000_000) : value
        let (directory, path) = try sleepstudy(replacing: 5, column: 1, with: text)
        defer { try? FileManager.default.removeItem(at: directory) }
        for method in ["exact", "em", "mackay", "adam", "iterative"] {
            let methodFormula = method == "mackay" ? "Reaction ~ 1 + Days + (1 + Days || Subject)" : formula
            let result = try CommandRunner.run(["fit", path, "-f", methodFormula, "--method", method, "-q"])
            #expect(result.status == 1 && !result.signaled, "\(method): \(result.stderr)")
            #expect(result.stderr.contains("data.csv:6:2: "), "\(method): \(result.stderr)")
            #expect(result.stderr.contains("column 'Days' (column 2)"), "\(method): \(result.stderr)")
            #expect(!result.stderr.contains("rank deficient"), "\(method): \(result.stderr)")
        }
    }

    @Test("an infinite response, weight or offset is an error at its line and column")
    func responseWeightsOffset() throws {
        var (directory, path) = try sleepstudy(replacing: 9, column: 0, with: "Inf")
        var result = try CommandRunner.run(["fit", path, "-f", formula, "-q"])
        #expect(result.status == 1 && result.stderr.contains("data.csv:10:1: \"Inf\" in column 'Reaction' (column 1)"), "\(result.stderr)")
        #expect(result.stderr.contains("NA/NaN/Inf in 'y'"))
        try? FileManager.default.removeItem(at: directory)

        (directory, path) = try sleepstudy(replacing: 3, column: 1, with: "1e999")
        defer { try? FileManager.default.removeItem(at: directory) }
        for option in ["--weights", "--offset"] {
            result = try CommandRunner.run(["fit", path, "-f", "Reaction ~ 1 + (1 | Subject)", option, "Days", "-q"])
            #expect(result.status == 1 && result.stderr.contains("data.csv:4:2: \"1e999\" (beyond the range of a double: Inf) in column 'Days'"),
                    "\(option): \(result.stderr)")
        }
    }

    @Test("NaN, NA and an empty field drop the row, as R's na.omit")
    func missingValuesDropTheRow() throws {
        let reference = try LinearMixedModel(formula: Formula.parse(formula), data: CSVReader.read(path: Fixtures.path("sleepstudy.csv")))
            .fit(criterion: .reml)
        for value in ["NaN", "NA", ""] {
            let (directory, path) = try sleepstudy(replacing: 5, column: 1, with: value)
            defer { try? FileManager.default.removeItem(at: directory) }
            let model = try LinearMixedModel(formula: Formula.parse(formula), data: CSVReader.read(path: path))
            #expect(model.frame.n == 179 && model.frame.droppedRowCount == 1)
            let fit = try model.fit(criterion: .reml)
            #expect(abs(fit.fixedEffects[1] - reference.fixedEffects[1]) < 0.5, "\(value)")
        }
    }

    @Test("an infinity in an unused column is no error; in a dropped row it does not count")
    func unusedColumnsAndDroppedRows() throws {
        let csv = "y,x,z,w,g\n" + (0..<40).map { i in
            "\(Double(i % 7) + Double(i) * 0.3),\(i),\(i == 3 ? "Inf" : "1"),\(i == 5 ? "NA" : "1"),g\(i % 5)"
        }.joined(separator: "\n") + "\n"
        var data = try CSVReader.read(bytes: Array(csv.utf8), source: "d.csv")
        #expect(data.infiniteFields["z"]?.first == CellLocation(row: 3, line: 5, text: "Inf"))
        _ = try ModelFrame(formula: Formula.parse("y ~ x + (1 | g)"), data: data)
        #expect(throws: InputError.self) { try ModelFrame(formula: Formula.parse("y ~ x + z + (1 | g)"), data: data) }
        // The infinity's row is dropped for its missing w: R's na.omit removes it before lmer sees it.
        var columns = data.columns
        guard case .numeric(var w) = columns["w"]! else { Issue.record("w not numeric"); return }
        w[3] = .nan
        columns["w"] = .numeric(w)
        data.columns = columns
        _ = try ModelFrame(formula: Formula.parse("y ~ x + z + w + (1 | g)"), data: data)
    }

    @Test("data built in memory: the error names the data row")
    func inMemory() throws {
        let y = (0..<30).map { Double($0 % 7) + Double($0) }
        var x = (0..<30).map(Double.init)
        x[12] = -.infinity
        let data = DataTable(source: "memory", columnNames: ["y", "x", "g"],
                             columns: ["y": .numeric(y), "x": .numeric(x),
                                       "g": .categorical(Factor(codes: (0..<30).map { Int32($0 % 3) }, levels: ["a", "b", "c"]))],
                             rowCount: 30)
        do {
            _ = try ModelFrame(formula: Formula.parse("y ~ x + (1 | g)"), data: data)
            Issue.record("no error")
        } catch let error as InputError {
            #expect(error.description == "memory: -Inf in data row 13, column 'x' (column 2), which the model uses: "
                    + DataChecks.advice())
        }
    }

    @Test("lmm convert refuses an infinite number at its line and column; a text column with Inf is a factor")
    func convert() throws {
        let (directory, path) = try sleepstudy(replacing: 7, column: 0, with: "-inf")
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = directory.appendingPathComponent("out.lmmbin").path
        let result = try CommandRunner.run(["convert", path, output])
        #expect(result.status == 1 && result.stderr.contains("data.csv:8:1: \"-inf\" in column 'Reaction' (column 1)"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: output))
        // Leaving the column out converts the rest.
        let rest = try CommandRunner.run(["convert", path, output, "--columns", "Days,Subject"])
        #expect(rest.status == 0, "\(rest.stderr)")
        // Inf among text is a level label, as in R.
        let text = directory.appendingPathComponent("text.csv").path
        try "y,g\n1,Inf\n2,a\n3,Inf\n".write(toFile: text, atomically: true, encoding: .utf8)
        let summary = try CSVConversion.convert(csv: text, to: output)
        #expect(summary.levelCounts["g"] == 2)
    }

    @Test("a categorical response names the first field that is not a number")
    func categoricalResponse() throws {
        let (directory, path) = try sleepstudy(replacing: 9, column: 0, with: "abc")
        defer { try? FileManager.default.removeItem(at: directory) }
        for method in ["exact", "adam"] {
            let result = try CommandRunner.run(["fit", path, "-f", formula, "--method", method, "-q"])
            #expect(result.status == 1 && result.stderr.contains("data.csv:10:1") && result.stderr.contains("\"abc\" is not a number"),
                    "\(method): \(result.stderr)")
        }
    }
}

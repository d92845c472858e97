import Foundation
import Testing
@testable import MixedModels

/// `lmm convert` and `lmm fit --method adam` end to end: outputs like the other methods', and
/// for bad input (a code that is not a level, a file cut short, a malformed CSV row) a message
/// with the row number, a non-zero exit and no output file.
@Suite("Streaming Adam: command line and bad input")
struct AdamInputTests {
    let sleepstudy = Fixtures.path("sleepstudy.csv")
    let formula = "Reaction ~ 1 + Days + (1 + Days | Subject)"

    @Test("lmm convert streams a CSV file into the levels and values CSVReader reads")
    func convertRoundTrip() throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let csv = directory.appendingPathComponent("data.csv").path
        // Numbers that turn to text late (column k), missing values, quoted fields, unsorted labels.
        var text = "y,g,k,x\n"
        for i in 0..<300 {
            let label = ["b", "a", "c", "B"][i % 4]
            let k = i < 250 ? "\(i % 7)" : "t\(i % 3)"
            text += "\(Double(i) * 0.25),\"\(label)\",\(k),\(i % 11 == 0 ? "NA" : String(i % 5))\n"
        }
        try text.write(toFile: csv, atomically: true, encoding: .utf8)
        let binary = directory.appendingPathComponent("data.lmmbin").path
        let summary = try CSVConversion.convert(csv: csv, to: binary, select: nil, categorical: ["g"], rowsPerChunk: 64, chunkSize: 97)
        #expect(summary.rowCount == 300)
        let streamed = try LMMBinaryReader(path: binary).readAll()
        let direct = try CSVReader.read(path: csv, categorical: ["g"])
        #expect(streamed.rowCount == direct.rowCount)
        for name in ["y", "g", "k", "x"] {
            switch (streamed[name]!, direct[name]!) {
            case (.numeric(let a), .numeric(let b)):
                #expect(a.count == b.count)
                #expect(zip(a, b).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) }, "column \(name)")
            case (.categorical(let a), .categorical(let b)):
                #expect(a == b, "column \(name)")
            default:
                Issue.record("column \(name) has different types")
            }
        }
        // The command, and the file it writes feeds `lmm fit`.
        let out = directory.appendingPathComponent("sleep.lmmbin").path
        let converted = try CommandRunner.run(["convert", sleepstudy, out, "--categorical", "Subject"])
        #expect(converted.status == 0, "\(converted.stderr)")
        #expect(converted.stderr.contains("180 rows"))
        #expect(LMMBinaryFormat.isBinaryFile(path: out))
    }

    @Test("lmm fit --method adam writes the summary, JSON and ranef CSV of the other methods")
    func fitsFromCSVAndBinary() throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let json = directory.appendingPathComponent("fit.json").path
        let ranef = directory.appendingPathComponent("ranef.csv").path
        let variances = Fixtures.path("sleepstudy_reml.json")
        let result = try CommandRunner.run(["fit", sleepstudy, "--formula", formula, "--method", "adam", "--variances", variances,
                                            "--json", json, "--ranef", ranef])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("Linear mixed model fit by adam"))
        #expect(result.stdout.contains("Number of obs: 180, groups:  Subject, 18"))
        let report = try FitReport.load(path: json)
        #expect(report.algorithm == .adam)
        let days = try #require(report.fixef["Days"], "no fixef Days in \(report.fixef.names)")
        let lme4Days = try #require(Fixtures.reference("sleepstudy_reml").fixef["Days"])
        #expect(abs(days - lme4Days) < 1e-4)
        #expect(report.trajectory?.isEmpty == false)
        let rows = try String(contentsOfFile: ranef, encoding: .utf8).split(separator: "\n")
        #expect(rows.first == "factor,term,level,value,condSD")
        #expect(rows.count == 1 + 36)

        // From the binary file, learning the penalties; plain log lines on a pipe.
        let binary = directory.appendingPathComponent("sleep.lmmbin").path
        #expect(try CommandRunner.run(["convert", sleepstudy, binary, "--categorical", "Subject", "--quiet"]).status == 0)
        let learned = try CommandRunner.run(["fit", binary, "--formula", "Reaction ~ 1 + Days + (1 | Subject) + (0 + Days | Subject)",
                                             "--method", "adam", "--json", json, "--quiet"])
        #expect(learned.status == 0, "\(learned.stderr)")
        #expect(learned.stderr.contains("adam epoch 1:"))
        #expect(!learned.stderr.contains("\u{1B}["))
    }

    /// Runs `lmm fit DATA --method adam` with a JSON output and expects a failure naming `expected`.
    func expectFailure(_ data: String, formula: String, _ expected: [String], directory: URL,
                       sourceLocation: SourceLocation = #_sourceLocation) throws {
        let json = directory.appendingPathComponent("out.json").path
        let result = try CommandRunner.run(["fit", data, "--formula", formula, "--method", "adam", "--json", json])
        #expect(result.status != 0, sourceLocation: sourceLocation)
        for text in expected {
            #expect(result.stderr.contains(text), "stderr: \(result.stderr)", sourceLocation: sourceLocation)
        }
        #expect(!FileManager.default.fileExists(atPath: json), sourceLocation: sourceLocation)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasPrefix(".") }
        #expect(leftovers.isEmpty, "temporary files left: \(leftovers)", sourceLocation: sourceLocation)
    }

    /// The streaming design and the in-memory model frame apply the same checks (DataChecks):
    /// the same data, in a CSV and in the `.lmmbin` converted from it, fail with the same message.
    @Test("lme4's data checks give the same message for --method adam as for the exact fit", arguments: [
        ("y,x,g\n5,1,a\n5,2,a\n5,3,b\n5,4,b\n5,5,c\n5,6,c\n", "y ~ 1 + x + (1 | g)", "is constant (every used row is 5)"),
        ("y,x,z,g\n1,1,3,a\n2,5,1,b\n4,2,2,b\n", "y ~ 1 + x + z + (1 | g)", "3 observations for 3 fixed effects"),
        ("y,x,g\n1,1,a\n2,2,a\n3,3,a\n", "y ~ 1 + x + (1 | g)", "grouping factor 'g' has 1 level; it needs at least 2"),
        ("y,x,g\n1,1,a\n2,2,b\n4,3,c\n", "y ~ 1 + x + (1 | g)", "grouping factor 'g' has 3 levels for 3 observations"),
        ("y,x,g\n1,1,a\n2,2,a\n4,3,b\n", "y ~ 1 + w + (1 | g)", "unknown column 'w'; available columns: y, x, g"),
        ("y,x,g\na,1,a\nb,2,a\na,3,b\n", "y ~ 1 + x + (1 | g)", "must be numeric, but the column is categorical"),
        ("y,x,g\n1,NA,a\n2,NA,a\n4,NA,b\n", "y ~ 1 + x + (1 | g)", "no rows left"),
    ])
    func sameDataChecks(_ csv: String, _ formulaText: String, _ expected: String) throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let csvPath = directory.appendingPathComponent("data.csv").path
        let binaryPath = directory.appendingPathComponent("data.lmmbin").path
        try csv.write(toFile: csvPath, atomically: true, encoding: .utf8)
        try CSVConversion.convert(csv: csvPath, to: binaryPath, categorical: ["g"])
        let formula = try Formula.parse(formulaText)
        var exact: FormulaError?
        do { _ = try ModelFrame(formula: formula, data: CSVReader.read(path: csvPath, categorical: ["g"])) }
        catch let error as FormulaError { exact = error }
        var streaming: FormulaError?
        do { _ = try StreamingMixedModel(formula: formula, reader: LMMBinaryReader(path: binaryPath)) }
        catch LMMError.formula(let error) { streaming = error }
        #expect(exact?.message.contains(expected) == true, "exact: \(String(describing: exact))")
        // The CSV reader knows where a categorical response's first text is and adds it.
        #expect(exact?.message.hasPrefix(streaming?.message ?? "no error") == true,
                "\(String(describing: streaming)) vs \(String(describing: exact))")
        #expect(streaming?.span == exact?.span)
    }

    @Test("a code that is not one of the factor's levels names its row")
    func unseenLevel() throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("bad.lmmbin").path
        let writer = try LMMBinaryWriter(path: path, columns: [.float64("y"), .factor("g")], rowsPerChunk: 8)
        try writer.setLevels(["a", "b", "c"], forColumn: "g")
        let n = 20
        try writer.append([.float64((0..<n).map(Double.init)), .factor((0..<n).map { Int32($0 % 3) })])
        try writer.finish()
        // Row 13 (chunk 2, its 5th row) gets code 7: the codes of chunk c start after its y values.
        var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        let dataOffset = Int(bytes[32]) | Int(bytes[33]) << 8
        let offset = dataOffset + 1 * (8 * 8 + 8 * 4) + 8 * 8 + 4 * 4
        bytes[offset] = 7
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        try expectFailure(path, formula: "y ~ 1 + (1 | g)", ["chunk 2 of 3 (rows 9 to 16) is corrupt: checksum mismatch"], directory: directory)
        // A crafted file whose checksums match: the code check still names the row.
        bytes = LMMBinaryResealing.reseal(bytes, rowCount: n, rowsPerChunk: 8)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        try expectFailure(path, formula: "y ~ 1 + (1 | g)", ["row 13", "code 7", "not one of its 3 levels"], directory: directory)
    }

    @Test("a file that ends inside a chunk names the rows that are complete")
    func truncatedBinary() throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("cut.lmmbin").path
        #expect(try CommandRunner.run(["convert", sleepstudy, path, "--categorical", "Subject", "--rows-per-chunk", "50",
                                       "--quiet"]).status == 0)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        try bytes.prefix(bytes.count * 2 / 3).write(to: URL(fileURLWithPath: path))
        try expectFailure(path, formula: formula, ["truncated", "chunk 3", "rows 101 to 150", "only rows 1 to 100 of 180"],
                          directory: directory)
    }

    @Test("a malformed or cut-off CSV row names its row and line", arguments: [
        ("Reaction,Days,Subject\n250,0,308\n251,1\n252,2,308\n", ["row 2", ":3:", "expected 3 fields, found 2"]),
        ("Reaction,Days,Subject\n250,0,308\n251,1,\"309\n", [":3:", "unterminated quoted field"]),
        ("Reaction,Days,Subject\n250,0,308\n251,1,309\n252,2", ["row 3", ":4:", "found 2 (the row ends early)"]),
    ])
    func malformedCSV(_ text: String, _ expected: [String]) throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("bad.csv").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        try expectFailure(path, formula: "Reaction ~ 1 + Days + (1 | Subject)", expected, directory: directory)
        let out = directory.appendingPathComponent("bad.lmmbin").path
        let converted = try CommandRunner.run(["convert", path, out])
        #expect(converted.status != 0)
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    @Test("adam's options are refused with the other methods, and checked")
    func options() throws {
        let misuse = try CommandRunner.run(["fit", sleepstudy, "--formula", formula, "--learning-rate", "0.5"])
        #expect(misuse.status != 0)
        #expect(misuse.stderr.contains("--learning-rate applies to --method adam only"))
        let badRate = try CommandRunner.run(["fit", sleepstudy, "--formula", formula, "--method", "adam", "--learning-rate", "3"])
        #expect(badRate.status != 0)
        #expect(badRate.stderr.contains("between 0 and 2"))
    }
}

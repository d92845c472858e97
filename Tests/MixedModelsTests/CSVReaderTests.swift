import Foundation
import Testing
@testable import MixedModels

/// Parses CSV text held in memory (optionally with a tiny chunk size, to make rows straddle chunks).
private func parse(_ text: String, select: [String]? = nil, categorical: Set<String> = [],
                   chunkSize: Int = CSVReader.defaultChunkSize) throws -> DataTable {
    try CSVReader.read(bytes: Array(text.utf8), source: "test.csv", select: select, categorical: categorical,
                       chunkSize: chunkSize)
}

/// Numeric column values with missing values as nil (NaN never equals itself).
private func numbers(_ table: DataTable, _ name: String) -> [Double?]? {
    guard case .numeric(let values)? = table[name] else { return nil }
    return values.map { $0.isNaN ? nil : $0 }
}

private func factor(_ table: DataTable, _ name: String) -> Factor? {
    guard case .categorical(let factor)? = table[name] else { return nil }
    return factor
}

/// The level label of each row of a factor column, nil when missing.
private func labels(_ table: DataTable, _ name: String) -> [String?]? {
    guard let factor = factor(table, name) else { return nil }
    return factor.codes.map { $0 < 0 ? nil : factor.levels[Int($0)] }
}

/// A directory under the system's temporary directory, removed when the value goes away.
private final class TemporaryDirectory {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("csvreader-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func write(_ name: String, _ text: String) throws -> String {
        let file = path + "/" + name
        try Data(text.utf8).write(to: URL(fileURLWithPath: file))
        return file
    }
}

/// Runs `body` expecting an `InputError` and returns it (nil, with a recorded issue, otherwise).
private func inputError(_ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) -> InputError? {
    do {
        try body()
        Issue.record("expected an InputError", sourceLocation: sourceLocation)
    } catch let error as InputError {
        return error
    } catch {
        Issue.record("expected an InputError, got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

@Suite struct CSVReaderTests {
    // MARK: Types and values

    @Test func infersTypesAndKeepsHeaderOrder() throws {
        let table = try parse("y,x,g\n1.5,2,a\n-3,4e2,b\n0.25,-1,a\n")
        #expect(table.columnNames == ["y", "x", "g"])
        #expect(table.rowCount == 3)
        #expect(table.source == "test.csv")
        #expect(numbers(table, "y") == [1.5, -3, 0.25])
        #expect(numbers(table, "x") == [2, 400, -1])
        #expect(factor(table, "g") == Factor(codes: [0, 1, 0], levels: ["a", "b"]))
    }

    @Test func factorLevelsInROrder() throws {
        let table = try parse("g\nb\na\nB\nA\na\na-b\nab\na1\na10\na9\n")
        let g = try #require(factor(table, "g"))
        #expect(g.levels == ["a", "A", "a-b", "a1", "a10", "a9", "ab", "b", "B"])
        #expect(labels(table, "g") == ["b", "a", "B", "A", "a", "a-b", "ab", "a1", "a10", "a9"])
    }

    @Test func forcedCategoricalNumericIdsSortNumerically() throws {
        let table = try parse("subject,y\n309,1\n1000,2\n308,3\n309,4\n", categorical: ["subject"])
        let subject = try #require(factor(table, "subject"))
        #expect(subject.levels == ["308", "309", "1000"])
        #expect(subject.codes == [1, 2, 0, 1])
        #expect(numbers(table, "y") == [1, 2, 3, 4])
    }

    @Test func numericLookingColumnWithTextIsAFactor() throws {
        // Text in the last row only: the earlier rows get their codes from a second pass, keeping
        // their exact spelling ("1.50" is not "1.5").
        var text = "g,y\n"
        var expected: [String?] = []
        for i in 0..<500 {
            let value = i % 7 == 0 ? "NA" : (i % 5 == 0 ? "1.50" : String(i % 11))
            text += "\(value),\(i)\n"
            expected.append(value == "NA" ? nil : value)
        }
        text += "x,500\n"
        expected.append("x")
        for chunkSize in [16, 100, 1 << 20] {
            let table = try parse(text, chunkSize: chunkSize)
            #expect(labels(table, "g") == expected)
            #expect(factor(table, "g")?.levels.first == "0")
            #expect(factor(table, "g")?.levels.last == "x")
            #expect(numbers(table, "y")?.count == 501)
        }
    }

    @Test func missingValues() throws {
        let table = try parse("y,g,h\n1,a,NA\n,NA,\"NA\"\nNA,,b\n\"NA\",\" NA\",b\n NA ,\"\",b\nNaN,NaN,b\n")
        #expect(numbers(table, "y") == [1, nil, nil, nil, nil, nil])
        // In a factor only an empty field and NA are missing: " NA" and "NaN" are labels.
        #expect(labels(table, "g") == ["a", nil, nil, " NA", nil, "NaN"])
        #expect(labels(table, "h") == [nil, nil, "b", "b", "b", "b"])
        #expect(factor(table, "h")?.levels == ["b"])
    }

    @Test func allMissingAndEmptyTables() throws {
        let table = try parse("a,b\nNA,\n,NA\n")
        #expect(numbers(table, "a") == [nil, nil])
        #expect(numbers(table, "b") == [nil, nil])
        let headerOnly = try parse("a,b\n", categorical: ["b"])
        #expect(headerOnly.rowCount == 0)
        #expect(numbers(headerOnly, "a") == [])
        #expect(factor(headerOnly, "b") == Factor(codes: [], levels: []))
    }

    @Test func whitespaceAroundNumbers() throws {
        let table = try parse("a,b\n 1.5 ,\t2\n3 , -4 \n")
        #expect(numbers(table, "a") == [1.5, 3])
        #expect(numbers(table, "b") == [2, -4])
    }

    @Test func specialNumbers() throws {
        let table = try parse("a\nInf\n-Inf\n1e-310\n+.5\n")
        #expect(numbers(table, "a") == [.infinity, -.infinity, Double("1e-310")!, 0.5])
    }

    // MARK: RFC 4180 details

    @Test func quotedFields() throws {
        let text = "\"name, with comma\",\"q\"\"uote\",n\n\"a,b\",\"say \"\"hi\"\"\",\"1.5\"\n\"line\nbreak\",\"\",\"2\"\n"
        let table = try parse(text)
        #expect(table.columnNames == ["name, with comma", "q\"uote", "n"])
        #expect(labels(table, "name, with comma") == ["a,b", "line\nbreak"])
        #expect(labels(table, "q\"uote") == ["say \"hi\"", nil])
        #expect(numbers(table, "n") == [1.5, 2])
    }

    @Test func blanksAfterClosingQuoteAreAllowed() throws {
        let table = try parse("a,b\n\"x\"  ,\"y\"\t\n")
        #expect(labels(table, "a") == ["x"])
        #expect(labels(table, "b") == ["y"])
    }

    @Test func lineEndings() throws {
        let expected: [Double?] = [1, 3]
        for text in ["a,b\r\n1,2\r\n3,4\r\n", "a,b\n1,2\n3,4", "a,b\r1,2\r3,4\r", "a,b\r\n1,2\n3,4\r\n\r\n\n",
                     "\n\r\na,b\n\n1,2\r\n\r\n3,4\n\n"] {
            let table = try parse(text)
            #expect(numbers(table, "a") == expected, "\(text.debugDescription)")
            #expect(numbers(table, "b") == [2, 4], "\(text.debugDescription)")
            #expect(table.rowCount == 2)
        }
        // A CRLF inside quotes is data.
        let quoted = try parse("g\r\n\"x\r\ny\"\r\n")
        #expect(labels(quoted, "g") == ["x\r\ny"])
    }

    @Test func byteOrderMark() throws {
        let table = try parse("\u{FEFF}\"a b\",c\n1,2\n")
        #expect(table.columnNames == ["a b", "c"])
        #expect(numbers(table, "a b") == [1])
        // Only at the very start: later it is data.
        let later = try parse("g\n\u{FEFF}x\n")
        #expect(labels(later, "g") == ["\u{FEFF}x"])
    }

    @Test func headerNames() throws {
        let table = try parse(" a , \" b \",c\n1,2,3\n")
        #expect(table.columnNames == ["a", " b ", "c"])
    }

    @Test func blanksBeforeAnOpeningQuoteAreSkipped() throws {
        let table = try parse("a,b\n  \"x, y\" ,  z \n", chunkSize: 3)
        #expect(labels(table, "a") == ["x, y"])
        #expect(labels(table, "b") == ["  z "])   // unquoted factor text is kept as is
    }

    @Test func trailingCommaIsAnEmptyField() throws {
        let table = try parse("a,b\n1,\n2,\n")
        #expect(numbers(table, "b") == [nil, nil])
    }

    // MARK: Selection

    @Test func selectLoadsOnlyTheNamedColumns() throws {
        let table = try parse("a,b,c\n1,x,3\n4,y,6\n", select: ["c", "a", "c"])
        #expect(table.columnNames == ["a", "b", "c"])
        #expect(Set(table.columns.keys) == ["a", "c"])
        #expect(table["b"] == nil)
        #expect(numbers(table, "c") == [3, 6])
        // The other columns are still checked for the right number of fields.
        #expect(throws: InputError.self) { try parse("a,b,c\n1,x\n", select: ["a"]) }
    }

    @Test func selectedColumnsMustBeInTheHeader() {
        let error = inputError { _ = try parse("a,b\n1,2\n", select: ["a", "zz"]) }
        #expect(error?.message.contains("\"zz\"") == true)
        #expect(error?.message.contains("\"a\", \"b\"") == true)
        #expect(error?.file == "test.csv")
        #expect(error?.line == 1)
        #expect(inputError { _ = try parse("\n\na,b\n1,2\n", select: ["c"]) }?.line == 3)
    }

    @Test func categoricalNamesMissingFromTheHeaderAreIgnored() throws {
        // Callers pass a formula's grouping columns and report missing ones themselves.
        let table = try parse("a,b\n1,2\n", categorical: ["b", "c"])
        #expect(factor(table, "b")?.levels == ["2"])
        #expect(table["c"] == nil)
    }

    @Test func veryWideRows() throws {
        let names = (0..<5000).map { "c\($0)" }
        let text = names.joined(separator: ",") + "\n" + (0..<5000).map(String.init).joined(separator: ",") + "\n"
        let table = try parse(text, select: ["c4999", "c0"], chunkSize: 100)
        #expect(table.columnNames.count == 5000)
        #expect(numbers(table, "c4999") == [4999])
        #expect(numbers(table, "c0") == [0])
        let error = inputError { _ = try parse("a\n" + String(repeating: ",", count: 200_000) + "\n") }
        #expect(error?.message.contains("expected 1 field, found 200001") == true)
    }

    // MARK: Chunks

    /// Everything at once: quotes with commas, line breaks and doubled quotes, CRLF, BOM, NA,
    /// blank lines, long fields. Every chunk size must give the same table.
    @Test func everyChunkSizeGivesTheSameTable() throws {
        let long = String(repeating: "long,\"field\" ", count: 40)
        let text = "\u{FEFF}y,\"g\",\"h, i\"\r\n1.25,\"a,b\",x\r\n\r\n-2e-3,\"multi\r\nline\",\"q\"\"q\"\n"
            + ",NA,\"\(long.replacingOccurrences(of: "\"", with: "\"\""))\"\n"
            + "12345678901234567890.5,\"\",NA\n  7  ,plain,\"\"\"\"\n0.1,\"é\",z"
        let reference = try parse(text)
        #expect(reference.rowCount == 6)
        #expect(numbers(reference, "y") == [1.25, -0.002, nil, 12345678901234567890.5, 7, 0.1])
        #expect(labels(reference, "g") == ["a,b", "multi\r\nline", nil, nil, "plain", "é"])
        #expect(labels(reference, "h, i") == ["x", "q\"q", long, nil, "\"", "z"])
        for chunkSize in 1...80 {
            let table = try parse(text, chunkSize: chunkSize)
            #expect(table.rowCount == reference.rowCount)
            #expect(numbers(table, "y") == numbers(reference, "y"), "chunk size \(chunkSize)")
            #expect(factor(table, "g") == factor(reference, "g"), "chunk size \(chunkSize)")
            #expect(factor(table, "h, i") == factor(reference, "h, i"), "chunk size \(chunkSize)")
        }
    }

    /// Random tables written with random quoting and line ends, read back with random chunk sizes.
    @Test func randomTablesRoundTrip() throws {
        var generator = SplitMix64(seed: 7)
        let pieces = ["a", "B", "é", ",", "\"", "\n", "\r\n", " ", "1", "x y", "NA"]
        for _ in 0..<150 {
            let rows = Int.random(in: 0...40, using: &generator)
            var y: [Double?] = []
            var g: [String?] = []
            for _ in 0..<rows {
                y.append(Int.random(in: 0..<6, using: &generator) == 0 ? nil
                         : Double(bitPattern: generator.next() & 0x7FEF_FFFF_FFFF_FFFF) * (Bool.random(using: &generator) ? 1 : -1))
                if Int.random(in: 0..<6, using: &generator) == 0 {
                    g.append(nil)
                } else {
                    var label = ""
                    for _ in 0..<Int.random(in: 1...4, using: &generator) { label += pieces.randomElement(using: &generator)! }
                    if label == "NA" { label = "NA!" }
                    g.append(label)
                }
            }
            var text = Bool.random(using: &generator) ? "y,\"g\"" : "\"y\",g"
            for row in 0..<rows {
                text += Bool.random(using: &generator) ? "\r\n" : "\n"
                let number = y[row].map { $0.description } ?? (Bool.random(using: &generator) ? "NA" : "")
                text += Bool.random(using: &generator) ? number : "\"\(number)\""
                text += ","
                if let label = g[row] {
                    text += "\"" + label.replacingOccurrences(of: "\"", with: "\"\"") + "\""
                } else {
                    text += Bool.random(using: &generator) ? "NA" : ""
                }
            }
            if Bool.random(using: &generator) { text += "\n" }
            let table = try parse(text, categorical: ["g"], chunkSize: Int.random(in: 1...64, using: &generator))
            #expect(table.rowCount == rows)
            #expect(numbers(table, "y") == y)
            #expect(labels(table, "g") == g)
        }
    }

    @Test func filesAreReadInChunks() throws {
        let directory = try TemporaryDirectory()
        var text = "id,y,g\n"
        for i in 0..<3000 { text += "\(300 + i % 17),\(Double(i) / 8),\"g\(i % 13)\"\r\n" }
        let path = try directory.write("data.csv", text)
        let small = try CSVReader.read(path: path, select: nil, categorical: ["id"], chunkSize: 7)
        let large = try CSVReader.read(path: path, categorical: ["id"])
        #expect(small.source == "data.csv")
        #expect(small.rowCount == 3000)
        #expect(factor(small, "id") == factor(large, "id"))
        #expect(factor(small, "id")?.levels == (300..<317).map(String.init))
        #expect(numbers(small, "y") == numbers(large, "y"))
        #expect(labels(small, "g") == (0..<3000).map { "g\($0 % 13)" })
        #expect(try CSVReader.readHeader(path: path) == ["id", "y", "g"])
    }

    // MARK: Errors

    @Test func wrongNumberOfFields() {
        let tooFew = inputError { _ = try parse("a,b,c\n1,2,3\n4,5\n") }
        #expect(tooFew?.message.contains("expected 3 fields, found 2") == true)
        #expect(tooFew?.file == "test.csv")
        #expect(tooFew?.line == 3)
        #expect(tooFew?.column == 3)
        #expect(tooFew?.description.hasPrefix("test.csv:3:3: expected 3 fields, found 2") == true)

        let tooMany = inputError { _ = try parse("a,b\n1,2,3\n") }
        #expect(tooMany?.message.contains("expected 2 fields, found 3") == true)
        #expect(tooMany?.line == 2)
        #expect(tooMany?.column == 3)
    }

    @Test func lineNumbersArePhysicalLines() {
        // A quoted field with line breaks, blank lines and CRLF all count.
        let afterQuoted = inputError { _ = try parse("a,b\n\"x\ny\nz\",1\n\n1\n", chunkSize: 5) }
        #expect(afterQuoted?.line == 6)
        #expect(afterQuoted?.column == 2)
        let crlf = inputError { _ = try parse("a,b\r\n1,2\r\n\r\n3\r\n") }
        #expect(crlf?.line == 4)
        // Inside quotes as outside, CRLF is one line break and a lone CR is one too.
        let quotedBreaks = inputError { _ = try parse("a,b\n\"x\r\ny\rz\",1\n1\n", chunkSize: 4) }
        #expect(quotedBreaks?.line == 5)
    }

    @Test func unterminatedQuote() {
        let error = inputError { _ = try parse("a,b\n1,\"abc\n\ndef\n") }
        #expect(error?.message.contains("unterminated quoted field") == true)
        #expect(error?.line == 2)
        #expect(error?.column == 2)
        // The line where the quoted field starts, after a multi-line field in the same row.
        let later = inputError { _ = try parse("a,b\n1,2\n\"x\ny\",\"open\nmore", chunkSize: 3) }
        #expect(later?.line == 4)
        #expect(later?.column == 2)
    }

    @Test func textAfterClosingQuote() {
        let error = inputError { _ = try parse("a,b\n1,2\n\"x\"y,1\n") }
        #expect(error?.message.contains("after a closing quote") == true)
        #expect(error?.message.contains("'y'") == true)
        #expect(error?.line == 3)
        #expect(error?.column == 1)
    }

    @Test func emptyInput() {
        for text in ["", "\n\n", "\r\n\r\n", "\u{FEFF}", "\u{FEFF}\n"] {
            let error = inputError { _ = try parse(text) }
            #expect(error?.message.contains("empty file") == true, "\(text.debugDescription)")
            #expect(error?.message.contains("expected a header") == true)
        }
    }

    @Test func badHeaderNames() {
        let empty = inputError { _ = try parse("a,,c\n1,2,3\n") }
        #expect(empty?.message.contains("empty column name") == true)
        #expect(empty?.line == 1)
        #expect(empty?.column == 2)
        let blank = inputError { _ = try parse("\n\na, ,c\n") }
        #expect(blank?.line == 3)
        #expect(blank?.column == 2)
        let duplicate = inputError { _ = try parse("a,b,\"a\"\n1,2,3\n") }
        #expect(duplicate?.message.contains("duplicate column name \"a\"") == true)
        #expect(duplicate?.message.contains("column 1") == true)
        #expect(duplicate?.column == 3)
    }

    @Test func unreadableFiles() throws {
        let directory = try TemporaryDirectory()
        let missing = inputError { _ = try CSVReader.read(path: directory.path + "/nope.csv") }
        #expect(missing?.message.contains("cannot open") == true)
        #expect(missing?.message.contains("No such file") == true)
        #expect(missing?.file == "nope.csv")
        let header = inputError { _ = try CSVReader.readHeader(path: directory.path + "/nope.csv") }
        #expect(header?.message.contains("cannot open") == true)
        let isDirectory = inputError { _ = try CSVReader.read(path: directory.path) }
        #expect(isDirectory?.message.contains("cannot read") == true)
        let emptyFile = try directory.write("empty.csv", "")
        let empty = inputError { _ = try CSVReader.readHeader(path: emptyFile) }
        #expect(empty?.message.contains("empty file") == true)
        #expect(empty?.file == "empty.csv")
    }

    // MARK: Robustness

    /// Random bytes, rich in CSV syntax: the reader returns a consistent table or throws an
    /// InputError, never anything else, and never crashes.
    @Test func randomBytesNeverCrash() {
        var generator = SplitMix64(seed: 99)
        let alphabet: [UInt8] = Array(",,,\"\"\n\n\r a1.-eNA9+".utf8) + [0xEF, 0xBB, 0xBF, 0xC3, 0xA9, 0xFF, 0x00]
        var tables = 0
        for _ in 0..<4000 {
            let bytes = (0..<Int.random(in: 0...120, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! }
            do {
                let table = try CSVReader.read(bytes: bytes, source: "fuzz", select: nil, categorical: [],
                                               chunkSize: Int.random(in: 1...32, using: &generator))
                tables += 1
                for (_, column) in table.columns {
                    #expect(column.count == table.rowCount)
                    if case .categorical(let factor) = column {
                        #expect(factor.codes.allSatisfy { $0 >= -1 && Int($0) < factor.levels.count })
                        #expect(Set(factor.levels).count == factor.levels.count)
                    }
                }
                #expect(Set(table.columns.keys) == Set(table.columnNames))
            } catch is InputError {
            } catch {
                Issue.record("unexpected error \(error)")
            }
        }
        // The fuzzing also reaches the data rows (fewer tables since a label that is not UTF-8,
        // 0xFF or a lone 0xC3, is an error: issue 11, item 6).
        #expect(tables > 40)
    }
}

import Foundation
import Testing
@testable import MixedModels

/// Issue 11, item 6: labels that are not UTF-8 must not merge distinct levels. They are refused
/// with the file, line and column (labels are compared, sorted and written as `String`s, and the
/// JSON output must be UTF-8), while every well-formed UTF-8 label stays its own level.
@Suite("label encoding")
struct LabelEncodingTests {
    func invalid(_ bytes: [UInt8]) -> Int? {
        bytes.withUnsafeBufferPointer { UTF8Validation.firstInvalidByte($0.baseAddress ?? UnsafePointer(bitPattern: 1)!, count: $0.count) }
    }

    @Test("the validator accepts UTF-8 and finds the first bad byte of RFC 3629's ill-formed sequences")
    func validator() {
        for text in ["", "abc", "Zürich", "東京", "🙂x", "\u{10FFFF}", "\u{FFFD}"] { #expect(invalid(Array(text.utf8)) == nil, "\(text)") }
        let cases: [([UInt8], Int)] = [
            ([0x67, 0xFF], 1), ([0x67, 0xFE], 1), ([0x67, 0xC0], 1), ([0xC0, 0x80], 0), ([0xC1, 0xBF], 0),   // overlong
            ([0xE0, 0x80, 0x80], 0), ([0xED, 0xA0, 0x80], 0),                                             // overlong, surrogate
            ([0xF4, 0x90, 0x80, 0x80], 0), ([0xF5, 0x80, 0x80, 0x80], 0),                                 // beyond U+10FFFF
            ([0x61, 0xE2, 0x82], 1), ([0x80], 0), ([0x61, 0xC3, 0x28], 1), ([0xE2, 0x82, 0x41], 0),       // truncated, stray
        ]
        for (bytes, offset) in cases { #expect(invalid(bytes) == offset, "\(bytes)") }
        // Agrees with the standard library's decoder on random byte strings.
        var generator = SplitMix64(seed: 11)
        for _ in 0..<20_000 {
            let bytes = (0..<Int(generator.next() % 6)).map { _ in UInt8(truncatingIfNeeded: generator.next() | (generator.next() % 3 == 0 ? 0 : 0x80)) }
            #expect((invalid(bytes) == nil) == (String(validating: bytes, as: UTF8.self) != nil), "\(bytes)")
        }
    }

    /// `y,x,g` rows whose g cycles through `labels`.
    func csv(_ labels: [[UInt8]], rows: Int = 60) -> [UInt8] {
        var bytes = Array("y,x,g\n".utf8)
        for i in 0..<rows {
            bytes += Array("\(Double(i % 7) * 1.5 + Double(i % labels.count)),\(i),".utf8) + labels[i % labels.count] + [0x0A]
        }
        return bytes
    }

    @Test("the issue's six labels g\\xff g\\xfe g\\xc0 h i j: an error at the first, not 4 groups")
    func issueReproduction() throws {
        let data = csv([[0x67, 0xFF], [0x67, 0xFE], [0x67, 0xC0], [0x68], [0x69], [0x6A]])
        #expect(throws: InputError("column \"g\" has a value that is not valid UTF-8 (byte 0xFF at byte 2 of the field); labels must be UTF-8 text, or distinct labels would merge: convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8)",
                                   file: "d.csv", line: 2, column: 3)) {
            try CSVReader.read(bytes: data, source: "d.csv")
        }
        // Through the command, for the in-memory methods, adam (via the conversion) and convert.
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("d.csv").path
        try Data(data).write(to: URL(fileURLWithPath: path))
        for method in ["exact", "em", "adam"] {
            let result = try CommandRunner.run(["fit", path, "-f", "y ~ x + (1 | g)", "--method", method, "-q"])
            #expect(result.status == 1 && result.stderr.contains("d.csv:2:3: column \"g\" has a value that is not valid UTF-8"), "\(method): \(result.stderr)")
        }
        let output = directory.appendingPathComponent("d.lmmbin").path
        let converted = try CommandRunner.run(["convert", path, output])
        #expect(converted.status == 1 && converted.stderr.contains("d.csv:2:3:"), "\(converted.stderr)")
        #expect(!FileManager.default.fileExists(atPath: output))
    }

    @Test("UTF-8 labels that look alike stay distinct levels")
    func distinctUTF8Labels() throws {
        let labels = ["g\u{FFFD}", "g", "gé", "G", "東京", "🙂"].map { Array($0.utf8) }
        let table = try CSVReader.read(bytes: csv(labels), source: "d.csv", categorical: ["g"])
        guard case .categorical(let factor)? = table["g"] else { Issue.record("g is not a factor"); return }
        #expect(factor.levels.count == 6)
        let model = try LinearMixedModel(formula: Formula.parse("y ~ x + (1 | g)"), data: table)
        #expect(model.frame.randomTerms[0].levelCount == 6)
        // Canonically equivalent spellings ("é", "e" + U+0301) are one Swift String, hence one
        // level (LevelDictionary.sortedLevels documents it); R would keep two.
        let equivalent = try CSVReader.read(bytes: csv([Array("gé".utf8), Array("ge\u{301}".utf8), [0x68]]), source: "e.csv",
                                            categorical: ["g"])
        guard case .categorical(let merged)? = equivalent["g"] else { Issue.record("g is not a factor"); return }
        #expect(merged.levels.count == 2)
    }

    @Test("a column that turns to text late, a quoted field and the header are checked too")
    func lateTextQuotedAndHeader() throws {
        var late = Array("y,g\n".utf8)
        for i in 0..<300 { late += Array("\(i),\(i)\n".utf8) }
        late += Array("1,ab".utf8) + [0xE9] + Array("\n".utf8)
        #expect(throws: InputError.self) { try CSVReader.read(bytes: late, source: "late.csv") }
        do {
            _ = try CSVReader.read(bytes: late, source: "late.csv")
        } catch let error as InputError {
            #expect(error.line == 302 && error.column == 2, "\(error)")
        }
        let quoted = Array("y,g\n1,\"a,".utf8) + [0xFF] + Array("\"\n2,b\n".utf8)
        #expect(throws: InputError.self) { try CSVReader.read(bytes: quoted, source: "q.csv") }
        let header = Array("y,".utf8) + [0x67, 0xFF] + Array("\n1,2\n".utf8)
        do {
            _ = try CSVReader.read(bytes: header, source: "h.csv")
            Issue.record("no error")
        } catch let error as InputError {
            #expect(error.line == 1 && error.column == 2 && error.message.contains("not valid UTF-8 (byte 0xFF)"), "\(error)")
        }
        // Text in a numeric column that is never loaded is not read at all.
        let unused = Array("y,x,g\n1,2,".utf8) + [0xFF] + Array("\n".utf8)
        #expect(throws: Never.self) { try CSVReader.read(bytes: unused, source: "u.csv", select: ["y", "x"]) }
    }

    @Test("labels equal as text but spelled differently in Unicode (é vs e + U+0301) are refused, not merged")
    func canonicallyEquivalentLabels() throws {
        let composed: [UInt8] = [0x67, 0xC3, 0xA9], decomposed: [UInt8] = [0x67, 0x65, 0xCC, 0x81]
        #expect(String(decoding: composed, as: UTF8.self) == String(decoding: decomposed, as: UTF8.self))
        let data = csv([composed, decomposed, [0x68], [0x69]])
        let expected = "column \"g\" has two labels that are the same text \"gé\" in different Unicode spellings "
            + "(bytes 0x67 0xC3 0xA9 and 0x67 0x65 0xCC 0x81)"
        do {
            _ = try CSVReader.read(bytes: data, source: "d.csv")
            Issue.record("read merged or accepted the two spellings")
        } catch let error as InputError {
            #expect(error.message.hasPrefix(expected) && error.file == "d.csv", "\(error)")
        }
        // One spelling only: three labels, three levels.
        let table = try CSVReader.read(bytes: csv([composed, [0x68], [0x69]]), source: "d.csv")
        guard case .categorical(let factor)? = table.columns["g"] else { Issue.record("g is not categorical"); return }
        #expect(factor.levels.count == 3)
        // Through the command (in-memory methods and adam via the conversion) and convert.
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("d.csv").path
        try Data(data).write(to: URL(fileURLWithPath: path))
        for method in ["exact", "adam"] {
            let result = try CommandRunner.run(["fit", path, "-f", "y ~ x + (1 | g)", "--method", method, "-q"])
            #expect(result.status == 1 && result.stderr.contains(expected), "\(method): \(result.stderr)")
        }
        let output = directory.appendingPathComponent("d.lmmbin").path
        let converted = try CommandRunner.run(["convert", path, output])
        #expect(converted.status == 1 && converted.stderr.contains(expected), "\(converted.stderr)")
        #expect(!FileManager.default.fileExists(atPath: output))
    }
}

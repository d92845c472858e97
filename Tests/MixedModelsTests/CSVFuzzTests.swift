import Foundation
import Testing
@testable import MixedModels

/// Issue 11, fuzz acceptance for the CSV reader: sleepstudy.csv truncated, with bits flipped,
/// random bytes written over it, quotes and separators inserted, rows made ragged. Every case
/// reads to a table or stops with an ``InputError`` naming the file; a table that builds a model
/// frame fits to finite estimates or stops with an ``LMMError``; never a crash or another error.
@Suite("CSV fuzz")
struct CSVFuzzTests {
    static let formula = try! Formula.parse("Reaction ~ 1 + Days + (1 + Days | Subject)")
    static let original = Array(try! Data(contentsOf: URL(fileURLWithPath: Fixtures.path("sleepstudy.csv"))))

    enum Outcome { case readError, modelError, fitted }

    /// Reads `bytes` as the fit would, builds the model and, when `fit`, fits it.
    static func check(_ bytes: [UInt8], fit: Bool, chunkSize: Int = CSVReader.defaultChunkSize,
                      sourceLocation: SourceLocation = #_sourceLocation) -> Outcome {
        let table: DataTable
        do {
            table = try CSVReader.read(bytes: bytes, source: "fuzz.csv", select: nil, categorical: formula.factorColumns,
                                       chunkSize: chunkSize)
        } catch let error as InputError {
            #expect(error.file == "fuzz.csv" && !error.message.isEmpty, "\(error)", sourceLocation: sourceLocation)
            return .readError
        } catch {
            Issue.record("unexpected error reading: \(error)", sourceLocation: sourceLocation)
            return .readError
        }
        for (_, column) in table.columns { #expect(column.count == table.rowCount, sourceLocation: sourceLocation) }
        do {
            let model = try LinearMixedModel(formula: formula, data: table)
            guard fit else { return .fitted }
            let result = try model.fit(criterion: .reml)
            let numbers = result.fixedEffects + result.fixedEffectStandardErrors + result.theta + [result.sigma, result.logLikelihood]
            let finite = numbers.allSatisfy { $0.isFinite }
            #expect(finite, "non-finite estimate", sourceLocation: sourceLocation)
            _ = try result.json.serialized()
            return .fitted
        } catch let error as LMMError {
            #expect(!error.description.isEmpty && !error.description.contains("internal error"), "\(error)",
                    sourceLocation: sourceLocation)
            return .modelError
        } catch {
            Issue.record("unexpected error type: \(error)", sourceLocation: sourceLocation)
            return .modelError
        }
    }

    @Test("the unmutated file fits as lme4 does")
    func original() throws {
        #expect(Self.check(Self.original, fit: true) == .fitted)
    }

    @Test("every truncation: a table or a clear error")
    func truncations() {
        var outcomes: [Outcome] = []
        // Every length in the header and the first rows, then every 37th byte.
        for length in Array(0..<200) + Array(stride(from: 200, to: Self.original.count, by: 37)) {
            outcomes.append(Self.check(Array(Self.original[..<length]), fit: false, chunkSize: 1 + length % 64))
        }
        #expect(outcomes.contains(.readError) && outcomes.contains(.fitted))
    }

    @Test("bit flips, random byte runs, inserted quotes, commas and line breaks, ragged rows")
    func mutations() {
        var generator = SplitMix(seed: 2026)
        var counts: [Outcome: Int] = [:]
        let specials: [UInt8] = Array("\",\n\r \t".utf8) + [0x00, 0xFF, 0xC3, 0xEF, 0xBB, 0xBF]
        for round in 0..<1_500 {
            var bytes = Self.original
            let position = Int(generator.next() % UInt64(bytes.count))
            switch round % 6 {
            case 0:   // one bit
                bytes[position] ^= 1 << UInt8(generator.next() % 8)
            case 1:   // a run of random bytes
                for k in position..<min(bytes.count, position + 1 + Int(generator.next() % 16)) {
                    bytes[k] = UInt8(truncatingIfNeeded: generator.next())
                }
            case 2:   // a CSV special character inserted
                bytes.insert(specials[Int(generator.next() % UInt64(specials.count))], at: position)
            case 3:   // a quoted field opened and maybe closed later
                bytes.insert(UInt8(ascii: "\""), at: position)
                if generator.next() % 2 == 0 {
                    bytes.insert(UInt8(ascii: "\""), at: min(bytes.count, position + 1 + Int(generator.next() % 40)))
                }
            case 4:   // a ragged row: a field added or removed on one line
                let lineStart = bytes[..<position].lastIndex(of: 0x0A).map { $0 + 1 } ?? 0
                if generator.next() % 2 == 0 {
                    bytes.insert(contentsOf: Array(",9".utf8), at: lineStart)
                } else if let comma = bytes[lineStart...].firstIndex(of: UInt8(ascii: ",")) {
                    bytes.remove(at: comma)
                }
            default:  // a field replaced by text, a number, NA, empty, Inf or a huge exponent
                let replacements = ["abc", "NA", "", "Inf", "1e999", "-0", "1e-320", "\"308\"", "0x1p3"]
                let lineStart = bytes[..<position].lastIndex(of: 0x0A).map { $0 + 1 } ?? 0
                let end = bytes[lineStart...].firstIndex { $0 == UInt8(ascii: ",") || $0 == 0x0A } ?? bytes.count
                bytes.replaceSubrange(lineStart..<end, with: Array(replacements[Int(generator.next() % UInt64(replacements.count))].utf8))
            }
            // Fit one case in ten (a REML fit per case would take minutes in a debug build).
            let outcome = Self.check(bytes, fit: round % 10 == 0, chunkSize: round % 3 == 0 ? 1 + Int(generator.next() % 97) : CSVReader.defaultChunkSize)
            counts[outcome, default: 0] += 1
        }
        #expect(counts.values.allSatisfy { $0 > 100 } && counts.count == 3, "\(counts)")
    }

    @Test("random bytes rich in CSV syntax through lmm convert: a file or a clear error, never a partial file")
    func conversion() throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = directory.appendingPathComponent("fuzz.csv").path
        let output = directory.appendingPathComponent("fuzz.lmmbin").path
        var generator = SplitMix(seed: 7)
        for round in 0..<200 {
            var bytes = Self.original
            for _ in 0..<(1 + round % 4) {
                let position = Int(generator.next() % UInt64(bytes.count))
                bytes[position] = [UInt8(ascii: "\""), UInt8(ascii: ","), 0x0A, 0xFF, UInt8(ascii: "x")][Int(generator.next() % 5)]
            }
            if round % 5 == 0 { bytes = Array(bytes[..<Int(generator.next() % UInt64(bytes.count))]) }
            try Data(bytes).write(to: URL(fileURLWithPath: input))
            do {
                let summary = try CSVConversion.convert(csv: input, to: output, categorical: ["Subject"])
                let table = try LMMBinaryReader(path: output).readAll()
                #expect(table.rowCount == summary.rowCount)
            } catch let error as InputError {
                #expect(error.file == "fuzz.csv" && !error.message.isEmpty, "\(error)")
                #expect(!FileManager.default.fileExists(atPath: output))
            }
            try? FileManager.default.removeItem(atPath: output)
            #expect((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) == ["fuzz.csv"])
        }
    }
}

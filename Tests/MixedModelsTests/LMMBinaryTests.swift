import Foundation
import Testing
@testable import MixedModels

/// The `.lmmbin` format: round trips, chunking, and the reader's refusal of damaged files.
@Suite("lmmbin format")
struct LMMBinaryTests {
    /// A fresh directory for one test's files.
    static func directory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("lmmbin-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Writes `n` rows (factor `g` first, so that a partial chunk needs padding) and returns the path.
    static func writeSample(rows n: Int, rowsPerChunk: Int, in directory: URL, name: String = "sample.lmmbin") throws -> String {
        let path = directory.appendingPathComponent(name).path
        let writer = try LMMBinaryWriter(path: path, columns: [.factor("g"), .float64("y"), .float64("x")],
                                         rowsPerChunk: rowsPerChunk)
        try writer.setLevels(["a", "b", "c"], forColumn: "g")
        try writer.append([.factor(codes(n)), .float64(ys(n)), .float64(xs(n))])
        try writer.finish()
        return path
    }

    static func codes(_ n: Int) -> [Int32] { (0..<n).map { Int32($0 % 3) } }
    static func ys(_ n: Int) -> [Double] { (0..<n).map { Double($0) * 0.5 - 3 } }
    static func xs(_ n: Int) -> [Double] { (0..<n).map { sin(Double($0)) } }

    static func bytes(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }
    static func write(_ bytes: [UInt8], to path: String) throws { try Data(bytes).write(to: URL(fileURLWithPath: path)) }

    /// The message of the ``InputError`` that opening (and reading every chunk of) `path` throws.
    static func openingError(_ path: String) -> InputError? {
        do {
            let reader = try LMMBinaryReader(path: path)
            var chunk = LMMBinaryChunk()
            for c in 0..<reader.chunkCount { try reader.readChunk(c, into: &chunk) }
            return nil
        } catch let error as InputError {
            return error
        } catch {
            Issue.record("unexpected error \(error)")
            return nil
        }
    }

    @Test("round trip: rows and batches, missing values, levels, readAll")
    func roundTrip() throws {
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("round.lmmbin").path
        let writer = try LMMBinaryWriter(path: path, columns: [.float64("y"), .float64("x"), .factor("subject")])
        #expect(try writer.code(for: "s308", inColumnAt: 2) == 0)
        #expect(try writer.code(for: "s309", inColumnAt: 2) == 1)
        try writer.append(row: [.float64(1.5), .float64(-2), .code(1)])
        try writer.append(row: [.float64(.nan), .float64(0), .code(-1)])
        try writer.append([.float64([3, 4]), .float64([5, 6]), .factor([0, 1])])
        #expect(try writer.code(for: "s309", inColumnAt: 2) == 1)
        #expect(writer.rowCount == 4)
        try writer.finish()

        let reader = try LMMBinaryReader(path: path)
        #expect(reader.rowCount == 4)
        #expect(reader.columns == [.float64("y"), .float64("x"), .factor("subject")])
        #expect(reader.levels(of: "subject") == ["s308", "s309"])
        #expect(reader.levels(of: "y") == nil)
        #expect(reader.chunkCount == 1)
        let table = try reader.readAll()
        #expect(table.rowCount == 4)
        #expect(table.columnNames == ["y", "x", "subject"])
        guard case .numeric(let y)? = table["y"], case .numeric(let x)? = table["x"],
              case .categorical(let subject)? = table["subject"] else {
            Issue.record("wrong column types")
            return
        }
        #expect(y[0] == 1.5 && y[1].isNaN && y[2] == 3 && y[3] == 4)
        #expect(x == [-2, 0, 5, 6])
        #expect(subject == Factor(codes: [1, -1, 0, 1], levels: ["s308", "s309"]))
    }

    @Test("readAll puts levels stored in another order in R's order, as CSVReader does")
    func levelOrder() throws {
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("order.lmmbin").path
        let writer = try LMMBinaryWriter(path: path, columns: [.factor("g"), .factor("id")])
        try writer.setLevels(["b", "a", "C"], forColumn: "g")
        try writer.setLevels(["10", "9", "100"], forColumn: "id")
        try writer.append([.factor([0, 1, 2, -1]), .factor([0, 1, 2, 0])])
        try writer.finish()
        let reader = try LMMBinaryReader(path: path)
        #expect(reader.levels(of: "g") == ["b", "a", "C"])
        let table = try reader.readAll()
        #expect(table["g"] == .categorical(Factor(codes: [1, 0, 2, -1], levels: ["a", "b", "C"])))
        #expect(table["id"] == .categorical(Factor(codes: [1, 0, 2, 1], levels: ["9", "10", "100"])))
        #expect(LMMBinaryReader.isInROrder(["u0001", "u0002", "u0010", "x1"]))
        #expect(!LMMBinaryReader.isInROrder(["b", "a"]))
        #expect(!LMMBinaryReader.isInROrder(["a", "A"]))
        #expect(!LMMBinaryReader.isInROrder(["1", "2"]))
    }

    @Test("many chunks with a partial last chunk, read in any order", arguments: [1, 7, 64, 1000])
    func multipleChunks(rowsPerChunk: Int) throws {
        let n = 450
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = try Self.writeSample(rows: n, rowsPerChunk: rowsPerChunk, in: directory)
        let reader = try LMMBinaryReader(path: path)
        #expect(reader.rowCount == n)
        #expect(reader.rowsPerChunk == rowsPerChunk)
        #expect(reader.chunkCount == (n + rowsPerChunk - 1) / rowsPerChunk)
        #expect(reader.rowCount(ofChunk: reader.chunkCount - 1) == n - (reader.chunkCount - 1) * rowsPerChunk)

        var chunk = LMMBinaryChunk()
        let codes = Self.codes(n), ys = Self.ys(n), xs = Self.xs(n)
        for c in (0..<reader.chunkCount).reversed() {
            try reader.readChunk(c, into: &chunk)
            let rows = chunk.firstRow..<(chunk.firstRow + chunk.rowCount)
            #expect(chunk.index == c && chunk.firstRow == c * rowsPerChunk)
            #expect(chunk.codes(0) == Array(codes[rows]))
            #expect(chunk.float64(1) == Array(ys[rows]))
            #expect(chunk.float64(2) == Array(xs[rows]))
            #expect(chunk.columns.count == 3)
        }
        let table = try reader.readAll()
        #expect(table["y"] == .numeric(ys))
        #expect(table["g"] == .categorical(Factor(codes: codes, levels: ["a", "b", "c"])))
    }

    @Test("a file cut short anywhere is rejected as truncated or inconsistent")
    func truncated() throws {
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = try Self.writeSample(rows: 100, rowsPerChunk: 16, in: directory)
        let original = try Self.bytes(path)
        #expect(Self.openingError(path) == nil)
        for length in [0, 5, 20, 47, 60, 100, original.count / 2, original.count - 9, original.count - 1] {
            let cut = directory.appendingPathComponent("cut-\(length).lmmbin").path
            try Self.write(Array(original[..<length]), to: cut)
            let error = try #require(Self.openingError(cut), "a file cut to \(length) bytes was accepted")
            #expect(error.file == "cut-\(length).lmmbin")
            #expect(["truncated", "inconsistent", "not an lmmbin file", "corrupt"].contains { error.message.contains($0) },
                    "cut to \(length): \(error.message)")
        }
        // Trailing garbage is an inconsistency too.
        let padded = directory.appendingPathComponent("padded.lmmbin").path
        try Self.write(original + [0, 0, 0, 0, 0, 0, 0, 0], to: padded)
        #expect(Self.openingError(padded)?.message.contains("corrupt") == true)
    }

    @Test("bad magic, wrong version, inconsistent row count, unfinished file")
    func damagedHeader() throws {
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = try Self.writeSample(rows: 30, rowsPerChunk: 8, in: directory)
        let original = try Self.bytes(path)

        var bytes = original
        bytes[1] = UInt8(ascii: "X")
        let magic = directory.appendingPathComponent("magic.lmmbin").path
        try Self.write(bytes, to: magic)
        #expect(Self.openingError(magic)?.message.contains("bad magic") == true)

        let text = directory.appendingPathComponent("text.lmmbin").path
        try Self.write(Array("y,x,g\n1,2,a\n".utf8), to: text)
        #expect(Self.openingError(text)?.message.contains("not an lmmbin file") == true)

        bytes = original
        bytes[8] = 3
        let version = directory.appendingPathComponent("version.lmmbin").path
        try Self.write(bytes, to: version)
        #expect(Self.openingError(version)?.message.contains("unsupported lmmbin version 3") == true)
        bytes[8] = 1
        try Self.write(bytes, to: version)
        #expect(Self.openingError(version)?.message.contains("re-run `lmm convert`") == true)

        bytes = original
        bytes[16] = 31    // row count 30 → 31
        let rows = directory.appendingPathComponent("rows.lmmbin").path
        try Self.write(bytes, to: rows)
        #expect(Self.openingError(rows)?.message.contains("header checksum mismatch") == true)
        bytes = LMMBinaryResealing.reseal(bytes, rowCount: 30, rowsPerChunk: 8)
        try Self.write(bytes, to: rows)
        #expect(Self.openingError(rows)?.message.contains("inconsistent") == true)

        bytes = original
        for i in 40..<48 { bytes[i] = 0 }    // footer offset 0: the writer never finished
        bytes = LMMBinaryResealing.reseal(bytes, rowCount: 30, rowsPerChunk: 8)
        let unfinished = directory.appendingPathComponent("unfinished.lmmbin").path
        try Self.write(bytes, to: unfinished)
        #expect(Self.openingError(unfinished)?.message.contains("unfinished") == true)
    }

    @Test("a factor code that is not a level is reported with its row")
    func badCode() throws {
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = try Self.writeSample(rows: 30, rowsPerChunk: 8, in: directory)
        var bytes = try Self.bytes(path)
        let reader = try LMMBinaryReader(path: path)
        // Chunk 2 (rows 17–24) starts with column g; set row 19's code to 7.
        let layout = LMMBinaryLayout(columns: reader.columns, rowsPerChunk: 8,
                                     dataOffset: LMMBinaryLayout.headerSize(columns: reader.columns))
        let offset = layout.chunkOffset(2) + 2 * 4
        bytes[offset] = 7
        let bad = directory.appendingPathComponent("bad.lmmbin").path
        try Self.write(bytes, to: bad)
        #expect(Self.openingError(bad)?.message.contains("chunk 3 of 4 (rows 17 to 24) is corrupt: checksum mismatch") == true)
        bytes = LMMBinaryResealing.reseal(bytes, rowCount: 30, rowsPerChunk: 8)
        try Self.write(bytes, to: bad)
        let error = try #require(Self.openingError(bad))
        #expect(error.message.contains("row 19"))
        #expect(error.message.contains("'g'"))
    }

    @Test("the file appears only when the writer finishes; an abandoned or failed writer leaves nothing")
    func atomicWrite() throws {
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("atomic.lmmbin").path
        func entries() throws -> [String] { try FileManager.default.contentsOfDirectory(atPath: directory.path) }

        do {
            let writer = try LMMBinaryWriter(path: path, columns: [.float64("y")], rowsPerChunk: 4)
            try writer.append([.float64(Array(repeating: 1, count: 10))])
            #expect(!FileManager.default.fileExists(atPath: path))
            #expect(try entries().count == 1)    // the temporary file
        }
        let left = try entries()
        #expect(left.isEmpty, "an abandoned writer left \(left)")

        // A failed finish (a code without a level) leaves nothing either.
        let writer = try LMMBinaryWriter(path: path, columns: [.factor("g")])
        try writer.setLevels(["a"], forColumn: "g")
        try writer.append([.factor([0, 1])])
        #expect(throws: InputError.self) { try writer.finish() }
        #expect(throws: LMMError.self) { try writer.append([.factor([0])]) }
        #expect(try entries().isEmpty)

        // A new file replaces an old one only on finish.
        _ = try Self.writeSample(rows: 5, rowsPerChunk: 2, in: directory, name: "atomic.lmmbin")
        do {
            let replacing = try LMMBinaryWriter(path: path, columns: [.float64("z")])
            try replacing.append(row: [.float64(1)])
        }
        #expect(try LMMBinaryReader(path: path).rowCount == 5)
        #expect(try entries() == ["atomic.lmmbin"])
    }

    @Test("the writer rejects bad columns and batches")
    func writerValidation() throws {
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("w.lmmbin").path
        #expect(throws: InputError.self) { try LMMBinaryWriter(path: path, columns: []) }
        #expect(throws: InputError.self) { try LMMBinaryWriter(path: path, columns: [.float64("a"), .factor("a")]) }
        #expect(throws: InputError.self) { try LMMBinaryWriter(path: path, columns: [.float64("a")], rowsPerChunk: 0) }
        let writer = try LMMBinaryWriter(path: path, columns: [.float64("y"), .factor("g")])
        #expect(throws: InputError.self) { try writer.append([.float64([1, 2]), .factor([0])]) }
        #expect(throws: InputError.self) { try writer.append([.factor([0]), .float64([1])]) }
        #expect(throws: InputError.self) { try writer.append(row: [.float64(1), .code(-2)]) }
        #expect(throws: InputError.self) { try writer.setLevels(["a"], forColumn: "y") }
        #expect(writer.rowCount == 0)
        let missing = directory.appendingPathComponent("no/such/dir/x.lmmbin").path
        #expect(throws: LMMError.self) { try LMMBinaryWriter(path: missing, columns: [.float64("y")]) }
    }
}

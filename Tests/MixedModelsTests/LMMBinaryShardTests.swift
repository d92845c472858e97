import Foundation
import Testing
@testable import MixedModels

/// Issue 17: `lmm convert --shards K` writes K `.lmmbin` shards (shard s: its part of every
/// chunk, rows ⌊n·s/K⌋ ..< ⌊n·(s+1)/K⌋ of a chunk of n rows), and one process reads a shard set
/// as the whole file: the same rows in the same order, so the same fit bit for bit.
@Suite("lmmbin shards")
struct LMMBinaryShardTests {
    static let formula = "y ~ 1 + x + (1 | user) + (1 | item)"

    static func directory() throws -> URL { try CommandRunner.temporaryDirectory() }

    @Test("shard names: OUT.lmmbin → OUT.s-of-K.lmmbin, recognised back; other names are not shards")
    func names() {
        #expect(LMMBinarySharding.shardPath("d/ratings.lmmbin", index: 2, count: 4) == "d/ratings.2-of-4.lmmbin")
        #expect(LMMBinarySharding.shardPath("d.x/ratings", index: 0, count: 1) == "d.x/ratings.0-of-1")
        let set = LMMBinaryShardSet(path: "d/ratings.2-of-4.lmmbin")
        #expect(set?.index == 2 && set?.count == 4 && set?.path(of: 3) == "d/ratings.3-of-4.lmmbin")
        #expect(LMMBinaryShardSet(path: "ratings.0-of-1")?.path(of: 0) == "ratings.0-of-1")
        for name in ["ratings.lmmbin", "ratings.4-of-4.lmmbin", "ratings.01-of-4.lmmbin", "0-of-2.lmmbin", "r.1-of-x.lmmbin"] {
            #expect(LMMBinaryShardSet(path: name) == nil, "\(name)")
        }
    }

    @Test("convert --shards 3: three valid files, shard s holding its part of every chunk, with the same columns and levels")
    func convertShards() throws {
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let whole = directory.appendingPathComponent("whole.lmmbin").path
        let csv = Fixtures.path("synthetic_crossed.csv")
        #expect(try CommandRunner.run(["convert", csv, whole, "--categorical", "user,item", "--rows-per-chunk", "500", "-q"]).status == 0)
        let result = try CommandRunner.run(["convert", csv, directory.appendingPathComponent("s.lmmbin").path, "--categorical", "user,item",
                                            "--rows-per-chunk", "500", "--shards", "3"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("wrote 6000 rows in 3 shards"), "\(result.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
                == ["s.0-of-3.lmmbin", "s.1-of-3.lmmbin", "s.2-of-3.lmmbin", "whole.lmmbin"])
        let reference = try LMMBinaryReader(path: whole)
        var expected = LMMBinaryChunk(), actual = LMMBinaryChunk()
        for s in 0..<3 {
            let file = try LMMBinaryFile(path: directory.appendingPathComponent("s.\(s)-of-3.lmmbin").path)
            #expect(file.shard == LMMBinaryShardID(index: s, count: 3))
            // The header has the data's rows and chunks; the shard stores its part of each chunk.
            #expect(file.columns == reference.columns && file.rowCount == 6_000 && file.chunkCount == 12)
            #expect(file.layout.stored(500) == [166, 167, 167][s])
            #expect(file.levelLabels[2] == reference.levels(of: "user") && file.levelLabels[3] == reference.levels(of: "item"))
        }
        // Read as one, the set is the whole file, chunk by chunk.
        let set = try LMMBinaryReader(path: directory.appendingPathComponent("s.2-of-3.lmmbin").path)
        #expect(set.shardCount == 3 && set.rowCount == 6_000 && set.chunkCount == 12)
        for c in 0..<12 {
            try reference.readChunk(c, into: &expected)
            try set.readChunk(c, into: &actual)
            #expect(actual.doubles == expected.doubles && actual.codeArrays == expected.codeArrays && actual.firstRow == expected.firstRow)
        }
        // An .lmmbin input is split as it is; CSV options are refused for it.
        let again = try CommandRunner.run(["convert", whole, directory.appendingPathComponent("t.lmmbin").path, "--shards", "4", "-q"])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try LMMBinaryReader(path: directory.appendingPathComponent("t.3-of-4.lmmbin").path).readAll().rowCount == 6_000)
        let refused = try CommandRunner.run(["convert", whole, directory.appendingPathComponent("u.lmmbin").path, "--shards", "2",
                                             "--columns", "y,x"])
        #expect(refused.status != 0 && refused.stderr.contains("an .lmmbin file is split as it is"), "\(refused.stderr)")
    }

    @Test("more shards than rows per chunk is refused and leaves no file; more shards than chunks is fine")
    func tooManyShards() throws {
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let result = try CommandRunner.run(["convert", Fixtures.path("synthetic_crossed.csv"), directory.appendingPathComponent("s.lmmbin").path,
                                            "--categorical", "user,item", "--rows-per-chunk", "3", "--shards", "4"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("each of the 4 shards holds its part of every chunk, but the first chunk has only 3 rows "
                                       + "(use --rows-per-chunk 4 or more)"), "\(result.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty)
        let few = try CommandRunner.run(["convert", Fixtures.path("synthetic_crossed.csv"), directory.appendingPathComponent("t.lmmbin").path,
                                         "--categorical", "user,item", "--rows-per-chunk", "2000", "--shards", "4", "-q"])
        #expect(few.status == 0, "\(few.stderr)")
        #expect(try LMMBinaryReader(path: directory.appendingPathComponent("t.2-of-4.lmmbin").path).readAll().rowCount == 6_000)
    }

    @Test("a short last chunk, a part with no row of it: one process reads the set as the file, row for row")
    func shortLastChunk() throws {
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        // 6,000 rows in chunks of 1,999: the last chunk has 3 rows, so shard 0 of 4 holds none of them.
        let whole = directory.appendingPathComponent("whole.lmmbin").path
        #expect(try CommandRunner.run(["convert", Fixtures.path("synthetic_crossed.csv"), whole, "--categorical", "user,item",
                                       "--rows-per-chunk", "1999", "-q"]).status == 0)
        let reference = try LMMBinaryReader(path: whole)
        for count in [2, 3, 4, 7] {
            let paths = try LMMBinarySharding.split(reference, to: directory.appendingPathComponent("p\(count).lmmbin").path, shards: count)
            #expect(paths.count == count)
            let file = try LMMBinaryFile(path: paths[0])
            #expect(file.layout.stored(3) == 3 / count)
            let set = try LMMBinaryReader(path: paths[count - 1])
            #expect(set.rowCount == 6_000 && set.chunkCount == 4)
            var expected = LMMBinaryChunk(), actual = LMMBinaryChunk()
            for c in 0..<4 {
                try reference.readChunk(c, into: &expected)
                try set.readChunk(c, into: &actual)
                #expect(actual.doubles == expected.doubles && actual.codeArrays == expected.codeArrays
                        && actual.firstRow == expected.firstRow && actual.rowCount == expected.rowCount && actual.index == c, "\(count): chunk \(c)")
            }
            #expect(try set.readAll().rowCount == 6_000)
        }
    }

    @Test("a shard of the earlier layout (whole chunks, no mark in its header) is refused with what to do")
    func earlierLayout() throws {
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let whole = directory.appendingPathComponent("whole.lmmbin").path
        #expect(try CommandRunner.run(["convert", Fixtures.path("synthetic_crossed.csv"), whole, "--categorical", "user,item",
                                       "--rows-per-chunk", "500", "-q"]).status == 0)
        let paths = try LMMBinarySharding.split(try LMMBinaryReader(path: whole), to: directory.appendingPathComponent("s.lmmbin").path, shards: 2)
        // Clear the mark (bit 15 of the count) and seal the header again.
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: paths[1])))
        #expect(bytes[54] == 2 && bytes[55] == 0x80)
        bytes[55] = 0
        let dataOffset = (0..<8).reversed().reduce(0) { $0 << 8 | Int(bytes[32 + $1]) }
        for k in 48..<52 { bytes[k] = 0 }
        let checksum = CRC32C.checksum(Array(bytes[0..<dataOffset]))
        for k in 0..<4 { bytes[48 + k] = UInt8(truncatingIfNeeded: checksum >> (8 * UInt32(k))) }
        try Data(bytes).write(to: URL(fileURLWithPath: paths[1]))
        #expect(throws: InputError.self) { try LMMBinaryReader(path: paths[0]) }
        let run = try CommandRunner.run(["fit", paths[0], "-f", Self.formula, "--method", "adam", "-q"])
        #expect(run.status == 1 && run.stderr.contains("s.1-of-2.lmmbin: this is shard 1 of 2 written by an earlier lmm convert --shards "
                                                       + "(whole chunks per shard), a layout this program no longer reads"), "\(run.stderr)")
    }

    @Test("lmm fit of a shard fits the whole set (exact REML, adam, iterative), as of the whole file: the same JSON")
    func fitShardSet() throws {
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let csv = Fixtures.path("synthetic_crossed.csv")
        let whole = directory.appendingPathComponent("whole.lmmbin").path
        #expect(try CommandRunner.run(["convert", csv, whole, "--categorical", "user,item", "--rows-per-chunk", "500", "-q"]).status == 0)
        #expect(try CommandRunner.run(["convert", whole, directory.appendingPathComponent("s.lmmbin").path, "--shards", "3", "-q"]).status == 0)
        let shard = directory.appendingPathComponent("s.1-of-3.lmmbin").path
        for method in ["exact", "adam", "iterative"] {
            var outputs: [String] = []
            for input in [whole, shard] {
                let output = directory.appendingPathComponent("\(method)-\(outputs.count).json").path
                let run = try CommandRunner.run(["fit", input, "-f", Self.formula, "--method", method, "--json", output, "-q"])
                #expect(run.status == 0, "\(run.stderr)")
                let text = try String(contentsOfFile: output, encoding: .utf8)
                outputs.append(text.split(separator: "\n").filter { !$0.contains("elapsed") && !$0.contains("s per epoch") }.joined())
            }
            #expect(outputs[0] == outputs[1], "\(method)")
        }
        // A shard renamed is recognised by its header and refused.
        let renamed = directory.appendingPathComponent("renamed.lmmbin").path
        try FileManager.default.copyItem(atPath: shard, toPath: renamed)
        let run = try CommandRunner.run(["fit", renamed, "-f", Self.formula, "--method", "adam", "-q"])
        #expect(run.status == 1 && run.stderr.contains("renamed.lmmbin: this is shard 1 of a set of 3 (lmm convert --shards), under another name"),
                "\(run.stderr)")
    }
}

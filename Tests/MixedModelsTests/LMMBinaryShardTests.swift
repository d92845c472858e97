import Foundation
import Testing
@testable import MixedModels

/// Issue 17: `lmm convert --shards K` writes K valid `.lmmbin` files (shard s: chunks s, s+K, …),
/// and one process reads a shard set as the whole file.
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

    @Test("convert --shards 3: three valid files, shard s holding chunks s, s+3, … with the same columns and levels")
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
            #expect(file.columns == reference.columns && file.rowCount == 2_000 && file.chunkCount == 4)
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

    @Test("more shards than chunks is refused and leaves no file")
    func tooManyShards() throws {
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let result = try CommandRunner.run(["convert", Fixtures.path("synthetic_crossed.csv"), directory.appendingPathComponent("s.lmmbin").path,
                                            "--categorical", "user,item", "--rows-per-chunk", "2000", "--shards", "4"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("6000 rows make 3 chunks of 2000 rows: fewer than 4 shards, and every shard needs a chunk "
                                       + "(use --rows-per-chunk 1500 or less)"), "\(result.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty)
    }

    @Test("lmm fit of a shard fits the whole set (exact REML and adam), as of the whole file")
    func fitShardSet() throws {
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let csv = Fixtures.path("synthetic_crossed.csv")
        let whole = directory.appendingPathComponent("whole.lmmbin").path
        #expect(try CommandRunner.run(["convert", csv, whole, "--categorical", "user,item", "--rows-per-chunk", "500", "-q"]).status == 0)
        #expect(try CommandRunner.run(["convert", whole, directory.appendingPathComponent("s.lmmbin").path, "--shards", "3", "-q"]).status == 0)
        let shard = directory.appendingPathComponent("s.1-of-3.lmmbin").path
        for method in ["exact", "adam"] {
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

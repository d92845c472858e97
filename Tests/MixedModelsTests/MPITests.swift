import Foundation
import Testing

/// Issue 17: `lmm-mpi` on K ranks (`mpirun --oversubscribe -np K`, K = 1 to 4 on this 2-core
/// machine) gives the single-process `lmm fit --method adam` and `--method iterative` fits, from
/// one file or from a set of K shard files (`lmm convert --shards K`), and a bad chunk or shard
/// on one rank stops every rank with its message and no output file; with `--method iterative`
/// each rank holds only the rows of its own chunks.
@Suite("MPI", .serialized, .enabled(if: MPIRunner.mpirun != nil, "mpirun is not installed (CI installs openmpi-bin)"))
struct MPITests {
    static let formula = "y ~ 1 + x + (1 | user) + (1 | item)"

    /// synthetic_crossed (6,000 rows, 589 users × 60 items) as an `.lmmbin` file of 12 chunks of
    /// 500 rows, in a fresh directory.
    static func data() throws -> (directory: URL, path: String) {
        let directory = try CommandRunner.temporaryDirectory()
        let path = directory.appendingPathComponent("crossed.lmmbin").path
        let result = try CommandRunner.run(["convert", Fixtures.path("synthetic_crossed.csv"), path,
                                            "--categorical", "user,item", "--rows-per-chunk", "500"])
        #expect(result.status == 0, "\(result.stderr)")
        return (directory, path)
    }

    /// Every number (and flag, as 0 or 1) of a JSON document, by its path (`/fixef/x`,
    /// `/ranef/3/value`), except the timing.
    static func numbers(_ path: String) throws -> [String: Double] {
        var out: [String: Double] = [:]
        func walk(_ value: Any, _ key: String) {
            if let object = value as? [String: Any] {
                for (name, child) in object where name != "elapsed_seconds" { walk(child, key + "/" + name) }
            } else if let array = value as? [Any] {
                for (i, child) in array.enumerated() { walk(child, key + "/" + String(i)) }
            } else if let number = value as? NSNumber {
                out[key] = number.doubleValue
            }
        }
        walk(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))), "")
        return out
    }

    /// The shard set of `data` for `ranks` ranks (`lmm convert --shards`): the path of shard 0.
    static func shards(of data: String, _ ranks: Int, in directory: URL) throws -> String {
        let output = directory.appendingPathComponent("shards\(ranks).lmmbin").path
        let result = try CommandRunner.run(["convert", data, output, "--shards", String(ranks), "-q"])
        #expect(result.status == 0, "\(result.stderr)")
        return directory.appendingPathComponent("shards\(ranks).0-of-\(ranks).lmmbin").path
    }

    /// Fits with `lmm` and with `lmm-mpi` on 1 to 4 ranks (`counts`), from the file or (`sharded`) from a set
    /// of as many shards as ranks; every number of the JSON outputs agrees to 1e-10.
    func expectSameFit(method: String = "adam", formula: String = Self.formula, _ extra: [String], directory: URL, data: String,
                       sharded: Bool = false, ranks counts: ClosedRange<Int> = 1...4) throws {
        let single = directory.appendingPathComponent("single.json").path
        let result = try CommandRunner.run(["fit", data, "-f", formula, "--method", method, "--json", single, "-q"] + extra)
        #expect(result.status == 0, "\(result.stderr)")
        let reference = try Self.numbers(single)
        #expect(reference["/fixef/x"] != nil && reference.count > 1_000)
        for ranks in counts {
            let output = directory.appendingPathComponent("ranks\(ranks).json").path
            let input = sharded ? try Self.shards(of: data, ranks, in: directory) : data
            let run = try MPIRunner.run(ranks: ranks, ["fit", input, "-f", formula, "--method", method, "--json", output, "-q"] + extra)
            #expect(run.status == 0, "\(ranks) ranks: \(run.stderr)")
            let ours = try Self.numbers(output)
            #expect(Set(ours.keys) == Set(reference.keys), "\(ranks) ranks")
            let differing = reference.filter { key, value in
                guard let other = ours[key] else { return true }
                return abs(other - value) > 1e-10 * max(abs(value), 1e-300) && !(other.isNaN && value.isNaN)
            }
            #expect(differing.isEmpty, "\(ranks) ranks: \(differing.keys.sorted().prefix(5)) differ")
        }
    }

    @Test("adam with given variances: K = 1 to 4 ranks give the single-process fit (1e-10)")
    func givenVariances() throws {
        let (directory, data) = try Self.data()
        defer { try? FileManager.default.removeItem(at: directory) }
        // The variances: those adam learns (any --json output serves as --variances).
        let variances = directory.appendingPathComponent("variances.json").path
        let learned = try CommandRunner.run(["fit", data, "-f", Self.formula, "--method", "adam", "--json", variances, "-q"])
        #expect(learned.status == 0, "\(learned.stderr)")
        try expectSameFit(["--variances", variances], directory: directory, data: data)
    }

    @Test("adam learning its penalties (MacKay): K = 1 to 4 ranks give the single-process fit (1e-10)")
    func learnedPenalties() throws {
        let (directory, data) = try Self.data()
        defer { try? FileManager.default.removeItem(at: directory) }
        try expectSameFit(["--penalties", "evidence"], directory: directory, data: data)
    }

    @Test("adam with a correlated random slope (k = 2 levels' blocks): K = 1 to 4 ranks give the single-process fit (1e-10)")
    func adamSlope() throws {
        let (directory, data) = try Self.data()
        defer { try? FileManager.default.removeItem(at: directory) }
        try expectSameFit(formula: "y ~ 1 + x + (1 + x | user) + (1 | item)", [], directory: directory, data: data)
    }

    @Test("adam --residuals on 2 and 3 ranks (every rank reads, rank 0 writes): the single-process file's rows, to 1e-10")
    func adamResiduals() throws {
        let (directory, data) = try Self.data()
        defer { try? FileManager.default.removeItem(at: directory) }
        func rows(_ path: String) throws -> [[Double]] {
            try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").dropFirst()
                .map { $0.split(separator: ",").map { Double($0)! } }
        }
        let single = directory.appendingPathComponent("single.csv").path
        let result = try CommandRunner.run(["fit", data, "-f", Self.formula, "--method", "adam", "--residuals", single, "-q"])
        #expect(result.status == 0, "\(result.stderr)")
        let reference = try rows(single)
        #expect(reference.count == 6_000)
        for ranks in 2...3 {
            let output = directory.appendingPathComponent("ranks\(ranks).csv").path
            let run = try MPIRunner.run(ranks: ranks, ["fit", data, "-f", Self.formula, "--method", "adam", "--residuals", output, "-q"])
            #expect(run.status == 0, "\(ranks) ranks: \(run.stderr)")
            let ours = try rows(output)
            #expect(ours.count == reference.count)
            let differing = zip(reference, ours).filter { a, b in zip(a, b).contains { abs($0 - $1) > 1e-10 * max(abs($0), 1) } }
            #expect(differing.isEmpty, "\(ranks) ranks: \(differing.prefix(3))")
        }
    }

    @Test("the matrix-free REML fit (--method iterative): K = 1 to 4 ranks give the single-process fit (1e-10)")
    func iterative() throws {
        let (directory, data) = try Self.data()
        defer { try? FileManager.default.removeItem(at: directory) }
        try expectSameFit(method: "iterative", [], directory: directory, data: data)
    }

    @Test("the matrix-free ML fit with a correlated random slope: K = 1, 2, 3 ranks give the single-process fit (1e-10)")
    func iterativeSlopeML() throws {
        let (directory, data) = try Self.data()
        defer { try? FileManager.default.removeItem(at: directory) }
        try expectSameFit(method: "iterative", formula: "y ~ 1 + x + (1 + x | user) + (1 | item)", ["--ml"], directory: directory, data: data,
                          ranks: 1...3)    // the slowest fit: K = 4 is tested with the others
    }

    @Test("the iterative fit on K ranks: each rank holds only the rows of its own chunks (c mod K = rank)")
    func iterativeRowsPerRank() throws {
        let (directory, data) = try Self.data()
        defer { try? FileManager.default.removeItem(at: directory) }
        for ranks in 2...4 {
            let output = directory.appendingPathComponent("held\(ranks).json").path
            let run = try MPIRunner.run(ranks: ranks, ["fit", data, "-f", Self.formula, "--method", "iterative", "--json", output])
            #expect(run.status == 0, "\(run.stderr)")
            for rank in 0..<ranks {
                let chunks = stride(from: rank + 1, through: 12, by: ranks).map(String.init).joined(separator: ", ")
                let line = "lmm-mpi: rank \(rank) of \(ranks) holds \(6_000 / ranks) of 6000 rows (chunks \(chunks) of 12)"
                #expect(run.stderr.contains(line), "\(run.stderr)")
            }
            // From shards: its part of every chunk.
            let shard = try Self.shards(of: data, ranks, in: directory)
            let sharded = try MPIRunner.run(ranks: ranks, ["fit", shard, "-f", Self.formula, "--method", "iterative", "--json", output])
            #expect(sharded.status == 0, "\(sharded.stderr)")
            for rank in 0..<ranks {
                let rows = 12 * (500 * (rank + 1) / ranks - 500 * rank / ranks)
                let line = "lmm-mpi: rank \(rank) of \(ranks) holds \(rows) of 6000 rows (its part of each of the 12 chunks (shard \(rank) of \(ranks)))"
                #expect(sharded.stderr.contains(line), "\(sharded.stderr)")
            }
        }
    }

    @Test("missing values and a short last chunk: adam and iterative on K = 2, 3 ranks, from the file and from shards, give the single-process fit (1e-10)")
    func missingValues() throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        // Every 7th response and every 11th x missing: the ranks' parts of a chunk hold different
        // numbers of complete rows; chunks of 700 rows leave a last chunk of 400.
        let lines = try String(contentsOfFile: Fixtures.path("synthetic_crossed.csv"), encoding: .utf8).split(separator: "\n")
        var text = String(lines[0]) + "\n"
        for (i, line) in lines.dropFirst().enumerated() {
            var fields = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            if i % 7 == 3 { fields[0] = "NA" }
            if i % 11 == 5 { fields[1] = "NA" }
            text += fields.joined(separator: ",") + "\n"
        }
        let csv = directory.appendingPathComponent("missing.csv").path
        try text.write(toFile: csv, atomically: true, encoding: .utf8)
        let data = directory.appendingPathComponent("missing.lmmbin").path
        let converted = try CommandRunner.run(["convert", csv, data, "--categorical", "user,item", "--rows-per-chunk", "700", "-q"])
        #expect(converted.status == 0, "\(converted.stderr)")
        for method in ["adam", "iterative"] {
            try expectSameFit(method: method, [], directory: directory, data: data, ranks: 2...3)
            try expectSameFit(method: method, [], directory: directory, data: data, sharded: true, ranks: 2...3)
        }
    }

    @Test("the iterative fit on more ranks than chunks, with the Gauss–Seidel preconditioner or grouped by an interaction is refused on every rank")
    func iterativeRefusals() throws {
        let (directory, data) = try Self.data()
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = directory.appendingPathComponent("out.json").path
        let seidel = try MPIRunner.run(ranks: 2, ["fit", data, "-f", Self.formula, "--method", "iterative", "--preconditioner",
                                                  "gauss-seidel", "--json", output, "-q"], reportingEachRank: true)
        #expect(seidel.stderr.components(separatedBy: "uses --preconditioner block-jacobi").count - 1 == 2, "\(seidel.stderr)")
        for rank in 0..<2 { #expect(seidel.stderr.contains("lmm-mpi rank \(rank) exit 1"), "\(seidel.stderr)") }
        let interaction = try MPIRunner.run(ranks: 2, ["fit", data, "-f", "y ~ 1 + x + (1 | user:item) + (1 | item)", "--method",
                                                       "iterative", "--json", output, "-q"], reportingEachRank: true)
        #expect(interaction.stderr.components(separatedBy: "a grouping factor must be one factor column of the file").count - 1 == 2,
                "\(interaction.stderr)")
        for rank in 0..<2 { #expect(interaction.stderr.contains("lmm-mpi rank \(rank) exit 1"), "\(interaction.stderr)") }
        let single = directory.appendingPathComponent("one-chunk.lmmbin").path
        let converted = try CommandRunner.run(["convert", Fixtures.path("synthetic_crossed.csv"), single, "--categorical", "user,item"])
        #expect(converted.status == 0, "\(converted.stderr)")
        let few = try MPIRunner.run(ranks: 2, ["fit", single, "-f", Self.formula, "--method", "iterative", "--json", output, "-q"],
                                    reportingEachRank: true)
        #expect(few.stderr.components(separatedBy: "the file has 1 chunk for 2 ranks").count - 1 == 2, "\(few.stderr)")
        for rank in 0..<2 { #expect(few.stderr.contains("lmm-mpi rank \(rank) exit 1"), "\(few.stderr)") }
        #expect(!FileManager.default.fileExists(atPath: output))
    }

    @Test("on more than one rank, a method other than adam and iterative is refused on every rank")
    func otherMethods() throws {
        let (directory, data) = try Self.data()
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = directory.appendingPathComponent("exact.json").path
        let run = try MPIRunner.run(ranks: 2, ["fit", data, "-f", Self.formula, "--json", output, "-q"], reportingEachRank: true)
        #expect(run.stderr.components(separatedBy: "lmm-mpi fits --method adam or iterative from an .lmmbin file").count - 1 == 2,
                "\(run.stderr)")
        for rank in 0..<2 { #expect(run.stderr.contains("lmm-mpi rank \(rank) exit 1"), "\(run.stderr)") }
        #expect(!FileManager.default.fileExists(atPath: output))
    }

    @Test("on more than one rank, a command other than fit is refused")
    func otherCommands() throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = directory.appendingPathComponent("converted.lmmbin").path
        let run = try MPIRunner.run(ranks: 2, ["convert", Fixtures.path("synthetic_crossed.csv"), output], reportingEachRank: true)
        #expect(run.stderr.contains("on more than one rank, lmm-mpi runs 'fit' only"), "\(run.stderr)")
        for rank in 0..<2 { #expect(run.stderr.contains("lmm-mpi rank \(rank) exit 64"), "\(run.stderr)") }
        #expect(!FileManager.default.fileExists(atPath: output))
    }

    @Test("a --variances file that cannot be read stops every rank before the fit, with the message")
    func missingVariances() throws {
        let (directory, data) = try Self.data()
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = directory.appendingPathComponent("out.json").path
        let missing = directory.appendingPathComponent("missing.json").path
        let run = try MPIRunner.run(ranks: 2, ["fit", data, "-f", Self.formula, "--method", "adam", "--variances", missing,
                                               "--json", output, "-q"], reportingEachRank: true)
        let lines = run.stderr.split(separator: "\n").filter { $0.hasPrefix("lmm: error:") && $0.contains("missing.json") }
        #expect(lines.count == 2 && lines.allSatisfy { $0.hasSuffix("(seen by rank 0 of 2)") }, "\(run.stderr)")
        for rank in 0..<2 { #expect(run.stderr.contains("lmm-mpi rank \(rank) exit 1"), "\(run.stderr)") }
        #expect(!FileManager.default.fileExists(atPath: output))
    }

    @Test("K = 1 to 4 shard files on as many ranks give the single-process fit (1e-10): adam with given variances")
    func shardsAdam() throws {
        let (directory, data) = try Self.data()
        defer { try? FileManager.default.removeItem(at: directory) }
        let variances = directory.appendingPathComponent("variances.json").path
        let learned = try CommandRunner.run(["fit", data, "-f", Self.formula, "--method", "adam", "--json", variances, "-q"])
        #expect(learned.status == 0, "\(learned.stderr)")
        try expectSameFit(["--variances", variances], directory: directory, data: data, sharded: true)
    }

    @Test("K = 1 to 4 shard files on as many ranks give the single-process fit (1e-10): adam learning its penalties")
    func shardsAdamLearned() throws {
        let (directory, data) = try Self.data()
        defer { try? FileManager.default.removeItem(at: directory) }
        try expectSameFit(["--penalties", "evidence"], directory: directory, data: data, sharded: true)
    }

    @Test("K = 1 to 4 shard files on as many ranks give the single-process fit (1e-10): --method iterative")
    func shardsIterative() throws {
        let (directory, data) = try Self.data()
        defer { try? FileManager.default.removeItem(at: directory) }
        try expectSameFit(method: "iterative", [], directory: directory, data: data, sharded: true)
    }

    /// Runs `lmm-mpi fit` of `input` on `ranks` ranks reporting each rank's status; expects every
    /// rank to print `message` and exit 1, and no output file.
    func expectEveryRankFails(_ input: String, ranks: Int, method: String, message: String, directory: URL) throws {
        let output = directory.appendingPathComponent("failed.json").path
        let arguments = ["fit", input, "-f", Self.formula, "--method", method, "--json", output, "-q"]
        let plain = try MPIRunner.run(ranks: ranks, arguments)
        #expect(plain.status != 0, "\(plain.stderr)")
        let run = try MPIRunner.run(ranks: ranks, arguments, reportingEachRank: true)
        #expect(run.stderr.components(separatedBy: message).count - 1 == ranks, "\(message) in \(run.stderr)")
        for rank in 0..<ranks { #expect(run.stderr.contains("lmm-mpi rank \(rank) exit 1"), "\(run.stderr)") }
        #expect(!FileManager.default.fileExists(atPath: output))
    }

    /// Each rank's `lmm-mpi: rank r of K read N rows from disk and received B bytes of chunks
    /// from other ranks` line, as (N, B) by rank.
    static func traffic(_ stderr: String, ranks: Int) -> [(rows: Int, bytes: Int)] {
        (0..<ranks).map { rank in
            let prefix = "lmm-mpi: rank \(rank) of \(ranks) read "
            guard let line = stderr.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }) else { return (-1, -1) }
            let words = line.dropFirst(prefix.count).split(separator: " ")
            return (Int(words[0]) ?? -1, Int(words[6]) ?? -1)
        }
    }

    @Test("adam on K ranks from shards: no rank receives a chunk's bytes, and each reads from disk only its part of each chunk")
    func shardsBroadcastNothing() throws {
        let (directory, data) = try Self.data()
        defer { try? FileManager.default.removeItem(at: directory) }
        for ranks in 2...3 {
            let arguments = ["-f", Self.formula, "--method", "adam"]
            // From the one file, every rank receives the chunks others read (the comparison shows the count works).
            let fileJSON = directory.appendingPathComponent("file\(ranks).json").path
            let shardJSON = directory.appendingPathComponent("shards\(ranks).json").path
            let fromFile = try MPIRunner.run(ranks: ranks, ["fit", data, "--json", fileJSON] + arguments)
            #expect(fromFile.status == 0, "\(fromFile.stderr)")
            for (rank, seen) in Self.traffic(fromFile.stderr, ranks: ranks).enumerated() {
                #expect(seen.bytes > 0 && seen.rows > 0 && seen.rows % (500 * (12 / ranks)) == 0, "rank \(rank): \(fromFile.stderr)")
            }
            let shard = try Self.shards(of: data, ranks, in: directory)
            let fromShards = try MPIRunner.run(ranks: ranks, ["fit", shard, "--json", shardJSON] + arguments)
            #expect(fromShards.status == 0, "\(fromShards.stderr)")
            for (rank, seen) in Self.traffic(fromShards.stderr, ranks: ranks).enumerated() {
                // Its part of each of the 12 chunks, once per pass (statistics, epochs, final).
                let part = 12 * (500 * (rank + 1) / ranks - 500 * rank / ranks)
                #expect(seen.bytes == 0 && seen.rows >= 3 * part && seen.rows % part == 0, "rank \(rank): \(fromShards.stderr)")
            }
            // The same fit (the epochs divide the rows alike; the statistics pass sums other groups of rows).
            let numbers = try [fileJSON, shardJSON].map { try Self.numbers($0) }
            let differing = numbers[0].filter { key, value in
                guard let other = numbers[1][key] else { return true }
                return abs(other - value) > 1e-10 * max(abs(value), 1e-300) && !(other.isNaN && value.isNaN)
            }
            #expect(numbers[0].count > 1_000 && differing.isEmpty, "\(ranks) ranks: \(differing.keys.sorted().prefix(5))")
        }
    }

    @Test("a corrupt, missing, foreign or misnamed shard, or a shard set for another number of ranks, stops every rank with the message")
    func badShards() throws {
        let (directory, data) = try Self.data()
        defer { try? FileManager.default.removeItem(at: directory) }
        let first = try Self.shards(of: data, 3, in: directory)
        let shard1 = directory.appendingPathComponent("shards3.1-of-3.lmmbin").path
        let original = try Data(contentsOf: URL(fileURLWithPath: shard1))
        // Shard 1 holds rows 166 ..< 333 of each 500-row chunk: 167 rows, stored in 2 × 1,336 +
        // 2 × 672 = 4,016 bytes (y, x; user, item padded to 8). Damage its part of chunk 5 (rows 2001 to 2500).
        var bytes = [UInt8](original)
        let dataOffset = (0..<8).reversed().reduce(0) { $0 << 8 | Int(bytes[32 + $1]) }
        bytes[dataOffset + 4 * 4_016 + 10] ^= 0xff
        try Data(bytes).write(to: URL(fileURLWithPath: shard1))
        for method in ["adam", "iterative"] {
            try expectEveryRankFails(first, ranks: 3, method: method, message: "shards3.1-of-3.lmmbin: chunk 5 of 12 (rows 2001 to 2500; "
                                     + "this shard holds rows 2167 to 2333) is corrupt: checksum mismatch (seen by rank 1 of 3)",
                                     directory: directory)
        }
        // Missing.
        try FileManager.default.removeItem(atPath: shard1)
        try expectEveryRankFails(first, ranks: 3, method: "adam", message: "shards3.1-of-3.lmmbin: cannot open the file", directory: directory)
        // A shard of another set with the same name (rows per chunk 400): the shards are not of one set.
        let other = directory.appendingPathComponent("other.lmmbin").path
        let converted = try CommandRunner.run(["convert", Fixtures.path("synthetic_crossed.csv"), other, "--categorical", "user,item",
                                               "--rows-per-chunk", "400", "--shards", "3", "-q"])
        #expect(converted.status == 0, "\(converted.stderr)")
        try FileManager.default.moveItem(atPath: directory.appendingPathComponent("other.1-of-3.lmmbin").path, toPath: shard1)
        try expectEveryRankFails(first, ranks: 3, method: "iterative",
                                 message: "shards3.1-of-3.lmmbin: 400 rows per chunk, but shards3.0-of-3.lmmbin has 500", directory: directory)
        // The whole file under a shard's name.
        try FileManager.default.removeItem(atPath: shard1)
        try FileManager.default.copyItem(atPath: data, toPath: shard1)
        try expectEveryRankFails(first, ranks: 3, method: "adam", message: "shards3.1-of-3.lmmbin: named as shard 1 of 3, but it is a whole "
                                 + ".lmmbin file", directory: directory)
        // Three shards on two ranks.
        try expectEveryRankFails(first, ranks: 2, method: "adam", message: "shards3.0-of-3.lmmbin: this is shard 0 of a set of 3 "
                                 + "(lmm convert --shards 3): run it on 3 ranks", directory: directory)
    }

    @Test("a corrupt chunk read by rank 1 stops every rank with its message, and no output file is written (adam, iterative)")
    func badShard() throws {
        let (directory, data) = try Self.data()
        defer { try? FileManager.default.removeItem(at: directory) }
        // Damage chunk 2 (index 1: rank 1's with 2 or 3 ranks); rows are 24 bytes (y, x, user, item).
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: data)))
        let dataOffset = (0..<8).reversed().reduce(0) { $0 << 8 | Int(bytes[32 + $1]) }
        bytes[dataOffset + 500 * 24 + 10] ^= 0xff
        try Data(bytes).write(to: URL(fileURLWithPath: data))
        for (ranks, method) in [(2, "adam"), (3, "adam"), (4, "adam"), (2, "iterative"), (3, "iterative"), (4, "iterative")] {
            let output = directory.appendingPathComponent("out\(ranks).json").path
            let arguments = ["fit", data, "-f", Self.formula, "--method", method, "--json", output, "-q"]
            // As users run it: mpirun fails.
            let plain = try MPIRunner.run(ranks: ranks, arguments)
            #expect(plain.status != 0, "\(plain.stderr)")
            // Every rank's own status and message.
            let run = try MPIRunner.run(ranks: ranks, arguments, reportingEachRank: true)
            let message = "chunk 2 of 12 (rows 501 to 1000) is corrupt: checksum mismatch (seen by rank 1 of \(ranks))"
            #expect(run.stderr.components(separatedBy: message).count - 1 == ranks, "\(run.stderr)")
            for rank in 0..<ranks { #expect(run.stderr.contains("lmm-mpi rank \(rank) exit 1"), "\(run.stderr)") }
            #expect(!FileManager.default.fileExists(atPath: output))
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["crossed.lmmbin"])
    }
}

/// Runs the built `lmm-mpi` under `mpirun`.
enum MPIRunner {
    /// `mpirun` on the PATH, or nil.
    static let mpirun: String? = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":")
        .map { String($0) + "/mpirun" }.first { FileManager.default.isExecutableFile(atPath: $0) }

    /// `mpirun --oversubscribe --allow-run-as-root -np K lmm-mpi arguments…`. With
    /// `reportingEachRank`, each rank's exit status is written to standard error
    /// (`lmm-mpi rank R exit S`), and mpirun lets every rank finish rather than ending the
    /// others when the first one fails (its own status is then 0).
    static func run(ranks: Int, _ arguments: [String], reportingEachRank: Bool = false) throws -> CommandRunner.Result {
        let program = CommandRunner.productsDirectory.appendingPathComponent("lmm-mpi").path
        var command = [program] + arguments
        var environment: [String: String] = [:]
        if reportingEachRank {
            command = ["sh", "-c", #""$0" "$@"; s=$?; echo "lmm-mpi rank $OMPI_COMM_WORLD_RANK exit $s" >&2; exit $s"#] + command
            environment["OMPI_MCA_orte_abort_on_non_zero_status"] = "0"
        }
        return try CommandRunner.run(program: URL(fileURLWithPath: mpirun!),
                                     ["--oversubscribe", "--allow-run-as-root", "-np", String(ranks)] + command,
                                     environment: environment)
    }
}

import Foundation
import Testing
@testable import MixedModels

/// Issue 11, item 12 for the streaming (adam) and iterative methods and the conversion: their
/// memory is estimated before the large allocations, and a run that cannot have it stops with
/// what it needs, what is available and what to try — no abort, no output, no temporary file.
@Suite("Memory estimates of adam, iterative and the conversion")
struct MemoryEstimateTests {
    // MARK: Estimators

    @Test("adam's level-state estimate counts every record and X_l'Z_l, and covers what TermState allocates")
    func streamingEstimate() throws {
        // (1 | g), 1000 slots, p = 2: records of 8 doubles, X_l'Z_l 2 doubles, and 2 + 4 + 3 doubles
        // of per-level arrays (statistics, rebalancing, result).
        #expect(TermState.bytes(k: 1, slotCount: 1_000, interceptOnly: true, fixedCount: 2) == 8 * 1_000 * 10)
        // (1 + x | g), k = 2: 8k + k(k+1)/2 + 1 = 20 doubles, X_l'Z_l 2 · 2.
        #expect(TermState.bytes(k: 2, slotCount: 10, interceptOnly: false, fixedCount: 2) == 8 * 10 * 24)
        let memory = StreamingMemory(terms: [.init(k: 1, slotCount: 1_000, interceptOnly: true)], fixedCount: 2,
                                     fileColumns: 3, rowsPerChunk: 100)
        #expect(memory.levels == 8 * 1_000 * 10 + 8 * 1_000 * 9)
        #expect(memory.total == memory.levels + memory.chunk + MemoryBudget.blasBuffer)
        // Linear in the rows per chunk.
        let doubled = StreamingMemory(terms: [.init(k: 1, slotCount: 1_000, interceptOnly: true)], fixedCount: 2,
                                      fileColumns: 3, rowsPerChunk: 200)
        #expect(doubled.chunk == 2 * memory.chunk && doubled.levels == memory.levels)

        let state = try TermState(k: 3, slotCount: 500, interceptOnly: false, fixedCount: 4)
        #expect(8 * (state.slotCount * state.stride + state.slotCount * 4 * 3)
                == TermState.bytes(k: 3, slotCount: 500, interceptOnly: false, fixedCount: 4))
    }

    @Test("adam's message names the level state, or a smaller chunk when the chunk is most of it")
    func streamingAdvice() throws {
        let levelHeavy = StreamingMemory(terms: [.init(k: 1, slotCount: 10_000_000, interceptOnly: true)], fixedCount: 2,
                                         fileColumns: 3, rowsPerChunk: 65_536)
        #expect(throws: Never.self) { try levelHeavy.check(available: nil) }
        #expect(throws: Never.self) { try levelHeavy.check(available: levelHeavy.total) }
        #expect {
            try levelHeavy.check(available: 100 << 20)
        } throws: { error in
            let text = "\(LMMError(error))"
            return text.contains("not enough memory: the adam fit (level state 1.4 GB, chunk buffers")
                && text.contains("100 MB available") && text.contains("adam holds a record for every level")
        }
        let chunkHeavy = StreamingMemory(terms: [.init(k: 1, slotCount: 100, interceptOnly: true)], fixedCount: 500,
                                         fileColumns: 3, rowsPerChunk: 1_000_000)
        #expect {
            try chunkHeavy.check(available: 1 << 30)
        } throws: { error in
            let text = "\(LMMError(error))"
            // 4 GB of chunk at 1M rows: half of the 1 GB available holds about 130k rows.
            return text.contains("most of it is one chunk of 1000000 rows") && text.contains("--rows-per-chunk ")
                && !text.contains("--rows-per-chunk 1000000")
        }
    }

    @Test("a level state that cannot be allocated is an error, not an abort")
    func termStateAllocationFailure() throws {
        #expect(throws: InsufficientMemory.self) {
            _ = try TermState(k: 1, slotCount: 1 << 52, interceptOnly: true, fixedCount: 1)
        }
        #expect(throws: InsufficientMemory.self) {
            _ = try TermState(k: 4, slotCount: Int.max / 64, interceptOnly: false, fixedCount: 1)
        }
    }

    @Test("the iterative estimate grows with the probes and the Gauss–Seidel workspaces, and names --probes")
    func iterativeEstimate() throws {
        let memory = IterativeMemory(n: 200_000, p: 2, terms: [(levels: 100_000, k: 1)])
        #expect(memory.q == 100_000 && memory.blockEntries == 100_000 && memory.parameterCount == 2)
        #expect(memory.operatorBytes >= 8 * 200_000 * 3)
        let few = memory.fitBytes(probes: 8, gaussSeidel: false), many = memory.fitBytes(probes: 64, gaussSeidel: false)
        // At least the probes' solutions (kept in single precision to start the next solves);
        // the solver's vectors are held for one block of columns at a time.
        #expect(many - few >= 4 * 100_000 * 56)
        #expect(memory.fitBytes(probes: 8, gaussSeidel: true) > few)
        #expect {
            try memory.checkFit(probes: 64, gaussSeidel: false, available: 100 << 20)
        } throws: { error in
            let text = "\(LMMError(error))"
            return text.contains("the iterative fit with 64 probes needs about") && text.contains("100 MB available")
                && text.contains("try fewer --probes")
        }
        try memory.checkFit(probes: 8, gaussSeidel: false, available: few)
        #expect(throws: InsufficientMemory.self) { try memory.checkOperator(available: 1 << 20) }
    }

    @Test("the level dictionary reports its bytes, which grow with the levels")
    func levelDictionaryBytes() throws {
        let dictionary = LevelDictionary()
        let empty = dictionary.byteCount
        #expect(empty > 0)
        for i in 0..<100_000 {
            let label = Array("level\(i)".utf8)
            _ = label.withUnsafeBufferPointer { dictionary.code(for: $0.baseAddress!, length: $0.count) }
        }
        // 100k slots of 16 bytes at load ≤ 1/2, starts and the arena.
        #expect(dictionary.byteCount >= 100_000 * (2 * 16 + 8 + 9))
    }

    // MARK: The command line under ulimit -v

    /// 20,000 rows: g with a level per row, f with 50 levels, h with 200.
    static func writeData(_ url: URL) throws {
        var text = "y,x,f,g,h\n"
        var generator = SplitMix64(seed: 5)
        for i in 0..<20_000 {
            let x = Double(generator.next() % 1_000) / 1_000
            let noise = Double(generator.next() % 1_000) / 1_000 - 0.5
            text += "\(1 + 2 * x + Double(i % 200) / 100 + noise),\(x),f\(i % 50),g\(i),h\(i % 200)\n"
        }
        try text.write(to: url, atomically: true, encoding: .utf8)
    }

    @Test("adam on a CSV under ulimit -v 500 MB: a level state of about 700 MB stops with exit 1, no output, no temporary; a small one fits")
    func adamUnderLimit() throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let temporary = directory.appendingPathComponent("tmp")
        try FileManager.default.createDirectory(at: temporary, withIntermediateDirectories: true)
        let data = directory.appendingPathComponent("data.csv"), out = directory.appendingPathComponent("fit.json")
        try Self.writeData(data)
        let environment = ["TMPDIR": temporary.path]
        // (1 + f | g): 20,000 levels × 50 effects, about 35 KB of state a level.
        let refused = try MemoryLimitTests.runLimited(
            kilobytes: 500_000, ["fit", data.path, "-f", "y ~ 1 + f + (1 + f | g)", "--method", "adam", "--json", out.path],
            environment: environment)
        #expect(refused.status == 1 && !refused.signaled, "status \(refused.status): \(refused.stderr)")
        #expect(refused.stderr.contains("lmm: error: not enough memory: the adam fit (level state"), "\(refused.stderr)")
        #expect(refused.stderr.contains("available; adam holds a record for every level"))
        #expect(!FileManager.default.fileExists(atPath: out.path))
        #expect(try FileManager.default.contentsOfDirectory(atPath: temporary.path).isEmpty)

        let fitted = try MemoryLimitTests.runLimited(
            kilobytes: 500_000, ["fit", data.path, "-f", "y ~ 1 + x + (1 | h)", "--method", "adam", "--epochs", "20",
                                 "--json", out.path], environment: environment)
        #expect(fitted.status == 0, "\(fitted.stderr)")
        #expect(FileManager.default.fileExists(atPath: out.path))
        #expect(try FileManager.default.contentsOfDirectory(atPath: temporary.path).isEmpty)
    }

    @Test("iterative under ulimit -v 500 MB: 1,000,000 probes stop with exit 1 and the advice; 32 fit")
    func iterativeUnderLimit() throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let data = directory.appendingPathComponent("data.csv"), out = directory.appendingPathComponent("fit.json")
        try Self.writeData(data)
        // 200 levels × 1,000,000 probes: about 200M doubles for each of several vectors. (100,000
        // probes, 160 MB of solutions, may fit once OpenBLAS's buffer, mapped by the approximate
        // start, is not counted twice.)
        let refused = try MemoryLimitTests.runLimited(
            kilobytes: 500_000, ["fit", data.path, "-f", "y ~ 1 + x + (1 | h)", "--method", "iterative", "--probes", "1000000",
                                 "--json", out.path])
        #expect(refused.status == 1 && !refused.signaled, "status \(refused.status): \(refused.stderr)")
        #expect(refused.stderr.contains("not enough memory: the iterative fit with 1000000 probes needs about"), "\(refused.stderr)")
        #expect(refused.stderr.contains("try fewer --probes"))
        #expect(!FileManager.default.fileExists(atPath: out.path))

        let fitted = try MemoryLimitTests.runLimited(
            kilobytes: 500_000, ["fit", data.path, "-f", "y ~ 1 + x + (1 | h)", "--method", "iterative", "--json", out.path])
        #expect(fitted.status == 0, "\(fitted.stderr)")
        #expect(FileManager.default.fileExists(atPath: out.path))
    }

    @Test("converting 600,000 distinct labels under ulimit -v 200 MB: lmm convert and adam stop with exit 1 when the level dictionary would outgrow the limit, leaving no file")
    func conversionUnderLimit() throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let temporary = directory.appendingPathComponent("tmp")
        try FileManager.default.createDirectory(at: temporary, withIntermediateDirectories: true)
        let data = directory.appendingPathComponent("many.csv")
        var text = "y,g\n"
        text.reserveCapacity(600_000 * 12)
        for i in 0..<600_000 { text += "\(i % 7),u\(i)\n" }
        try text.write(to: data, atomically: true, encoding: .utf8)
        let environment = ["TMPDIR": temporary.path]
        let binary = directory.appendingPathComponent("many.lmmbin"), out = directory.appendingPathComponent("fit.json")
        for arguments in [["convert", data.path, binary.path],
                          ["fit", data.path, "-f", "y ~ 1 + (1 | g)", "--method", "adam", "--json", out.path]] {
            let result = try MemoryLimitTests.runLimited(kilobytes: 200_000, arguments, environment: environment)
            #expect(result.status == 1 && !result.signaled, "\(arguments[0]): status \(result.status): \(result.stderr)")
            #expect(result.stderr.contains("not enough memory: converting many.csv (the levels of its factor columns) needs about"),
                    "\(result.stderr)")
            #expect(!FileManager.default.fileExists(atPath: binary.path) && !FileManager.default.fileExists(atPath: out.path))
            #expect(try FileManager.default.contentsOfDirectory(atPath: temporary.path).isEmpty)
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted() == ["many.csv", "tmp"])
        }
    }
}

import Foundation
import Testing
@testable import MixedModels

/// Issue 11, item 12: a fit that needs more memory than the process may use stops before
/// allocating it, with what it needs and what is available — no abort in an allocation, no
/// OpenBLAS spinning for its buffers.
@Suite("Memory limits")
struct MemoryLimitTests {
    @Test("the estimate is compared with what is available, and the message says both and what to try")
    func requireAndMessage() throws {
        try MemoryBudget.require(100 << 20, for: "a block", available: 200 << 20)
        try MemoryBudget.require(100 << 20, for: "a block", available: nil)
        #expect {
            try MemoryBudget.require(3 << 30, for: "the dense 20000 × 20000 block", available: 512 << 20)
        } throws: { error in
            let text = "\(LMMError(error))"
            return text.contains("the dense 20000 × 20000 block needs about 3.0 GB, 512 MB available")
                && text.contains("try --method adam or --method iterative")
        }
    }

    @Test("what is available is known here and no more than the system's MemAvailable")
    func availableMemory() throws {
        let available = try #require(MemoryBudget.available())
        let meminfo = try String(contentsOfFile: "/proc/meminfo", encoding: .utf8)
        let line = try #require(meminfo.split(separator: "\n").first { $0.hasPrefix("MemAvailable:") })
        let kilobytes = try #require(Int(line.split(separator: " ")[1]))
        #expect(available > 0)
        // MemAvailable moves while other processes run: allow for it.
        #expect(available <= kilobytes * 1024 + (256 << 20))
    }

    @Test("a failing allocation probe is an error, not an abort")
    func probe() throws {
        #expect(throws: InsufficientMemory.self) { try MemoryBudget.probe(Int.max / 2, for: "an impossible buffer") }
        try MemoryBudget.probe(80 << 20, for: "a small buffer")
    }

    /// Runs `lmm` under `ulimit -v kilobytes` through /bin/sh, killed after 120 s (a hang fails);
    /// `environment` is added to this process's (TMPDIR). Standard error goes through a file, so
    /// that a long progress report cannot fill a pipe.
    static func runLimited(kilobytes: Int, _ arguments: [String],
                           environment: [String: String] = [:]) throws -> (status: Int32, stderr: String, signaled: Bool) {
        let lmm = CommandRunner.productsDirectory.appendingPathComponent("lmm").path
        let quoted = ([lmm] + arguments).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "ulimit -v \(kilobytes); exec " + quoted.joined(separator: " ")]
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        let errURL = FileManager.default.temporaryDirectory.appendingPathComponent("lmm-stderr-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: errURL) }
        let err = try FileHandle(forWritingTo: errURL)
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(120)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        let hung = process.isRunning
        if hung { process.terminate() }
        process.waitUntilExit()
        try err.close()
        let stderr = (try? String(contentsOf: errURL, encoding: .utf8)) ?? ""
        return (hung ? -1 : process.terminationStatus, stderr, process.terminationReason == .uncaughtSignal)
    }

    @Test("lmm fit under ulimit -v 200 MB: exit 1 with the estimate, no output file (it used to spin in OpenBLAS)")
    func commandLineUnderLimit() throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let out = directory.appendingPathComponent("fit.json")
        let arguments = ["fit", Fixtures.path("sleepstudy.csv"), "-f", "Reaction ~ 1 + Days + (1 + Days | Subject)", "--json", out.path]
        let limited = try Self.runLimited(kilobytes: 200_000, arguments)
        #expect(limited.status == 1 && !limited.signaled, "status \(limited.status): \(limited.stderr)")
        #expect(limited.stderr.contains("not enough memory: the cross-products needs about"), "\(limited.stderr)")
        #expect(limited.stderr.contains("available; try --method adam or --method iterative"))
        #expect(!FileManager.default.fileExists(atPath: out.path))

        // The same fit with room to run.
        let roomy = try Self.runLimited(kilobytes: 2_000_000, arguments)
        #expect(roomy.status == 0, "\(roomy.stderr)")
        #expect(FileManager.default.fileExists(atPath: out.path))
    }
}

import Foundation

/// Runs the built `lmm` (or `datagen`) executable, for end-to-end tests of exit codes,
/// messages and output files.
enum CommandRunner {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
        /// True when a signal ended the process (a crash: the shell's exit status ≥ 128).
        var signaled = false
    }

    /// The directory holding the built products (beside the test bundle).
    static var productsDirectory: URL {
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        if url.lastPathComponent.hasSuffix(".xctest") { url = url.deletingLastPathComponent() }
        for candidate in [url, Bundle.main.bundleURL, Bundle.main.bundleURL.deletingLastPathComponent()]
        where FileManager.default.fileExists(atPath: candidate.appendingPathComponent("lmm").path) {
            return candidate
        }
        return url
    }

    /// Runs `lmm` with `arguments`.
    static func run(_ arguments: [String]) throws -> Result { try run("lmm", arguments) }

    /// Runs the built `executable` with `arguments`, and `environment` added to this process's.
    static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws -> Result {
        try run(program: productsDirectory.appendingPathComponent(executable), arguments, environment: environment)
    }

    /// Runs `program` (any path) with `arguments`, and `environment` added to this process's.
    static func run(program: URL, _ arguments: [String], environment: [String: String] = [:]) throws -> Result {
        let process = Process()
        process.executableURL = program
        process.arguments = arguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus,
                      stdout: String(decoding: stdout, as: UTF8.self),
                      stderr: String(decoding: stderr, as: UTF8.self),
                      signaled: process.terminationReason == .uncaughtSignal)
    }

    /// A fresh temporary directory.
    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("lmm-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

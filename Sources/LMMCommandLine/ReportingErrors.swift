import ArgumentParser
import Foundation

/// Runs a command body, printing an error as `lmm: error: …` with a non-zero exit: what every
/// `lmm` subcommand's `run()` does with what it throws.
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as ExitCode {
        throw error
    } catch {
        FileHandle.standardError.write(Data("lmm: error: \(error)\n".utf8))
        throw ExitCode.failure
    }
}

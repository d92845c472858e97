import ArgumentParser
import Foundation
import MixedModels

/// Runs a command body, printing an error as `lmm: error: …` with a non-zero exit: what every
/// `lmm` subcommand's `run()` does with what it throws.
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as ExitCode {
        throw error
    } catch {
        FileHandle.standardError.write(Data("lmm: error: \(error)\n".utf8))
        if case LMMError.memory = error {
            // Short of memory, OpenBLAS's worker threads may be retrying their buffer allocation
            // for ever, and the library's exit handler waits for them: leave without it.
            fflush(nil)
            _exit(ExitCode.failure.rawValue)
        }
        throw ExitCode.failure
    }
}

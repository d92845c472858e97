import ArgumentParser
import MixedModels

/// The processes this `lmm` runs with: this one alone, or the MPI ranks `lmm-mpi` sets before
/// it parses the command line (see ``FitCommand`` with `--method adam`).
package enum Processes {
    /// Set once at start-up, before any command runs; read from the main thread only.
    nonisolated(unsafe) package static var group: any ProcessGroup = SingleProcess()

    /// True on the rank that reports and writes the outputs (rank 0; the only one alone).
    static var isReporting: Bool { group.rank == 0 }

    /// Whether `command` may run on more than one rank: `fit` (which then checks its method and
    /// data); the other commands would only repeat the same work on every rank.
    package static func runsOnSeveralRanks(_ command: any ParsableCommand) -> Bool { command is FitCommand }
}

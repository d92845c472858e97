// `lmm-mpi`: `lmm` on the ranks of an MPI job — `mpirun -np K lmm-mpi fit DATA.lmmbin -f F
// --method adam …`. A separate executable, so that the plain `lmm` does not link MPI and runs
// where no MPI is installed. Each rank reads 1/K of the file's chunks (from shards, its part of
// every chunk) and all compute the same fit (see README, "On a cluster"); rank 0 prints the
// summary and writes the outputs.
//
// Every failure during the fit happens on every rank at the same point (the collectives share
// a rank's read error with all), so every rank reports it and finalizes MPI; a failure only
// rank 0 can have (writing the outputs) comes after the last collective.
import ArgumentParser
import Foundation
import LMMCommandLine
import MixedModelsMPI

Allocator.configure()
guard let group = MPIProcessGroup() else {
    FileHandle.standardError.write(Data("lmm-mpi: error: MPI could not be initialized\n".utf8))
    exit(1)
}
Processes.group = group
let status: Int32
do {
    var command = try LMMCommand.parseAsRoot()
    guard group.size == 1 || Processes.runsOnSeveralRanks(command) else {
        throw ValidationError("on more than one rank, lmm-mpi runs 'fit' only (--method adam or iterative)")
    }
    try command.run()
    status = 0
} catch {
    let code = LMMCommand.exitCode(for: error)
    // Usage errors and help are the same on every rank: rank 0 prints them. A fit's error
    // has been printed by each rank (`lmm: error: …`).
    if group.rank == 0 {
        let message = LMMCommand.fullMessage(for: error)
        if !message.isEmpty {
            if code.isSuccess { print(message) } else { FileHandle.standardError.write(Data((message + "\n").utf8)) }
        }
    }
    status = code.rawValue
}
group.finish()
exit(status)

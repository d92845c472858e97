import ArgumentParser
import Foundation
import MixedModels
import MixedModelsMPI

/// `mpirun -np K lmm-bench mpi`: the cost of the collectives `lmm-mpi` sends — the broadcast of
/// one chunk of an `.lmmbin` file (its bytes: rows per chunk × bytes per row) from its owner, and
/// the Allreduce of K doubles that agrees on failures, and the sum (Reduce to rank 0 then Bcast)
/// that the iterative method sends per conjugate-gradient iteration (q levels × m right-hand
/// sides doubles) and adam per minibatch and term (batch rows × (1 + k) doubles: the touched
/// levels' gradients) — for the README's cost model.
///
///     mpirun --oversubscribe -np 2 lmm-bench mpi --row-bytes 24,32 --sum-doubles 1000,100000,3500000
struct MPICommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mpi",
        abstract: "MPI collectives of lmm-mpi (run under mpirun -np K, K ≥ 2): chunk broadcast, failure Allreduce and iterative sum times."
    )

    @Option(help: "Bytes per row of the .lmmbin files to model (comma-separated): 8 per float64 column, 4 per factor.")
    var rowBytes: String = "24,32"

    @Option(help: "Rows per chunk (lmm convert's default: 65536).")
    var rowsPerChunk: Int = LMMBinaryFormat.defaultRowsPerChunk

    @Option(help: "Doubles per sum to time (comma-separated): iterative (q + p) × right-hand sides; adam batch rows × (1 + k).")
    var sumDoubles: String = "1000,100000,3500000"

    @Option(help: "Seconds to spend on each size.")
    var seconds: Double = 1

    func run() throws {
        guard let group = MPIProcessGroup() else { throw ValidationError("MPI could not be initialized") }
        defer { group.finish() }
        let widths = rowBytes.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !widths.isEmpty, widths.allSatisfy({ $0 > 0 }) else { throw ValidationError("--row-bytes takes positive integers") }
        if group.rank == 0 {
            print("lmm-bench mpi: \(group.size) rank\(group.size == 1 ? "" : "s")\(group.size == 1 ? " (run under mpirun -np 2 or more to measure the network)" : "")")
            print("| message | bytes | time per call (mean over ranks) | bandwidth |")
            print("| --- | ---: | ---: | ---: |")
        }
        for width in widths {
            var bytes = [UInt8](repeating: 1, count: rowsPerChunk * width)
            let time = measure(group) { group.broadcast(&bytes, from: 0) }
            report(group, "chunk broadcast (\(rowsPerChunk) rows × \(width) B)", bytes.count, time)
        }
        var flags = [Double](repeating: 0, count: group.size)
        let time = measure(group) { group.allreduceSum(&flags) }
        report(group, "failure Allreduce (K doubles)", 8 * group.size, time)
        let counts = sumDoubles.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard counts.allSatisfy({ $0 > 0 }) else { throw ValidationError("--sum-doubles takes positive integers") }
        for count in counts {
            var values = [Double](repeating: 0, count: count)
            let time = measure(group) { group.sum(&values) }
            report(group, "sum (\(count) doubles, Reduce + Bcast)", 8 * count, time)
        }
    }

    /// Mean seconds per call of `body` over the ranks: every rank runs the same number of calls
    /// (rank 0 decides it from a first timed batch).
    private func measure(_ group: MPIProcessGroup, _ body: () -> Void) -> Double {
        for _ in 0..<3 { body() }
        var calls = 8
        while true {
            let start = Harness.now()
            for _ in 0..<calls { body() }
            var elapsed = [Harness.now() - start]
            group.allreduceSum(&elapsed)
            let mean = elapsed[0] / Double(group.size)
            if mean >= seconds / 4 || calls >= 1 << 20 { return mean / Double(calls) }
            calls *= 4
        }
    }

    private func report(_ group: MPIProcessGroup, _ label: String, _ bytes: Int, _ time: Double) {
        guard group.rank == 0 else { return }
        print(String(format: "| %@ | %d | %.1f µs | %.2f GB/s |", label, bytes, time * 1e6, Double(bytes) / time / 1e9))
    }
}

import Foundation
import MixedModels

/// The dense kernels behind the blocked engine: which BLAS/LAPACK runs, and dpotrf's rate
/// next to dgemm's (the peak a blocked Cholesky can approach).
struct DenseKernels {
    /// Orders of the Cholesky factorizations (n × n, lower triangle).
    var sizes: [Int]
    /// Rank of the dgemm update timed for the reference rate (n × k times k × n).
    var gemmRank = 1000

    func run() {
        print("dense kernels: \(BLASLibrary.current.description)")
        for threads in Set([1, Threading.coreCount]).sorted() {
            Threading.setBLASThreads(threads)
            for n in sizes {
                let (potrf, gemm) = (potrfRate(n: n), gemmRate(n: n))
                print(String(format: "  %d thread%@, n = %5d: dpotrf %6.1f GFlop/s (%.2f s), dgemm (k = %d) %6.1f GFlop/s",
                             threads, threads == 1 ? " " : "s", n, potrf.rate, potrf.seconds, gemmRank, gemm))
            }
        }
        Threading.setBLASThreads(Threading.coreCount)
    }

    /// A symmetric, diagonally dominant (so positive-definite) matrix, factored once.
    private func potrfRate(n: Int) -> (rate: Double, seconds: Double) {
        var generator = SplitMix64(seed: 5)
        var A = [Double](repeating: 0, count: n * n)
        for j in 0..<n {
            A[j * n + j] = Double(n)
            for i in (j + 1)..<n { A[j * n + i] = generator.nextDouble() - 0.5 }
        }
        let start = Harness.now()
        let info = A.withUnsafeMutableBufferPointer { BLAS.potrfLower(n: n, A: $0.baseAddress!, lda: n) }
        let seconds = Harness.now() - start
        precondition(info == 0, "dpotrf failed: info \(info)")
        return (Double(n) * Double(n) * Double(n) / 3 / seconds / 1e9, seconds)
    }

    private func gemmRate(n: Int) -> Double {
        let k = gemmRank
        var generator = SplitMix64(seed: 6)
        let B = (0..<(n * k)).map { _ in generator.nextDouble() - 0.5 }
        var C = [Double](repeating: 0, count: n * n)
        let start = Harness.now()
        B.withUnsafeBufferPointer { b in
            C.withUnsafeMutableBufferPointer { c in
                BLAS.gemm(transA: false, transB: true, m: n, n: n, k: k, alpha: 1, A: b.baseAddress!, lda: n,
                          B: b.baseAddress!, ldb: n, beta: 0, C: c.baseAddress!, ldc: n)
            }
        }
        return 2 * Double(n) * Double(n) * Double(k) / (Harness.now() - start) / 1e9
    }
}

import Foundation
import MixedModels

/// The dense kernels behind the blocked engine: which BLAS/LAPACK runs, dpotrf's and dtrtri's
/// rates next to dgemm's (the peak a blocked Cholesky can approach), and the same two
/// factorizations on the lower triangle held in column panels (the blocked engine's Schur
/// complement from 4,096 columns on).
struct DenseKernels {
    /// Orders of the Cholesky factorizations (n × n, lower triangle).
    var sizes: [Int]
    /// Columns per panel of the packed storage (`LowerPanelMatrix`).
    var panelWidths: [Int] = [512]
    /// Rank of the dgemm update timed for the reference rate (n × k times k × n).
    var gemmRank = 1000

    func run() throws {
        print("dense kernels: \(BLASLibrary.current.description)")
        for threads in Set([1, Threading.coreCount]).sorted() {
            Threading.setBLASThreads(threads)
            let label = "\(threads) thread\(threads == 1 ? " " : "s")"
            for n in sizes {
                let square = squareRates(n: n)
                print(String(format: "  %@, n = %5d: dpotrf %6.1f GFlop/s (%.2f s), dtrtri %6.1f GFlop/s (%.2f s), dgemm (k = %d) %6.1f GFlop/s",
                             label, n, square.potrf.rate, square.potrf.seconds, square.trtri.rate, square.trtri.seconds,
                             gemmRank, gemmRate(n: n)))
                for width in panelWidths where width < n {
                    let packed = try panelRates(n: n, width: width)
                    print(String(format: "  %@, n = %5d, panels of %4d: Cholesky %6.1f GFlop/s (%.2f s), triangular inverse %6.1f GFlop/s (%.2f s), %.0f MB held",
                                 label, n, width, packed.potrf.rate, packed.potrf.seconds, packed.trtri.rate, packed.trtri.seconds,
                                 packed.megabytes))
                }
            }
        }
        Threading.setBLASThreads(Threading.coreCount)
    }

    typealias Rate = (rate: Double, seconds: Double)

    /// Both factorizations take n³/3 flops.
    private func rate(_ n: Int, _ seconds: Double) -> Rate {
        (Double(n) * Double(n) * Double(n) / 3 / seconds / 1e9, seconds)
    }

    /// Entry (i, j), i ≥ j, of a symmetric, diagonally dominant (so positive-definite) matrix.
    private func fillLower(n: Int, _ set: (Int, Int, Double) -> Void) {
        var generator = SplitMix64(seed: 5)
        for j in 0..<n {
            set(j, j, Double(n))
            for i in (j + 1)..<n { set(i, j, generator.nextDouble() - 0.5) }
        }
    }

    /// dpotrf then dtrtri of its factor, in full column-major storage.
    private func squareRates(n: Int) -> (potrf: Rate, trtri: Rate) {
        var A = [Double](repeating: 0, count: n * n)
        fillLower(n: n) { i, j, value in A[j * n + i] = value }
        return A.withUnsafeMutableBufferPointer { buffer in
            let a = buffer.baseAddress!
            var start = Harness.now()
            let info = BLAS.potrfLower(n: n, A: a, lda: n)
            let potrf = Harness.now() - start
            precondition(info == 0, "dpotrf failed: info \(info)")
            start = Harness.now()
            BLAS.trtriLower(n: n, A: a, lda: n)
            return (rate(n, potrf), rate(n, Harness.now() - start))
        }
    }

    /// The same two on the lower triangle in panels.
    private func panelRates(n: Int, width: Int) throws -> (potrf: Rate, trtri: Rate, megabytes: Double) {
        let S = try LowerPanelMatrix(n: n, width: width)
        fillLower(n: n) { i, j, value in S.column(j)[i] = value }
        var start = Harness.now()
        let info = S.factorCholesky()
        let potrf = Harness.now() - start
        precondition(info == 0, "panelled Cholesky failed: info \(info)")
        start = Harness.now()
        S.invertTriangular()
        return (rate(n, potrf), rate(n, Harness.now() - start), Double(S.storedCount * 8) / 1e6)
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

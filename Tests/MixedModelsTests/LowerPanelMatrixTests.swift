import Foundation
import Testing
@testable import MixedModels

/// The panelled lower triangle (the blocked engine's packed Schur complement, issue 14):
/// its Cholesky factor, triangular inverse and solves against LAPACK on the full square.
@Suite("Panelled lower-triangular matrix")
struct LowerPanelMatrixTests {
    /// A symmetric positive-definite n × n matrix (full, column-major).
    static func spd(_ n: Int, seed: UInt64) -> [Double] {
        var state = seed
        func next() -> Double {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Double(state >> 11) / Double(1 << 53) - 0.5
        }
        // A = B B' / n + I, B with random entries: well conditioned, nothing diagonal-dominant.
        let B = (0..<(n * n)).map { _ in next() }
        var A = [Double](repeating: 0, count: n * n)
        for j in 0..<n {
            for i in j..<n {
                var sum = 0.0
                for k in 0..<n { sum += B[i + k * n] * B[j + k * n] }
                A[i + j * n] = sum / Double(n) + (i == j ? 0.5 : 0)
                A[j + i * n] = A[i + j * n]
            }
        }
        return A
    }

    static func fill(_ M: LowerPanelMatrix, from A: [Double]) {
        let n = M.n
        for j in 0..<n { for i in j..<n { M.column(j)[i] = A[i + j * n] } }
    }

    /// The largest difference between M's lower triangle and the square `A`'s, and A's
    /// largest entry there.
    static func lowerDifference(_ M: LowerPanelMatrix, _ A: [Double]) -> (worst: Double, largest: Double) {
        let n = M.n
        var worst = 0.0, largest = 0.0
        for j in 0..<n {
            for i in j..<n {
                worst = max(worst, abs(M.column(j)[i] - A[i + j * n]))
                largest = max(largest, abs(A[i + j * n]))
            }
        }
        return (worst, largest)
    }

    @Test("storage: n(n + w)/2 values, columns addressable from their diagonal", arguments: [(300, 64), (300, 300), (257, 32), (5, 8)])
    func storage(_ n: Int, _ width: Int) throws {
        let M = try LowerPanelMatrix(n: n, width: width)
        let w = min(width, n)
        var expected = 0
        for p0 in stride(from: 0, to: n, by: w) { expected += (n - p0) * min(w, n - p0) }
        #expect(M.storedCount == expected)
        #expect(LowerPanelMatrix.storedCount(n: n, width: width) == expected)
        #expect(M.isSquare == (width >= n))
        // Every (i ≥ j) entry a distinct location.
        var seen = Set<UnsafeMutablePointer<Double>>()
        for j in 0..<n { for i in j..<n { seen.insert(M.column(j) + i) } }
        #expect(seen.count == n * (n + 1) / 2)
    }

    @Test("storage that cannot be had is an error naming what it was for, not a crash")
    func tooLarge() {
        #expect(LowerPanelMatrix.storedCount(n: 4_000_000_000, width: 4_000_000_000) == .max)
        #expect(LowerPanelMatrix.storedCount(n: 20_480, width: 512) == 20_480 * (20_480 + 512) / 2)
        for n in [3_000_000_000, 4_000_000_000] {
            #expect {
                _ = try LowerPanelMatrix(n: n, width: n, for: "the test block")
            } throws: { error in
                (error as? InsufficientMemory).map { "\($0)".contains("the test block") } ?? false
            }
        }
    }

    @Test("Cholesky, triangular inverse and solves equal LAPACK's on the square", arguments: [64, 100, 512])
    func againstLAPACK(_ width: Int) throws {
        let n = 333
        let A = Self.spd(n, seed: 3)
        var L = A
        #expect(L.withUnsafeMutableBufferPointer { BLAS.potrfLower(n: n, A: $0.baseAddress!, lda: n) } == 0)
        let M = try LowerPanelMatrix(n: n, width: width)
        Self.fill(M, from: A)
        #expect(M.factorCholesky() == 0)
        let factorError = Self.lowerDifference(M, L)
        #expect(factorError.worst <= 1e-12 * factorError.largest, "factor differs by \(factorError.worst)")

        // Solves: L⁻¹B for three columns, L'⁻¹x.
        let columns = 3
        var B = (0..<(n * columns)).map { Double(($0 * 37) % 11) - 5 }
        var expected = B
        B.withUnsafeMutableBufferPointer { M.solveLower($0.baseAddress!, columns: columns, ldb: n) }
        L.withUnsafeBufferPointer { l in
            expected.withUnsafeMutableBufferPointer {
                BLAS.trsmLower(left: true, transposed: false, m: n, n: columns, alpha: 1, L: l.baseAddress!, ldl: n, B: $0.baseAddress!, ldb: n)
            }
        }
        let scale = expected.map(abs).max()!
        for (a, b) in zip(B, expected) { #expect(abs(a - b) <= 1e-11 * scale) }
        var x = (0..<n).map { Double($0 % 7) - 3 }
        var y = x
        x.withUnsafeMutableBufferPointer { M.solveLowerTransposed($0.baseAddress!) }
        L.withUnsafeBufferPointer { l in y.withUnsafeMutableBufferPointer { BLAS.trsvLowerTransposed(n: n, L: l.baseAddress!, ldl: n, x: $0.baseAddress!) } }
        let yScale = y.map(abs).max()!
        for (a, b) in zip(x, y) { #expect(abs(a - b) <= 1e-11 * yScale) }

        // L⁻¹: LAPACK's dtrtri on the square, and the defining property L · L⁻¹ = I.
        var X = L
        #expect(X.withUnsafeMutableBufferPointer { BLAS.trtriLower(n: n, A: $0.baseAddress!, lda: n) } == 0)
        #expect(M.invertTriangular() == 0)
        let inverseError = Self.lowerDifference(M, X)
        #expect(inverseError.worst <= 1e-11 * inverseError.largest, "inverse differs by \(inverseError.worst)")
        var identityError = 0.0
        for j in stride(from: 0, to: n, by: 17) {
            for i in j..<n {
                var sum = 0.0
                for k in j...i { sum += L[i + k * n] * M.column(j)[k] }
                identityError = max(identityError, abs(sum - (i == j ? 1 : 0)))
            }
        }
        #expect(identityError <= 1e-12)
    }

    @Test("a matrix that is not positive definite reports the failing order")
    func notPositiveDefinite() throws {
        let n = 200
        var A = Self.spd(n, seed: 9)
        A[150 + 150 * n] = -1
        let M = try LowerPanelMatrix(n: n, width: 64)
        Self.fill(M, from: A)
        let info = M.factorCholesky()
        var square = A
        let expected = square.withUnsafeMutableBufferPointer { BLAS.potrfLower(n: n, A: $0.baseAddress!, lda: n) }
        #expect(info > 0)
        #expect(info == expected)
    }
}

import Foundation

/// Λ and Λ' level by level: the products with the relative covariance factor.
extension MixedModelOperator {
    /// out ← Λ v on the u coordinates (q × m); the β coordinates are not touched.
    func applyLambda(_ v: UnsafePointer<Double>, count m: Int, into out: UnsafeMutablePointer<Double>) {
        for j in terms.indices { applyLambda(term: j, v, count: m, into: out) }
    }

    /// out ← Λ' v on the u coordinates (q × m).
    func applyLambdaTransposed(_ v: UnsafePointer<Double>, count m: Int, into out: UnsafeMutablePointer<Double>) {
        for j in terms.indices { applyLambdaTransposed(term: j, v, count: m, into: out) }
    }

    /// Λ v on term j's coordinates only (in place allowed).
    func applyLambda(term j: Int, _ v: UnsafePointer<Double>, count m: Int, into out: UnsafeMutablePointer<Double>) {
        lambdaKernel(term: j, transposed: false, v, count: m, into: out)
    }

    /// Λ' v on term j's coordinates only (in place allowed).
    func applyLambdaTransposed(term j: Int, _ v: UnsafePointer<Double>, count m: Int, into out: UnsafeMutablePointer<Double>) {
        lambdaKernel(term: j, transposed: true, v, count: m, into: out)
    }

    /// Tⱼ (or Tⱼ') applied level by level, over chunks of levels on the operator's threads.
    private func lambdaKernel(term j: Int, transposed: Bool, _ v: UnsafePointer<Double>, count m: Int,
                              into out: UnsafeMutablePointer<Double>) {
        let term = terms[j]
        let k = term.k, T = templates[j]
        nonisolated(unsafe) let v = v, out = out
        let chunks = (term.levelCount + Self.levelChunk - 1) / Self.levelChunk
        Parallel.forEach(chunks, concurrent: chunks > 1 && term.levelCount * k * m > 1 << 16, threads: threads) { chunk in
            let first = chunk * Self.levelChunk, last = min(term.levelCount, first + Self.levelChunk)
            if k == 1 {
                let t = T[0]
                for index in ((term.offset + first) * m)..<((term.offset + last) * m) { out[index] = t * v[index] }
                return
            }
            if k == 2 {
                let t00 = T[0], t10 = T[1], t11 = T[3]
                for l in first..<last {
                    let base0 = (term.offset + 2 * l) * m, base1 = base0 + m
                    for c in 0..<m {
                        let v0 = v[base0 + c], v1 = v[base1 + c]
                        if transposed {
                            out[base0 + c] = t00 * v0 + t10 * v1
                            out[base1 + c] = t11 * v1
                        } else {
                            out[base0 + c] = t00 * v0
                            out[base1 + c] = t10 * v0 + t11 * v1
                        }
                    }
                }
                return
            }
            T.withUnsafeBufferPointer { T in
                for l in first..<last {
                    let base = term.layout.start(level: l)
                    if transposed {
                        for a in 0..<k {
                            for c in 0..<m {
                                var sum = 0.0
                                for r in a..<k { sum += T[r + a * k] * v[(base + r) * m + c] }
                                out[(base + a) * m + c] = sum
                            }
                        }
                    } else {
                        for r in stride(from: k - 1, through: 0, by: -1) {
                            for c in 0..<m {
                                var sum = 0.0
                                for a in 0...r { sum += T[r + a * k] * v[(base + a) * m + c] }
                                out[(base + r) * m + c] = sum
                            }
                        }
                    }
                }
            }
        }
    }
}

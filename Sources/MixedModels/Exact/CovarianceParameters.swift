/// The relative covariance factor Λθ of Bates et al. (2015), section 3: block diagonal, one
/// lower-triangular k × k block `Tⱼ` per term repeated for each of its levels, with θ the
/// lower triangles of the `Tⱼ` column by column (lme4's `theta`).
///
/// The covariance of term j's effects at one level is `σ² Tⱼ Tⱼ'`.
public struct CovarianceParameters: Sendable, Equatable {
    /// k of each term.
    public let effectCounts: [Int]
    /// Where term j's parameters start in θ.
    let parameterOffsets: [Int]
    /// Where term j's template `Tⱼ` (k × k, column-major) starts in a templates buffer.
    let templateOffsets: [Int]

    public init(effectCounts: [Int]) {
        self.effectCounts = effectCounts
        var parameterOffset = 0, templateOffset = 0
        var parameterOffsets: [Int] = [], templateOffsets: [Int] = []
        for k in effectCounts {
            parameterOffsets.append(parameterOffset)
            templateOffsets.append(templateOffset)
            parameterOffset += k * (k + 1) / 2
            templateOffset += k * k
        }
        self.parameterOffsets = parameterOffsets + [parameterOffset]
        self.templateOffsets = templateOffsets + [templateOffset]
    }

    /// Length of θ.
    public var count: Int { parameterOffsets.last! }
    /// Size of a buffer holding every `Tⱼ`.
    var templateStorageCount: Int { templateOffsets.last! }

    /// lme4's start: every `Tⱼ` the identity.
    public var initialTheta: [Double] {
        var theta: [Double] = []
        for k in effectCounts {
            for column in 0..<k { for row in column..<k { theta.append(row == column ? 1 : 0) } }
        }
        return theta
    }

    /// lme4's bounds: 0 below the diagonal elements of each `Tⱼ`, none below the others.
    public var lowerBounds: [Double] {
        var bounds: [Double] = []
        for k in effectCounts {
            for column in 0..<k { for row in column..<k { bounds.append(row == column ? 0 : -.infinity) } }
        }
        return bounds
    }

    /// True for the θ entries on the diagonal of a `Tⱼ`.
    public var isDiagonal: [Bool] { lowerBounds.map { $0 == 0 } }

    /// Writes every `Tⱼ` (column-major, zeros above the diagonal) into `templates`.
    func fill(_ theta: UnsafeBufferPointer<Double>, into templates: UnsafeMutableBufferPointer<Double>) {
        for (j, k) in effectCounts.enumerated() {
            var p = parameterOffsets[j]
            let base = templateOffsets[j]
            for column in 0..<k {
                for row in 0..<k {
                    if row >= column {
                        templates[base + row + column * k] = theta[p]
                        p += 1
                    } else {
                        templates[base + row + column * k] = 0
                    }
                }
            }
        }
    }

    /// `Tⱼ` of term j as a matrix.
    public func template(_ j: Int, theta: [Double]) -> Matrix {
        let k = effectCounts[j]
        var T = Matrix(zeros: k, k)
        var p = parameterOffsets[j]
        for column in 0..<k { for row in column..<k { T[row, column] = theta[p]; p += 1 } }
        return T
    }

    /// The covariance matrices `σ² Tⱼ Tⱼ'` of every term.
    public func covariances(theta: [Double], sigmaSquared: Double) -> [Matrix] {
        effectCounts.indices.map { j in
            let T = template(j, theta: theta)
            let k = effectCounts[j]
            var V = Matrix(zeros: k, k)
            for a in 0..<k {
                for b in 0..<k {
                    var sum = 0.0
                    for c in 0..<k { sum += T[a, c] * T[b, c] }
                    V[a, b] = sigmaSquared * sum
                }
            }
            return V
        }
    }

    /// The largest relative change of a variance component `Tⱼ Tⱼ'` (at fixed σ²) when θ moves
    /// by `step`: a variance relative to itself, a covariance relative to √(var·var) of its
    /// two variances, as fits are compared with lme4's. An entry that is zero at θ and stays zero counts as unchanged.
    func largestRelativeChange(theta: [Double], step: [Double]) -> Double {
        let moved = zip(theta, step).map { $0 + $1 }
        let before = covariances(theta: theta, sigmaSquared: 1)
        let after = covariances(theta: moved, sigmaSquared: 1)
        var largest = 0.0
        for (V, W) in zip(before, after) {
            for a in 0..<V.rows {
                for b in 0...a {
                    let change = abs(W[a, b] - V[a, b])
                    guard change > 0 else { continue }
                    // A covariance on the scale of its two variances (as the fits are compared:
                    // a near-zero covariance moved by 6e-5 of itself cost the 2M-row fit a
                    // factorization and an inversion, 50 s).
                    let scale = a == b ? abs(V[a, b]) : (abs(V[a, a]) * abs(V[b, b])).squareRoot()
                    largest = max(largest, change / max(scale, .leastNormalMagnitude))
                }
            }
        }
        return largest
    }

    /// θ from covariance matrices and σ²: `Tⱼ` is the Cholesky factor of `Vⱼ / σ²`.
    /// - Returns: nil for the index of a term whose matrix is not positive semi-definite.
    public func theta(covariances: [Matrix], sigmaSquared: Double) -> Result<[Double], NotPositiveSemidefinite> {
        var theta: [Double] = []
        for (j, V) in covariances.enumerated() {
            let k = effectCounts[j]
            guard let L = SemidefiniteCholesky.factor(V, scale: 1 / sigmaSquared, perEntry: true) else {
                return .failure(NotPositiveSemidefinite(term: j))
            }
            for column in 0..<k { for row in column..<k { theta.append(L[row, column]) } }
        }
        return .success(theta)
    }

    /// The covariance matrix of a term is not positive semi-definite.
    public struct NotPositiveSemidefinite: Error, Sendable {
        public let term: Int
    }
}

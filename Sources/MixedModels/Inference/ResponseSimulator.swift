import Foundation

/// Responses simulated from a fitted model (lme4's `simulate(m)`, the generator of the
/// parametric bootstrap): y* = Xβ̂ + ZΛ̂u* + ε*, u* ~ N(0, σ̂²I), ε* ~ N(0, σ̂²I).
///
/// Each simulation draws from its own generator, seeded from the seed and the simulation's
/// index, so a simulation is the same whichever thread makes it and in whatever order.
public struct ResponseSimulator: Sendable {
    /// Xβ̂, the population-level fitted values.
    let fixedPart: [Double]
    /// Z in compressed columns (column pointers, row indices, values).
    let columnPointers: [Int32]
    let rowIndices: [Int32]
    let values: [Double]
    let theta: [Double]
    let sigma: Double
    let n: Int
    let q: Int
    /// Λ's templates at θ̂ (``CovarianceParameters/fill(_:into:)``) and the terms' layouts.
    let templates: [Double]
    let layouts: [TermLayout]

    /// The generator of a fit of `model` (θ̂, β̂ and σ̂ of `fit`).
    public init(model: LinearMixedModel, fit: FitResult) {
        let frame = model.frame
        n = frame.n
        var xb = [Double](repeating: 0, count: n)
        for (c, beta) in fit.fixedEffects.enumerated() {
            for i in 0..<n { xb[i] += frame.X.values[i + c * n] * beta }
        }
        fixedPart = xb
        let Z = model.pls.design.Z
        q = model.pls.q
        columnPointers = Array(Z.columnPointers)
        rowIndices = Array(Z.rowIndices.prefix(Int(Z.columnPointers[q])))
        values = Array(Z.values.prefix(Int(Z.columnPointers[q])))
        theta = fit.theta
        sigma = fit.sigma
        var templates = [Double](repeating: 0, count: model.parameters.templateStorageCount)
        fit.theta.withUnsafeBufferPointer { theta in
            templates.withUnsafeMutableBufferPointer { model.parameters.fill(theta, into: $0) }
        }
        self.templates = templates
        layouts = model.pls.design.layouts
    }

    /// The generator of simulation `index` for `seed`.
    static func generator(seed: UInt64, index: Int) -> SplitMix64 {
        // Two rounds of SplitMix64 decorrelate neighbouring indices' streams.
        var mixer = SplitMix64(seed: seed ^ 0x5851_F42D_4C95_7F2D)
        let base = mixer.next()
        var stream = SplitMix64(seed: base &+ UInt64(index) &* 0x9E37_79B9_7F4A_7C15)
        return SplitMix64(seed: stream.next())
    }

    /// Simulation `index` for `seed`: first q standard normals for u*, then n for ε*.
    public func simulate(seed: UInt64, index: Int) -> [Double] {
        var random = Self.generator(seed: seed, index: index)
        var normals = NormalSampler()
        var u = [Double](repeating: 0, count: q)
        for c in 0..<q { u[c] = sigma * normals.next(&random) }
        // b = Λu, term by term, level by level.
        var b = [Double](repeating: 0, count: q)
        templates.withUnsafeBufferPointer { T in
            u.withUnsafeBufferPointer { x in
                b.withUnsafeMutableBufferPointer { layouts.lambda(T.baseAddress!, x.baseAddress!, into: $0.baseAddress!) }
            }
        }
        var y = fixedPart
        for c in 0..<q where b[c] != 0 {
            for index in Int(columnPointers[c])..<Int(columnPointers[c + 1]) {
                y[Int(rowIndices[index])] += values[index] * b[c]
            }
        }
        for i in 0..<n { y[i] += sigma * normals.next(&random) }
        return y
    }
}

/// Standard normal draws by the Box–Muller transform, both values of a pair used.
struct NormalSampler {
    private var spare: Double?

    mutating func next(_ random: inout SplitMix64) -> Double {
        if let value = spare {
            spare = nil
            return value
        }
        var u1 = random.nextDouble()
        while u1 == 0 { u1 = random.nextDouble() }
        let u2 = random.nextDouble()
        let radius = (-2 * log(u1)).squareRoot()
        spare = radius * sin(2 * Double.pi * u2)
        return radius * cos(2 * Double.pi * u2)
    }
}

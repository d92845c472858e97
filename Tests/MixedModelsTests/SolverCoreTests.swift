import Foundation
import Testing
@testable import MixedModels

/// The pieces of the exact core: a term's layout and Λ kernels, the solver's states, and the
/// small positive-definite inverse.
@Suite("Solver core: term layout, solver state, small inverse")
struct SolverCoreTests {
    static let formula = "y ~ 1 + x + (1 + x | user) + (1 | item) + (1 + x || store)"

    static func model(engine: PenalizedLeastSquares.Engine = .automatic) throws -> LinearMixedModel {
        let data = FactorizationTests.crossedData(rows: 1500, users: 120, items: 40, stores: 5, seed: 11)
        return try LinearMixedModel(formula: try Formula.parse(formula), data: data, engine: engine)
    }

    /// A θ away from the identity, with nonzero off-diagonal entries.
    static func theta(_ parameters: CovarianceParameters) -> [Double] {
        parameters.initialTheta.indices.map { parameters.isDiagonal[$0] ? 0.4 + 0.15 * Double($0) : -0.2 + 0.1 * Double($0) }
    }

    @Test("effect r of level l of term j is the column of Z holding it; the terms partition Z's columns")
    func layoutIndexesZ() throws {
        let model = try Self.model()
        let design = model.pls.design
        let Z = design.Z
        let colptr = Z.columnPointers, rows = Z.rowIndices, values = Z.values
        var next = 0
        for (j, (term, layout)) in zip(design.terms, design.layouts).enumerated() {
            #expect(layout.columns.lowerBound == next)
            #expect(layout.columnCount == term.columnCount)
            #expect(layout.parameterOffset == design.parameters.parameterOffsets[j])
            #expect(layout.templateOffset == design.parameters.templateOffsets[j])
            next = layout.columns.upperBound
            let n = design.n
            for i in stride(from: 0, to: n, by: 7) {
                let l = Int(term.codes[i])
                for r in 0..<term.effectCount {
                    let c = layout.index(level: l, effect: r)
                    #expect(layout.level(ofColumn: c) == l)
                    #expect(Int(design.termOfColumn[c]) == j)
                    let range = Int(colptr[c])..<Int(colptr[c + 1])
                    let hit = range.first { Int(rows[$0]) == i }
                    #expect(hit != nil, "row \(i) missing from column \(c)")
                    if let hit { #expect(values[hit] == term.effects.values[i + r * n]) }
                }
            }
        }
        #expect(next == design.q)
    }

    @Test("Λv and Λ'v agree with the dense block-diagonal Λθ")
    func lambdaKernels() throws {
        let model = try Self.model()
        let pls = model.pls
        let theta = Self.theta(pls.parameters)
        try pls.update(theta: theta)
        let q = pls.q
        var dense = Matrix(zeros: q, q)
        for (j, layout) in pls.design.layouts.enumerated() {
            let T = pls.parameters.template(j, theta: theta)
            for l in 0..<layout.levelCount {
                for r in 0..<layout.effectCount {
                    for s in 0..<layout.effectCount {
                        dense[layout.index(level: l, effect: r), layout.index(level: l, effect: s)] = T[r, s]
                    }
                }
            }
        }
        let v = (0..<q).map { sin(Double($0) * 0.7) + 0.1 }
        let lambdaV = pls.applyLambda(v), lambdaTV = pls.lambdaTranspose(v)
        for i in 0..<q {
            var a = 0.0, b = 0.0
            for c in 0..<q {
                a += dense[i, c] * v[c]
                b += dense[c, i] * v[c]
            }
            #expect(abs(a - lambdaV[i]) <= 1e-14 * max(1, abs(a)))
            #expect(abs(b - lambdaTV[i]) <= 1e-14 * max(1, abs(b)))
        }
    }

    @Test("update factors, invert keeps û and the objective, a new update factors again",
          arguments: [PenalizedLeastSquares.Engine.sparseCholesky, .blockedDense])
    func stateTransitions(_ engine: PenalizedLeastSquares.Engine) throws {
        let model = try Self.model(engine: engine)
        let pls = model.pls
        #expect(!pls.hasSolution)
        guard case .empty = pls.state else { Issue.record("a new core is not empty"); return }
        let theta = Self.theta(pls.parameters)
        let objective = try model.objective(at: theta, criterion: .reml)
        guard case .factored = pls.state else { Issue.record("update did not leave a factor"); return }
        #expect(pls.objective(.reml) == objective)
        let beta = pls.fixedEffects(), u = try pls.sphericalEffects(), b = try pls.randomEffects()

        let inverse = try pls.invert()
        guard case .inverted = pls.state else { Issue.record("invert did not record the inversion"); return }
        #expect(pls.hasSolution)
        // The objective and the solution are reads of the state, not of the overwritten factor.
        #expect(pls.objective(.reml) == objective)
        #expect(pls.fixedEffects() == beta)
        #expect(try pls.sphericalEffects() == u)
        #expect(try pls.randomEffects() == b)
        // A second inversion returns the kept inverse instead of inverting an inverse.
        let again = try pls.invert()
        for c in stride(from: 0, to: pls.q, by: 5) { #expect(again.entry(c, c) == inverse.entry(c, c)) }

        // Solves need L again: a new update restores it, with the same numbers.
        try pls.update(theta: theta)
        guard case .factored = pls.state else { Issue.record("update after invert did not factor"); return }
        #expect(pls.objective(.reml) == objective)
        #expect(try pls.sphericalEffects() == u)
        let columns = try pls.solveFixedEffectColumns()
        #expect(columns.count == pls.q * pls.p)
    }

    @Test("the small inverse: A A⁻¹ = I for k = 1…5, with and without a separate workspace")
    func smallInverse() {
        for k in 1...5 {
            // A = B B' + k I with B fixed and non-symmetric.
            var A = [Double](repeating: 0, count: k * k)
            for r in 0..<k {
                for s in 0..<k {
                    var sum = r == s ? Double(k) : 0
                    for c in 0..<k { sum += sin(Double(r * 7 + c * 3 + 1)) * sin(Double(s * 7 + c * 3 + 1)) }
                    A[r + s * k] = sum
                }
            }
            guard let inverse = SmallCholesky.inverse(A, k) else { Issue.record("k = \(k): not inverted"); continue }
            for r in 0..<k {
                for s in 0..<k {
                    var sum = 0.0
                    for c in 0..<k { sum += A[r + c * k] * inverse[c + s * k] }
                    #expect(abs(sum - (r == s ? 1 : 0)) <= 1e-13, "k = \(k): (AA⁻¹)[\(r), \(s)] = \(sum)")
                }
            }
            // A separate workspace leaves A alone and gives the same bits.
            var work = [Double](repeating: 0, count: k * k), out = [Double](repeating: 0, count: k * k)
            let ok = A.withUnsafeBufferPointer { a in
                work.withUnsafeMutableBufferPointer { w in
                    out.withUnsafeMutableBufferPointer {
                        SmallCholesky.inverse(of: a.baseAddress!, k, work: w.baseAddress!, into: $0.baseAddress!)
                    }
                }
            }
            #expect(ok)
            #expect(out == inverse)
        }
    }

    @Test("the small inverse reports a matrix that is not positive definite",
          arguments: [([-1.0], 1), ([0.0], 1), ([Double.nan], 1), ([1, 2, 2, 1], 2), ([1, 0, 0, 0], 2),
                      ([1, .nan, .nan, 1], 2), ([4, 0, 0, 0, -1, 0, 0, 0, 1], 3)])
    func smallInverseFailure(_ A: [Double], _ k: Int) {
        #expect(SmallCholesky.inverse(A, k) == nil)
    }
}

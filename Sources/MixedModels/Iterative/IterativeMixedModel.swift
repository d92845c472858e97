import Foundation

/// A linear mixed model fitted without factorizing anything q × q: the mixed-model equations
/// are solved by preconditioned conjugate gradients (``ConjugateGradient``), the traces the
/// REML score needs are estimated from Rademacher probes (``TraceProbes``), and the log
/// determinant from stochastic Lanczos quadrature (``StochasticLogDeterminant``). Memory and
/// time per product are O(n): for models whose exact factor does not fit (10⁶ levels, crossed).
///
///     let model = try IterativeMixedModel(formula: formula, data: table)
///     let fit = try model.fit(IterativeOptions())
public final class IterativeMixedModel {
    /// The model frame: its names, levels and counts always; its rows (y, X, the terms' codes
    /// and effects, the data rows) only when the model was built keeping them (``holdsRows``).
    public let frame: ModelFrame
    /// Whether ``frame`` holds its rows, which ``FittedValues/init(iterative:result:)`` and
    /// ``SavedModel/init(iterative:result:data:dataPath:)`` need. The fit itself needs only the
    /// operator's copy of them (sorted by level).
    public let holdsRows: Bool
    let model: MixedModelOperator
    let parameters: CovarianceParameters
    /// The rows held, by the file chunk they come from (in a distributed fit the process owns
    /// chunks rank, rank + K, …; alone, one entry for every row): the order of the residuals.
    let rowChunks: [Int]
    /// The sums of the moment start (``startingValues(_:)``), over every process: Σ(y − ȳ)²,
    /// then per term and effect Σ eᵢ², taken from the frame's rows when the model is built.
    let momentSums: [Double]
    /// The approximate start's components (``ApproximateStart``), taken from the frame's rows
    /// when the model is built (whether or not it keeps them). One start serves REML and ML
    /// (σ² on n − p degrees of freedom: the criteria's starts differ by p/n).
    let approximateComponents: (covariances: [Matrix], sigmaSquared: Double)

    /// Builds the model frame and the matrix-free operator.
    /// - Parameter keepingRows: false to release the frame's rows once the operator holds its
    ///   copy of them (about half the memory of the data at the fit's peak); the model then
    ///   gives no ``FittedValues`` nor ``SavedModel``.
    ///   `data` is consumed: given up by the caller (`consume table`), it is freed once the
    ///   frame is built, before the operator.
    /// - Throws: ``LMMError``: ``LMMError/formula(_:)`` for a formula that does not fit the data.
    public convenience init(formula: Formula, data: consuming DataTable, keepingRows: Bool = true) throws(LMMError) {
        do {
            try self.init(checking: formula, data: consume data, keepingRows: keepingRows)
        } catch {
            throw LMMError(error)
        }
    }

    /// The work of the initializer above (which wraps its errors).
    convenience init(checking formula: Formula, data: consuming DataTable, keepingRows: Bool) throws {
        let frame = try ModelFrame(formula: formula, data: data)    // its last use: consumed there
        PhaseLog.mark("model frame")
        // Memory is checked before the operator is built, and the fit's before the fit (issue 11, item 12).
        try IterativeMemory(frame: frame).checkOperator()
        let model = MixedModelOperator(frame: frame)
        self.init(frame: frame, model: model, rowChunks: [frame.n], keepingRows: keepingRows)
        PhaseLog.mark("level index, per-level blocks")
    }

    /// A model of `frame`'s rows through `model` (one process's share of the rows with a
    /// group of several; ``rowChunks`` say how they fall in the file's chunks). Collective.
    init(frame: ModelFrame, model: MixedModelOperator, rowChunks: [Int], keepingRows: Bool) {
        self.frame = keepingRows ? frame : frame.withoutRows()
        holdsRows = keepingRows
        self.model = model
        self.rowChunks = rowChunks
        let parameters = CovarianceParameters(effectCounts: frame.randomTerms.map(\.effectCount))
        self.parameters = parameters
        momentSums = Self.momentSums(frame: frame, model: model)
        // Collective (in the same order on every process).
        approximateComponents = ApproximateStart(frame: frame, parameters: parameters, combine: { model.sumOverProcesses($0) })
            .components(criterion: .reml)
    }

    /// Throws unless ``frame`` holds its rows, which `what` is computed from.
    func requireRows(for what: String) throws {
        guard holdsRows else {
            throw InputError("\(what) cannot be computed: this iterative model released its frame's rows "
                             + "(built with keepingRows: false, or on more than one process)")
        }
    }

    /// Rows this process holds (of the model's, after na.omit): all of them alone, its share
    /// of them in a distributed fit (see ``init(formula:share:group:)``).
    public var rowsHeld: Int { model.n }

    /// Rows the model has, over every process.
    public var observationCount: Int { model.observations }

    /// The solvers at one θ: per-level blocks and conjugate gradients for H (with the fixed
    /// effects) and for A (without), each made at its first use (the fit needs only A's).
    final class Solvers {
        let model: MixedModelOperator
        let kind: PreconditionerKind
        let tolerance: Double
        private(set) lazy var blocksH = LevelBlocks(model: model, includeFixed: true)
        private(set) lazy var blocksA = LevelBlocks(model: model, includeFixed: false)
        private(set) lazy var H = ConjugateGradient(model: model, includeFixed: true, preconditioner: preconditioner(blocksH),
                                                    tolerance: tolerance)
        private(set) lazy var A = ConjugateGradient(model: model, includeFixed: false, preconditioner: preconditioner(blocksA),
                                                    tolerance: tolerance)

        init(model: MixedModelOperator, kind: PreconditionerKind, tolerance: Double) {
            self.model = model
            self.kind = kind
            self.tolerance = tolerance
        }

        private func preconditioner(_ blocks: LevelBlocks) -> Preconditioner {
            switch kind {
            case .blockJacobi: return BlockJacobiPreconditioner(blocks: blocks)
            case .gaussSeidel: return GaussSeidelPreconditioner(blocks: blocks)
            }
        }
    }

    /// Solves the penalized least-squares problem at θ: (û, β̂) with H [u; β] = W'y.
    /// - Returns: u (q), β (p, for the user's X: the operator works with X̃ and ỹ of
    ///   ``FixedEffectBasis``) and the CG report.
    func solvePLS(theta: [Double], preconditioner: PreconditionerKind = .blockJacobi, tolerance: Double = 1e-10)
        -> (u: [Double], beta: [Double], report: ConjugateGradient.Report) {
        model.setTheta(theta)
        let solvers = Solvers(model: model, kind: preconditioner, tolerance: tolerance)
        let dimension = model.q + model.p
        var rhs = [Double](repeating: 0, count: dimension)
        var x = [Double](repeating: 0, count: dimension)
        let workspace = OperatorWorkspace(model: model, count: 1)
        model.y.withUnsafeBufferPointer { y in
            rhs.withUnsafeMutableBufferPointer { model.rightHandSide(y.baseAddress!, count: 1, includeFixed: true, workspace: workspace, into: $0.baseAddress!) }
        }
        let report = rhs.withUnsafeMutableBufferPointer { b in
            x.withUnsafeMutableBufferPointer { solvers.H.solve(b.baseAddress!, count: 1, x: $0.baseAddress!) }
        }
        return (Array(x[0..<model.q]), model.basis.userFixedEffects(Array(x[model.q...])), report)
    }
}

extension IterativeMixedModel {
    /// A measured solve of the mixed-model equations at given variance components, from zero,
    /// for comparing preconditioners (`lmm-bench pcg`).
    public struct SolveMeasurement: Sendable {
        public var iterations: Int
        public var relativeResidual: Double
        public var seconds: Double
    }

    /// θ of variance components given in lme4's VarCorr form.
    public func theta(given variances: VarianceComponents) throws -> [Double] {
        let (covariances, sigmaSquared) = try variances.resolve(for: frame)
        switch parameters.theta(covariances: covariances, sigmaSquared: sigmaSquared) {
        case .success(let theta): return theta
        case .failure(let failure):
            throw IterativeFitError(message: "the covariance of factor '\(frame.termLabels[failure.term])' is not positive semi-definite")
        }
    }

    /// lme4's starting θ (every Tⱼ the identity).
    public var initialTheta: [Double] { parameters.initialTheta }

    /// Solves H [u; β] = W'y (`includeFixed`) or A u = Λ'Z'y from zero at θ and reports the
    /// iterations to `tolerance` and the time (blocks included).
    public func measureSolve(theta: [Double], preconditioner: PreconditionerKind, includeFixed: Bool,
                             tolerance: Double = 1e-8) -> SolveMeasurement {
        let start = DispatchTime.now()
        model.setTheta(theta)
        let solvers = Solvers(model: model, kind: preconditioner, tolerance: tolerance)
        solvers.H.maxIterations = 5_000
        solvers.A.maxIterations = 5_000
        let dimension = model.dimension(includeFixed: includeFixed)
        let rhs = Buffer(dimension), x = Buffer(dimension)
        model.y.withUnsafeBufferPointer {
            model.rightHandSide($0.baseAddress!, count: 1, includeFixed: includeFixed,
                                workspace: OperatorWorkspace(model: model, count: 1), into: rhs.pointer)
        }
        let report = (includeFixed ? solvers.H : solvers.A).solve(rhs.pointer, count: 1, x: x.pointer)
        return SolveMeasurement(iterations: report.maxIterations, relativeResidual: report.relativeResiduals[0],
                                seconds: Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9)
    }
}

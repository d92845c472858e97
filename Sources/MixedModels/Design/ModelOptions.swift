/// Settings of a model beyond its formula, as `lmer`'s arguments: prior weights, an offset
/// column, and the contrasts of unordered factors (R's `options(contrasts =)`).
public struct ModelOptions: Sendable, Equatable {
    /// The column of prior weights (`lmer(weights =)`): the residual variance of row i is
    /// σ²/wᵢ. Rows with a missing weight are dropped; a weight must be positive and finite.
    public var weights: String?
    /// A column added to the linear predictor with coefficient 1 (as `offset(x)` in the formula).
    public var offset: String?
    /// How unordered factors are coded when a term needs contrasts.
    public var contrasts: ContrastCoding = .treatment
    /// The rows are one process's share of the data (a distributed fit): ``ModelFrame`` leaves
    /// the checks that count observations or compare the response over rows to the caller, who
    /// makes them over every process's rows.
    var isRowShare = false

    public init(weights: String? = nil, offset: String? = nil, contrasts: ContrastCoding = .treatment) {
        self.weights = weights
        self.offset = offset
        self.contrasts = contrasts
    }

    /// The data columns these options read.
    public var columns: [String] { [weights, offset].compactMap { $0 } }
}

/// R's contrast functions for unordered factors.
public enum ContrastCoding: String, Sendable, CaseIterable {
    /// `contr.treatment` (R's default): one column per level but the first, named `f` + level.
    case treatment
    /// `contr.sum`: level j (j < k) is 1 in column j, the last level −1 in every column;
    /// columns named `f1`, `f2`, ….
    case sum
    /// `contr.helmert`: column j compares level j + 1 with the mean of the levels before it
    /// (−1 for each of them, j for level j + 1); columns named `f1`, `f2`, ….
    case helmert

    /// R's function name, as `options("contrasts")` prints it.
    public var rName: String { "contr." + rawValue }

    /// The k × (k − 1) contrast matrix, by rows (level), and the column suffixes.
    func matrix(levels: [String]) -> (rows: [[Double]], suffixes: [String]) {
        let k = levels.count
        let numbered = (1..<k).map(String.init)
        var rows = [[Double]](repeating: [Double](repeating: 0, count: k - 1), count: k)
        switch self {
        case .treatment:
            for level in 1..<k { rows[level][level - 1] = 1 }
            return (rows, Array(levels.dropFirst()))
        case .sum:
            for level in 0..<(k - 1) { rows[level][level] = 1 }
            for column in 0..<(k - 1) { rows[k - 1][column] = -1 }
            return (rows, numbered)
        case .helmert:
            for column in 0..<(k - 1) {
                for level in 0...column { rows[level][column] = -1 }
                rows[column + 1][column] = Double(column + 1)
            }
            return (rows, numbered)
        }
    }
}

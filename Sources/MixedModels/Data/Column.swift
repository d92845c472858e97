/// One column of a ``DataTable``: numbers, or a categorical variable coded as a ``Factor``.
///
/// Missing values (an empty field or `NA` in the CSV) are `Double.nan` in a numeric column
/// and the code `-1` in a factor.
public enum Column: Sendable, Equatable {
    case numeric([Double])
    case categorical(Factor)

    /// Number of rows.
    public var count: Int {
        switch self {
        case .numeric(let values): return values.count
        case .categorical(let factor): return factor.codes.count
        }
    }

    /// True when row `i` holds a missing value.
    @inlinable
    public func isMissing(_ i: Int) -> Bool {
        switch self {
        case .numeric(let values): return values[i].isNaN
        case .categorical(let factor): return factor.codes[i] < 0
        }
    }
}

/// A categorical variable: integer codes into `levels`, as R's `factor`.
///
/// `levels` are ordered as R orders the levels of a factor made from a CSV column:
/// numerically when every value is a number (subject ids 308, 309, …), otherwise by
/// R's default (ICU root) collation. The first level is the reference level of
/// treatment contrasts.
public struct Factor: Sendable, Equatable {
    /// Code of each row: an index into `levels`, or `-1` for a missing value.
    public var codes: [Int32]
    /// Level labels, in R's order.
    public var levels: [String]

    public init(codes: [Int32], levels: [String]) {
        self.codes = codes
        self.levels = levels
    }
}

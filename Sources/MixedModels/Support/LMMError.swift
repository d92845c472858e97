/// Every failure of a model's public functions, with where it happened when known (see
/// ``location``): bad input in a file or a formula, an output file that cannot be written, a
/// fit that cannot go on, an unsupported combination of options, or a numerical failure.
///
/// The readers and the formula parser throw the located input errors themselves
/// (``InputError``, ``FormulaError``); ``LinearMixedModel``'s initializer and fits throw only
/// `LMMError`, with those wrapped as ``input(_:)`` and ``formula(_:)`` and the library's internal
/// failures (of the penalized least-squares solve, of CHOLMOD) as ``numerical(_:)``. The text
/// of an error (``description``) is that of the error it wraps.
public enum LMMError: Error, CustomStringConvertible, Sendable, Equatable {
    /// Bad input in a data or parameter file (file, line, column).
    case input(InputError)
    /// A formula that cannot be parsed or does not fit the data (the offending span).
    case formula(FormulaError)
    /// An output file that cannot be written or moved into place.
    case output(file: String, reason: String)
    /// An iterative fit that cannot go on (a collapsing or indefinite covariance, a residual
    /// variance that is no longer positive).
    case fit(String)
    /// Options that the chosen method does not support.
    case unsupported(String)
    /// The fit needs more memory than the process may use (found before allocating it).
    case memory(String)
    /// A numerical failure (a factorization, a matrix that should be positive definite): the
    /// model cannot be fitted at these parameters, or the library has a bug.
    case numerical(String)

    /// Where a problem is.
    public enum Location: Sendable, Equatable {
        /// A file, with the line and column when they are known.
        case file(String, line: Int?, column: Int?)
        /// The characters `span` (offsets in characters) of the formula `text`.
        case formula(String, span: Range<Int>)
    }

    /// The file position or formula span of the problem; nil when it has none.
    public var location: Location? {
        switch self {
        case .input(let error): error.file.map { .file($0, line: error.line, column: error.column) }
        case .formula(let error): .formula(error.formula, span: error.span)
        case .output(let file, _): .file(file, line: nil, column: nil)
        case .fit, .unsupported, .numerical, .memory: nil
        }
    }

    /// `file:line:column: message` for a file, the message and the formula with a caret under
    /// the span for a formula, the message otherwise.
    public var description: String {
        switch self {
        case .input(let error): error.description
        case .formula(let error): error.description
        case .output(let file, let reason): file + ": " + reason
        case .fit(let message), .unsupported(let message), .numerical(let message), .memory(let message): message
        }
    }

    /// The message without its location.
    public var message: String {
        switch self {
        case .input(let error): error.message
        case .formula(let error): error.message
        case .output(_, let reason): reason
        case .fit(let message), .unsupported(let message), .numerical(let message), .memory(let message): message
        }
    }

    /// `error` as an `LMMError`: located input errors wrapped, internal ones as ``numerical(_:)``.
    init(_ error: any Error) {
        switch error {
        case let error as LMMError: self = error
        case let error as InputError: self = .input(error)
        case let error as FormulaError: self = .formula(error)
        case let error as PLSError: self = .numerical(error.description)
        case let error as CholmodError: self = .numerical(error.description)
        case let error as JSONValue.NonFiniteNumber: self = .numerical(error.description)
        case let error as InsufficientMemory: self = .memory(error.description)
        default: self = .numerical(String(describing: error))
        }
    }

    /// Runs `body`, turning whatever it throws into an `LMMError` (``init(_:)``): what public
    /// functions call so that no internal error type escapes.
    static func wrapping<T>(_ body: () throws -> T) throws(LMMError) -> T {
        do {
            return try body()
        } catch {
            throw LMMError(error)
        }
    }
}

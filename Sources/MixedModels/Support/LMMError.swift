/// A failure that is not bad input: an output file that cannot be written, a fit that cannot go
/// on, an unsupported combination of options, or a numerical failure inside the library.
///
/// Bad input is reported by the two located errors: ``InputError`` (a data or parameter file,
/// with its file, line and column) and ``FormulaError`` (a formula, with the offending span).
/// The public functions of ``LinearMixedModel`` throw only these three types: the library's
/// internal failures (of the penalized least-squares solve, of CHOLMOD) are wrapped as
/// ``numerical(_:)``.
public enum LMMError: Error, CustomStringConvertible, Sendable, Equatable {
    /// An output file that cannot be written or moved into place.
    case output(file: String, reason: String)
    /// An iterative fit that cannot go on (a collapsing or indefinite covariance, a residual
    /// variance that is no longer positive).
    case fit(String)
    /// Options that the chosen method does not support.
    case unsupported(String)
    /// A numerical failure (a factorization, a matrix that should be positive definite): the
    /// model cannot be fitted at these parameters, or the library has a bug.
    case numerical(String)

    /// `file: reason` for an output file; the message otherwise.
    public var description: String {
        switch self {
        case .output(let file, let reason): file + ": " + reason
        case .fit(let message), .unsupported(let message), .numerical(let message): message
        }
    }

    /// The message without the file name.
    public var message: String {
        switch self {
        case .output(_, let reason): reason
        case .fit(let message), .unsupported(let message), .numerical(let message): message
        }
    }

    /// Runs `body`, turning the internal errors it may throw (``PLSError``, ``CholmodError``)
    /// into ``numerical(_:)``: what public functions call so that no internal type escapes.
    static func wrappingInternal<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as PLSError {
            throw LMMError.numerical(error.description)
        } catch let error as CholmodError {
            throw LMMError.numerical(error.description)
        }
    }
}

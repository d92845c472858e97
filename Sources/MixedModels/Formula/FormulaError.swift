/// A problem with a formula, shown as lme4 users would want: the message, then the
/// formula with a caret under the offending part.
///
///     error: unknown column 'Dayz'; available columns: Reaction, Days, Subject
///       Reaction ~ 1 + Dayz + (1 + Days | Subject)
///                      ^~~~
public struct FormulaError: Error, CustomStringConvertible, Sendable, Equatable {
    public var message: String
    /// The whole formula text.
    public var formula: String
    /// The offending characters (offsets in characters into `formula`); empty marks a position.
    public var span: Range<Int>

    public init(_ message: String, formula: String, span: Range<Int>) {
        self.message = message
        self.formula = formula
        self.span = span
    }

    public var description: String {
        let width = max(1, span.count)
        let caret = String(repeating: " ", count: span.lowerBound) + "^" + String(repeating: "~", count: width - 1)
        return "\(message)\n  \(formula)\n  \(caret)"
    }
}

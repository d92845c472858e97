/// Where a notable field of a CSV column is in its file: the data row (0-based, header not
/// counted), the physical line and the field's text (shortened). The reader records the fields
/// that a model may later have to refuse — an infinite number, the first text in a column
/// that turned categorical — so that the error can name the file, line and column without
/// keeping the line of every row.
public struct CellLocation: Sendable, Equatable {
    /// Data row, 0-based (the header is not counted).
    public var row: Int
    /// Physical line in the file (the header is line 1).
    public var line: Int
    /// The field's text, at most ``maximumTextLength`` bytes (then followed by "…").
    public var text: String

    public init(row: Int, line: Int, text: String) {
        self.row = row
        self.line = line
        self.text = text
    }

    /// Longest field text kept: a 10 MB digit string is not copied into a message.
    static let maximumTextLength = 40

    /// A location for the `count` bytes at `bytes`, the text shortened to ``maximumTextLength``
    /// bytes (invalid UTF-8 shown as U+FFFD).
    init(row: Int, line: Int, bytes: UnsafePointer<UInt8>, count: Int) {
        let kept = min(count, Self.maximumTextLength)
        let text = String(decoding: UnsafeBufferPointer(start: bytes, count: kept), as: UTF8.self)
        self.init(row: row, line: line, text: kept < count ? text + "…" : text)
    }
}

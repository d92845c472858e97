/// Bad input in a data or parameter file: what was expected, and where (file, line, column).
public struct InputError: Error, CustomStringConvertible, Sendable, Equatable {
    public var message: String
    public var file: String?
    public var line: Int?
    public var column: Int?

    public init(_ message: String, file: String? = nil, line: Int? = nil, column: Int? = nil) {
        self.message = message
        self.file = file
        self.line = line
        self.column = column
    }

    /// `file:line:column: message`, with the parts that are known.
    public var description: String {
        var location = ""
        if let file { location += file }
        if let line { location += (location.isEmpty ? "line " : ":") + String(line) }
        if let column { location += ":" + String(column) }
        return location.isEmpty ? message : location + ": " + message
    }
}

/// Finds where a JSON text (RFC 8259) first goes wrong, for error messages: Foundation's
/// decoder only says "The given data was not valid JSON". Called after a decoding failure,
/// never on the way to a result.
enum JSONSyntax {
    /// A syntax error: 1-based line and column (in bytes) and what was expected there.
    struct Problem: Equatable {
        var line: Int
        var column: Int
        var message: String
    }

    /// Deeper nesting than this is reported rather than followed (the check recurses).
    static let maximumDepth = 512

    /// The first syntax error in `bytes`, or nil for well-formed JSON.
    static func firstProblem(_ bytes: [UInt8]) -> Problem? {
        var parser = Parser(bytes: bytes)
        do throws(Problem) {
            parser.skipBlanks()
            try parser.value(depth: 0)
            parser.skipBlanks()
            if parser.position < bytes.count { throw parser.problem("expected the end of the document") }
            return nil
        } catch {
            return error
        }
    }

    private struct Parser {
        let bytes: [UInt8]
        var position = 0

        func problem(_ message: String) -> Problem {
            var line = 1, lineStart = 0
            for i in 0..<min(position, bytes.count) where bytes[i] == UInt8(ascii: "\n") {
                line += 1
                lineStart = i + 1
            }
            let found = position < bytes.count ? "found '\(Self.show(bytes[position]))'" : "found the end of the file"
            return Problem(line: line, column: position - lineStart + 1, message: "\(message), \(found)")
        }

        static func show(_ byte: UInt8) -> String {
            byte >= 0x20 && byte < 0x7F ? String(UnicodeScalar(byte)) : UTF8Validation.hex(byte)
        }

        var current: UInt8? { position < bytes.count ? bytes[position] : nil }

        mutating func skipBlanks() {
            while let byte = current, byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D { position += 1 }
        }

        mutating func expect(_ byte: UInt8, _ what: String) throws(Problem) {
            skipBlanks()
            guard current == byte else { throw problem("expected \(what)") }
            position += 1
        }

        mutating func value(depth: Int) throws(Problem) {
            skipBlanks()
            guard depth < JSONSyntax.maximumDepth else { throw problem("nesting deeper than \(JSONSyntax.maximumDepth) levels") }
            switch current {
            case UInt8(ascii: "{"):
                position += 1
                skipBlanks()
                if current == UInt8(ascii: "}") { position += 1; return }
                while true {
                    skipBlanks()
                    guard current == UInt8(ascii: "\"") else { throw problem("expected a key in double quotes") }
                    try string()
                    try expect(UInt8(ascii: ":"), "':' after the key")
                    try value(depth: depth + 1)
                    skipBlanks()
                    if current == UInt8(ascii: ",") { position += 1; continue }
                    try expect(UInt8(ascii: "}"), "',' or '}' after a member")
                    return
                }
            case UInt8(ascii: "["):
                position += 1
                skipBlanks()
                if current == UInt8(ascii: "]") { position += 1; return }
                while true {
                    try value(depth: depth + 1)
                    skipBlanks()
                    if current == UInt8(ascii: ",") { position += 1; continue }
                    try expect(UInt8(ascii: "]"), "',' or ']' after an element")
                    return
                }
            case UInt8(ascii: "\""):
                try string()
            case UInt8(ascii: "t"): try word("true")
            case UInt8(ascii: "f"): try word("false")
            case UInt8(ascii: "n"): try word("null")
            case let byte? where byte == UInt8(ascii: "-") || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")):
                try number()
            default:
                throw problem("expected a value (object, array, string, number, true, false or null)")
            }
        }

        mutating func word(_ text: StaticString) throws(Problem) {
            let start = position
            for k in 0..<text.utf8CodeUnitCount {
                guard current == text.utf8Start[k] else {
                    position = start
                    throw problem("expected a value (object, array, string, number, true, false or null)")
                }
                position += 1
            }
        }

        mutating func string() throws(Problem) {
            position += 1   // the opening quote
            while let byte = current {
                if byte == UInt8(ascii: "\"") { position += 1; return }
                if byte < 0x20 { throw problem("expected '\"' to close the string (control characters must be escaped)") }
                if byte == UInt8(ascii: "\\") {
                    position += 1
                    guard let escaped = current, Array("\"\\/bfnrtu".utf8).contains(escaped) else {
                        throw problem("expected an escape (\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)")
                    }
                    if escaped == UInt8(ascii: "u") {
                        for _ in 0..<4 {
                            position += 1
                            guard let hex = current, (hex >= 0x30 && hex <= 0x39) || (hex | 0x20 >= 0x61 && hex | 0x20 <= 0x66) else {
                                throw problem("expected 4 hexadecimal digits after \\u")
                            }
                        }
                    }
                }
                position += 1
            }
            throw problem("expected '\"' to close the string")
        }

        mutating func number() throws(Problem) {
            func digits() -> Int {
                let start = position
                while let byte = current, byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") { position += 1 }
                return position - start
            }
            if current == UInt8(ascii: "-") { position += 1 }
            if current == UInt8(ascii: "0") {
                position += 1
            } else if digits() == 0 {
                throw problem("expected a digit")
            }
            if current == UInt8(ascii: ".") {
                position += 1
                if digits() == 0 { throw problem("expected a digit after the decimal point") }
            }
            if let byte = current, byte | 0x20 == UInt8(ascii: "e") {
                position += 1
                if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { position += 1 }
                if digits() == 0 { throw problem("expected a digit in the exponent") }
            }
        }
    }
}

extension JSONSyntax.Problem: Error {}

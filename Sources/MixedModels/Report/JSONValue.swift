/// A JSON document with ordered object keys (so reports read like the reference JSONs) and
/// a writer that refuses non-finite numbers: a NaN never reaches an output file.
public indirect enum JSONValue: Sendable, Equatable {
    case object([(String, JSONValue)])
    case array([JSONValue])
    case number(Double)
    case integer(Int)
    case string(String)
    case bool(Bool)
    case null

    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.object(let x), .object(let y)): return x.map(\.0) == y.map(\.0) && x.map(\.1) == y.map(\.1)
        case (.array(let x), .array(let y)): return x == y
        case (.number(let x), .number(let y)): return x == y
        case (.integer(let x), .integer(let y)): return x == y
        case (.string(let x), .string(let y)): return x == y
        case (.bool(let x), .bool(let y)): return x == y
        case (.null, .null): return true
        default: return false
        }
    }

    /// A number that is not finite, found while writing.
    public struct NonFiniteNumber: Error, CustomStringConvertible {
        public var path: String
        public var description: String { "internal error: non-finite number at \(path); no output written" }
    }

    /// Pretty-printed text (two-space indent), numbers with full round-trip precision.
    public func serialized() throws -> String {
        var out = ""
        try write(into: &out, indent: 0, path: "$")
        out += "\n"
        return out
    }

    private func write(into out: inout String, indent: Int, path: String) throws {
        let pad = String(repeating: "  ", count: indent + 1)
        let closePad = String(repeating: "  ", count: indent)
        switch self {
        case .object(let members):
            if members.isEmpty { out += "{}"; return }
            out += "{\n"
            for (index, (key, value)) in members.enumerated() {
                out += pad + Self.quoted(key) + ": "
                try value.write(into: &out, indent: indent + 1, path: path + "." + key)
                out += index + 1 < members.count ? ",\n" : "\n"
            }
            out += closePad + "}"
        case .array(let items):
            if items.isEmpty { out += "[]"; return }
            let scalar = items.allSatisfy { if case .number = $0 { return true }; if case .integer = $0 { return true }; return false }
            if scalar {
                out += "["
                for (index, item) in items.enumerated() {
                    try item.write(into: &out, indent: indent + 1, path: "\(path)[\(index)]")
                    if index + 1 < items.count { out += ", " }
                }
                out += "]"
                return
            }
            out += "[\n"
            for (index, item) in items.enumerated() {
                out += pad
                try item.write(into: &out, indent: indent + 1, path: "\(path)[\(index)]")
                out += index + 1 < items.count ? ",\n" : "\n"
            }
            out += closePad + "]"
        case .number(let x):
            guard x.isFinite else { throw NonFiniteNumber(path: path) }
            out += x == x.rounded() && abs(x) < 1e15 ? String(Int64(x)) : "\(x)"
        case .integer(let x):
            out += String(x)
        case .string(let s):
            out += Self.quoted(s)
        case .bool(let b):
            out += b ? "true" : "false"
        case .null:
            out += "null"
        }
    }

    static func quoted(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}

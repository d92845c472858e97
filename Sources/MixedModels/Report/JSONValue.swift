/// A JSON document with ordered object keys (so reports read like the reference JSONs) and
/// a writer that refuses non-finite numbers: a NaN never reaches an output file.
package indirect enum JSONValue: Sendable, Equatable {
    case object([(String, JSONValue)])
    case array([JSONValue])
    case number(Double)
    case integer(Int)
    case string(String)
    case bool(Bool)
    case null
    /// Already serialized JSON (checked by its producer), written as is: for long arrays of
    /// records, where building a tree of values would cost more than writing the text.
    case raw(String)

    package static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.object(let x), .object(let y)): return x.map(\.0) == y.map(\.0) && x.map(\.1) == y.map(\.1)
        case (.array(let x), .array(let y)): return x == y
        case (.number(let x), .number(let y)): return x == y
        case (.integer(let x), .integer(let y)): return x == y
        case (.string(let x), .string(let y)): return x == y
        case (.bool(let x), .bool(let y)): return x == y
        case (.null, .null): return true
        case (.raw(let x), .raw(let y)): return x == y
        default: return false
        }
    }

    /// A number that is not finite, found while writing.
    package struct NonFiniteNumber: Error, CustomStringConvertible {
        package var path: String
        package var description: String { "internal error: non-finite number at \(path); no output written" }
    }

    /// Pretty-printed text (two-space indent), numbers with full round-trip precision.
    package func serialized() throws -> String {
        var out = ""
        out.reserveCapacity(1 << 16)
        do {
            try write(into: &out, indent: 0)
        } catch var error as NonFiniteNumber {
            error.path = "$" + error.path
            throw error
        }
        out += "\n"
        return out
    }

    /// The path of a non-finite number is assembled only on the way out of an error, so that
    /// writing large reports (a row per random effect) builds no strings it does not print.
    private static let pads = (0..<16).map { String(repeating: "  ", count: $0) }

    private func write(into out: inout String, indent: Int) throws {
        switch self {
        case .object(let members):
            if members.isEmpty { out += "{}"; return }
            out += "{\n"
            for (index, (key, value)) in members.enumerated() {
                out += Self.pad(indent + 1)
                Self.appendQuoted(key, to: &out)
                out += ": "
                do {
                    try value.write(into: &out, indent: indent + 1)
                } catch var error as NonFiniteNumber {
                    error.path = "." + key + error.path
                    throw error
                }
                out += index + 1 < members.count ? ",\n" : "\n"
            }
            out += Self.pad(indent)
            out += "}"
        case .array(let items):
            if items.isEmpty { out += "[]"; return }
            let scalar = items.allSatisfy { if case .number = $0 { return true }; if case .integer = $0 { return true }; return false }
            out += scalar ? "[" : "[\n"
            for (index, item) in items.enumerated() {
                if !scalar { out += Self.pad(indent + 1) }
                do {
                    try item.write(into: &out, indent: indent + 1)
                } catch var error as NonFiniteNumber {
                    error.path = "[\(index)]" + error.path
                    throw error
                }
                if scalar {
                    if index + 1 < items.count { out += ", " }
                } else {
                    out += index + 1 < items.count ? ",\n" : "\n"
                }
            }
            if !scalar { out += Self.pad(indent) }
            out += "]"
        case .number(let x):
            guard x.isFinite else { throw NonFiniteNumber(path: "") }
            if x == x.rounded() && abs(x) < 1e15 { out += String(Int64(x)) } else { x.write(to: &out) }
        case .integer(let x):
            out += String(x)
        case .string(let s):
            Self.appendQuoted(s, to: &out)
        case .bool(let b):
            out += b ? "true" : "false"
        case .null:
            out += "null"
        case .raw(let text):
            out += text
        }
    }

    private static func pad(_ level: Int) -> String {
        level < pads.count ? pads[level] : String(repeating: "  ", count: level)
    }

    private static func appendQuoted(_ s: String, to out: inout String) {
        if s.utf8.allSatisfy({ $0 >= 0x20 && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }) {
            out += "\""
            out += s
            out += "\""
        } else {
            out += quoted(s)
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

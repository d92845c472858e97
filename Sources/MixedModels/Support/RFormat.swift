import Foundation

/// Numbers written as R writes them.
enum RFormat {
    /// `as.character(x)` for a double: up to 15 significant digits, no trailing zeros
    /// (`308`, `1.5`, `1e-20`).
    static func number(_ x: Double) -> String {
        if x == x.rounded(), abs(x) < 1e15 { return String(Int64(x)) }
        var text = String(format: "%.15g", x)
        if text.contains("e") {
            // R writes 1e-20 rather than 1e-20 with padded exponent digits such as 1e-020.
            let parts = text.split(separator: "e")
            let exponent = Int(parts[1])!
            text = String(parts[0]) + "e" + (exponent < 0 ? "-" : "+") + String(format: "%02d", abs(exponent))
        }
        return text
    }
}

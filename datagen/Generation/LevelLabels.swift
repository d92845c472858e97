/// The labels of a factor's levels, in code order: explicit, or generated as a prefix and the
/// 1-based level number zero-padded to the width of the largest (`u00001` … `u20000`). R's
/// collation sorts such labels numerically, so code order is R's level order and lme4's
/// output lines up with the truth.
struct LevelLabels {
    let explicit: [String]?
    let prefix: String
    /// Digits of the generated number.
    let width: Int
    let count: Int

    init(_ factor: DataSpec.FactorSpec) {
        explicit = factor.labels
        prefix = factor.labelPrefix
        width = String(factor.levels).count
        count = factor.levels
    }

    /// Longest label in bytes.
    var maxLength: Int {
        explicit.map { $0.map(\.utf8.count).max() ?? 0 } ?? prefix.utf8.count + width
    }

    func label(_ code: Int) -> String {
        if let explicit { return explicit[code] }
        let digits = String(code + 1)
        return prefix + String(repeating: "0", count: width - digits.count) + digits
    }

    /// The code of `label`, or nil.
    func code(of label: String) -> Int? {
        if let explicit { return explicit.firstIndex(of: label) }
        guard label.hasPrefix(prefix) else { return nil }
        let digits = label.dropFirst(prefix.count)
        guard digits.count == width, let number = Int(digits), (1...count).contains(number) else { return nil }
        return number - 1
    }

    /// All labels, in code order.
    var all: [String] { (0..<count).map(label) }
}

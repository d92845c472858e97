/// The `--ranef` table: one row per grouping factor, effect and level, with the conditional
/// mode and its conditional standard deviation.
extension FitResult {
    /// - Throws: ``LMMError/numerical(_:)`` naming the first non-finite value; nothing is
    ///   written with a NaN.
    public func ranefCSV() throws -> String {
        var out = "factor,term,level,value,condSD\n"
        for row in randomEffects {
            guard row.value.isFinite, row.condSD.isFinite else {
                throw LMMError.numerical(JSONValue.NonFiniteNumber(path: "ranef \(row.factor) \(row.term) \(row.level)").description)
            }
            out += [CSVField.quoted(row.factor), CSVField.quoted(row.term), CSVField.quoted(row.level),
                    "\(row.value)", "\(row.condSD)"].joined(separator: ",") + "\n"
        }
        return out
    }
}

/// CSV quoting for text fields.
enum CSVField {
    /// The field as is, or in double quotes (inner quotes doubled) when it needs them.
    static func quoted(_ text: String) -> String {
        if text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) || text.isEmpty {
            return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }
        return text
    }
}

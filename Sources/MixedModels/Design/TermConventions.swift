/// lme4's conventions for random-effects terms, shared by the in-memory ``ModelFrame`` and the
/// streamed model of the Adam path, so both report terms in the same order under the same names.
enum TermConventions {
    /// lme4's `mkReTrms` order, as a permutation (new position → formula position): when any
    /// term has more levels than the one before it, decreasing order of levels via
    /// `rev(order(nl))` (which reverses ties); otherwise formula order.
    static func order(levelCounts counts: [Int]) -> [Int] {
        guard zip(counts, counts.dropFirst()).contains(where: { $0 < $1 }) else { return Array(counts.indices) }
        let ascending = counts.indices.sorted { counts[$0] != counts[$1] ? counts[$0] < counts[$1] : $0 < $1 }
        return ascending.reversed()
    }

    /// lme4's group label of each term: the grouping factor's name, made unique with `.1`, `.2`
    /// for later terms of the same factor (R's `make.unique`).
    static func labels(groupingNames: [String]) -> [String] {
        var seen: [String: Int] = [:]
        return groupingNames.map { name in
            if let count = seen[name] {
                seen[name] = count + 1
                return "\(name).\(count)"
            }
            seen[name] = 1
            return name
        }
    }
}

import ArgumentParser
import MixedModels

/// `--method`: the methods a fit can be asked for by name (``FitMethod/given`` comes from
/// `--variances` instead).
extension FitMethod: ExpressibleByArgument {
    static let commandLineChoices: [FitMethod] = FitMethod.allCases.filter { $0 != .given }

    public init?(argument: String) {
        guard let method = Self.commandLineChoices.first(where: { $0.name == argument }) else { return nil }
        self = method
    }

    public static var allValueStrings: [String] { commandLineChoices.map(\.name) }

    /// The MacKay form of a MacKay method.
    var mackayForm: MacKayForm? {
        if case .mackay(let form) = self { return form }
        return nil
    }
}

/// `--penalties`: the MacKay forms by which adam learns its penalties, by their short names
/// (`evidence`, `quick`; adam has no EM form).
extension MacKayForm: ExpressibleByArgument {
    static let penaltyChoices: [MacKayForm] = [.evidence, .quick]

    public init?(argument: String) {
        guard let form = Self.penaltyChoices.first(where: { $0.shortName == argument }) else { return nil }
        self = form
    }

    public static var allValueStrings: [String] { penaltyChoices.map(\.shortName) }
}

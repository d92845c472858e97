/// How a fit's variance components were obtained. Its ``name`` is the `algorithm` value of the
/// JSON report (`exact`, `given`, `mackay-quick`, `mackay`, `em`, `adam`).
public enum FitMethod: Sendable, Hashable {
    /// REML or ML optimization of the profiled criterion (``LinearMixedModel/fit(criterion:start:options:)``).
    case exact
    /// Every variance component given (``LinearMixedModel/fit(given:criterion:)``).
    case given
    /// A MacKay loop (``LinearMixedModel/fit(mackay:)``).
    case mackay(MacKayForm)
    /// Streaming minibatch Adam (``StreamingMixedModel/fit(adam:)``).
    case adam
    /// Matrix-free REML/ML: conjugate gradients and stochastic traces (``IterativeMixedModel/fit(_:)``).
    case iterative

    /// Every method, in the order of the command line's `--method`.
    public static let allCases: [FitMethod] = [.exact, .given] + MacKayForm.allCases.map(FitMethod.mackay) + [.adam, .iterative]

    /// The name in reports: the JSON `algorithm` value.
    public var name: String {
        switch self {
        case .exact: "exact"
        case .given: "given"
        case .mackay(let form): form.rawValue
        case .adam: "adam"
        case .iterative: "iterative"
        }
    }

    /// The method of a report's `algorithm` value; nil for an unknown name.
    public init?(name: String) {
        guard let method = Self.allCases.first(where: { $0.name == name }) else { return nil }
        self = method
    }
}

extension FitMethod: CustomStringConvertible {
    public var description: String { name }
}

extension FitMethod: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let name = try container.decode(String.self)
        guard let method = FitMethod(name: name) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "unknown algorithm '\(name)'; expected one of "
                    + Self.allCases.map(\.name).joined(separator: ", "))
        }
        self = method
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(name)
    }
}

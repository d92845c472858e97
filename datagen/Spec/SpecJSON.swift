import Foundation
import MixedModels

/// A parsed JSON value, keeping integers exact and booleans apart from numbers, for reading
/// spec files with precise messages (`random[1].sd[0]: ...`).
enum SpecJSON: Decodable, Equatable {
    case null
    case bool(Bool)
    case integer(Int64)
    case unsigned(UInt64)
    case number(Double)
    case string(String)
    case array([SpecJSON])
    case object([String: SpecJSON])

    init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let value = try? container.decode(Bool.self) { self = .bool(value) }
        else if let value = try? container.decode(Int64.self) { self = .integer(value) }
        else if let value = try? container.decode(UInt64.self) { self = .unsigned(value) }
        else if let value = try? container.decode(Double.self) { self = .number(value) }
        else if let value = try? container.decode(String.self) { self = .string(value) }
        else if let value = try? container.decode([SpecJSON].self) { self = .array(value) }
        else { self = .object(try container.decode([String: SpecJSON].self)) }
    }

    var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .integer, .unsigned, .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

/// Reads typed fields from a JSON object, naming the path of whatever is wrong.
struct SpecReader {
    let source: String

    func fail(_ path: String, _ message: String) -> InputError {
        InputError("\(path): \(message)", file: source)
    }

    func object(_ value: SpecJSON, _ path: String, allowed: [String]) throws -> [String: SpecJSON] {
        guard case .object(let members) = value else { throw fail(path, "expected an object, found \(value.typeName)") }
        if let unknown = members.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw fail(path, "unknown key '\(unknown)'; expected \(allowed.joined(separator: ", "))")
        }
        return members
    }

    func number(_ value: SpecJSON, _ path: String) throws -> Double {
        switch value {
        case .integer(let x): return Double(x)
        case .unsigned(let x): return Double(x)
        case .number(let x): return x
        default: throw fail(path, "expected a number, found \(value.typeName)")
        }
    }

    func integer(_ value: SpecJSON, _ path: String) throws -> Int {
        switch value {
        case .integer(let x): return Int(x)
        case .number(let x) where x == x.rounded() && abs(x) < 0x1p62: return Int(x)
        default: throw fail(path, "expected an integer, found \(value.typeName == "a number" ? "\(value)" : value.typeName)")
        }
    }

    func unsigned(_ value: SpecJSON, _ path: String) throws -> UInt64 {
        switch value {
        case .integer(let x) where x >= 0: return UInt64(x)
        case .unsigned(let x): return x
        default: throw fail(path, "expected a non-negative integer")
        }
    }

    func string(_ value: SpecJSON, _ path: String) throws -> String {
        guard case .string(let text) = value else { throw fail(path, "expected a string, found \(value.typeName)") }
        return text
    }

    func array(_ value: SpecJSON, _ path: String) throws -> [SpecJSON] {
        guard case .array(let items) = value else { throw fail(path, "expected an array, found \(value.typeName)") }
        return items
    }

    func numbers(_ value: SpecJSON, _ path: String) throws -> [Double] {
        try array(value, path).enumerated().map { try number($1, "\(path)[\($0)]") }
    }

    func matrix(_ value: SpecJSON, _ path: String) throws -> [[Double]] {
        try array(value, path).enumerated().map { try numbers($1, "\(path)[\($0)]") }
    }
}

extension DataSpec {
    /// Parses a spec file:
    ///
    ///     {
    ///       "rows": 200000, "seed": 1, "response": "y", "intercept": 1.0, "sigma": 1.0,
    ///       "covariates": [{"name": "x", "coefficient": 0.5, "mean": 0, "sd": 1}],
    ///       "factors": [
    ///         {"name": "user", "levels": 20000, "distribution": "zipf", "exponent": 0.8, "prefix": "u"},
    ///         {"name": "item", "levels": 2000},
    ///         {"name": "service", "labels": ["no", "yes"], "probabilities": [0.6, 0.4],
    ///          "coefficients": {"yes": -0.07}},
    ///         {"name": "class", "levels": 400, "parent": "school"}
    ///       ],
    ///       "random": [
    ///         {"group": "user", "effects": ["(Intercept)", "x"], "sd": [0.5, 0.2], "correlation": [[1, 0], [0, 1]]},
    ///         {"group": "item", "sd": 0.3},
    ///         {"group": "dept:service", "covariance": [[0.07]]}
    ///       ]
    ///     }
    ///
    /// `rows` may be left to `--rows`; `seed` defaults to 1, `intercept` to 0, `effects` to
    /// `["(Intercept)"]`, a factor's `distribution` to `uniform`. The result is not yet
    /// validated (see ``validate()``).
    static func parse(_ data: Data, source: String) throws -> DataSpec {
        let json: SpecJSON
        do {
            json = try JSONDecoder().decode(SpecJSON.self, from: data)
        } catch {
            throw InputError("not valid JSON: \(Self.describe(error))", file: source)
        }
        let reader = SpecReader(source: source)
        let top = try reader.object(json, "spec", allowed: [
            "rows", "seed", "response", "intercept", "covariates", "factors", "random", "sigma", "rowsPerChunk",
        ])
        guard let sigma = top["sigma"] else { throw reader.fail("spec", "missing \"sigma\", the residual standard deviation") }
        var spec = DataSpec(
            rows: try top["rows"].map { try reader.integer($0, "rows") } ?? 0,
            seed: try top["seed"].map { try reader.unsigned($0, "seed") } ?? 1,
            intercept: try top["intercept"].map { try reader.number($0, "intercept") } ?? 0,
            covariates: [], factors: [], random: [],
            sigma: try reader.number(sigma, "sigma"))
        if let response = top["response"] { spec.response = try reader.string(response, "response") }
        if let chunk = top["rowsPerChunk"] { spec.rowsPerChunk = try reader.integer(chunk, "rowsPerChunk") }

        let covariatesItems = try top["covariates"].map { try reader.array($0, "covariates") } ?? []
        for (i, item) in covariatesItems.enumerated() {
            let path = "covariates[\(i)]"
            let members = try reader.object(item, path, allowed: ["name", "coefficient", "mean", "sd"])
            guard let name = members["name"] else { throw reader.fail(path, "missing \"name\"") }
            guard let coefficient = members["coefficient"] else { throw reader.fail(path, "missing \"coefficient\"") }
            spec.covariates.append(Covariate(
                name: try reader.string(name, path + ".name"),
                coefficient: try reader.number(coefficient, path + ".coefficient"),
                mean: try members["mean"].map { try reader.number($0, path + ".mean") } ?? 0,
                sd: try members["sd"].map { try reader.number($0, path + ".sd") } ?? 1))
        }

        let factorsItems = try top["factors"].map { try reader.array($0, "factors") } ?? []
        for (i, item) in factorsItems.enumerated() {
            spec.factors.append(try parseFactor(item, path: "factors[\(i)]", reader: reader))
        }

        let randomItems = try top["random"].map { try reader.array($0, "random") } ?? []
        for (i, item) in randomItems.enumerated() {
            spec.random.append(try parseRandom(item, path: "random[\(i)]", reader: reader))
        }
        return spec
    }

    private static func parseFactor(_ item: SpecJSON, path: String, reader: SpecReader) throws -> FactorSpec {
        let members = try reader.object(item, path, allowed: [
            "name", "levels", "labels", "prefix", "distribution", "exponent", "probabilities", "parent", "coefficients",
        ])
        guard let name = members["name"] else { throw reader.fail(path, "missing \"name\"") }
        let labels = try members["labels"].map { value in
            try reader.array(value, path + ".labels").enumerated().map { try reader.string($1, "\(path).labels[\($0)]") }
        }
        let levels: Int
        if let value = members["levels"] {
            levels = try reader.integer(value, path + ".levels")
            if let labels, labels.count != levels {
                throw reader.fail(path, "\"levels\" is \(levels) but \(labels.count) labels are given")
            }
        } else if let labels {
            levels = labels.count
        } else {
            throw reader.fail(path, "missing \"levels\" (a count) or \"labels\"")
        }
        var factor = FactorSpec(name: try reader.string(name, path + ".name"), levels: levels, labels: labels)
        factor.prefix = try members["prefix"].map { try reader.string($0, path + ".prefix") }
        factor.parent = try members["parent"].map { try reader.string($0, path + ".parent") }

        let kind = try members["distribution"].map { try reader.string($0, path + ".distribution") }
        switch kind {
        case nil where members["probabilities"] != nil, "probabilities":
            guard let value = members["probabilities"] else { throw reader.fail(path, "missing \"probabilities\"") }
            factor.distribution = .probabilities(try reader.numbers(value, path + ".probabilities"))
        case nil, "uniform":
            factor.distribution = .uniform
        case "zipf":
            guard let value = members["exponent"] else { throw reader.fail(path, "a zipf distribution needs an \"exponent\"") }
            factor.distribution = .zipf(exponent: try reader.number(value, path + ".exponent"))
        case let other?:
            throw reader.fail(path + ".distribution", "unknown distribution '\(other)'; expected uniform, zipf or probabilities")
        }
        if members["exponent"] != nil {
            if case .zipf = factor.distribution {} else {
                throw reader.fail(path, "\"exponent\" is only for \"distribution\": \"zipf\"")
            }
        }
        if members["probabilities"] != nil {
            if case .probabilities = factor.distribution {} else {
                throw reader.fail(path, "\"probabilities\" is only for \"distribution\": \"probabilities\"")
            }
        }
        if let value = members["coefficients"] {
            guard case .object(let entries) = value else { throw reader.fail(path + ".coefficients", "expected an object of level: coefficient") }
            var coefficients: [String: Double] = [:]
            for (label, number) in entries { coefficients[label] = try reader.number(number, "\(path).coefficients.\(label)") }
            factor.coefficients = coefficients
        }
        return factor
    }

    private static func parseRandom(_ item: SpecJSON, path: String, reader: SpecReader) throws -> RandomSpec {
        let members = try reader.object(item, path, allowed: ["group", "effects", "sd", "correlation", "covariance"])
        guard let group = members["group"] else { throw reader.fail(path, "missing \"group\"") }
        let effects = try members["effects"].map { value in
            try reader.array(value, path + ".effects").enumerated().map { try reader.string($1, "\(path).effects[\($0)]") }
        } ?? ["(Intercept)"]
        let scale: Scale
        switch (members["sd"], members["covariance"]) {
        case (let sd?, nil):
            let sds: [Double]
            if case .array = sd { sds = try reader.numbers(sd, path + ".sd") } else { sds = [try reader.number(sd, path + ".sd")] }
            scale = .sd(sds, correlation: try members["correlation"].map { try reader.matrix($0, path + ".correlation") })
        case (nil, let covariance?):
            guard members["correlation"] == nil else { throw reader.fail(path, "give \"correlation\" with \"sd\", not with \"covariance\"") }
            scale = .covariance(try reader.matrix(covariance, path + ".covariance"))
        case (nil, nil):
            throw reader.fail(path, "missing \"sd\" (with optional \"correlation\") or \"covariance\"")
        case (_?, _?):
            throw reader.fail(path, "give either \"sd\" or \"covariance\", not both")
        }
        return RandomSpec(group: try reader.string(group, path + ".group"), effects: effects, scale: scale)
    }

    private static func describe(_ error: Error) -> String {
        if case DecodingError.dataCorrupted(let context) = error {
            return (context.underlyingError as NSError?)?.userInfo[NSDebugDescriptionErrorKey] as? String ?? context.debugDescription
        }
        return "\(error)"
    }
}

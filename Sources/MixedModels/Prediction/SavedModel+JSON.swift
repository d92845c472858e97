import Foundation

/// The model file: JSON, read back with checks so that a corrupt, truncated or newer file
/// stops with a message rather than a wrong prediction.
extension SavedModel {
    /// The document written by `lmm fit … --save` (keys documented in README).
    public var json: JSONValue {
        .object([
            ("format", .string(Self.formatName)),
            ("version", .integer(Self.formatVersion)),
            ("formula", .string(formula)),
            ("criterion", .string(criterion.rawValue)),
            ("algorithm", .string(algorithm)),
            ("nobs", .integer(nobs)),
            ("data", .object([
                ("file", .string(data.file)), ("rows", .integer(data.rows)),
                ("bytes", .integer(data.bytes)), ("hash", .string(data.hash)),
            ])),
            ("columns", .array(columns.map { column in
                var members: [(String, JSONValue)] = [
                    ("name", .string(column.name)),
                    ("roles", .array(column.roles.map { .string($0.rawValue) })),
                    ("type", .string(column.isCategorical ? "categorical" : "numeric")),
                ]
                if let levels = column.levels { members.append(("levels", .array(levels.map(JSONValue.string)))) }
                if let contrasts = column.contrasts { members.append(("contrasts", .string(contrasts))) }
                return .object(members)
            })),
            ("fixef", .object([
                ("names", .array(fixedEffectNames.map(JSONValue.string))),
                ("values", .array(beta.map(JSONValue.number))),
                ("dropped", .array(droppedFixedEffects.map(JSONValue.string))),
            ])),
            ("theta", .array(theta.map(JSONValue.number))),
            ("sigma", .number(sigma)),
            ("ranef", .array(terms.map { term in
                .object([
                    ("formula_term", .integer(term.formulaIndex)),
                    ("group", .string(term.groupingName)),
                    ("effects", .array(term.effectNames.map(JSONValue.string))),
                    ("levels", .array(term.levels.map(JSONValue.string))),
                    ("modes", .array(term.modes.map(JSONValue.number))),
                    ("condSD", .array(term.conditionalSD.map(JSONValue.number))),
                ])
            })),
        ])
    }

    /// Reads the model file at `path`.
    /// - Throws: ``InputError`` naming the file (and the key) when it cannot be read, is not
    ///   JSON, is not a model file, comes from a newer format version, or is inconsistent.
    public static func load(path: String) throws -> SavedModel {
        let name = FileIO.fileName(path)
        guard let bytes = FileManager.default.contents(atPath: path) else {
            throw InputError("cannot read the model file", file: name)
        }
        return try decode(bytes, name: name)
    }

    /// Parses a model file's bytes; `name` is used in messages.
    public static func decode(_ bytes: Data, name: String) throws -> SavedModel {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: bytes)
        } catch {
            throw InputError("not a model file: the JSON is malformed or truncated", file: name)
        }
        let root = Reader(value: object, path: "", file: name)
        guard let format = try? root.string("format"), format == formatName else {
            throw InputError("not an lmm model file (expected \"format\": \"\(formatName)\"; write one with lmm fit … --save)", file: name)
        }
        let version = try root.int("version")
        if version > formatVersion {
            throw InputError("model file format version \(version) is newer than this lmm reads (\(formatVersion)); use a newer lmm", file: name)
        }
        if version < 1 { throw InputError("invalid model file format version \(version)", file: name) }

        guard let criterion = Criterion(rawValue: try root.string("criterion")) else {
            throw root.error("criterion", "expected \"REML\" or \"ML\"")
        }
        let data = try root.object("data")
        let fixef = try root.object("fixef")
        var model = SavedModel(
            formula: try root.string("formula"), criterion: criterion, algorithm: try root.string("algorithm"),
            nobs: try root.int("nobs"),
            data: DataFingerprint(file: try data.string("file"), rows: try data.int("rows"),
                                  bytes: try data.int("bytes"), hash: try data.string("hash")),
            columns: [], fixedEffectNames: try fixef.strings("names"), beta: try fixef.numbers("values"),
            droppedFixedEffects: try fixef.strings("dropped"),
            theta: try root.numbers("theta"), sigma: try root.number("sigma"), terms: [])
        for (index, column) in try root.objects("columns").enumerated() {
            let roles = try column.strings("roles").map { text -> Column.Role in
                guard let role = Column.Role(rawValue: text) else {
                    throw column.error("roles", "unknown role \"\(text)\"")
                }
                return role
            }
            let type = try column.string("type")
            guard type == "numeric" || type == "categorical" else {
                throw column.error("type", "expected \"numeric\" or \"categorical\" (column \(index + 1))")
            }
            model.columns.append(Column(name: try column.string("name"), roles: roles, isCategorical: type == "categorical",
                                        levels: column.has("levels") ? try column.strings("levels") : nil,
                                        contrasts: column.has("contrasts") ? try column.string("contrasts") : nil))
        }
        for term in try root.objects("ranef") {
            model.terms.append(Term(formulaIndex: try term.int("formula_term"), groupingName: try term.string("group"),
                                    effectNames: try term.strings("effects"), levels: try term.strings("levels"),
                                    modes: try term.numbers("modes"), conditionalSD: try term.numbers("condSD")))
        }
        try model.check(file: name)
        return model
    }

    /// The consistency a corrupt file breaks: sizes, finite numbers, the formula's terms.
    private func check(file: String) throws {
        func fail(_ message: String) -> InputError { InputError("inconsistent model file: \(message)", file: file) }
        let parsed: Formula
        do { parsed = try Formula.parse(formula) } catch { throw fail("its formula does not parse: \(error)") }
        if fixedEffectNames.count != beta.count { throw fail("\(fixedEffectNames.count) fixed-effect names for \(beta.count) values") }
        if !(beta + theta + [sigma]).allSatisfy(\.isFinite) || !(sigma > 0) { throw fail("a non-finite β, θ or σ") }
        if terms.count != parsed.random.count { throw fail("\(terms.count) random terms for the formula's \(parsed.random.count)") }
        for contrasts in columns.compactMap(\.contrasts) where contrasts != "treatment" {
            throw fail("unsupported contrasts \"\(contrasts)\" (only treatment)")
        }
        let design = try PredictionDesign(formula: parsed, columns: columns)
        let full = Set(design.fixedNames)
        for name in fixedEffectNames + droppedFixedEffects where !full.contains(name) {
            throw fail("fixed effect '\(name)' is not a column of the formula's model matrix")
        }
        var seen = Set<Int>()
        for term in terms {
            guard parsed.random.indices.contains(term.formulaIndex), seen.insert(term.formulaIndex).inserted else {
                throw fail("random term '\(term.groupingName)' refers to no (or an already used) term of the formula")
            }
            if design.effectNames(ofTerm: term.formulaIndex) != term.effectNames
                || parsed.random[term.formulaIndex].groupingName != term.groupingName {
                throw fail("random term '\(term.groupingName)' does not match the formula's")
            }
            let size = term.effectCount * term.levels.count
            if term.modes.count != size || term.conditionalSD.count != size {
                throw fail("random term '\(term.groupingName)' has \(term.modes.count) modes for \(term.levels.count) levels × \(term.effectCount) effects")
            }
            if !term.modes.allSatisfy(\.isFinite) { throw fail("a non-finite conditional mode in '\(term.groupingName)'") }
        }
    }
}

/// Typed access to a parsed JSON object, with errors naming the key.
private struct Reader {
    let value: Any
    let path: String
    let file: String

    private var dictionary: [String: Any] { value as? [String: Any] ?? [:] }

    func error(_ key: String, _ expected: String) -> InputError {
        InputError("invalid model file at \(path.isEmpty ? "" : path + ".")\(key): \(expected)", file: file)
    }

    func has(_ key: String) -> Bool { dictionary[key] != nil }

    private func field(_ key: String) throws -> Any {
        guard let value = dictionary[key] else { throw error(key, "missing") }
        return value
    }

    func string(_ key: String) throws -> String {
        guard let text = try field(key) as? String else { throw error(key, "expected a string") }
        return text
    }

    func number(_ key: String) throws -> Double {
        guard let number = try field(key) as? NSNumber else { throw error(key, "expected a number") }
        return number.doubleValue
    }

    func int(_ key: String) throws -> Int {
        let x = try number(key)
        guard x == x.rounded(), abs(x) < 1e15 else { throw error(key, "expected an integer") }
        return Int(x)
    }

    func strings(_ key: String) throws -> [String] {
        guard let list = try field(key) as? [Any], let texts = list as? [String] else { throw error(key, "expected a list of strings") }
        return texts
    }

    func numbers(_ key: String) throws -> [Double] {
        guard let list = try field(key) as? [Any] else { throw error(key, "expected a list of numbers") }
        return try list.map { item in
            guard let number = item as? NSNumber else { throw error(key, "expected a list of numbers") }
            return number.doubleValue
        }
    }

    func object(_ key: String) throws -> Reader {
        guard let object = try field(key) as? [String: Any] else { throw error(key, "expected an object") }
        return Reader(value: object, path: path.isEmpty ? key : path + "." + key, file: file)
    }

    func objects(_ key: String) throws -> [Reader] {
        guard let list = try field(key) as? [Any] else { throw error(key, "expected a list of objects") }
        return try list.enumerated().map { index, item in
            guard let object = item as? [String: Any] else { throw error(key, "expected a list of objects") }
            return Reader(value: object, path: (path.isEmpty ? key : path + "." + key) + "[\(index)]", file: file)
        }
    }
}

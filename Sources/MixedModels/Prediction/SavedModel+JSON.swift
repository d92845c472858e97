import Foundation

/// The model file: JSON, read back with checks so that a corrupt, truncated or newer file
/// stops with a message rather than a wrong prediction.
extension SavedModel {
    /// The document written by `lmm fit … --save` (keys documented in README).
    package var json: JSONValue {
        var fixef: [(String, JSONValue)] = [
            ("names", .array(fixedEffectNames.map(JSONValue.string))),
            ("values", .array(beta.map(JSONValue.number))),
            ("dropped", .array(droppedFixedEffects.map(JSONValue.string))),
        ]
        if let V = fixedEffectCovariance {
            let p = beta.count
            fixef.append(("vcov", .array((0..<p).map { r in .array((0..<p).map { s in .number(V[r + s * p]) }) })))
        }
        var members: [(String, JSONValue)] = [
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
            ("fixef", .object(fixef)),
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
        ]
        if let weights { members.append(("weights", .string(weights))) }
        members.append(("contrasts", .string(contrasts.rawValue)))
        if let offset { members.append(("offset", .string(offset))) }
        members.append(("transformations", .array(transformations.map { transformation in
            var members: [(String, JSONValue)] = [
                ("variable", .string(transformation.variable)), ("type", .string(transformation.kind.rawValue)),
            ]
            if let levels = transformation.levels { members.append(("levels", .array(levels.map(JSONValue.string)))) }
            if let center = transformation.center { members.append(("center", .number(center))) }
            if let scale = transformation.scale { members.append(("scale", .number(scale))) }
            if let degree = transformation.degree { members.append(("degree", .integer(degree))) }
            if let raw = transformation.raw { members.append(("raw", .bool(raw))) }
            if let alpha = transformation.alpha { members.append(("alpha", .array(alpha.map(JSONValue.number)))) }
            if let norm2 = transformation.norm2 { members.append(("norm2", .array(norm2.map(JSONValue.number)))) }
            return .object(members)
        })))
        if let jointCovariance { members.append(("joint_covariance", .array(jointCovariance.map(JSONValue.number)))) }
        if !approximations.isEmpty {
            members.append(("approximate", .array(approximations.map { item in
                .object([("quantity", .string(item.quantity)), ("how", .string(item.how))])
            })))
        }
        if let levelCovariance {
            members.append(("level_covariance", .object([
                ("bb", .array(levelCovariance.bb.map(JSONValue.number))),
                ("b_beta", .array(levelCovariance.bBeta.map(JSONValue.number))),
            ])))
        }
        return .object(members)
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
        // JSONDecoder reads numbers exactly (round trip of the shortest representation).
        let decoder = JSONDecoder()
        let header: Header
        do {
            header = try decoder.decode(Header.self, from: bytes)
        } catch DecodingError.dataCorrupted {
            throw InputError("not a model file: the JSON is malformed or truncated", file: name)
        } catch {
            throw InputError("not an lmm model file (expected \"format\": \"\(formatName)\"; write one with lmm fit … --save)", file: name)
        }
        guard header.format == formatName, let version = header.version else {
            throw InputError("not an lmm model file (expected \"format\": \"\(formatName)\"; write one with lmm fit … --save)", file: name)
        }
        if version > formatVersion {
            throw InputError("model file format version \(version) is newer than this lmm reads (\(formatVersion)); use a newer lmm", file: name)
        }
        if version < 1 { throw InputError("invalid model file format version \(version)", file: name) }

        let document: Document
        do {
            document = try decoder.decode(Document.self, from: bytes)
        } catch let DecodingError.keyNotFound(key, context) {
            throw InputError("invalid model file: \(Self.path(context.codingPath + [key])) is missing", file: name)
        } catch let DecodingError.typeMismatch(_, context) {
            throw InputError("invalid model file at \(Self.path(context.codingPath)): \(context.debugDescription)", file: name)
        } catch let DecodingError.valueNotFound(_, context) {
            throw InputError("invalid model file at \(Self.path(context.codingPath)): a value is null", file: name)
        } catch let DecodingError.dataCorrupted(context) {
            throw InputError("invalid model file at \(Self.path(context.codingPath)): \(context.debugDescription)", file: name)
        }
        let model = try document.model(file: name)
        if version >= 2 && model.fixedEffectCovariance == nil {
            throw InputError("invalid model file: .fixef.vcov is missing", file: name)
        }
        try model.check(file: name)
        return model
    }

    private static func path(_ keys: [any CodingKey]) -> String {
        keys.map { $0.intValue.map { "[\($0)]" } ?? "." + $0.stringValue }.joined().drop { $0 == "." }.description
    }

    /// The consistency a corrupt file breaks: sizes, finite numbers, the formula's terms.
    private func check(file: String) throws {
        func fail(_ message: String) -> InputError { InputError("inconsistent model file: \(message)", file: file) }
        let parsed: Formula
        do { parsed = try Formula.parse(formula) } catch { throw fail("its formula does not parse: \(error)") }
        if fixedEffectNames.count != beta.count { throw fail("\(fixedEffectNames.count) fixed-effect names for \(beta.count) values") }
        if !(beta + theta + [sigma]).allSatisfy(\.isFinite) || !(sigma > 0) { throw fail("a non-finite β, θ or σ") }
        if terms.count != parsed.random.count { throw fail("\(terms.count) random terms for the formula's \(parsed.random.count)") }
        for coding in columns.compactMap(\.contrasts) where coding != contrasts.rawValue {
            throw fail("contrasts \"\(coding)\" of a column differ from the model's \"\(contrasts.rawValue)\"")
        }
        try checkTransformations(parsed, fail: fail)
        let design = try PredictionDesign(formula: parsed, columns: columns, transformations: transformations,
                                          contrasts: contrasts)
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
        if let V = fixedEffectCovariance, V.count != beta.count * beta.count || !V.allSatisfy(\.isFinite) {
            throw fail("fixef.vcov is not a finite \(beta.count) × \(beta.count) matrix")
        }
        if let blocks = levelCovariance {
            guard terms.count == 1, blocks.k == terms[0].effectCount, blocks.p == beta.count,
                  blocks.bb.count == terms[0].levels.count * blocks.k * blocks.k,
                  blocks.bBeta.count == terms[0].levels.count * blocks.k * blocks.p,
                  (blocks.bb + blocks.bBeta).allSatisfy(\.isFinite) else {
                throw fail("level_covariance does not hold finite k × k and k × p blocks for each level of a model with one random term")
            }
        }
        if let C = jointCovariance {
            let m = randomEffectCount + beta.count
            if C.count != m * (m + 1) / 2 || !C.allSatisfy(\.isFinite) {
                throw fail("joint_covariance is not the finite packed lower triangle of order q + p = \(m)")
            }
        }
    }
}

extension SavedModel {
    /// Every function call the prediction evaluates has a complete record.
    fileprivate func checkTransformations(_ formula: Formula, fail: (String) -> InputError) throws {
        let byLabel = Dictionary(transformations.map { ($0.variable, $0) }, uniquingKeysWith: { first, _ in first })
        for label in formula.modelVariables.union(formula.offsets).sorted() where formula.expressions[label] != nil {
            guard let record = byLabel[label] else { throw fail("the formula's '\(label)' has no entry in transformations") }
            let numbers = [record.center, record.scale].compactMap { $0 } + (record.alpha ?? []) + (record.norm2 ?? [])
            if !numbers.allSatisfy(\.isFinite) { throw fail("a non-finite parameter of '\(label)'") }
            switch record.kind {
            case .factor:
                if (record.levels ?? []).isEmpty { throw fail("factor '\(label)' has no levels") }
            case .scale:
                if let scale = record.scale, !(scale > 0) { throw fail("the scale of '\(label)' is not positive") }
            case .poly:
                guard let degree = record.degree, degree >= 1 else { throw fail("'\(label)' has no degree") }
                if record.raw != true && (record.alpha?.count != degree || record.norm2?.count != degree + 2) {
                    throw fail("'\(label)' needs \(degree) alpha and \(degree + 2) norm2 coefficients")
                }
            case .numeric:
                break
            }
        }
    }
}

/// The keys that say what a file is.
private struct Header: Decodable {
    var format: String?
    var version: Int?
}

/// The model file's keys (see ``SavedModel/json``).
private struct Document: Decodable {
    struct DataKeys: Decodable { var file: String; var rows: Int; var bytes: Int; var hash: String }
    struct ColumnKeys: Decodable { var name: String; var roles: [String]; var type: String; var levels: [String]?; var contrasts: String? }
    struct FixefKeys: Decodable { var names: [String]; var values: [Double]; var dropped: [String]; var vcov: [[Double]]? }
    struct TermKeys: Decodable {
        var formula_term: Int
        var group: String
        var effects: [String]
        var levels: [String]
        var modes: [Double]
        var condSD: [Double]
    }
    var formula: String
    var criterion: String
    var algorithm: String
    var nobs: Int
    var data: DataKeys
    var columns: [ColumnKeys]
    var fixef: FixefKeys
    var theta: [Double]
    var sigma: Double
    var ranef: [TermKeys]
    var joint_covariance: [Double]?
    var weights: String?
    struct TransformationKeys: Decodable {
        var variable: String
        var type: String
        var levels: [String]?
        var center: Double?
        var scale: Double?
        var degree: Int?
        var raw: Bool?
        var alpha: [Double]?
        var norm2: [Double]?
    }
    struct LevelCovarianceKeys: Decodable { var bb: [Double]; var b_beta: [Double] }
    var level_covariance: LevelCovarianceKeys?
    struct ApproximationKeys: Decodable { var quantity: String; var how: String }
    var approximate: [ApproximationKeys]?
    var contrasts: String?
    var offset: String?
    var transformations: [TransformationKeys]?

    func model(file: String) throws -> SavedModel {
        func invalid(_ message: String) -> InputError { InputError("invalid model file: \(message)", file: file) }
        guard let criterion = Criterion(rawValue: criterion) else { throw invalid("criterion must be \"REML\" or \"ML\"") }
        let columns = try columns.map { column -> SavedModel.Column in
            let roles = try column.roles.map { text -> SavedModel.Column.Role in
                guard let role = SavedModel.Column.Role(rawValue: text) else { throw invalid("unknown role \"\(text)\" of column '\(column.name)'") }
                return role
            }
            guard column.type == "numeric" || column.type == "categorical" else {
                throw invalid("type of column '\(column.name)' must be \"numeric\" or \"categorical\"")
            }
            return SavedModel.Column(name: column.name, roles: roles, isCategorical: column.type == "categorical",
                                     levels: column.levels, contrasts: column.contrasts)
        }
        guard let coding = ContrastCoding(rawValue: contrasts ?? "treatment") else {
            throw invalid("contrasts must be \"treatment\", \"sum\" or \"helmert\"")
        }
        let transformations = try (transformations ?? []).map { record -> SavedModel.Transformation in
            guard let kind = SavedModel.Transformation.Kind(rawValue: record.type) else {
                throw invalid("unknown type \"\(record.type)\" of transformation '\(record.variable)'")
            }
            return SavedModel.Transformation(variable: record.variable, kind: kind, levels: record.levels, center: record.center,
                                             scale: record.scale, degree: record.degree, raw: record.raw,
                                             alpha: record.alpha, norm2: record.norm2)
        }
        let p = fixef.values.count
        var vcov: [Double]?
        if let rows = fixef.vcov {
            guard rows.count == p, rows.allSatisfy({ $0.count == p }) else {
                throw invalid("fixef.vcov must be a \(p) × \(p) matrix (one list per row)")
            }
            var V = [Double](repeating: 0, count: p * p)
            for r in 0..<p { for s in 0..<p { V[r + s * p] = rows[r][s] } }
            vcov = V
        }
        return SavedModel(
            formula: formula, criterion: criterion, algorithm: algorithm, nobs: nobs,
            data: DataFingerprint(file: data.file, rows: data.rows, bytes: data.bytes, hash: data.hash),
            columns: columns, fixedEffectNames: fixef.names, beta: fixef.values, droppedFixedEffects: fixef.dropped,
            theta: theta, sigma: sigma,
            terms: ranef.map { term in
                SavedModel.Term(formulaIndex: term.formula_term, groupingName: term.group, effectNames: term.effects,
                                levels: term.levels, modes: term.modes, conditionalSD: term.condSD)
            },
            weights: weights, offset: offset, contrasts: coding, transformations: transformations,
            fixedEffectCovariance: vcov, jointCovariance: joint_covariance,
            levelCovariance: level_covariance.map { blocks in
                LevelCovariance(k: ranef.first?.effects.count ?? 0, p: p, bb: blocks.bb, bBeta: blocks.b_beta)
            },
            approximations: (approximate ?? []).map { SavedModel.Approximation(quantity: $0.quantity, how: $0.how) })
    }
}

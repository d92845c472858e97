import Foundation
@testable import MixedModels

/// The parts of datagen's truth file (datagen/Output/TruthDocument.swift) the tests read: the
/// reference files' key names, with the realized random effects (no condSD).
struct TruthFile: Decodable {
    var formula: String
    var nobs: Int
    var fixef: NamedValues<Double>
    var sigma: Double
    var varcorr: [VarCorrEntry]
    var ngroups: NamedValues<Int>
    var ranef: [Effect]?

    struct Effect: Decodable {
        var factor: String
        var term: String
        var level: String
        var value: Double
    }

    static func load(_ path: String) throws -> TruthFile {
        try JSONDecoder().decode(TruthFile.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
    }
}

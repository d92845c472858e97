import Foundation
import MixedModels

extension FitCommand {
    /// The diagnostic plots of the fit, with their paths in `directory` (created when missing).
    func plotFiles(_ model: LinearMixedModel, _ result: FitResult, directory: String) throws -> [(path: String, svg: String)] {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw InputError("--plot needs a directory, not a file", file: directory) }
        } else {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            } catch {
                throw InputError("cannot create the plot directory: \(error.localizedDescription)", file: directory)
            }
        }
        return try model.diagnosticPlots(result).files.map { ((directory as NSString).appendingPathComponent($0.name), $0.svg) }
    }
}

import Foundation
import MixedModels

/// The directory that `lmm fit --plot DIR` and `lmm plot --out DIR` write their SVG files into.
enum PlotDirectory {
    /// The plots' files with their paths in `directory` (created when missing), as `(text, path)`
    /// pairs for ``OutputFiles``; `option` names the option in messages.
    static func files(_ plots: DiagnosticPlots, in directory: String, option: String) throws -> [(text: String, path: String)] {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw InputError("\(option) needs a directory, not a file", file: directory) }
        } else {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            } catch {
                throw InputError("cannot create the plot directory: \(error.localizedDescription)", file: directory)
            }
        }
        return plots.files.map { ($0.svg, (directory as NSString).appendingPathComponent($0.name)) }
    }
}

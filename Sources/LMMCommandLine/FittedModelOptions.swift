import ArgumentParser
import Foundation
import MixedModels

/// The data, formula and criterion shared by the commands that refit a model (`confint`,
/// `simulate`), spelled as in `lmm fit`.
struct FittedModelOptions: ParsableArguments {
    @Argument(help: "CSV file with a header row.")
    var data: String

    // Unconditional: the next argument is the formula even when it starts with '-'.
    @Option(name: .shortAndLong, parsing: .unconditional, help: "Model formula in lme4 syntax, e.g. 'y ~ 1 + x + (1 + x | g)'.")
    var formula: String

    @Flag(help: "Maximum likelihood instead of REML.")
    var ml = false

    /// Reads the data, builds the model and fits it by REML (or ML) as `lmm fit` does.
    func fit() throws -> (model: LinearMixedModel, fit: FitResult, dataName: String) {
        let parsed = try Formula.parse(formula)
        let table = try CSVReader.read(path: data, for: parsed)
        let model = try LinearMixedModel(formula: parsed, data: table)
        let result = try model.fit(criterion: ml ? .ml : .reml)
        return (model, result, table.source)
    }
}

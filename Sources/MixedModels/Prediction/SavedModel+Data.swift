/// A saved model back on the data it was fitted to: the fingerprint check, and the fitted
/// values and residuals rebuilt from the file's β̂ and b̂ (what `lmm plot MODEL DATA` draws).
extension SavedModel {
    /// Checks that the file at `path` is the one the model was fitted to: same size and same
    /// ``FileHash`` of its bytes (``data``).
    /// - Throws: ``InputError`` "model was fitted to a different data file (fingerprint …)".
    public func checkFingerprint(dataPath path: String) throws {
        let print = try FileHash.fingerprint(path: path)
        guard print.bytes == data.bytes && print.hash == data.hash else {
            throw InputError("the model was fitted to a different data file (fingerprint of \(data.file): \(data.bytes) bytes, hash \(data.hash); this file: \(print.bytes) bytes, hash \(print.hash))",
                             file: FileIO.fileName(path))
        }
    }

    /// The fitted values and residuals of the model on the data file at `path`, which must be
    /// the file it was fitted to (``checkFingerprint(dataPath:)``); the rows are those of the
    /// fit (na.omit, the prior weights of ``weights``, the ``offset`` column and the
    /// ``contrasts``).
    /// - Throws: ``InputError`` for another data file or one that no longer gives the fit's
    ///   rows and columns; the reader's and the model frame's errors.
    public func fittedValues(dataPath path: String) throws -> FittedValues {
        if algorithm == FitMethod.adam.name {
            throw InputError("the residual plots of a --method adam model need a streaming pass over the data, which is not implemented; lmm plot MODEL without the data file draws the conditional modes",
                             file: FileIO.fileName(path))
        }
        try checkFingerprint(dataPath: path)
        let parsed = try Formula.parse(formula)
        let options = ModelOptions(weights: weights, offset: offset, contrasts: contrasts)
        let table = LMMBinaryFormat.isBinaryFile(path: path) ? try LMMBinaryReader(path: path).readAll()
            : try CSVReader.read(path: path, for: parsed, options: options)
        let frame = try ModelFrame(formula: parsed, data: table, options: options)
        guard frame.n == nobs, frame.fixedEffectNames == fixedEffectNames,
              zip(frame.randomTerms, terms).allSatisfy({ $0.levels == $1.levels && $0.effectNames == $1.effectNames }) else {
            throw InputError("the data file gives the model's formula \(frame.n) rows and other columns than the fit's \(nobs); was the model saved by another lmm?",
                             file: FileIO.fileName(path))
        }
        return FittedValues(frame: frame, saved: self)
    }
}

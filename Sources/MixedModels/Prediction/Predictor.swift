/// Predictions of a ``SavedModel`` on new data, streamed: lme4's `predict(m, newdata)`.
///
/// Conditional predictions are `Xβ̂ + Zb̂` (`re.form = NULL`), population-level ones `Xβ̂`
/// (`re.form = NA`). A grouping level the fit never saw contributes 0 to `Zb̂`
/// (`allow.new.levels = TRUE`) or stops the run. The new-data file is read in chunks of rows
/// and each chunk's predictions written before the next is read: memory is one chunk plus
/// the level dictionaries, whatever the number of rows.
public struct PredictionOptions: Sendable {
    /// What a grouping level unseen in the fit does.
    public enum NewLevels: String, Sendable, CaseIterable {
        /// Its terms contribute 0 (lme4's `allow.new.levels = TRUE`).
        case population
        /// Stop with an error naming the column, the level and the line.
        case error
    }
    /// Which interval, if any, is written with each prediction.
    ///
    /// Both are conditional on θ and σ (their estimation error is ignored). With `v = (z, x)`
    /// the row's random-effects and fixed-effects model rows and `C = Cov(b̂ − b, β̂ − β)` the
    /// joint conditional covariance (Henderson's mixed-model equations), the variance of a
    /// conditional prediction's error `x'β̂ + z'b̂ − (x'β + z'b)` is `v'Cv`, where the terms whose
    /// level the fit did not see leave `v` and add their prior variance `zⱼ'Σⱼzⱼ` (`Σⱼ = σ²TⱼTⱼ'`).
    /// A population-level prediction treats every level as unseen: `x'Cov(β̂)x + Σⱼ zⱼ'Σⱼzⱼ`.
    /// A prediction interval adds σ² (a new observation's residual).
    public enum Interval: String, Sendable, CaseIterable {
        case none
        /// For the row's mean `x'β + z'b`.
        case confidence
        /// For a new observation `x'β + z'b + ε`.
        case prediction
    }
    /// `Xβ̂` only (lme4's `re.form = NA`).
    public var populationLevel = false
    public var newLevels = NewLevels.population
    public var interval = Interval.none
    /// Coverage of the interval, in (0, 1).
    public var level = 0.95

    public init(populationLevel: Bool = false, newLevels: NewLevels = .population,
                interval: Interval = .none, level: Double = 0.95) {
        self.populationLevel = populationLevel
        self.newLevels = newLevels
        self.interval = interval
        self.level = level
    }
}

/// What a prediction run did.
public struct PredictionSummary: Sendable, Equatable {
    /// Rows predicted (NA rows included).
    public var rows: Int
    /// Rows with a missing value in a column the prediction needs, written as NA.
    public var missingRows: Int
    /// Rows with at least one grouping level the fit did not see (predicted at the population level for those terms).
    public var newLevelRows: Int
}

public enum Predictor {
    /// Rows per chunk of the design.
    static let chunkRows = 1 << 15

    /// Predicts every row of the CSV file `newData` and writes `row,prediction` (the data row
    /// number, 1-based as R numbers them; NA for a row with a missing value) to `output`,
    /// all-or-nothing; with an interval, `row,prediction,se,lower,upper` (`se` the square root
    /// of the variance described at ``PredictionOptions/Interval``, the bounds
    /// `prediction ± Φ⁻¹(1 − (1 − level)/2)·se`).
    /// - Throws: ``InputError`` for a needed column the file lacks, a value that is not a
    ///   number in a numeric column, a level of a fixed-effect factor the model does not have,
    ///   an unseen grouping level with `newLevels == .error`, or a malformed CSV row — naming
    ///   the file, line and column; for an interval the model file lacks the covariances of;
    ///   no output file is left.
    public static func predict(_ model: SavedModel, newData: String, output: String,
                               options: PredictionOptions = PredictionOptions()) throws -> PredictionSummary {
        let run = try PredictionRun(model: model, newData: newData, options: options)
        let file = try StreamingOutputFile(path: output)
        do {
            try file.write(options.interval == .none ? "row,prediction\n" : "row,prediction,se,lower,upper\n")
            let summary = try run.stream(into: file)
            try file.commit()
            return summary
        } catch {
            file.discard()
            throw error
        }
    }
}

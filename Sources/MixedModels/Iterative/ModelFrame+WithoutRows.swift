extension ModelFrame {
    /// The frame without its rows: y, X's values, the data rows and the random terms' codes and
    /// effects emptied (X and each term keep their number of columns); the formula, n, names,
    /// levels and transformations stay. What an ``IterativeMixedModel`` keeps once its operator
    /// holds its own (sorted) copy of the rows.
    func withoutRows() -> ModelFrame {
        var frame = self
        frame.y = []
        frame.X = Matrix(rows: 0, columns: X.columns, values: [])
        frame.dataRows = []
        for j in frame.randomTerms.indices {
            frame.randomTerms[j].codes = []
            frame.randomTerms[j].effects = Matrix(rows: 0, columns: frame.randomTerms[j].effects.columns, values: [])
        }
        return frame
    }
}

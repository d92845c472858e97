/// Where generated rows go: a CSV file or an `.lmmbin` file. Columns: the response, the
/// numeric covariates, then the factors, each in spec order.
protocol RowSink: AnyObject {
    func write(_ block: RowBlock) throws
    /// Finishes the file and moves it into place.
    func commit() throws
}

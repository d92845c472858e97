/// CSV with a header line, numbers with 9 significant digits (``DecimalFormatter``), factor
/// levels as their labels (no quoting is needed: names and labels are letters and digits).
final class CSVSink: RowSink {
    private let file: OutputFile
    private let capacity = 1 << 22
    private let buffer: UnsafeMutablePointer<UInt8>
    private var used = 0
    private let maxRowLength: Int
    /// Label writers of the factors, as plain values so that the row loop does no reference counting.
    private let labels: UnsafeMutableBufferPointer<LabelFormat>

    init(path: String, plan: GenerationPlan) throws {
        let spec = plan.spec
        file = try OutputFile(path: path)
        buffer = .allocate(capacity: capacity)
        labels = .allocate(capacity: plan.labels.count)
        _ = labels.initialize(from: plan.labels.map(LabelFormat.init))
        maxRowLength = (1 + spec.covariates.count) * (DecimalFormatter.maxLength + 1)
            + plan.labels.reduce(0) { $0 + $1.maxLength + 1 }
        let header = ([spec.response] + spec.covariates.map(\.name) + spec.factors.map(\.name)).joined(separator: ",") + "\n"
        try file.append(header)
    }

    deinit {
        buffer.deallocate()
        labels.forEach { $0.deallocate() }
        labels.deallocate()
    }

    func write(_ block: RowBlock) throws {
        let comma = UInt8(ascii: ","), newline = UInt8(ascii: "\n")
        let y = block.y, n = block.count
        try block.covariates.withUnsafeBufferPointer { covariates in
            try block.codes.withUnsafeBufferPointer { codes in
                try DecimalFormatter.powers.withUnsafeBufferPointer { powerTable in
                    try DecimalFormatter.pairs.withUnsafeBufferPointer { pairTable in
                        let powers = powerTable.baseAddress! + 330, pairs = pairTable.baseAddress!
                        for i in 0..<n {
                            if capacity - used < maxRowLength { try flush() }
                            var p = buffer + used
                            p = DecimalFormatter.write(y[i], to: p, powers: powers, pairs: pairs)
                            for c in covariates.indices {
                                p.pointee = comma
                                p = DecimalFormatter.write(covariates[c][i], to: p + 1, powers: powers, pairs: pairs)
                            }
                            for f in codes.indices {
                                p.pointee = comma
                                p = labels[f].write(Int(codes[f][i]), to: p + 1)
                            }
                            p.pointee = newline
                            used = buffer.distance(to: p) + 1
                        }
                    }
                }
            }
        }
    }

    private func flush() throws {
        try file.append(buffer, count: used)
        used = 0
    }

    func commit() throws {
        try flush()
        try file.commit()
    }
}

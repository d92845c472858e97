import MixedModels

/// An `.lmmbin` file (``LMMBinaryWriter``): the response and covariates as float64 columns,
/// the factors as factor columns whose levels are the labels in code order (R's order).
final class BinarySink: RowSink {
    private let writer: LMMBinaryWriter
    private var batch: [LMMBinaryColumnValues] = []

    init(path: String, plan: GenerationPlan) throws {
        let spec = plan.spec
        let columns = [LMMBinaryColumn.float64(spec.response)] + spec.covariates.map { .float64($0.name) }
            + spec.factors.map { .factor($0.name) }
        writer = try LMMBinaryWriter(path: path, columns: columns, rowsPerChunk: spec.rowsPerChunk)
        for (f, factor) in spec.factors.enumerated() {
            try writer.setLevels(plan.labels[f].all, forColumn: factor.name)
        }
    }

    func write(_ block: RowBlock) throws {
        let n = block.count
        batch.removeAll(keepingCapacity: true)
        batch.append(.float64(Array(UnsafeBufferPointer(start: block.y, count: n))))
        for x in block.covariates { batch.append(.float64(Array(UnsafeBufferPointer(start: x, count: n)))) }
        for codes in block.codes { batch.append(.factor(Array(UnsafeBufferPointer(start: codes, count: n)))) }
        try writer.append(batch)
    }

    func commit() throws {
        try writer.finish()
    }
}

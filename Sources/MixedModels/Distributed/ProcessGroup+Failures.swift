/// An error of one process made the error of all: the processes of a group must leave a
/// collective computation together, or the others wait forever for the one that left.
extension ProcessGroup {
    /// Runs `body` on every process, then agrees (collective): when it failed on any process,
    /// every process throws the error of the lowest such rank, as text; otherwise returns
    /// `body`'s value. Alone, `body`'s own error is thrown unchanged.
    public func agreeing<T>(_ body: () throws -> T) throws -> T {
        var value: T?
        var failure: (any Error)?
        do { value = try body() } catch { failure = error }
        guard size > 1 else {
            if let failure { throw failure }
            return value!
        }
        try agree(failure)
        return value!
    }

    /// Collective: every process passes its own failure or nil; when any is not nil, every
    /// process throws the lowest failing rank's error. Alone, its own error unchanged.
    func agree(_ failure: (any Error)?) throws {
        guard size > 1 else {
            if let failure { throw failure }
            return
        }
        var failed = [Double](repeating: 0, count: size)
        if failure != nil { failed[rank] = 1 }
        allreduceSum(&failed)
        guard let first = failed.firstIndex(where: { $0 != 0 }) else { return }
        try share(failure, from: first)
    }

    /// Collective: process `root`, which has failed with `failure`, tells the others; every
    /// process throws ``InputError`` with `root`'s message and the rank that saw it.
    func share(_ failure: (any Error)?, from root: Int) throws -> Never {
        var text = rank == root ? Array(String(describing: failure!).utf8) : []
        var length = [Double](repeating: 0, count: 1)
        if rank == root { length[0] = Double(text.count) }
        allreduceSum(&length)
        if rank != root { text = [UInt8](repeating: 0, count: Int(length[0])) }
        broadcast(&text, from: root)
        throw InputError(String(decoding: text, as: UTF8.self) + " (seen by rank \(root) of \(size))")
    }
}

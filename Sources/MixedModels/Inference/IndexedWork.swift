import Foundation

/// Work items 0..<count handed out in order to the workers of a `concurrentPerform`, their
/// results kept by index (so the outcome does not depend on which worker did what), and the
/// first error.
final class IndexedWork<Result>: @unchecked Sendable {
    private let lock = NSLock()
    private var next = 0
    private var results: [Result?]
    private var failure: Error?

    init(count: Int) { results = Array(repeating: nil, count: count) }

    /// Runs `body(worker, index)` for every index on `workers` threads; stops handing out
    /// work after an error, which it rethrows.
    static func run(count: Int, workers: Int, _ body: @Sendable (_ worker: Int, _ index: Int) throws -> Result) throws -> [Result?] {
        let work = IndexedWork(count: count)
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            while let index = work.claim() {
                do {
                    let value = try body(worker, index)
                    work.store(value, at: index)
                } catch {
                    work.fail(error)
                }
            }
        }
        if let failure = work.failure { throw failure }
        return work.results
    }

    private func claim() -> Int? {
        lock.withLock {
            guard next < results.count, failure == nil else { return nil }
            defer { next += 1 }
            return next
        }
    }

    private func store(_ value: Result, at index: Int) {
        lock.withLock { results[index] = value }
    }

    private func fail(_ error: Error) {
        lock.withLock { if failure == nil { failure = error } }
    }
}

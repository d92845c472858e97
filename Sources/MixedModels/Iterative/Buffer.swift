/// A zero-initialised block of doubles owned by one object, freed in `deinit`: the vectors
/// and multi-vectors (coordinate-major, m right-hand sides) of the iterative method.
final class Buffer {
    let count: Int
    let pointer: UnsafeMutablePointer<Double>

    init(_ count: Int) {
        self.count = count
        pointer = .allocate(capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }

    deinit { pointer.deallocate() }

    subscript(index: Int) -> Double {
        get { pointer[index] }
        set { pointer[index] = newValue }
    }

    func zero() { pointer.update(repeating: 0, count: count) }
}

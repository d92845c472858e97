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

/// A zero-initialised block of single-precision numbers owned by one object: solutions kept
/// only to start the next solve from (half the memory of doubles; a start rounded to 6e-8
/// relative changes no solve's answer, only, negligibly, its first residual).
final class SingleBuffer {
    let count: Int
    let pointer: UnsafeMutablePointer<Float>

    init(_ count: Int) {
        self.count = count
        pointer = .allocate(capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }

    deinit { pointer.deallocate() }

    /// Its values, as doubles, into `target` (count of them).
    func load(into target: UnsafeMutablePointer<Double>) {
        for index in 0..<count { target[index] = Double(pointer[index]) }
    }

    /// Keeps `source`'s values (count of them), rounded to single precision.
    func store(_ source: UnsafePointer<Double>) {
        for index in 0..<count { pointer[index] = Float(source[index]) }
    }
}

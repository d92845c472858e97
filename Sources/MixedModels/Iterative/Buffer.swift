/// A zero-initialised block of numbers owned by one object, freed in `deinit`: the vectors and
/// multi-vectors (coordinate-major, m right-hand sides) of the iterative method.
final class ScalarBuffer<Scalar: BinaryFloatingPoint> {
    let count: Int
    let pointer: UnsafeMutablePointer<Scalar>

    init(_ count: Int) {
        self.count = count
        pointer = .allocate(capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }

    deinit { pointer.deallocate() }

    subscript(index: Int) -> Scalar {
        get { pointer[index] }
        set { pointer[index] = newValue }
    }

    func zero() { pointer.update(repeating: 0, count: count) }
}

/// Vectors in double precision: what the solves work in.
typealias Buffer = ScalarBuffer<Double>

/// Solutions kept only to start the next solve from, in single precision (half the memory of
/// doubles; a start rounded to 6e-8 relative changes no solve's answer, only, negligibly, its
/// first residual).
typealias SingleBuffer = ScalarBuffer<Float>

extension ScalarBuffer where Scalar == Float {
    /// Its values, as doubles, into `target` (count of them).
    func load(into target: UnsafeMutablePointer<Double>) {
        for index in 0..<count { target[index] = Double(pointer[index]) }
    }

    /// Keeps `source`'s values (count of them), rounded to single precision.
    func store(_ source: UnsafePointer<Double>) {
        for index in 0..<count { pointer[index] = Float(source[index]) }
    }
}

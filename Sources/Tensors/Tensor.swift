/// A dense, contiguous, row-major Float32 tensor: the value type the engine computes with.
///
/// `shape` lists the dimensions outermost first (`[N, K]` is N rows of K); `scalars.count` is
/// always the product of `shape` (1 for a scalar, shape `[]`).
public struct Tensor: Equatable, Sendable, CustomStringConvertible {
    public private(set) var shape: [Int]
    public var scalars: [Float]

    public init(shape: [Int], scalars: [Float]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        precondition(Tensor.elementCount(shape) == scalars.count,
                     "shape \(shape) holds \(Tensor.elementCount(shape)) elements, got \(scalars.count)")
        self.shape = shape
        self.scalars = scalars
    }

    public init(zeros shape: [Int]) {
        self.init(shape: shape, scalars: [Float](repeating: 0, count: Tensor.elementCount(shape)))
    }

    public init(shape: [Int], repeating value: Float) {
        self.init(shape: shape, scalars: [Float](repeating: value, count: Tensor.elementCount(shape)))
    }

    /// Fills from a closure of the flat (row-major) index.
    public init(shape: [Int], generator: (Int) -> Float) {
        self.init(shape: shape, scalars: (0..<Tensor.elementCount(shape)).map(generator))
    }

    public static func elementCount(_ shape: [Int]) -> Int { shape.reduce(1, *) }

    public var count: Int { scalars.count }
    public var rank: Int { shape.count }

    /// Row-major strides in elements, e.g. `[K, 1]` for `[N, K]`.
    public var strides: [Int] {
        var result = [Int](repeating: 1, count: shape.count)
        var running = 1
        for axis in shape.indices.reversed() {
            result[axis] = running
            running *= shape[axis]
        }
        return result
    }

    /// Element at a full multi-index.
    public subscript(_ index: Int...) -> Float {
        get { scalars[flatIndex(index)] }
        set { scalars[flatIndex(index)] = newValue }
    }

    private func flatIndex(_ index: [Int]) -> Int {
        precondition(index.count == shape.count, "index \(index) for shape \(shape)")
        var flat = 0
        for axis in shape.indices {
            precondition(index[axis] >= 0 && index[axis] < shape[axis], "index \(index) out of shape \(shape)")
            flat = flat * shape[axis] + index[axis]
        }
        return flat
    }

    /// The same elements under another shape with the same element count.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        Tensor(shape: newShape, scalars: scalars)
    }

    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try scalars.withUnsafeBufferPointer(body)
    }

    public mutating func withUnsafeMutableBufferPointer<R>(
        _ body: (inout UnsafeMutableBufferPointer<Float>) throws -> R
    ) rethrows -> R {
        try scalars.withUnsafeMutableBufferPointer(body)
    }

    /// Largest |a − b| over all elements; the shapes must match.
    public func maxAbsDifference(_ other: Tensor) -> Float {
        precondition(shape == other.shape, "shapes differ: \(shape) vs \(other.shape)")
        var worst: Float = 0
        for i in scalars.indices { worst = max(worst, abs(scalars[i] - other.scalars[i])) }
        return worst
    }

    public var maxAbs: Float { scalars.reduce(0) { max($0, abs($1)) } }

    public var description: String {
        let head = scalars.prefix(6).map { "\($0)" }.joined(separator: ", ")
        return "Tensor(shape: \(shape), [\(head)\(scalars.count > 6 ? ", …" : "")])"
    }
}

import Testing
@testable import Tensors

// LinearInt8's primitive cache: bounded, least recently used evicted first, results unchanged.

@Test func int8PrimitiveCacheIsBoundedAndEvictsTheLeastRecentlyUsed() throws {
    var generator = SeededGenerator(seed: 11)
    let (rows, inputs, outputs) = (4, 16, 8)
    let wq: [Int8] = (0..<(outputs * inputs)).map { _ in Int8.random(in: -127...127, using: &generator) }
    let scales = (0..<outputs).map { _ in Float.random(in: 0.001...0.05, using: &generator) }
    let layer = try LinearInt8(weights: wq, outputs: outputs, inputs: inputs, weightScales: scales,
                               bias: generator.floats(outputs))
    let x: [UInt8] = (0..<(rows * inputs)).map { _ in UInt8.random(in: 0...255, using: &generator) }
    func run(_ scale: Float) throws -> [Float] {
        var y = [Float](repeating: 0, count: rows * outputs)
        try layer.forward(codes: x, rows: rows, inputScale: scale, zeroPoint: 100, into: &y)
        return y
    }
    let capacity = LinearInt8.maximumCachedPrimitives
    let kept: Float = 0.777
    let first = try run(kept)
    for i in 1..<capacity { _ = try run(0.01 * Float(i)) }
    #expect(layer.cachedPrimitiveCount == capacity)
    _ = try run(kept)                       // now the most recent: the next miss evicts 0.01 instead
    _ = try run(0.01 * Float(capacity))
    #expect(layer.cachedPrimitiveCount == capacity)
    #expect(layer.isCached(rows: rows, inputScale: kept, zeroPoint: 100))
    #expect(!layer.isCached(rows: rows, inputScale: 0.01, zeroPoint: 100))
    // A long sweep stays bounded, and a re-created primitive gives the same bits.
    for i in 0..<(3 * capacity) { _ = try run(1 + Float(i) / 64) }
    #expect(layer.cachedPrimitiveCount == capacity)
    #expect(!layer.isCached(rows: rows, inputScale: kept, zeroPoint: 100))
    #expect(try run(kept) == first)
}

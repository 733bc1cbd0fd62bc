import Testing
import CDNNL
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

/// The shared scratchpad is opted into, not imposed: a primitive created in oneDNN's default
/// (library) mode reports no user scratchpad, so `PrimitiveCall` appends no argument for it; one
/// created with `useSharedScratchpad` reports the size it wants bound (zero or more by ISA).
@Test func onlyPrimitivesThatAskForTheSharedScratchpadGetOne() throws {
    try DNNLRuntime.shared.serialized {
        let src = try MemoryDesc.rowMajor([64, 256], dnnl_u8), dst = try MemoryDesc.rowMajor([64, 128], dnnl_f32)
        let weights = try MemoryDesc.any([256, 128], dnnl_s8)
        let library = try makeMatmul(src: src, weights: weights, bias: nil, dst: dst, attributes: nil)
        let libraryCall = try MatmulPlan(primitive: library, src: src, weights: library.queryMemoryDesc(dnnl_query_weights_md), dst: dst, bias: nil)
        #expect(libraryCall.call.scratchpadBytes == 0 && libraryCall.call.memories.count == 3)
        let attributes = try DNNLAttributes()
        try attributes.useSharedScratchpad()
        let user = try makeMatmul(src: src, weights: weights, bias: nil, dst: dst, attributes: attributes)
        let userCall = try MatmulPlan(primitive: user, src: src, weights: user.queryMemoryDesc(dnnl_query_weights_md), dst: dst, bias: nil)
        #expect(userCall.call.memories.count == 3 + (userCall.call.scratchpadBytes > 0 ? 1 : 0) && userCall.bias == nil)
    }
}

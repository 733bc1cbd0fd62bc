import Testing
@testable import Tensors

// Scalar references, accumulated in Double (fp32) or Int32 (int8): obviously correct, slow.

/// y[n, c] = Σ_k x[n, k] · w[c, k] + b[c]
private func referenceLinear(_ x: [Float], rows: Int, _ w: [Float], outputs: Int, inputs: Int, _ b: [Float]?) -> [Double] {
    var y = [Double](repeating: 0, count: rows * outputs)
    for n in 0..<rows {
        for c in 0..<outputs {
            var sum = Double(b?[c] ?? 0)
            for k in 0..<inputs { sum += Double(x[n * inputs + k]) * Double(w[c * inputs + k]) }
            y[n * outputs + c] = sum
        }
    }
    return y
}

/// max |Δ| / max |ref|
private func relativeError(_ got: [Float], _ reference: [Double]) -> Double {
    let scale = reference.reduce(0) { max($0, abs($1)) }
    let worst = zip(got, reference).reduce(0) { max($0, abs(Double($1.0) - $1.1)) }
    return worst / max(scale, 1e-30)
}

/// fp32 products accumulate in a different order than the reference; 1e-5 relative to the
/// largest output leaves room for K ≤ 1024 roundings of float32 (2^-24 each) and no more.
private let fp32Tolerance = 1e-5

@Test(arguments: [(1, 8, 4, true), (7, 33, 17, false), (64, 128, 96, true), (300, 256, 64, true)])
func linearFP32MatchesScalarReference(rows: Int, inputs: Int, outputs: Int, withBias: Bool) throws {
    var generator = SeededGenerator(seed: UInt64(rows * 1000 + inputs))
    let x = generator.floats(rows * inputs)
    let w = generator.floats(outputs * inputs)
    let b = withBias ? generator.floats(outputs, in: -2...2) : nil
    let layer = try LinearFP32(weight: w, outputs: outputs, inputs: inputs, bias: b)
    let y = try layer(Tensor(shape: [rows, inputs], scalars: x))
    #expect(y.shape == [rows, outputs])
    #expect(relativeError(y.scalars, referenceLinear(x, rows: rows, w, outputs: outputs, inputs: inputs, b)) <= fp32Tolerance)
}

@Test func linearFP32ServesManyRowCountsFromOnePacking() throws {
    var generator = SeededGenerator(seed: 5)
    let (inputs, outputs) = (48, 40)
    let w = generator.floats(outputs * inputs)
    let b = generator.floats(outputs)
    let layer = try LinearFP32(weight: w, outputs: outputs, inputs: inputs, bias: b)
    for rows in [3, 100, 3, 1, 100] {
        let x = generator.floats(rows * inputs)
        let y = try layer(Tensor(shape: [1, rows, inputs], scalars: x))
        #expect(y.shape == [1, rows, outputs])
        #expect(relativeError(y.scalars, referenceLinear(x, rows: rows, w, outputs: outputs, inputs: inputs, b)) <= fp32Tolerance)
    }
}

/// C[b] = scale · A[b] · B[b] by the definition.
private func referenceBatched(_ a: [Float], _ aL: MatrixBatch, _ b: [Float], _ bL: MatrixBatch, batch: Int,
                              m: Int, k: Int, n: Int, scale: Float) -> [Double] {
    var c = [Double](repeating: 0, count: batch * m * n)
    for i in 0..<batch {
        for r in 0..<m {
            for j in 0..<n {
                var sum = 0.0
                for t in 0..<k {
                    let av = a[i * aL.strides[0] + r * aL.strides[1] + t * aL.strides[2]]
                    let bv = b[i * bL.strides[0] + t * bL.strides[1] + j * bL.strides[2]]
                    sum += Double(av) * Double(bv)
                }
                c[(i * m + r) * n + j] = Double(scale) * sum
            }
        }
    }
    return c
}

@Test func batchedMatmulMatchesReferenceForAttentionLayouts() throws {
    var generator = SeededGenerator(seed: 3)
    // Q and K interleaved as in a fused qkv output [N, 2, H·D], read per head without copies.
    let (heads, tokens, headDim) = (3, 37, 16)
    let row = 2 * heads * headDim
    let qk = generator.floats(tokens * row)
    let q = MatrixBatch(dims: [heads, tokens, headDim], strides: [headDim, row, 1])
    let k = MatrixBatch(dims: [heads, tokens, headDim], strides: [headDim, row, 1])
    let scores = MatrixBatch.contiguous([heads, tokens, tokens])
    var s = [Float](repeating: 0, count: heads * tokens * tokens)
    let scale = 1 / Float(headDim).squareRoot()
    try qk.withUnsafeBufferPointer { p in
        try BatchedMatmul.run(a: p.baseAddress!, q, b: p.baseAddress! + heads * headDim, k.transposed,
                              c: &s, scores, scale: scale)
    }
    let kOffset = Array(qk[(heads * headDim)...]) + [Float](repeating: 0, count: heads * headDim)
    let expected = referenceBatched(qk, q, kOffset, k.transposed, batch: heads, m: tokens, k: headDim, n: tokens, scale: scale)
    #expect(relativeError(s, expected) <= fp32Tolerance)

    // P · V with contiguous P [H, N, N] and V [H, N, D].
    let p = generator.floats(heads * tokens * tokens, in: 0...1)
    let v = generator.floats(heads * tokens * headDim)
    var out = [Float](repeating: 0, count: heads * tokens * headDim)
    let pL = MatrixBatch.contiguous([heads, tokens, tokens]), vL = MatrixBatch.contiguous([heads, tokens, headDim])
    try BatchedMatmul.run(a: p, pL, b: v, vL, c: &out, MatrixBatch.contiguous([heads, tokens, headDim]))
    #expect(relativeError(out, referenceBatched(p, pL, v, vL, batch: heads, m: tokens, k: tokens, n: headDim, scale: 1)) <= fp32Tolerance)
}

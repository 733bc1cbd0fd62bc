/// Results must not depend on how loaded the machine is, and `ThreadBudget` gives oneDNN fewer
/// threads under load: so every product the models run must give the same bits on one thread and
/// on all of them. oneDNN promises no such thing (its AVX2 `gemm:jit` splits the sum over K of
/// small products between threads), so this checks the shapes the demo model and an STDiT3-XL
/// run — block linears, embedders, caption projections, attention products, int8 layers — on the
/// ISA at hand, bit for bit.
public enum ThreadIndependenceCheck {
    /// fp32 linear products `(rows, K, C)`: embedders and t_block (1–2 rows), caption projections,
    /// block linears at the demo and XL widths, and small products that invite a split over K.
    static let linearShapes: [(rows: Int, inputs: Int, outputs: Int)] = [
        (1, 256, 128), (2, 256, 1152), (2, 128, 768), (2, 1152, 2304), (24, 32, 256), (32, 4096, 64), (63, 512, 64),
        (64, 128, 384), (96, 1024, 256), (512, 128, 384), (512, 512, 128), (600, 1024, 288), (1024, 256, 1024),
    ]

    public static func run() throws -> [KernelCheckResult] {
        let all = DNNLRuntime.shared.maximumThreads
        var generator = SplitMix(seed: 7)
        var linears = CheckTally(name: "fp32 products, 1 vs \(all) threads")
        var int8 = CheckTally(name: "int8 products, 1 vs \(all) threads")
        for (rows, inputs, outputs) in linearShapes {
            let x = (0..<(rows * inputs)).map { _ in generator.float(in: -1...1) }
            let layer = try LinearFP32(weight: (0..<(outputs * inputs)).map { _ in generator.float(in: -0.1...0.1) },
                                       outputs: outputs, inputs: inputs, bias: (0..<outputs).map { _ in generator.float(in: -1...1) })
            let (one, many) = try bothThreadCounts(all) { () throws -> [UInt32] in
                var y = [Float](repeating: 0, count: rows * outputs)
                try layer.forward(x, rows: rows, into: &y)
                return y.map(\.bitPattern)
            }
            linears.compare(many, one, "\(rows)×\(inputs)×\(outputs)")

            let quantized = try LinearInt8(weights: (0..<(outputs * inputs)).map { _ in Int8(truncatingIfNeeded: generator.next()) },
                                           outputs: outputs, inputs: inputs,
                                           weightScales: (0..<outputs).map { _ in generator.float(in: 0.001...0.01) },
                                           bias: (0..<outputs).map { _ in generator.float(in: -1...1) })
            let encoding = ActivationEncoding(kind: .asymmetricUInt8, scale: 0.01, zeroPoint: 100)
            let (oneInt8, manyInt8) = try bothThreadCounts(all) { () throws -> [UInt32] in
                var y = [Float](repeating: 0, count: rows * outputs)
                try quantized.forward(x, rows: rows, encoding: encoding, into: &y)
                return y.map(\.bitPattern)
            }
            int8.compare(manyInt8, oneInt8, "\(rows)×\(inputs)×\(outputs)")
        }
        return [linears.result(required: true), int8.result(required: true), try attention(all, &generator)]
    }

    /// Attention's batched products in the layouts the forward pass uses: heads interleaved in
    /// the width, K read transposed, V inside the fused qkv rows; spatial (64 tokens), temporal
    /// (4 frames) and cross-attention (12 caption tokens).
    private static func attention(_ all: Int, _ generator: inout SplitMix) throws -> KernelCheckResult {
        var tally = CheckTally(name: "attention products, 1 vs \(all) threads")
        for (sequences, n, heads, d, keys) in [(8, 64, 4, 32, 64), (128, 4, 4, 32, 4), (1, 256, 4, 32, 12), (1, 256, 16, 72, 300)] {
            let c = heads * d
            let q = (0..<(sequences * n * c)).map { _ in generator.float(in: -1...1) }
            let k = (0..<(sequences * keys * c)).map { _ in generator.float(in: -1...1) }
            let qLayout = MatrixBatch(dims: [sequences, heads, n, d], strides: [n * c, d, c, 1])
            let kT = MatrixBatch(dims: [sequences, heads, d, keys], strides: [keys * c, d, 1, c])
            let scores = MatrixBatch.contiguous([sequences, heads, n, keys])
            let (one, many) = try bothThreadCounts(all) { () throws -> [UInt32] in
                var s = [Float](repeating: 0, count: sequences * heads * n * keys)
                try BatchedMatmul.run(a: q, qLayout, b: k, kT, c: &s, scores, scale: 0.17)
                var out = [Float](repeating: 0, count: sequences * n * c)
                let vLayout = MatrixBatch(dims: [sequences, heads, keys, d], strides: [keys * c, d, c, 1])
                try BatchedMatmul.run(a: s, scores, b: k, vLayout, c: &out, qLayout)
                return (s + out).map(\.bitPattern)
            }
            tally.compare(many, one, "\(sequences) sequences × \(heads) heads, \(n)×\(keys)")
        }
        return tally.result(required: true)
    }

    private static func bothThreadCounts<T>(_ all: Int, _ body: () throws -> T) throws -> (one: T, many: T) {
        (try DNNLRuntime.shared.withThreads(1, body), try DNNLRuntime.shared.withThreads(all, body))
    }
}

/// One measured matrix product: `[M, K] · [K, N]` (a linear layer with K inputs and N outputs on
/// M tokens), its median throughput and the oneDNN implementation that ran it.
public struct GEMMBenchmarkResult: Sendable {
    public enum Precision: String, Sendable { case fp32, int8 }

    public let m: Int, k: Int, n: Int
    public let precision: Precision
    /// How int8 sums were made exact (nil for fp32).
    public let method: IntegerProductMethod?
    /// int8 from float32 input: the activation quantization inside oneDNN is included.
    public let fromFloat: Bool
    /// Whether the int8 sums are exact on this ISA (always for fp32, which makes no such promise).
    public let exact: Bool
    /// GFLOP/s for fp32, GOP/s for int8 (2·M·K·N operations per product).
    public let gopsMedian: Double
    public let medianSeconds: Double
    public let runs: Int
    public let implementation: String

    /// `fp32`, `int8 native`, `int8 split-weights`, `int8 split-weights, from f32`.
    public var label: String {
        guard let method else { return precision.rawValue }
        return "int8 \(method.rawValue)" + (fromFloat ? ", from f32" : "")
    }
}

/// The matrix products `stsq-tui bench gemm` measures: the linear layers of the demo model and of
/// an STDiT3-XL block at typical token counts.
public enum GEMMBenchmark {
    public static let standardShapes: [(m: Int, k: Int, n: Int)] = [
        (1024, 128, 384), (1024, 128, 512), (1024, 512, 128), (1024, 256, 1024),
        (2048, 1152, 3456), (2048, 4608, 1152),
    ]

    /// Runs fp32 and every int8 method on one shape with random data (fixed seed). Products go through the
    /// same `LinearFP32` / `LinearInt8` objects the model uses: prepacked weights, cached primitives.
    public static func run(m: Int, k: Int, n: Int, minSeconds: Double = 0.5) throws -> [GEMMBenchmarkResult] {
        var state: UInt32 = 0x1234_5678
        func nextByte() -> UInt8 {
            state = state &* 1_664_525 &+ 1_013_904_223
            return UInt8(truncatingIfNeeded: state >> 24)
        }
        let operations = 2.0 * Double(m) * Double(k) * Double(n)
        var results: [GEMMBenchmarkResult] = []

        let weights = (0..<(n * k)).map { _ in Float(Int(nextByte()) - 128) / 128 }
        let bias = (0..<n).map { _ in Float(Int(nextByte()) - 128) / 256 }
        let x = (0..<(m * k)).map { _ in Float(Int(nextByte()) - 128) / 128 }
        // Activations live in 64-byte aligned buffers, as in the engine's arena: AMX tile stores
        // to a 16-byte aligned Swift array cost ~10% at these sizes.
        let ya = AlignedBuffer(byteCount: 4 * m * n)
        let y = ya.pointer.bindMemory(to: Float.self, capacity: m * n)
        let xa = AlignedBuffer(byteCount: 4 * m * k)
        let xf = xa.pointer.bindMemory(to: Float.self, capacity: m * k)
        x.withUnsafeBufferPointer { xf.initialize(from: $0.baseAddress!, count: m * k) }
        let fp32 = try LinearFP32(weight: weights, outputs: n, inputs: k, bias: bias)
        let fp32Times = try TimingSamples.measure(minSeconds: minSeconds) {
            try fp32.forward(xf, rows: m, into: y)
        }
        results.append(GEMMBenchmarkResult(m: m, k: k, n: n, precision: .fp32, method: nil, fromFloat: true, exact: true,
                                           gopsMedian: operations / fp32Times.median / 1e9,
                                           medianSeconds: fp32Times.median, runs: fp32Times.seconds.count,
                                           implementation: try fp32.implementationName(rows: m)))

        let wq = (0..<(n * k)).map { _ in Int8(clamping: Int(nextByte()) - 128) }
        let scales = (0..<n).map { _ in Float(1 + Int(nextByte())) / 8192 }
        let xq = (0..<(m * k)).map { _ in nextByte() }
        let encoding = ActivationEncoding(kind: .asymmetricUInt8, scale: 0.02, zeroPoint: 128)
        let xqa = AlignedBuffer(byteCount: m * k)
        xq.withUnsafeBytes { xqa.pointer.copyMemory(from: $0.baseAddress!, byteCount: m * k) }
        let codes = xqa.pointer.assumingMemoryBound(to: UInt8.self)
        // Every method on stored codes (native marked inexact where the ISA lacks an int8 dot
        // product), then the model's path: the automatic method from float32 input.
        let cases = IntegerProductMethod.allCases.map { ($0, false) } + [(IntegerProductMethod.automatic, true)]
        for (method, fromFloat) in cases {
            let int8 = try LinearInt8(weights: wq, outputs: n, inputs: k, weightScales: scales, bias: bias, method: method)
            let times = try TimingSamples.measure(minSeconds: minSeconds) {
                if fromFloat {
                    try int8.forward(xf, rows: m, encoding: encoding, into: y)
                } else {
                    try int8.forward(codes: codes, rows: m, inputScale: encoding.scale, zeroPoint: encoding.zeroPoint, into: y)
                }
            }
            let exact = method == .splitWeights || IntegerProductMethod.automatic == .native
            results.append(GEMMBenchmarkResult(m: m, k: k, n: n, precision: .int8, method: method, fromFloat: fromFloat, exact: exact,
                                               gopsMedian: operations / times.median / 1e9, medianSeconds: times.median,
                                               runs: times.seconds.count,
                                               implementation: try int8.implementationName(rows: m, inputScale: encoding.scale,
                                                                                           zeroPoint: encoding.zeroPoint)))
        }
        return results
    }
}

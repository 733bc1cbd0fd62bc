/// The int8 path against its scalar references, on the data that breaks inexact kernels: codes of
/// 255 against weights of ±127 and −128 side by side (the int16 pairs that saturate), sums past
/// 2^24 (where a float detour would round), exact rounding ties and their neighbours. `selftest`
/// runs it on the ISA oneDNN dispatches to (capped with `DNNL_MAX_CPU_ISA` in the tests), and the
/// unit tests run it in-process; the references are here, beside the kernels they specify.
public enum IntegerKernelCheck {
    /// Bound of the float-output checks, in float32 ulps of the largest term that passes through
    /// oneDNN's epilogue roundings (folded bias, scale multiply, zero-point compensation applied
    /// in float after scaling, the second half-product added in float); asymmetric weights add
    /// the correction and its subtraction.
    public static let outputUlpBound = 4.0, asymmetricOutputUlpBound = 6.0

    /// Every check, for every method (a method known to be inexact here is reported, not required).
    public static func run() throws -> [KernelCheckResult] {
        var generator = SplitMix(seed: 2026)
        var results = [try activationCodes(&generator)]
        for method in IntegerProductMethod.allCases {
            results.append(try integerSums(method, &generator))
        }
        for method in IntegerProductMethod.allCases where isExactHere(method) {
            results.append(try floatOutputs(method, &generator))
        }
        results.append(try fusedEqualsApart(&generator))
        return results
    }

    /// `splitWeights` everywhere; `native` where the automatic choice is native (VNNI, AMX).
    public static func isExactHere(_ method: IntegerProductMethod) -> Bool {
        method == .splitWeights || IntegerProductMethod.automatic == .native
    }

    // MARK: - References

    /// `Σ_k (xq[n, k] − z) · (wq[c, k] − zw[c])` in 64-bit integers, narrowed to Int32: QUANTIZATION.md's integer core.
    public static func referenceSums(codes: [UInt8], rows: Int, zeroPoint: Int32, weights: [Int8], weightZeroPoints: [Int32]? = nil,
                                     outputs: Int, inputs: Int) -> [Int32] {
        var sums = [Int32](repeating: 0, count: rows * outputs)
        for n in 0..<rows {
            for c in 0..<outputs {
                let zw = Int64(weightZeroPoints?[c] ?? 0)
                var sum: Int64 = 0
                for k in 0..<inputs { sum += (Int64(codes[n * inputs + k]) - Int64(zeroPoint)) * (Int64(weights[c * inputs + k]) - zw) }
                sums[n * outputs + c] = Int32(sum)
            }
        }
        return sums
    }

    /// The weights each product of `method` multiplies: the weights, or their halves ⌈w/2⌉, ⌊w/2⌋.
    public static func productWeights(_ weights: [Int8], _ method: IntegerProductMethod) -> [[Int8]] {
        switch method {
        case .native: return [weights]
        case .splitWeights: return [weights.map { $0 - ($0 >> 1) }, weights.map { $0 >> 1 }]
        }
    }

    /// Weights with the values that saturate int16 pair sums next to each other, and random ones.
    public static func extremeWeights(_ count: Int, _ generator: inout SplitMix) -> [Int8] {
        (0..<count).map { i in
            switch i % 4 {
            case 0: return 127
            case 1: return i % 3 == 0 ? -128 : 127
            case 2: return -127
            default: return Int8(truncatingIfNeeded: generator.next())
            }
        }
    }

    /// Codes at the top of the range (the saturating case) mixed with random ones.
    public static func extremeCodes(_ count: Int, _ generator: inout SplitMix) -> [UInt8] {
        (0..<count).map { i in i % 3 == 2 ? UInt8(truncatingIfNeeded: generator.next()) : 255 - UInt8(i % 2) }
    }

    /// Inputs that probe the rounding rule: exact ties of `scale` (after the multiplier), the
    /// floats next to them, large, infinite and signed-zero values, subnormals, ordinary ones.
    public static func probingInputs(_ count: Int, scale: Float, multiplier: [Float]?, _ generator: inout SplitMix) -> [Float] {
        let width = multiplier?.count ?? 1
        var x = (0..<count).map { i -> Float in
            let m = multiplier?[i % width] ?? 1
            let tie = (Float(Int(generator.next() % 601) - 300) + 0.5) * scale
            switch i % 6 {
            case 0: return tie / m
            case 1: return tie.nextUp / m
            case 2: return tie.nextDown / m
            case 3: return generator.float(in: -1000...1000)
            default: return generator.float(in: -4...4)
            }
        }
        let specials: [Float] = [.infinity, -.infinity, 0, -0.0, 1e38, -1e38, .leastNonzeroMagnitude, -.leastNormalMagnitude]
        for (i, v) in specials.enumerated() where i < count { x[i] = v }
        return x
    }

    // MARK: - Checks

    private static func activationCodes(_ generator: inout SplitMix) throws -> KernelCheckResult {
        var tally = CheckTally(name: "activation codes (oneDNN vs ActivationEncoding.code)")
        for kind in [ActivationEncoding.Kind.asymmetricUInt8, .symmetricInt8] {
            for withMultiplier in [false, true] {
                for (rows, inputs) in [(1, 16), (37, 200), (256, 128)] {
                    let multiplier: [Float]? = withMultiplier ? (0..<inputs).map { _ in 1 / generator.float(in: 0.3...10) } : nil
                    let encoding = ActivationEncoding(kind: kind, scale: 0.0213, zeroPoint: kind == .symmetricInt8 ? 0 : 119)
                    let x = probingInputs(rows * inputs, scale: encoding.scale, multiplier: multiplier, &generator)
                    let layer = try LinearInt8(weights: [Int8](repeating: 1, count: inputs), outputs: 1, inputs: inputs,
                                               weightScales: [1], bias: nil, inputMultiplier: multiplier)
                    var codes = [UInt8](repeating: 0, count: rows * inputs)
                    try layer.quantize(x, rows: rows, encoding: encoding, into: &codes)
                    let expected = x.enumerated().map { i, v in
                        UInt8(encoding.code(multiplier.map { v * $0[i % inputs] } ?? v) + encoding.storageOffset)
                    }
                    tally.compare(codes, expected, "\(kind.rawValue)\(withMultiplier ? " ×1/s" : ""), \(rows)×\(inputs)")
                }
            }
        }
        return tally.result(required: true)
    }

    private static func integerSums(_ method: IntegerProductMethod, _ generator: inout SplitMix) throws -> KernelCheckResult {
        var tally = CheckTally(name: "integer sums, \(method.rawValue)")
        func check(rows: Int, inputs: Int, outputs: Int, zeroPoint: Int32, asymmetric: Bool) throws {
            let weights = extremeWeights(outputs * inputs, &generator)
            let zw: [Int32]? = asymmetric ? (0..<outputs).map { c in c % 5 == 0 ? 0 : Int32(Int8(truncatingIfNeeded: generator.next())) } : nil
            let codes = extremeCodes(rows * inputs, &generator)
            let layer = try LinearInt8(weights: weights, outputs: outputs, inputs: inputs, weightScales: Array(repeating: 0.01, count: outputs),
                                       weightZeroPoints: zw, bias: nil, method: method)
            var sums = [Int32](repeating: 0, count: rows * outputs)
            try layer.accumulate(codes, rows: rows, zeroPoint: zeroPoint, into: &sums)
            let expected = referenceSums(codes: codes, rows: rows, zeroPoint: zeroPoint, weights: weights, weightZeroPoints: zw,
                                         outputs: outputs, inputs: inputs)
            tally.compare(sums, expected, "\(rows)×\(inputs)×\(outputs), z \(zeroPoint)\(asymmetric ? ", asymmetric weights" : "")")
        }
        // K = 1152: sums beyond 2^24. z = 128 is symmetric int8 in stored form.
        for zeroPoint: Int32 in [0, 128, 131, 255] {
            for (rows, inputs, outputs) in [(1, 16, 8), (37, 200, 65), (24, 1152, 24)] {
                try check(rows: rows, inputs: inputs, outputs: outputs, zeroPoint: zeroPoint, asymmetric: false)
            }
        }
        try check(rows: 19, inputs: 300, outputs: 33, zeroPoint: 77, asymmetric: true)
        return tally.result(required: isExactHere(method))
    }

    private static func floatOutputs(_ method: IntegerProductMethod, _ generator: inout SplitMix) throws -> KernelCheckResult {
        var tally = CheckTally(name: "float outputs vs Δx·Δw·Σ + b, \(method.rawValue)")
        for asymmetric in [false, true] {
            let (rows, inputs, outputs) = (50, 96, 40)
            let weights = (0..<(outputs * inputs)).map { _ in Int8(truncatingIfNeeded: generator.next()) }
            let zw: [Int32]? = asymmetric ? (0..<outputs).map { _ in Int32(Int8(truncatingIfNeeded: generator.next())) } : nil
            let scales = (0..<outputs).map { _ in generator.float(in: 0.001...0.05) }
            let bias = (0..<outputs).map { _ in generator.float(in: -3...3) }
            let codes = (0..<(rows * inputs)).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            let (inputScale, zeroPoint): (Float, Int32) = (0.0213, 119)
            let layer = try LinearInt8(weights: weights, outputs: outputs, inputs: inputs, weightScales: scales, weightZeroPoints: zw,
                                       bias: bias, method: method)
            var y = [Float](repeating: 0, count: rows * outputs)
            try layer.forward(codes: codes, rows: rows, inputScale: inputScale, zeroPoint: zeroPoint, into: &y)
            let exactSums = referenceSums(codes: codes, rows: rows, zeroPoint: zeroPoint, weights: weights, weightZeroPoints: zw,
                                          outputs: outputs, inputs: inputs)
            let parts = productWeights(weights, method)
            let partSums = parts.map { referenceSums(codes: codes, rows: rows, zeroPoint: zeroPoint, weights: $0, outputs: outputs, inputs: inputs) }
            let rawSums = parts.map { referenceSums(codes: codes, rows: rows, zeroPoint: 0, weights: $0, outputs: outputs, inputs: inputs) }
            var rowSums = [Double](repeating: 0, count: rows)
            for i in 0..<(rows * inputs) { rowSums[i / inputs] += Double(codes[i]) - Double(zeroPoint) }
            for i in 0..<(rows * outputs) {
                let (n, c) = (i / outputs, i % outputs)
                let scale = Double(inputScale) * Double(scales[c])
                let exact = scale * Double(exactSums[i]) + Double(bias[c])
                let correction = scale * Double(zw?[c] ?? 0) * rowSums[n]
                let terms = [exact, Double(bias[c]), correction, exact + correction]
                    + partSums.map { scale * Double($0[i]) } + rawSums.map { scale * Double($0[i]) }
                let magnitude = max(Float(terms.map(abs).max()!), Float.leastNormalMagnitude)
                let ulps = Double(Float(abs(Double(y[i]) - exact)) / magnitude.ulp)
                tally.measure(ulps: ulps, bound: asymmetric ? asymmetricOutputUlpBound : outputUlpBound,
                              "\(asymmetric ? "asymmetric" : "symmetric") weights, row \(n), output \(c): \(y[i]) vs \(exact)")
            }
        }
        return tally.result(required: true)
    }

    private static func fusedEqualsApart(_ generator: inout SplitMix) throws -> KernelCheckResult {
        var tally = CheckTally(name: "quantize inside the product = quantize, then product")
        let (rows, inputs, outputs) = (33, 80, 48)
        let weights = (0..<(outputs * inputs)).map { _ in Int8(truncatingIfNeeded: generator.next()) }
        let scales = (0..<outputs).map { _ in generator.float(in: 0.001...0.05) }
        let multiplier = (0..<inputs).map { _ in generator.float(in: 0.2...3) }
        let layer = try LinearInt8(weights: weights, outputs: outputs, inputs: inputs, weightScales: scales,
                                   bias: (0..<outputs).map { _ in generator.float(in: -1...1) }, inputMultiplier: multiplier)
        let x = (0..<(rows * inputs)).map { _ in generator.float(in: -3...3) }
        for encoding in [ActivationEncoding(kind: .symmetricInt8, scale: 0.03, zeroPoint: 0),
                         ActivationEncoding(kind: .asymmetricUInt8, scale: 0.025, zeroPoint: 120)] {
            var fused = [Float](repeating: 0, count: rows * outputs), apart = fused
            try layer.forward(x, rows: rows, encoding: encoding, into: &fused)
            var codes = [UInt8](repeating: 0, count: rows * inputs)
            try layer.quantize(x, rows: rows, encoding: encoding, into: &codes)
            try layer.forward(codes: codes, rows: rows, inputScale: encoding.scale, zeroPoint: encoding.storageZeroPoint, into: &apart)
            tally.compare(fused.map(\.bitPattern), apart.map(\.bitPattern), encoding.kind.rawValue)
        }
        return tally.result(required: true)
    }

}

/// SplitMix64: a tiny deterministic generator, the same data on every machine.
public struct SplitMix: RandomNumberGenerator {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in `range`.
    public mutating func float(in range: ClosedRange<Float>) -> Float { Float.random(in: range, using: &self) }
}

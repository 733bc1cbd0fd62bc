import Testing
@testable import Tensors

// The int8 path against scalar references: activation codes bit for bit, integer sums bit for bit
// for every method this CPU can run exactly, float outputs within the roundings of the epilogue.
// The same kernels under lower ISA caps run in child processes (CLITests/SelfTestCommandTests).

/// Σ_k (xq[n, k] − z) · (wq[c, k] − zw[c]) in Int64, then narrowed: the integer core of QUANTIZATION.md's formula.
private func referenceSums(_ codes: [UInt8], rows: Int, zeroPoint: Int32, _ wq: [Int8], weightZeroPoints: [Int32]? = nil,
                           outputs: Int, inputs: Int) -> [Int32] {
    var sums = [Int32](repeating: 0, count: rows * outputs)
    for n in 0..<rows {
        for c in 0..<outputs {
            let zw = Int64(weightZeroPoints?[c] ?? 0)
            var sum: Int64 = 0
            for k in 0..<inputs { sum += (Int64(codes[n * inputs + k]) - Int64(zeroPoint)) * (Int64(wq[c * inputs + k]) - zw) }
            sums[n * outputs + c] = Int32(sum)
        }
    }
    return sums
}

/// The first index where two arrays differ, described; nil when equal. Large arrays are compared
/// as a Bool first: formatting a failed `==` of two 32,768-element arrays takes minutes.
private func firstDifference<T: Equatable>(_ got: [T], _ expected: [T]) -> String? {
    guard got != expected else { return nil }
    let i = zip(got, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(got.count, expected.count)
    let wrong = zip(got, expected).filter { $0 != $1 }.count
    return "\(wrong) of \(expected.count) differ; first at \(i): got \(i < got.count ? "\(got[i])" : "—"), expected \(i < expected.count ? "\(expected[i])" : "—")"
}

/// Weights with the values that saturate int16 pair sums next to each other, and random ones.
private func extremeWeights(_ count: Int, _ generator: inout SeededGenerator) -> [Int8] {
    (0..<count).map { i in
        switch i % 4 {
        case 0: return 127
        case 1: return i % 3 == 0 ? -128 : 127
        case 2: return -127
        default: return Int8.random(in: -128...127, using: &generator)
        }
    }
}

/// Codes at the top of the range (the saturating case) mixed with random ones.
private func extremeCodes(_ count: Int, _ generator: inout SeededGenerator) -> [UInt8] {
    (0..<count).map { i in i % 3 == 2 ? UInt8.random(in: 0...255, using: &generator) : 255 - UInt8(i % 2) }
}

/// The methods that must be exact here: `splitWeights` everywhere, `native` where the ISA has an
/// int8 dot product (elsewhere it is known to saturate, which is why `automatic` avoids it).
private let exactMethodsHere: [IntegerProductMethod] =
    InstructionSet.effective.hasInt8DotProduct ? IntegerProductMethod.allCases : [.splitWeights]

@Test(arguments: [Int32(0), 131, 255, 128])
func integerSumsAreBitExactForEveryExactMethod(zeroPoint: Int32) throws {
    var generator = SeededGenerator(seed: UInt64(zeroPoint) + 1000)
    // K = 1152: sums beyond 2^24, where a float detour would round.
    for (rows, inputs, outputs) in [(1, 16, 8), (37, 200, 65), (24, 1152, 24)] {
        let wq = extremeWeights(outputs * inputs, &generator)
        let codes = extremeCodes(rows * inputs, &generator)
        let expected = referenceSums(codes, rows: rows, zeroPoint: zeroPoint, wq, outputs: outputs, inputs: inputs)
        for method in exactMethodsHere + [.automatic] {
            let layer = try LinearInt8(weights: wq, outputs: outputs, inputs: inputs, weightScales: Array(repeating: 0.01, count: outputs),
                                       bias: nil, method: method)
            var sums = [Int32](repeating: 0, count: rows * outputs)
            try layer.accumulate(codes, rows: rows, zeroPoint: zeroPoint, into: &sums)
            let difference = firstDifference(sums, expected)
            #expect(difference == nil, "\(method) on \(InstructionSet.effective), rows \(rows) K \(inputs) C \(outputs): \(difference ?? "")")
        }
    }
}

@Test func asymmetricWeightSumsAreBitExact() throws {
    var generator = SeededGenerator(seed: 42)
    let (rows, inputs, outputs) = (19, 300, 33)
    let wq = extremeWeights(outputs * inputs, &generator)
    let zw = (0..<outputs).map { c in Int32(c % 5 == 0 ? 0 : Int.random(in: -128...127, using: &generator)) }
    let codes = extremeCodes(rows * inputs, &generator)
    let expected = referenceSums(codes, rows: rows, zeroPoint: 77, wq, weightZeroPoints: zw, outputs: outputs, inputs: inputs)
    for method in exactMethodsHere {
        let layer = try LinearInt8(weights: wq, outputs: outputs, inputs: inputs, weightScales: Array(repeating: 0.01, count: outputs),
                                   weightZeroPoints: zw, bias: nil, method: method)
        var sums = [Int32](repeating: 0, count: rows * outputs)
        try layer.accumulate(codes, rows: rows, zeroPoint: 77, into: &sums)
        let difference = firstDifference(sums, expected)
        #expect(difference == nil, "\(method): \(difference ?? "")")
    }
}

/// Inputs that probe the rounding rule: exact ties, the floats next to ties, huge, infinite and
/// signed-zero values, subnormals, and ordinary ones.
private func probingInputs(_ count: Int, scale: Float, multiplier: [Float]?, _ generator: inout SeededGenerator) -> [Float] {
    let width = multiplier?.count ?? 1
    var x = (0..<count).map { i -> Float in
        let m = multiplier?[i % width] ?? 1
        let tie = (Float(Int.random(in: -300...300, using: &generator)) + 0.5) * scale
        switch i % 6 {
        case 0: return tie / m
        case 1: return tie.nextUp / m
        case 2: return tie.nextDown / m
        case 3: return Float.random(in: -1000...1000, using: &generator)
        default: return Float.random(in: -4...4, using: &generator)
        }
    }
    let specials: [Float] = [.infinity, -.infinity, 0, -0.0, 1e38, -1e38, .leastNonzeroMagnitude, -.leastNormalMagnitude]
    for (i, v) in specials.enumerated() where i < count { x[i] = v }
    return x
}

@Test(arguments: [ActivationEncoding.Kind.asymmetricUInt8, .symmetricInt8], [false, true])
func activationCodesFromOneDNNEqualTheScalarReference(kind: ActivationEncoding.Kind, withMultiplier: Bool) throws {
    var generator = SeededGenerator(seed: withMultiplier ? 7 : 8)
    for (rows, inputs) in [(1, 16), (37, 200), (256, 128)] {
        let multiplier: [Float]? = withMultiplier ? (0..<inputs).map { _ in 1 / Float.random(in: 0.3...10, using: &generator) } : nil
        let encoding = ActivationEncoding(kind: kind, scale: 0.0213, zeroPoint: kind == .symmetricInt8 ? 0 : 119)
        let x = probingInputs(rows * inputs, scale: encoding.scale, multiplier: multiplier, &generator)
        let layer = try LinearInt8(weights: [Int8](repeating: 1, count: inputs), outputs: 1, inputs: inputs, weightScales: [1],
                                   bias: nil, inputMultiplier: multiplier)
        var codes = [UInt8](repeating: 0, count: rows * inputs)
        try layer.quantize(x, rows: rows, encoding: encoding, into: &codes)
        let expected = x.enumerated().map { i, v in
            UInt8(encoding.code(multiplier.map { v * $0[i % inputs] } ?? v) + encoding.storageOffset)
        }
        let difference = firstDifference(codes, expected)
        #expect(difference == nil, "\(kind), rows \(rows) K \(inputs): \(difference ?? "")")
    }
}

/// The float output is Δx·Δw[c]·S + b with S the exact integer sum, through oneDNN's epilogue:
/// the folded bias b/(Δx·Δw), the scale multiply, the zero-point compensation (oneDNN 2.6 applies
/// it in float, after scaling), and for split weights the second product added in float. Bound:
/// 4 float32 ulps of the largest term that passes through those roundings.
@Test(arguments: IntegerProductMethod.allCases)
func int8OutputMatchesIntegerFormula(method: IntegerProductMethod) throws {
    guard exactMethodsHere.contains(method) else { return }
    var generator = SeededGenerator(seed: 77)
    let (rows, inputs, outputs) = (50, 96, 40)
    let wq: [Int8] = (0..<(outputs * inputs)).map { _ in Int8.random(in: -128...127, using: &generator) }
    let scales = (0..<outputs).map { _ in Float.random(in: 0.001...0.05, using: &generator) }
    let bias = generator.floats(outputs, in: -3...3)
    let layer = try LinearInt8(weights: wq, outputs: outputs, inputs: inputs, weightScales: scales, bias: bias, method: method)
    let inputScale: Float = 0.0213, zeroPoint: Int32 = 119
    let codes: [UInt8] = (0..<(rows * inputs)).map { _ in UInt8.random(in: 0...255, using: &generator) }
    // The products oneDNN runs: the whole weights, or their two halves.
    let halves: [[Int8]] = method == .native ? [wq] : [wq.map { $0 - ($0 >> 1) }, wq.map { $0 >> 1 }]
    let exactSums = referenceSums(codes, rows: rows, zeroPoint: zeroPoint, wq, outputs: outputs, inputs: inputs)
    let partSums = halves.map { referenceSums(codes, rows: rows, zeroPoint: zeroPoint, $0, outputs: outputs, inputs: inputs) }
    let rawSums = halves.map { referenceSums(codes, rows: rows, zeroPoint: 0, $0, outputs: outputs, inputs: inputs) }
    var y = [Float](repeating: 0, count: rows * outputs)
    try layer.forward(codes: codes, rows: rows, inputScale: inputScale, zeroPoint: zeroPoint, into: &y)
    var worstUlps: Float = 0
    for i in 0..<(rows * outputs) {
        let c = i % outputs
        let scale = Double(inputScale) * Double(scales[c])
        let exact = scale * Double(exactSums[i]) + Double(bias[c])
        let terms = [exact, Double(bias[c])] + partSums.map { scale * Double($0[i]) } + rawSums.map { scale * Double($0[i]) }
        let magnitude = max(Float(terms.map(abs).max()!), Float.leastNormalMagnitude)
        worstUlps = max(worstUlps, Float(abs(Double(y[i]) - exact)) / magnitude.ulp)
    }
    #expect(worstUlps <= 4, "\(method): worst error \(worstUlps) ulps")
    #expect(layer.cachedPrimitiveCount == 1)
    // Another activation scale (the next sampler step) gets its own cached primitive.
    try layer.forward(codes: codes, rows: rows, inputScale: inputScale * 2, zeroPoint: zeroPoint, into: &y)
    #expect(layer.cachedPrimitiveCount == 2)
}

/// Asymmetric weights: the float output against Δx·Δw·S + b with S including the zw term.
@Test func asymmetricWeightOutputMatchesIntegerFormula() throws {
    var generator = SeededGenerator(seed: 78)
    let (rows, inputs, outputs) = (20, 64, 24)
    let wq: [Int8] = (0..<(outputs * inputs)).map { _ in Int8.random(in: -128...127, using: &generator) }
    let zw: [Int32] = (0..<outputs).map { _ in Int32.random(in: -128...127, using: &generator) }
    let scales = (0..<outputs).map { _ in Float.random(in: 0.001...0.05, using: &generator) }
    let bias = generator.floats(outputs, in: -3...3)
    let codes: [UInt8] = (0..<(rows * inputs)).map { _ in UInt8.random(in: 0...255, using: &generator) }
    let (inputScale, zeroPoint): (Float, Int32) = (0.017, 101)
    let exactSums = referenceSums(codes, rows: rows, zeroPoint: zeroPoint, wq, weightZeroPoints: zw, outputs: outputs, inputs: inputs)
    let rawSums = referenceSums(codes, rows: rows, zeroPoint: 0, wq, outputs: outputs, inputs: inputs)
    for method in exactMethodsHere {
        let layer = try LinearInt8(weights: wq, outputs: outputs, inputs: inputs, weightScales: scales, weightZeroPoints: zw,
                                   bias: bias, method: method)
        var y = [Float](repeating: 0, count: rows * outputs)
        try layer.forward(codes: codes, rows: rows, inputScale: inputScale, zeroPoint: zeroPoint, into: &y)
        var worstUlps: Float = 0
        for i in 0..<(rows * outputs) {
            let (n, c) = (i / outputs, i % outputs)
            let scale = Double(inputScale) * Double(scales[c])
            var rowSum = 0.0
            for k in 0..<inputs { rowSum += Double(codes[n * inputs + k]) - Double(zeroPoint) }
            let exact = scale * Double(exactSums[i]) + Double(bias[c])
            // Roundings: the product's own (as above), the correction zw·Σ(xq − z) scaled, and their difference.
            let terms = [exact, Double(bias[c]), scale * Double(rawSums[i]), scale * Double(zw[c]) * rowSum,
                         scale * (Double(exactSums[i]) + Double(zw[c]) * rowSum)]
            let magnitude = max(Float(terms.map(abs).max()!), Float.leastNormalMagnitude)
            worstUlps = max(worstUlps, Float(abs(Double(y[i]) - exact)) / magnitude.ulp)
        }
        #expect(worstUlps <= 6, "\(method): worst error \(worstUlps) ulps")
    }
}

/// Quantizing inside oneDNN and then multiplying is the same computation as the two steps apart.
@Test func forwardFromFloatEqualsQuantizeThenProduct() throws {
    var generator = SeededGenerator(seed: 79)
    let (rows, inputs, outputs) = (33, 80, 48)
    let wq: [Int8] = (0..<(outputs * inputs)).map { _ in Int8.random(in: -127...127, using: &generator) }
    let scales = (0..<outputs).map { _ in Float.random(in: 0.001...0.05, using: &generator) }
    let multiplier = (0..<inputs).map { _ in Float.random(in: 0.2...3, using: &generator) }
    let layer = try LinearInt8(weights: wq, outputs: outputs, inputs: inputs, weightScales: scales, bias: generator.floats(outputs),
                               inputMultiplier: multiplier)
    let x = generator.floats(rows * inputs, in: -3...3)
    for encoding in [ActivationEncoding(kind: .symmetricInt8, scale: 0.03, zeroPoint: 0),
                     ActivationEncoding(kind: .asymmetricUInt8, scale: 0.025, zeroPoint: 120)] {
        var fused = [Float](repeating: 0, count: rows * outputs), apart = fused
        try layer.forward(x, rows: rows, encoding: encoding, into: &fused)
        var codes = [UInt8](repeating: 0, count: rows * inputs)
        try layer.quantize(x, rows: rows, encoding: encoding, into: &codes)
        try layer.forward(codes: codes, rows: rows, inputScale: encoding.scale, zeroPoint: encoding.storageZeroPoint, into: &apart)
        #expect(fused == apart, "\(encoding.kind)")
    }
}

@Test func automaticMethodFollowsTheInstructionSet() {
    let isa = InstructionSet.effective
    #expect(!isa.name.hasPrefix("isa_0x"), "unknown ISA \(isa.rawValue)")
    if !isa.hasInt8DotProduct { #expect(IntegerProductMethod.automatic == .splitWeights) }
    #expect(IntegerProductMethod.automaticReason.contains(isa.name))
}

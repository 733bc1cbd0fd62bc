import Testing
@testable import Tensors

// References: f16 uses Swift's own Float16 (LLVM's IEEE conversions, RNE); bf16 uses a scalar
// nearest-value search in Double arithmetic. Both are independent of the bit tricks under test.

/// Nearest bf16 to `x` by comparing the two bf16 neighbours in Double; ties go to the even one.
private func referenceBF16(_ x: Float) -> UInt16 {
    if x.isNaN { return 0x7FC0 }
    let bits = x.bitPattern
    let down = UInt16(truncatingIfNeeded: bits >> 16)       // truncation toward zero
    if bits & 0xFFFF == 0 { return down }
    let up = down &+ 1                                      // next magnitude (may become inf)
    let dDown = abs(Double(x) - Double(bf16ToFloat(down)))
    let dUp = abs(Double(bf16ToFloat(up)) - Double(x))
    if dDown < dUp { return down }
    if dUp < dDown { return up }
    return down & 1 == 0 ? down : up
}

/// The f32 inputs that matter for rounding to a 16-bit format: every representable value, the
/// midpoint to its neighbour, and one f32 ulp either side of the midpoint.
private func roundingProbes(_ value: Float, next: Float) -> [Float] {
    guard value.isFinite, next.isFinite else { return [value] }
    let mid = Float((Double(value) + Double(next)) / 2)   // exact: 11 or 8 significant bits + 1
    return [value, mid, mid.nextUp, mid.nextDown]
}

@Test func f16ToFloatMatchesReferenceForAll65536Patterns() {
    var mismatches = 0
    for bits in 0...UInt16.max {
        let reference = Float(Float16(bitPattern: bits))
        let ours = f16ToFloat(bits)
        if reference.isNaN {
            if !ours.isNaN || (ours.bitPattern >> 13) & 0x3FF != UInt32(bits & 0x3FF) { mismatches += 1 }
        } else if ours.bitPattern != reference.bitPattern {
            mismatches += 1
        }
    }
    #expect(mismatches == 0)
}

@Test func floatToF16RoundsToNearestEvenForAllPatternsAndMidpoints() {
    var mismatches: [String] = []
    for bits in 0...UInt16.max {
        let value = Float(Float16(bitPattern: bits))
        if value.isNaN {
            let h = floatToF16(value)
            if h & 0x7C00 != 0x7C00 || h & 0x03FF == 0 { mismatches.append("NaN \(bits) -> \(h)") }
            continue
        }
        let next = Float(Float16(bitPattern: bits &+ 1))
        for probe in roundingProbes(value, next: next) {
            let expected = Float16(probe).bitPattern
            let got = floatToF16(probe)
            if got != expected, mismatches.count < 10 { mismatches.append("\(probe): \(got) vs \(expected)") }
        }
    }
    #expect(mismatches.isEmpty, "\(mismatches)")
    #expect(floatToF16(65520) == 0x7C00)        // first value that rounds to infinity
    #expect(floatToF16(65519.99) == 0x7BFF)
    #expect(floatToF16(-0.0) == 0x8000)
    #expect(floatToF16(1e-8) == 0)               // below half the smallest subnormal
}

@Test func bf16ToFloatIsExactForAll65536Patterns() {
    for bits in 0...UInt16.max {
        let value = bf16ToFloat(bits)
        #expect(value.bitPattern == UInt32(bits) << 16)
    }
}

@Test func floatToBF16RoundsToNearestEvenForAllPatternsAndMidpoints() {
    var mismatches: [String] = []
    for bits in 0...UInt16.max {
        let value = bf16ToFloat(bits)
        if value.isNaN {
            let b = floatToBF16(value)
            if b & 0x7F80 != 0x7F80 || b & 0x007F == 0 { mismatches.append("NaN \(bits)") }
            continue
        }
        let next = bf16ToFloat(bits &+ 1)
        for probe in roundingProbes(value, next: next) where !probe.isNaN {
            let expected = referenceBF16(probe)
            let got = floatToBF16(probe)
            if got != expected, mismatches.count < 10 { mismatches.append("\(probe): \(got) vs \(expected)") }
        }
    }
    #expect(mismatches.isEmpty, "\(mismatches)")
}

@Test func bufferConversionsHandleUnalignedSources() {
    var generator = SeededGenerator(seed: 7)
    let values = generator.floats(257, in: -70000...70000)
    let halves = values.map(floatToF16)
    var bytes: [UInt8] = [0]  // one leading byte makes the 16-bit data misaligned
    halves.withUnsafeBytes { bytes.append(contentsOf: $0) }
    var out = [Float](repeating: 0, count: values.count)
    bytes.withUnsafeBytes { raw in
        out.withUnsafeMutableBufferPointer { convertF16ToFloat(raw.baseAddress! + 1, $0.baseAddress!, count: values.count) }
    }
    #expect(out == halves.map(f16ToFloat))
}

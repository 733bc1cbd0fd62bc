/// How `LinearInt8` computes its int32 sums `Σ_k (xq − z)·wq` so that they are exact on the CPU at
/// hand (PLATFORM.md). oneDNN multiplies u8 codes by s8 weights; without an int8 dot-product
/// instruction it uses `vpmaddubsw`, which adds each pair of products into a *saturating int16*
/// (255·127·2 = 64,770 > 32,767), so a plain product is silently wrong on AVX2 and on AVX-512
/// before VNNI. Weights keep their full 8 bits in every method: nothing is requantized behind the
/// user's back.
public enum IntegerProductMethod: String, Sendable, CaseIterable {
    /// One u8·s8 product. Exact where products accumulate straight into int32: AVX-512 VNNI,
    /// AVX-VNNI, AMX.
    case native
    /// The weights split as `w = ⌈w/2⌉ + ⌊w/2⌋`, both halves in [−64, 64], so no int16 pair sum can
    /// saturate (255·64·2 = 32,640 ≤ 32,767): two u8·s8 products of the same codes, the second
    /// added to the first in oneDNN's epilogue. Exact on every ISA at twice the integer work.
    case splitWeights = "split-weights"

    /// The method of this process: `native` where oneDNN's ISA has an int8 dot product and a probe
    /// of the extreme products (255 × ±127, −128) is exact, else `splitWeights`. Decided once.
    public static let automatic: IntegerProductMethod = {
        guard InstructionSet.effective.hasInt8DotProduct else { return .splitWeights }
        return nativeProbeIsExact() ? .native : .splitWeights
    }()

    /// Why `automatic` is what it is, in one line (for `bench` and `selftest`).
    public static var automaticReason: String {
        let isa = InstructionSet.effective
        switch (automatic, isa.hasInt8DotProduct) {
        case (.native, _): return "\(isa.name) accumulates int8 products in int32 (probe exact)"
        case (_, true): return "\(isa.name) should accumulate int8 products in int32, but the probe found wrong sums"
        case (_, false): return "\(isa.name) has no int8 dot product: one u8·s8 product saturates int16 pair sums"
        }
    }

    /// Codes of 255 against weights of ±127 and −128 in adjacent positions: the pairs that
    /// saturate an int16 are all there. Any oneDNN failure counts as inexact.
    private static func nativeProbeIsExact() -> Bool {
        let (rows, inputs, outputs) = (8, 256, 16)
        let weights: [Int8] = (0..<(outputs * inputs)).map { i in [127, 127, -128, -127, 127, -128][(i + i / inputs) % 6] }
        let codes: [UInt8] = (0..<(rows * inputs)).map { i in i % 5 == 4 ? UInt8(i % 251) : 255 }
        guard let layer = try? LinearInt8(weights: weights, outputs: outputs, inputs: inputs,
                                          weightScales: Array(repeating: 1, count: outputs), bias: nil, method: .native) else {
            return false
        }
        for zeroPoint: Int32 in [0, 128] {
            var sums = [Int32](repeating: 0, count: rows * outputs)
            guard (try? codes.withUnsafeBufferPointer {
                try layer.accumulate($0.baseAddress!, rows: rows, zeroPoint: zeroPoint, into: &sums)
            }) != nil else { return false }
            for n in 0..<rows {
                for c in 0..<outputs {
                    var expected: Int32 = 0
                    for k in 0..<inputs { expected += (Int32(codes[n * inputs + k]) - zeroPoint) * Int32(weights[c * inputs + k]) }
                    if sums[n * outputs + c] != expected { return false }
                }
            }
        }
        return true
    }
}

#if canImport(Glibc)
import Glibc
#endif

/// Signal-to-quantization-noise ratio in dB: `10·log10(‖reference‖² / ‖reference − approximation‖²)`
/// (QUANTIZATION.md, "Quality measures"). `+inf` when the two are identical, `-inf` for a zero
/// reference with a nonzero error.
public func sqnrDB(reference: UnsafeBufferPointer<Float>, approximation: UnsafeBufferPointer<Float>) -> Double {
    precondition(reference.count == approximation.count, "lengths differ: \(reference.count) vs \(approximation.count)")
    var signal = 0.0, noise = 0.0
    for i in 0..<reference.count {
        let r = Double(reference[i])
        let d = r - Double(approximation[i])
        signal += r * r
        noise += d * d
    }
    if noise == 0 { return .infinity }
    if signal == 0 { return -.infinity }
    return 10 * log10(signal / noise)
}

public func sqnrDB(reference: [Float], approximation: [Float]) -> Double {
    reference.withUnsafeBufferPointer { r in approximation.withUnsafeBufferPointer { sqnrDB(reference: r, approximation: $0) } }
}


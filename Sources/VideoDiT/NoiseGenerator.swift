import Foundation
import Tensors

/// The project's own Gaussian noise, identical on every machine: PCG32 (O'Neill's
/// `pcg32_random_r`, XSH-RR output, 64-bit LCG state) drives Box–Muller.
///
/// - Seeding: `state = 0; step; state += seed; step` with increment `(stream << 1) | 1`, as the PCG
///   reference's `pcg32_srandom_r(seed, stream)`.
/// - Uniforms: `u = (x >> 8 + 0.5) / 2^24` for a 32-bit draw x, so u ∈ (0, 1) and log(u) is finite.
/// - Box–Muller in Double: `r = sqrt(−2 ln u1)`, values `r·cos(2π u2)` then `r·sin(2π u2)`, rounded to Float.
public struct NoiseGenerator: Sendable {
    private var state: UInt64
    private let increment: UInt64
    private var spare: Float?

    public init(seed: UInt64, stream: UInt64 = 54) {
        increment = (stream << 1) | 1
        state = 0
        _ = nextUInt32()
        state &+= seed
        _ = nextUInt32()
    }

    public mutating func nextUInt32() -> UInt32 {
        let old = state
        state = old &* 6_364_136_223_846_793_005 &+ increment
        let xorShifted = UInt32(truncatingIfNeeded: ((old >> 18) ^ old) >> 27)
        let rotation = UInt32(truncatingIfNeeded: old >> 59)
        return (xorShifted >> rotation) | (xorShifted << ((~rotation &+ 1) & 31))
    }

    /// Uniform in (0, 1) with 24 random bits.
    public mutating func nextUniform() -> Double {
        (Double(nextUInt32() >> 8) + 0.5) / 16_777_216
    }

    public mutating func nextGaussian() -> Float {
        if let value = spare {
            spare = nil
            return value
        }
        let u1 = nextUniform(), u2 = nextUniform()
        let r = (-2 * log(u1)).squareRoot()
        let angle = 2 * Double.pi * u2
        spare = Float(r * sin(angle))
        return Float(r * cos(angle))
    }

    /// A tensor of independent standard normal values, row-major.
    public mutating func gaussian(shape: [Int]) -> Tensor {
        Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { _ in nextGaussian() })
    }
}


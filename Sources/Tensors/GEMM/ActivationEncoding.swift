/// One static per-tensor activation encoding (QUANTIZATION.md, "Activations"): scale Δx and zero
/// point z. Symmetric int8 uses z = 0 and codes in [−127, 127]; asymmetric uint8 uses [0, 255].
///
/// The rounding rule, shared by the scalar reference (`code`), the fake-quant path and the oneDNN
/// kernel of the int8 path (`LinearInt8`), and the same as ONNX `QuantizeLinear`:
///
///     xq = clamp(rne(x / Δx) + z, qmin, qmax)
///
/// with `x / Δx` an IEEE float32 division and `rne` rounding half to even.
public struct ActivationEncoding: Sendable, Equatable, Hashable {
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        case symmetricInt8 = "int8", asymmetricUInt8 = "uint8"

        /// The codes: −127…127 (int8, symmetric), 0…255 (uint8).
        public var codes: ClosedRange<Int32> { self == .symmetricInt8 ? -127...127 : 0...255 }
    }

    public let kind: Kind
    public let scale: Float
    public let zeroPoint: Int32

    public var qmin: Int32 { kind.codes.lowerBound }
    public var qmax: Int32 { kind.codes.upperBound }

    public init(kind: Kind, scale: Float, zeroPoint: Int32) {
        precondition(scale > 0 && scale.isFinite, "activation scale must be positive and finite, got \(scale)")
        precondition(kind.codes.contains(zeroPoint),
                     "zero point \(zeroPoint) outside the \(kind.rawValue) code range")
        self.kind = kind
        self.scale = scale
        self.zeroPoint = zeroPoint
    }

    /// The encoding covering [min, max] (min-max estimator). The range always includes 0, so 0 is exact.
    ///
    /// Never traps on bad statistics: a NaN bound counts as 0, an infinite one as ±`Float.greatestFiniteMagnitude / 2`
    /// (so `max − min` stays finite), and a range too small for a normal scale gets the smallest positive one.
    public static func covering(min lo: Float, max hi: Float, kind: Kind) -> ActivationEncoding {
        let limit = Float.greatestFiniteMagnitude / 2
        func bounded(_ v: Float) -> Float { v.isNaN ? 0 : Swift.min(Swift.max(v, -limit), limit) }
        func step(_ range: Float, levels: Float) -> Float { range > 0 ? Swift.max(range / levels, .leastNonzeroMagnitude) : 1 }
        let lo = Swift.min(bounded(lo), 0), hi = Swift.max(bounded(hi), 0)
        switch kind {
        case .symmetricInt8:
            return ActivationEncoding(kind: kind, scale: step(Swift.max(abs(lo), abs(hi)), levels: 127), zeroPoint: 0)
        case .asymmetricUInt8:
            let scale = step(hi - lo, levels: 255)
            let zero = Int32(Swift.min(Swift.max((-lo / scale).rounded(.toNearestOrAwayFromZero), 0), 255))
            return ActivationEncoding(kind: kind, scale: scale, zeroPoint: zero)
        }
    }

    /// The integer code of one value: the scalar reference of the rule above. NaN codes to the zero
    /// point (dequantizes to 0); the oneDNN kernel is not defined on NaN, which the forward pass refuses.
    @inline(__always)
    public func code(_ x: Float) -> Int32 {
        if x.isNaN { return zeroPoint }
        // Clamp in float: a huge |x| must not trap on the integer conversion. When |x / Δx| ≥ 2^24
        // the addition of z may round, but such a value is clamped either way.
        let q = (x / scale).rounded(.toNearestOrEven) + Float(zeroPoint)
        return Int32(Swift.min(Swift.max(q, Float(qmin)), Float(qmax)))
    }

    /// Quantize → dequantize: `(xq − z)·Δx`.
    @inline(__always)
    public func fakeQuantize(_ x: Float) -> Float { Float(code(x) - zeroPoint) * scale }

    /// How the int8 kernels store codes: one unsigned byte, `code + 128` for symmetric int8 (a u8
    /// code with zero point 128 gives the same integer sums as the s8 code, and oneDNN's u8·s8
    /// products are the fast and, without VNNI, the exact-able ones), `code` for uint8.
    public var storageOffset: Int32 { kind == .symmetricInt8 ? 128 : 0 }

    /// The zero point of the stored codes: `zeroPoint + storageOffset`.
    public var storageZeroPoint: Int32 { zeroPoint + storageOffset }
}

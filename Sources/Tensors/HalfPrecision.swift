// Conversions between Float32 and the two 16-bit float formats, bit-exact with IEEE 754
// round-to-nearest-even. Branch-free per element so release builds vectorise the loops.
// Tests check every one of the 65,536 16-bit patterns against a scalar reference.

// MARK: - bfloat16

/// bf16 bits → f32: the bf16 bits are the high half of the f32 bits.
@inline(__always)
public func bf16ToFloat(_ bits: UInt16) -> Float {
    Float(bitPattern: UInt32(bits) &<< 16)
}

/// f32 → bf16 bits, round to nearest, ties to even; NaNs stay NaN (quieted), overflow gives ±inf.
@inline(__always)
public func floatToBF16(_ value: Float) -> UInt16 {
    let bits = value.bitPattern
    let rounded = (bits &+ 0x7FFF &+ ((bits &>> 16) & 1)) &>> 16
    let isNaN = (bits & 0x7FFF_FFFF) > 0x7F80_0000
    return isNaN ? UInt16(truncatingIfNeeded: (bits &>> 16) | 0x0040) : UInt16(truncatingIfNeeded: rounded)
}

// MARK: - IEEE half (f16)

/// f16 bits → f32, exact (subnormals, infinities and NaN payloads included).
@inline(__always)
public func f16ToFloat(_ bits: UInt16) -> Float {
    let h = UInt32(bits)
    let sign = (h & 0x8000) &<< 16
    let magnitude = (h & 0x7FFF) &<< 13          // exponent and mantissa in f32 position
    let exponent = magnitude & 0x0F80_0000
    let normal = magnitude &+ ((127 - 15) &<< 23)
    // Infinity/NaN: the exponent must become all ones.
    let special = normal &+ ((128 - 16) &<< 23)
    // Zero/subnormal: value is mantissa · 2^-24, computed exactly in float arithmetic.
    let subnormal = (Float(bitPattern: normal &+ (1 &<< 23)) - Float(bitPattern: 113 &<< 23)).bitPattern
    let result = exponent == 0x0F80_0000 ? special : (exponent == 0 ? subnormal : normal)
    return Float(bitPattern: result | sign)
}

/// f32 → f16 bits, round to nearest, ties to even; overflow gives ±inf; NaNs stay NaN (quieted).
@inline(__always)
public func floatToF16(_ value: Float) -> UInt16 {
    let bits = value.bitPattern
    let sign = UInt16(truncatingIfNeeded: (bits &>> 16) & 0x8000)
    let a = bits & 0x7FFF_FFFF
    // NaN keeps the top mantissa bits and is quieted; inf and anything ≥ 65520 become inf.
    let nan = UInt16(truncatingIfNeeded: 0x7E00 | ((a &>> 13) & 0x03FF))
    // Below 2^-14 the result is subnormal: adding 0.5 lets the FPU round the mantissa (RNE).
    let denormMagic: Float = 0.5
    let sub = UInt16(truncatingIfNeeded: (Float(bitPattern: a) + denormMagic).bitPattern &- denormMagic.bitPattern)
    let mantissaOdd = (a &>> 13) & 1
    let norm = UInt16(truncatingIfNeeded: (a &+ ((15 &- 127) &<< 23) &+ 0xFFF &+ mantissaOdd) &>> 13)
    let magnitude: UInt16
    if a > 0x7F80_0000 { magnitude = nan }
    else if a >= 0x477F_F000 { magnitude = 0x7C00 }
    else if a < 0x3880_0000 { magnitude = sub }
    else { magnitude = norm }
    return magnitude | sign
}

// MARK: - Buffers

/// Converts `count` elements; `source` may be unaligned (checkpoint data is not always 2-aligned).
public func convertF16ToFloat(_ source: UnsafeRawPointer, _ destination: UnsafeMutablePointer<Float>, count: Int) {
    for i in 0..<count {
        destination[i] = f16ToFloat(source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
    }
}

public func convertBF16ToFloat(_ source: UnsafeRawPointer, _ destination: UnsafeMutablePointer<Float>, count: Int) {
    for i in 0..<count {
        destination[i] = bf16ToFloat(source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
    }
}

public func convertFloatToF16(_ source: UnsafePointer<Float>, _ destination: UnsafeMutablePointer<UInt16>, count: Int) {
    for i in 0..<count { destination[i] = floatToF16(source[i]) }
}

public func convertFloatToBF16(_ source: UnsafePointer<Float>, _ destination: UnsafeMutablePointer<UInt16>, count: Int) {
    for i in 0..<count { destination[i] = floatToBF16(source[i]) }
}

/// An orthogonal rotation of a layer's input channels (QuaRot-style, applied online before the
/// input is quantized): `x ↦ H·x` with `H` block-diagonal, each block the Sylvester–Hadamard matrix
/// of size `block` scaled by `1/√block`, and the weights folded as `W ↦ W·Hᵀ` (= `W·H`, `H` is
/// symmetric), so `W·x = (W·Hᵀ)·(H·x)` exactly in real arithmetic. Rotating spreads an outlier
/// channel's energy over its block, so one static per-tensor scale fits every channel better.
///
/// `block` is the largest power of two dividing the width (OpenSora's 1152 → 128, 4608 → 512;
/// the demo's 128 and 512 whole). Runtime cost: `K·log2(block)` additions and one multiply per
/// value (the fast Walsh–Hadamard transform), against the `K·C` multiply-adds of the product.
public enum HadamardRotation {
    /// The largest power of two dividing `width` (1 for an odd width: no rotation).
    public static func blockSize(width: Int) -> Int {
        precondition(width > 0, "width must be positive")
        return width & -width
    }

    /// Rotates `rows` rows of `width` values in place: each consecutive `block` values `v ↦ H·v`.
    public static func rotate(_ x: UnsafeMutablePointer<Float>, rows: Int, width: Int, block: Int) {
        precondition(block > 0 && block & (block - 1) == 0 && width % block == 0, "block \(block) must be a power of two dividing \(width)")
        let norm = 1 / Float(block).squareRoot()
        var start = 0
        while start < rows * width {
            let v = x + start
            var h = 1
            if block >= 8 {
                // Stages h = 1, 2, 4 on eight values in registers: the same additions, in the same
                // order, as the loop below (bit-identical), without its short inner loops.
                var i = 0
                while i < block {
                    let p = v + i
                    let a0 = p[0] + p[1], a1 = p[0] - p[1], a2 = p[2] + p[3], a3 = p[2] - p[3]
                    let a4 = p[4] + p[5], a5 = p[4] - p[5], a6 = p[6] + p[7], a7 = p[6] - p[7]
                    let b0 = a0 + a2, b1 = a1 + a3, b2 = a0 - a2, b3 = a1 - a3
                    let b4 = a4 + a6, b5 = a5 + a7, b6 = a4 - a6, b7 = a5 - a7
                    p[0] = b0 + b4; p[1] = b1 + b5; p[2] = b2 + b6; p[3] = b3 + b7
                    p[4] = b0 - b4; p[5] = b1 - b5; p[6] = b2 - b6; p[7] = b3 - b7
                    i += 8
                }
                h = 8
            }
            while h < block {
                var i = 0
                while i < block {
                    let lo = v + i, hi = v + i + h
                    for j in 0..<h {
                        let a = lo[j], b = hi[j]
                        lo[j] = a + b
                        hi[j] = a - b
                    }
                    i += 2 * h
                }
                h *= 2
            }
            for i in 0..<block { v[i] *= norm }
            start += block
        }
    }

    /// Runs `body` on a rotated copy of `rows` rows of `width` values (an executor's online transform).
    public static func withRotated<R>(_ x: UnsafePointer<Float>, rows: Int, width: Int, block: Int,
                                      _ body: (UnsafePointer<Float>) throws -> R) rethrows -> R {
        let copy = rotated(Array(UnsafeBufferPointer(start: x, count: rows * width)), width: width, block: block)
        return try copy.withUnsafeBufferPointer { try body($0.baseAddress!) }
    }

    /// `rows` rows of `width` values rotated (a copy).
    public static func rotated(_ x: [Float], width: Int, block: Int) -> [Float] {
        var out = x
        guard !x.isEmpty else { return out }
        out.withUnsafeMutableBufferPointer { rotate($0.baseAddress!, rows: x.count / width, width: width, block: block) }
        return out
    }
}

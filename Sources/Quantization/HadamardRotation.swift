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

    /// `rows` rows of `width` values rotated (a copy).
    public static func rotated(_ x: [Float], width: Int, block: Int) -> [Float] {
        var out = x
        guard !x.isEmpty else { return out }
        out.withUnsafeMutableBufferPointer { rotate($0.baseAddress!, rows: x.count / width, width: width, block: block) }
        return out
    }
}

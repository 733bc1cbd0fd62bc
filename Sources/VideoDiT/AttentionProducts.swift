import Tensors

/// Static integer attention products (QUANTIZATION.md, "Which layers"): q, k and v each on one
/// per-tensor encoding of the step, the softmax output P on the fixed uint8 grid of [0, 1].
///
///     scores = (Σ_d q̂·k̂) · (Δq·Δk·(1/√D))          q̂, k̂, v̂ ∈ [−127, 127] (symmetric int8)
///     out    = (Σ_j p̂·v̂) · (Δp·Δv)                  p̂ = clamp(rne(p / Δp), 0, 255), Δp = 1/255
///
/// The softmax between the two products stays float32. Each sum is an integer, and the two
/// multipliers are float32 constants evaluated in that order, so an NPU's int32 accumulator and
/// one float multiply give these bits.
public struct AttentionEncodings: Sendable, Equatable, Hashable {
    public var q: ActivationEncoding
    public var k: ActivationEncoding
    public var v: ActivationEncoding
    public var p: ActivationEncoding

    /// P's grid: uint8 over [0, 1], Δp = 1/255, z = 0 — softmax outputs need no calibration.
    public static let probabilities = ActivationEncoding(kind: .asymmetricUInt8, scale: 1 / 255, zeroPoint: 0)

    public init(q: ActivationEncoding, k: ActivationEncoding, v: ActivationEncoding, p: ActivationEncoding = Self.probabilities) {
        self.q = q
        self.k = k
        self.v = v
        self.p = p
    }

    /// The float32 multiplier of the QKᵀ integer sums for head width `headDim`.
    public func scoreMultiplier(headDim: Int) -> Float { q.scale * k.scale * (1 / Float(headDim).squareRoot()) }

    /// The float32 multiplier of the P·V integer sums.
    public var outputMultiplier: Float { p.scale * v.scale }
}

/// An executor that takes part in attention's two products: it sees q, k and v as the products
/// would (after qk-norm and RoPE; v as the value rows of the fused projection, with any folded
/// `1/s`), and may ask for them to run on integers. `attention` names the module whose products
/// these are: the state-dict prefix of its linears (`spatial_blocks.0.attn`, `…cross_attn`,
/// v1.0 `…attn_temp`).
public protocol AttentionProductExecutor: LinearExecutor {
    /// The encodings to run `attention`'s products on at `step`; nil (the default) for float32.
    func attentionEncodings(_ attention: String, step: Int?) -> AttentionEncodings?
    /// Sees the operands of one call, each dense `[rows, width]`: queries, then keys and values
    /// (`keyRows` of them; for cross-attention the packed caption tokens of all samples).
    func observeAttentionOperands(_ attention: String, step: Int?, q: UnsafePointer<Float>, queryRows: Int,
                                  k: UnsafePointer<Float>, v: UnsafePointer<Float>, keyRows: Int, width: Int)
    /// Whether `observeAttentionOperands` wants the operands (they are copied out for it).
    var observesAttentionOperands: Bool { get }
}

extension AttentionProductExecutor {
    public func attentionEncodings(_ attention: String, step: Int?) -> AttentionEncodings? { nil }
    public func observeAttentionOperands(_ attention: String, step: Int?, q: UnsafePointer<Float>, queryRows: Int,
                                         k: UnsafePointer<Float>, v: UnsafePointer<Float>, keyRows: Int, width: Int) {}
    public var observesAttentionOperands: Bool { false }
}

/// The operand names the calibration statistics use for an attention's q, k and v.
public enum AttentionOperand: String, CaseIterable, Sendable {
    case q, k, v

    /// `spatial_blocks.0.attn` → `spatial_blocks.0.attn.q` (k, v).
    public func name(of attention: String) -> String { attention + "." + rawValue }
}

/// The integer products: codes as float32 integers, multiplied on oneDNN's float32 batched matmul
/// without a scale. Integer products and their sums are exact in float32 while every partial sum
/// stays under 2^24, whatever the summation order; a reduction longer than that bound allows is
/// cut into pieces whose sums are exact and added in Double. The multiplier is applied after, so
/// the result is the scalar integer reference's (`Float(Σ) · multiplier`) on every ISA.
enum IntegerAttention {
    /// The longest reduction whose every partial sum of products of codes up to `a` and `b` in
    /// magnitude stays exactly representable in float32.
    static func exactTerms(_ a: Int32, _ b: Int32) -> Int { (1 << 24) / max(Int(a) * Int(b), 1) }

    /// The largest |code − z| of an encoding.
    static func codeMagnitude(_ e: ActivationEncoding) -> Int32 { max(e.qmax - e.zeroPoint, e.zeroPoint - e.qmin) }

    /// `rows` rows of `width` values, `stride` apart → dense `code − z` as float32.
    static func codes(_ x: UnsafePointer<Float>, rows: Int, width: Int, stride: Int, _ e: ActivationEncoding) -> [Float] {
        var out = [Float](repeating: 0, count: rows * width)
        for r in 0..<rows {
            let row = x + r * stride
            for i in 0..<width { out[r * width + i] = Float(e.code(row[i]) - e.zeroPoint) }
        }
        return out
    }

    /// `C = multiplier · A·B` over integer-valued float operands with exact sums: one product
    /// where the reduction is short enough, else pieces accumulated in Double, then
    /// `Float(Σ) · multiplier`.
    static func product(a: UnsafePointer<Float>, _ aLayout: MatrixBatch, b: UnsafePointer<Float>, _ bLayout: MatrixBatch,
                        c: UnsafeMutablePointer<Float>, _ cLayout: MatrixBatch, multiplier: Float, exactTerms: Int) throws {
        let n = aLayout.dims.count, reduction = aLayout.dims[n - 1]
        if reduction <= exactTerms {
            // Unscaled, so one cached primitive serves every step's scales; then Float(Σ)·multiplier.
            try BatchedMatmul.run(a: a, aLayout, b: b, bLayout, c: c, cLayout)
            forEachOffset(cLayout) { c[$1] *= multiplier }
            return
        }
        let outLayout = MatrixBatch.contiguous(cLayout.dims)
        let count = cLayout.dims.reduce(1, *)
        var sums = [Double](repeating: 0, count: count)
        var piece = [Float](repeating: 0, count: count)
        var start = 0
        while start < reduction {
            let length = min(exactTerms, reduction - start)
            var aPiece = aLayout, bPiece = bLayout
            aPiece.dims[n - 1] = length
            bPiece.dims[n - 2] = length
            try piece.withUnsafeMutableBufferPointer { p in
                try BatchedMatmul.run(a: a + start * aLayout.strides[n - 1], aPiece, b: b + start * bLayout.strides[n - 2], bPiece,
                                      c: p.baseAddress!, outLayout)
            }
            for i in 0..<count { sums[i] += Double(piece[i]) }
            start += length
        }
        forEachOffset(cLayout) { c[$1] = Float(sums[$0]) * multiplier }
    }

    /// Calls `body(i, offset)` for every element of `layout` in row-major order `i`, with its offset.
    private static func forEachOffset(_ layout: MatrixBatch, _ body: (Int, Int) -> Void) {
        let n = layout.dims.count, count = layout.dims.reduce(1, *)
        var index = [Int](repeating: 0, count: n), offset = 0
        for i in 0..<count {
            body(i, offset)
            // Odometer step over the dims, last fastest.
            var d = n - 1
            while d >= 0 {
                index[d] += 1
                offset += layout.strides[d]
                if index[d] < layout.dims[d] { break }
                offset -= index[d] * layout.strides[d]
                index[d] = 0
                d -= 1
            }
        }
    }
}

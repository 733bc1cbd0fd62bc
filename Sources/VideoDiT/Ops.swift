import Foundation
import Tensors

// Elementwise and normalisation kernels of the forward pass (OPENSORA.md §4), on row-major
// buffers with the sizes spelled out. LayerNorm, GELU, SiLU and softmax run on oneDNN (the
// scalar references are in TensorsTests/RowKernelTests); the rest are simple loops.

enum Ops {
    static let layerNormEpsilon: Float = 1e-6

    /// LayerNorm over the last dimension without affine parameters: `x` `[rows, C]` → `out` (oneDNN).
    static func layerNorm(_ x: UnsafePointer<Float>, rows: Int, width c: Int, into out: UnsafeMutablePointer<Float>) throws {
        out.update(from: x, count: rows * c)
        try RowKernels.layerNorm(out, rows: rows, width: c, epsilon: layerNormEpsilon)
    }

    /// `x·(1 + scale) + shift` per sample: `x` `[B, N, C]`, `shift`/`scale` `[B, C]` at the given strides.
    static func modulate(_ x: UnsafeMutablePointer<Float>, batch: Int, tokens: Int, width c: Int,
                         shift: (Int) -> UnsafePointer<Float>, scale: (Int) -> UnsafePointer<Float>) {
        for b in 0..<batch {
            let sh = shift(b), sc = scale(b)
            for n in 0..<tokens {
                let row = x + (b * tokens + n) * c
                for i in 0..<c { row[i] = row[i] * (1 + sc[i]) + sh[i] }
            }
        }
    }

    /// `x += gate ⊙ y` per sample (gate `[C]` per sample).
    static func addGated(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, batch: Int, tokens: Int, width c: Int,
                         gate: (Int) -> UnsafePointer<Float>) {
        for b in 0..<batch {
            let g = gate(b)
            for n in 0..<tokens {
                let offset = (b * tokens + n) * c
                for i in 0..<c { x[offset + i] += g[i] * y[offset + i] }
            }
        }
    }

    /// GELU with the tanh approximation, in place (oneDNN).
    static func geluTanh(_ x: UnsafeMutablePointer<Float>, count: Int) throws {
        try RowKernels.geluTanh(x, count: count)
    }

    static func silu(_ x: [Float]) throws -> [Float] {
        var y = x
        try y.withUnsafeMutableBufferPointer { try RowKernels.silu($0.baseAddress!, count: $0.count) }
        return y
    }

    /// Numerically stable softmax of each row, in place (oneDNN).
    static func softmaxRows(_ x: UnsafeMutablePointer<Float>, rows: Int, width: Int) throws {
        try RowKernels.softmax(x, rows: rows, width: width)
    }

    /// LlamaRMSNorm over each `d`-wide group: `x·rsqrt(mean(x²) + 1e-6)·w`, in place.
    static func rmsNorm(_ x: UnsafeMutablePointer<Float>, groups: Int, width d: Int, weight: [Float]) {
        for g in 0..<groups {
            let v = x + g * d
            var ms: Float = 0
            for i in 0..<d { ms += v[i] * v[i] }
            let inv = 1 / (ms / Float(d) + 1e-6).squareRoot()
            for i in 0..<d { v[i] = weight[i] * (v[i] * inv) }
        }
    }

    /// Sinusoidal timestep features `[cos(t·f_k), sin(t·f_k)]`, `f_k = exp(−ln(10000)·k/128)`: `[B, 256]`.
    static func timestepFeatures(_ t: [Float], dim: Int = 256) -> [Float] {
        let half = dim / 2
        let freqs = (0..<half).map { expf(-logf(10000) * Float($0) / Float(half)) }
        var out = [Float](repeating: 0, count: t.count * dim)
        for (b, value) in t.enumerated() {
            for k in 0..<half {
                let a = value * freqs[k]
                out[b * dim + k] = cosf(a)
                out[b * dim + half + k] = sinf(a)
            }
        }
        return out
    }

    /// v1.2 `PositionEmbedding2D`: `[S, C]`, column half first, each half `[sin | cos]` over C/4
    /// frequencies `1/10000^(2k/(C/2))`, positions `r/scale·(base/Hn)` and `c/scale·(base/Wn)`.
    static func positionEmbedding2D(width c: Int, rows hn: Int, columns wn: Int, scale: Float, baseSize: Int) -> [Float] {
        let half = c / 2
        let invFreq = stride(from: 0, to: half, by: 2).map { 1 / powf(10000, Float($0) / Float(half)) }
        let quarter = invFreq.count
        let rowFactor = Float(baseSize) / Float(hn), colFactor = Float(baseSize) / Float(wn)
        var out = [Float](repeating: 0, count: hn * wn * c)
        for r in 0..<hn {
            let rowPos = Float(r) / scale * rowFactor
            for col in 0..<wn {
                let colPos = Float(col) / scale * colFactor
                let base = (r * wn + col) * c
                for k in 0..<quarter {
                    let a = colPos * invFreq[k], b = rowPos * invFreq[k]
                    out[base + k] = sinf(a)
                    out[base + quarter + k] = cosf(a)
                    out[base + half + k] = sinf(b)
                    out[base + half + quarter + k] = cosf(b)
                }
            }
        }
        return out
    }

    /// Interleaved (GPT-J) rotary embedding along a sequence of `n` positions, in place:
    /// `x` `[sequences, n, heads, D]`, pairs (2k, 2k+1) rotated by `p·f_k`.
    static func rope(_ x: UnsafeMutablePointer<Float>, sequences: Int, length n: Int, heads: Int, headDim d: Int,
                     frequencies: [Float]) {
        var cosTable = [Float](repeating: 0, count: n * d / 2), sinTable = cosTable
        for p in 0..<n {
            for k in 0..<(d / 2) {
                let a = Float(p) * frequencies[k]
                cosTable[p * d / 2 + k] = cosf(a)
                sinTable[p * d / 2 + k] = sinf(a)
            }
        }
        for s in 0..<sequences {
            for p in 0..<n {
                for h in 0..<heads {
                    let v = x + ((s * n + p) * heads + h) * d
                    for k in 0..<(d / 2) {
                        let c = cosTable[p * d / 2 + k], sn = sinTable[p * d / 2 + k]
                        let x0 = v[2 * k], x1 = v[2 * k + 1]
                        v[2 * k] = x0 * c - x1 * sn
                        v[2 * k + 1] = x1 * c + x0 * sn
                    }
                }
            }
        }
    }
}

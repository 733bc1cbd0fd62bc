import Foundation

/// SmoothQuant (QUANTIZATION.md, "SmoothQuant"): per input channel j,
/// `s_j = max|X_j|^α / max_c |W[c, j]|^(1−α)`, clamped to ≥ 1e-5; `x' = x / s`, `W' = W·diag(s)`.
public enum SmoothQuant {
    public static let minimumScale: Float = 1e-5

    /// `s` `[K]` from the activation's per-channel max|x| `[K]` and the weight `[C, K]`.
    /// A channel whose weights are all zero keeps s = 1 (no migration is possible there).
    public static func smoothing(activationAbsMax: [Float], weight: [Float], outputs: Int, inputs: Int, alpha: Double) -> [Float] {
        precondition(activationAbsMax.count == inputs && weight.count == outputs * inputs)
        var weightMax = [Float](repeating: 0, count: inputs)
        for c in 0..<outputs { for k in 0..<inputs { weightMax[k] = max(weightMax[k], abs(weight[c * inputs + k])) } }
        return smoothing(activationAbsMax: activationAbsMax, weightAbsMax: weightMax, alpha: alpha)
    }

    /// The same from max|W[:, j]| per input channel (`BlockLinear.inputAbsMax`).
    public static func smoothing(activationAbsMax: [Float], weightAbsMax weightMax: [Float], alpha: Double) -> [Float] {
        precondition(activationAbsMax.count == weightMax.count)
        return weightMax.indices.map { j in
            guard weightMax[j] > 0 else { return 1 }
            let s = pow(Double(activationAbsMax[j]), alpha) / pow(Double(weightMax[j]), 1 - alpha)
            return max(Float(s), minimumScale)
        }
    }

    /// Where a layer's `1/s` goes (QUANTIZATION.md, "Where 1/s goes").
    public enum Fold: Sendable, Equatable, CustomStringConvertible {
        /// `attn.qkv`, `mlp.fc1`: into the block's per-step modulation rows.
        case modulation
        /// `attn.proj`, `cross_attn.proj`, v1.0 `attn_temp.proj`: into the V rows (and bias) of the named linear.
        case valueRows(of: String)
        /// `cross_attn.kv_linear`: into the rows of a per-block copy of `y_embedder.y_proj.fc2`.
        case captionProjection
        /// `cross_attn.q_linear`, `mlp.fc2`, v1.0 `attn_temp.qkv`: an explicit multiply before quantization.
        case explicit

        public var isFolded: Bool { self != .explicit }

        /// Whether a channel shift (`LayerSettings.shift`) folds here: only into the modulation
        /// rows, so only `attn.qkv` and `mlp.fc1` take one.
        public var takesShift: Bool { self == .modulation }

        public var description: String {
            switch self {
            case .modulation: return "folded into the block's per-step modulation table (shift/s, (1+scale)/s)"
            case .valueRows(let layer): return "folded into the V rows and bias of \(layer)"
            case .captionProjection: return "folded into the block's copy of y_embedder.y_proj.fc2 (rows and bias)"
            case .explicit: return "explicit per-channel multiply x·(1/s) before quantization"
            }
        }
    }

    /// The fold of a block linear, from its state-dict name.
    public static func fold(of layer: String) -> Fold {
        let block = QuantizationPlan.block(of: layer)
        switch String(layer.dropFirst(block.count + 1)) {
        case "attn.qkv", "mlp.fc1": return .modulation
        case "attn.proj": return .valueRows(of: block + ".attn.qkv")
        case "attn_temp.proj": return .valueRows(of: block + ".attn_temp.qkv")
        case "cross_attn.proj": return .valueRows(of: block + ".cross_attn.kv_linear")
        case "cross_attn.kv_linear": return .captionProjection
        default: return .explicit
        }
    }
}

import Foundation
import Tensors

/// Video quality of a quantized run against the FP run from the same seed (QUANTIZATION.md,
/// "Quality measures"): PSNR, SSIM and temporal flicker.
///
/// Videos are `[3, T, H, W]` (R, G, B planes, then frames, rows, columns) with values in [-1, 1],
/// the model's output convention. Every metric first maps a value x to `(x + 1) / 2` (as
/// `PromptFidelity` does, but computed in Double) and clamps it to [0, 1]; all results are in
/// those [0, 1] units and accumulated in Double. Mismatched shapes are programmer errors and trap.
public enum VideoMetrics {
    /// Peak signal-to-noise ratio in dB over all RGB values: `10·log10(1 / MSE)` (peak 1).
    /// Identical videos (after clamping) give `+infinity`.
    public static func psnr(_ video: Tensor, reference: Tensor) -> Double {
        checkSameShape(video, reference)
        var sum = 0.0
        for (a, b) in zip(video.scalars, reference.scalars) {
            let d = unit(a) - unit(b)
            sum += d * d
        }
        let mse = sum / Double(video.count)
        return mse == 0 ? .infinity : 10 * log10(1 / mse)
    }

    /// Structural similarity on luma `Y = 0.299 R + 0.587 G + 0.114 B` (in [0, 1]), per frame,
    /// averaged over frames.
    ///
    /// Per frame: local means, variances and covariance under an 11×11 Gaussian window (σ = 1.5,
    /// weights normalised to sum 1), population (not sample) statistics, C1 = 0.01², C2 = 0.03²,
    /// `SSIM = (2μxμy + C1)(2σxy + C2) / ((μx² + μy² + C1)(σx² + σy² + C2))`, averaged over the
    /// "valid" window positions only — those where the whole window lies inside the frame, i.e.
    /// `(H − 10) × (W − 10)` of them; no padding. This equals skimage's
    /// `structural_similarity(..., gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
    /// data_range=1)`, whose reflect-padded borders are cropped by 5 pixels before its mean.
    ///
    /// A frame with fewer than 11 rows (columns) uses a window of the frame's height (width) in that
    /// dimension: a Gaussian of σ = 1.5 over those taps, centred on the middle of the frame and
    /// normalised, so there is a single valid position in that dimension. (skimage refuses such
    /// frames.)
    public static func ssim(_ video: Tensor, reference: Tensor) -> Double {
        checkSameShape(video, reference)
        let (T, H, W) = (video.shape[1], video.shape[2], video.shape[3])
        guard T > 0, H > 0, W > 0 else { return 1 }
        let rowKernel = gaussianKernel(taps: min(windowSize, H))
        let columnKernel = gaussianKernel(taps: min(windowSize, W))
        var total = 0.0
        for t in 0..<T {
            let x = luma(video, frame: t), y = luma(reference, frame: t)
            total += frameSSIM(x, y, height: H, width: W, rowKernel: rowKernel, columnKernel: columnKernel)
        }
        return total / Double(T)
    }

    /// Temporal flicker: mean `|frame_t − frame_{t−1}|` over all RGB values and t = 1..T−1, in
    /// [0, 1] units. 0 for fewer than two frames.
    public static func flicker(_ video: Tensor) -> Double {
        checkVideo(video)
        let (T, H, W) = (video.shape[1], video.shape[2], video.shape[3])
        guard T >= 2, H > 0, W > 0 else { return 0 }
        let frame = H * W
        var sum = 0.0
        for c in 0..<3 {
            for t in 1..<T {
                let current = (c * T + t) * frame, previous = current - frame
                for i in 0..<frame {
                    sum += abs(unit(video.scalars[current + i]) - unit(video.scalars[previous + i]))
                }
            }
        }
        return sum / Double(3 * (T - 1) * frame)
    }

    /// `flicker(video) / flicker(reference)`: 1 when both are 0, `+infinity` when only the
    /// reference's is 0.
    public static func flickerRatio(_ video: Tensor, reference: Tensor) -> Double {
        checkSameShape(video, reference)
        let (v, r) = (flicker(video), flicker(reference))
        if r == 0 { return v == 0 ? 1 : .infinity }
        return v / r
    }

    // MARK: - SSIM internals

    static let windowSize = 11
    static let sigma = 1.5
    static let c1 = 0.01 * 0.01
    static let c2 = 0.03 * 0.03
    static let fullKernel = makeGaussianKernel(taps: windowSize)

    static func gaussianKernel(taps: Int) -> [Double] {
        taps == windowSize ? fullKernel : makeGaussianKernel(taps: taps)
    }

    /// `taps` weights `exp(−(i − centre)² / 2σ²)`, centre `(taps − 1) / 2`, summing to 1.
    static func makeGaussianKernel(taps: Int) -> [Double] {
        let centre = Double(taps - 1) / 2
        let weights = (0..<taps).map { i in exp(-(Double(i) - centre) * (Double(i) - centre) / (2 * sigma * sigma)) }
        let sum = weights.reduce(0, +)
        return weights.map { $0 / sum }
    }

    /// Frame `t` of `video` as luma in [0, 1], `[H, W]` row-major.
    static func luma(_ video: Tensor, frame t: Int) -> [Double] {
        let (T, H, W) = (video.shape[1], video.shape[2], video.shape[3])
        let plane = T * H * W, start = t * H * W
        return (0..<(H * W)).map { i in
            let s = video.scalars
            return 0.299 * unit(s[start + i]) + 0.587 * unit(s[plane + start + i]) + 0.114 * unit(s[2 * plane + start + i])
        }
    }

    /// Mean SSIM of one luma frame pair over the valid window positions.
    static func frameSSIM(_ x: [Double], _ y: [Double], height H: Int, width W: Int,
                          rowKernel: [Double], columnKernel: [Double]) -> Double {
        let (kh, kw) = (rowKernel.count, columnKernel.count)
        let (outH, outW) = (H - kh + 1, W - kw + 1)
        // Columns first ([H, outW]), then rows ([outH, outW]), for x, y, x², y², xy together.
        var horizontal = [SIMD8<Double>](repeating: .zero, count: H * outW)
        for r in 0..<H {
            for c in 0..<outW {
                var acc = SIMD8<Double>.zero
                for k in 0..<kw {
                    let (a, b) = (x[r * W + c + k], y[r * W + c + k])
                    acc += columnKernel[k] * SIMD8(a, b, a * a, b * b, a * b, 0, 0, 0)
                }
                horizontal[r * outW + c] = acc
            }
        }
        var total = 0.0
        for r in 0..<outH {
            for c in 0..<outW {
                var m = SIMD8<Double>.zero
                for k in 0..<kh { m += rowKernel[k] * horizontal[(r + k) * outW + c] }
                let (mx, my) = (m[0], m[1])
                let (vx, vy, cxy) = (m[2] - mx * mx, m[3] - my * my, m[4] - mx * my)
                total += (2 * mx * my + c1) * (2 * cxy + c2) / ((mx * mx + my * my + c1) * (vx + vy + c2))
            }
        }
        return total / Double(outH * outW)
    }

    // MARK: - Helpers

    /// A model value in [-1, 1] as a [0, 1] intensity, clamped.
    @inline(__always)
    static func unit(_ value: Float) -> Double {
        min(max((Double(value) + 1) / 2, 0), 1)
    }

    static func checkVideo(_ video: Tensor) {
        precondition(video.rank == 4 && video.shape[0] == 3, "video must be [3, T, H, W], got \(video.shape)")
    }

    static func checkSameShape(_ video: Tensor, _ reference: Tensor) {
        checkVideo(video)
        precondition(video.shape == reference.shape,
                     "video and reference shapes differ: video \(video.shape), reference \(reference.shape)")
    }
}

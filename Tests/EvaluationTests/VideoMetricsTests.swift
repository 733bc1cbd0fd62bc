import Foundation
import Testing
import Tensors
@testable import Evaluation

@Suite struct VideoMetricsTests {
    // MARK: - Fixtures

    /// A fixed-seed LCG (Numerical Recipes constants) for reproducible videos.
    struct LCG {
        var state: UInt32
        mutating func next() -> Float {
            state = state &* 1_664_525 &+ 1_013_904_223
            return Float(state >> 8) / Float(1 << 24)
        }
    }

    /// `[3, T, H, W]` with values uniform in [-1, 1).
    static func randomVideo(_ shape: [Int], seed: UInt32) -> Tensor {
        var rng = LCG(state: seed)
        return Tensor(shape: shape) { _ in rng.next() * 2 - 1 }
    }

    /// `[3, frames.count, H, W]` whose frame t is constant `rgb(frames[t])` (model units).
    static func constantFrames(_ frames: [SIMD3<Float>], height: Int, width: Int) -> Tensor {
        let T = frames.count, frame = height * width
        return Tensor(shape: [3, T, height, width]) { i in
            let c = i / (T * frame), t = (i / frame) % T
            return frames[t][c]
        }
    }

    static func gray(_ v: Float) -> SIMD3<Float> { SIMD3(repeating: v) }

    // MARK: - Slow scalar SSIM reference

    /// Direct 2-D window sums with a 2-D Gaussian (no separability), straight from the definition.
    static func referenceSSIM(_ video: Tensor, _ reference: Tensor) -> Double {
        let (T, H, W) = (video.shape[1], video.shape[2], video.shape[3])
        let (kh, kw) = (min(11, H), min(11, W))
        let (ch, cw) = (Double(kh - 1) / 2, Double(kw - 1) / 2)
        var window = [[Double]](repeating: [Double](repeating: 0, count: kw), count: kh)
        var weightSum = 0.0
        for i in 0..<kh {
            for j in 0..<kw {
                let d2 = (Double(i) - ch) * (Double(i) - ch) + (Double(j) - cw) * (Double(j) - cw)
                window[i][j] = exp(-d2 / (2 * 1.5 * 1.5))
                weightSum += window[i][j]
            }
        }
        func unit(_ v: Float) -> Double { min(max((Double(v) + 1) / 2, 0), 1) }
        func luma(_ v: Tensor, _ t: Int, _ r: Int, _ c: Int) -> Double {
            0.299 * unit(v[0, t, r, c]) + 0.587 * unit(v[1, t, r, c]) + 0.114 * unit(v[2, t, r, c])
        }
        let (c1, c2) = (0.01 * 0.01, 0.03 * 0.03)
        var sum = 0.0
        for t in 0..<T {
            var frameSum = 0.0
            for r in 0...(H - kh) {
                for c in 0...(W - kw) {
                    var (mx, my, xx, yy, xy) = (0.0, 0.0, 0.0, 0.0, 0.0)
                    for i in 0..<kh {
                        for j in 0..<kw {
                            let w = window[i][j] / weightSum
                            let a = luma(video, t, r + i, c + j), b = luma(reference, t, r + i, c + j)
                            mx += w * a; my += w * b; xx += w * a * a; yy += w * b * b; xy += w * a * b
                        }
                    }
                    let (vx, vy, cxy) = (xx - mx * mx, yy - my * my, xy - mx * my)
                    frameSum += (2 * mx * my + c1) * (2 * cxy + c2) / ((mx * mx + my * my + c1) * (vx + vy + c2))
                }
            }
            sum += frameSum / Double((H - kh + 1) * (W - kw + 1))
        }
        return sum / Double(T)
    }

    // MARK: - PSNR

    @Test func psnrOfAVideoAgainstItselfIsInfinite() {
        let video = Self.randomVideo([3, 2, 8, 8], seed: 1)
        #expect(VideoMetrics.psnr(video, reference: video) == .infinity)
    }

    @Test func psnrOfAConstantOffsetIsMinusTwentyLog10OfTheOffset() {
        // Values on a dyadic grid in [-1, 0.5] so that adding 2d keeps them exact and in range.
        let reference = Tensor(shape: [3, 2, 8, 8]) { i in Float(i % 97) / 64 - 1 }
        for d in [0.25, 0.125, 0.015625] {
            let video = Tensor(shape: reference.shape, scalars: reference.scalars.map { $0 + Float(2 * d) })
            let psnr = VideoMetrics.psnr(video, reference: reference)
            #expect(abs(psnr - (-20 * log10(d))) < 1e-9, "d = \(d): \(psnr) dB")
        }
    }

    @Test func psnrClampsOutOfRangeValuesFirst() {
        let reference = Tensor(shape: [3, 1, 4, 4], repeating: 1)
        let video = Tensor(shape: [3, 1, 4, 4], repeating: 3)
        #expect(VideoMetrics.psnr(video, reference: reference) == .infinity)
    }

    // MARK: - SSIM

    @Test func ssimOfIdenticalVideosIsOne() {
        let video = Self.randomVideo([3, 3, 16, 16], seed: 2)
        #expect(abs(VideoMetrics.ssim(video, reference: video) - 1) < 1e-12)
    }

    @Test func ssimOfConstantFramesIsTheLuminanceTerm() {
        // Constant frames have zero (co)variance, so SSIM = (2μxμy + C1)/(μx² + μy² + C1).
        let c1 = 0.0001
        func luminance(_ mx: Double, _ my: Double) -> Double { (2 * mx * my + c1) / (mx * mx + my * my + c1) }
        // Gray -0.5 → 0.25 against gray 0.5 → 0.75.
        let video = Self.constantFrames([Self.gray(-0.5), Self.gray(-0.5)], height: 12, width: 13)
        let reference = Self.constantFrames([Self.gray(0.5), Self.gray(0.5)], height: 12, width: 13)
        #expect(abs(VideoMetrics.ssim(video, reference: reference) - luminance(0.25, 0.75)) < 1e-9)
        // Pure red (luma 0.299) against black (luma 0): checks the luma weights.
        let red = Self.constantFrames([SIMD3(1, -1, -1)], height: 12, width: 12)
        let black = Self.constantFrames([Self.gray(-1)], height: 12, width: 12)
        #expect(abs(VideoMetrics.ssim(red, reference: black) - luminance(0.299, 0)) < 1e-12)
        // Averaged over frames: one identical frame (1) and one red-vs-black frame.
        let mixed = Self.constantFrames([Self.gray(-1), SIMD3(1, -1, -1)], height: 12, width: 12)
        let blacks = Self.constantFrames([Self.gray(-1), Self.gray(-1)], height: 12, width: 12)
        #expect(abs(VideoMetrics.ssim(mixed, reference: blacks) - (1 + luminance(0.299, 0)) / 2) < 1e-12)
    }

    @Test func ssimMatchesTheDirectTwoDimensionalReference() {
        let video = Self.randomVideo([3, 4, 16, 16], seed: 3)
        let reference = Self.randomVideo([3, 4, 16, 16], seed: 4)
        let fast = VideoMetrics.ssim(video, reference: reference)
        let slow = Self.referenceSSIM(video, reference)
        #expect(abs(fast - slow) < 1e-9, "fast \(fast), reference \(slow)")
        // Correlated pair (reference plus noise) so the structure term matters too.
        let noisy = Tensor(shape: video.shape, scalars: zip(video.scalars, reference.scalars).map { $0 * 0.8 + $1 * 0.2 })
        let fastNoisy = VideoMetrics.ssim(noisy, reference: video)
        let slowNoisy = Self.referenceSSIM(noisy, video)
        #expect(abs(fastNoisy - slowNoisy) < 1e-9, "fast \(fastNoisy), reference \(slowNoisy)")
        #expect(fastNoisy > fast)
    }

    @Test func ssimOfFramesSmallerThanTheWindowUsesTheFrameSizedWindow() {
        let video = Self.randomVideo([3, 2, 5, 14], seed: 5)
        let reference = Self.randomVideo([3, 2, 5, 14], seed: 6)
        let fast = VideoMetrics.ssim(video, reference: reference)
        let slow = Self.referenceSSIM(video, reference)
        #expect(abs(fast - slow) < 1e-9, "fast \(fast), reference \(slow)")
    }

    // MARK: - Flicker

    @Test func flickerOfAStaticVideoIsZero() {
        let frame = Self.randomVideo([3, 1, 8, 8], seed: 7).scalars
        let plane = 8 * 8
        let still = Tensor(shape: [3, 4, 8, 8]) { i in
            let c = i / (4 * plane), p = i % plane
            return frame[c * plane + p]
        }
        #expect(VideoMetrics.flicker(still) == 0)
        #expect(VideoMetrics.flicker(Self.randomVideo([3, 1, 8, 8], seed: 8)) == 0)
    }

    @Test func flickerOfAlternatingConstantFramesIsTheirDifference() {
        // -0.5 → 0.25 and 0.5 → 0.75 in [0, 1] units: |a − b| = 0.5.
        let video = Self.constantFrames([Self.gray(-0.5), Self.gray(0.5), Self.gray(-0.5), Self.gray(0.5)],
                                        height: 6, width: 5)
        #expect(abs(VideoMetrics.flicker(video) - 0.5) < 1e-12)
        // Only the red channel changes (by 0.5): the mean over all RGB values is a third of that.
        let redOnly = Self.constantFrames([SIMD3(-0.5, 0, 0), SIMD3(0.5, 0, 0), SIMD3(-0.5, 0, 0)], height: 6, width: 5)
        #expect(abs(VideoMetrics.flicker(redOnly) - 0.5 / 3) < 1e-12)
    }

    @Test func flickerRatioBasics() {
        func alternating(_ a: Float, _ b: Float) -> Tensor {
            Self.constantFrames([Self.gray(a), Self.gray(b), Self.gray(a)], height: 4, width: 4)
        }
        let still = alternating(0, 0)
        let strong = alternating(-0.5, 0.5)  // flicker 0.5
        let weak = alternating(-0.25, 0.25)  // flicker 0.25
        #expect(abs(VideoMetrics.flickerRatio(strong, reference: weak) - 2) < 1e-12)
        #expect(abs(VideoMetrics.flickerRatio(weak, reference: strong) - 0.5) < 1e-12)
        #expect(VideoMetrics.flickerRatio(still, reference: strong) == 0)
        #expect(VideoMetrics.flickerRatio(still, reference: still) == 1)
        #expect(VideoMetrics.flickerRatio(strong, reference: still) == .infinity)
    }
}

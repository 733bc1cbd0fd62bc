import Foundation
import Testing
import Tensors
@testable import Evaluation

// PSNR and SSIM against scikit-image, an implementation independent of ours
// (Tests/Fixtures/metrics.safetensors, written by tools/make_metric_fixtures.py): a noisy copy, a
// contrast change, values outside [-1, 1] (clamped first), and a 13×17 frame. Both sides compute
// in float64 with separable Gaussian filters: agreement to 1e-9 leaves room for summation order only.
@Test(arguments: ["noisy", "contrast", "clamped", "odd_size"])
func psnrAndSSIMMatchScikitImage(pair: String) throws {
    let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/metrics.safetensors").path
    let file = try SafetensorsFile(path: path)
    let video = try file.tensor("\(pair).video"), reference = try file.tensor("\(pair).reference")
    let psnr = try file.view("\(pair).psnr").withElements(as: Double.self) { $0[0] }
    let ssim = try file.view("\(pair).ssim").withElements(as: Double.self) { $0[0] }
    #expect(abs(VideoMetrics.psnr(video, reference: reference) - psnr) <= 1e-9 * psnr, "\(pair): PSNR")
    #expect(abs(VideoMetrics.ssim(video, reference: reference) - ssim) <= 1e-9, "\(pair): SSIM \(VideoMetrics.ssim(video, reference: reference)) vs skimage \(ssim)")
}

import Foundation
import Testing
@testable import Quantization
import Tensors

@Test func asymmetricEncodingCoversTheRangeWithAnExactZero() {
    let e = ActivationEncoding.covering(min: -1, max: 3, kind: .asymmetricUInt8)
    #expect(e.scale == Float(4) / 255)
    #expect(e.zeroPoint == 64)                       // round(63.75)
    #expect(e.code(0) == 64 && e.fakeQuantize(0) == 0)
    #expect(e.code(3) == 255 && e.code(-1) == 0)
    #expect(e.code(100) == 255 && e.code(-100) == 0)  // clamped
}

@Test func activationHalvesRoundToEven() {
    let e = ActivationEncoding.covering(min: -2, max: 1, kind: .symmetricInt8)
    #expect(e.scale == Float(2) / 127 && e.zeroPoint == 0)
    #expect(e.code(2) == 127 && e.code(-5) == -127)
    // x / 0.5 = 0.5, −0.5, 1.5, 2.5, −2.5: ties go to the even neighbour (as ONNX QuantizeLinear).
    let s = ActivationEncoding(kind: .symmetricInt8, scale: 0.5, zeroPoint: 0)
    #expect([0.25, -0.25, 0.75, 1.25, -1.25, 1e30].map(s.code) == [0, 0, 2, 2, -2, 127])
    // The zero point is added after rounding: 0.5 → 0, + 7.
    let u = ActivationEncoding(kind: .asymmetricUInt8, scale: 0.5, zeroPoint: 7)
    #expect([0.25, 0.75, -1.25, -100].map(u.code) == [7, 9, 5, 0])
}

@Test func percentileAndMSEEstimators() {
    // 999 values in [-1, 1] and one outlier at 50.
    var samples = (0..<999).map { Float($0 - 499) / 499 }
    samples.append(50)
    let full = ActivationRangeEstimator.percentile(samples, p: 100, kind: .symmetricInt8)
    #expect(full.scale == Float(50) / 127)
    let clipped = ActivationRangeEstimator.percentile(samples, p: 99.9, kind: .symmetricInt8)
    #expect(clipped.scale < full.scale / 10)
}

@Test func mseClipsALongTail() {
    // A Laplace-shaped sample (|x| = −ln u on a grid of u): most mass below 3, a sparse tail to ~9.9.
    let n = 20_000
    let samples = (0..<n).map { i -> Float in
        let u = (Double(i / 2) + 0.5) / Double(n / 2)
        return Float(-log(u)) * (i % 2 == 0 ? 1 : -1)
    }
    let lo = samples.min()!, hi = samples.max()!
    let minMax = ActivationEncoding.covering(min: lo, max: hi, kind: .symmetricInt8)
    let mse = ActivationRangeEstimator.mse(samples, min: lo, max: hi, kind: .symmetricInt8)
    func error(_ e: ActivationEncoding) -> Double { samples.reduce(0) { $0 + Double(($1 - e.fakeQuantize($1)) * ($1 - e.fakeQuantize($1))) } }
    #expect(mse.scale < minMax.scale)
    #expect(error(mse) < error(minMax))
}

@Test func dynamicPerTokenGivesEveryRowItsOwnScale() {
    let x: [Float] = [1, -0.5, 0.25,
                      100, 50, -100]
    let y = DynamicPerTokenQuantizer.fakeQuantize(x, rows: 2, width: 3)
    #expect(y[0] == 1 && y[3] == 100 && y[5] == -100)
    #expect(abs(y[1] + 0.5) <= 0.5 / 127 && abs(y[4] - 50) <= 100 / 127.0 / 2 + 1e-5)
}

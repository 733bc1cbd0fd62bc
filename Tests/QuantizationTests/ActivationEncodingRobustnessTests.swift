import Foundation
import Testing
@testable import Quantization
import Tensors

// Bad statistics (NaN, ±∞, subnormal ranges) give a usable encoding; they never trap.

@Test(arguments: [ActivationEncoding.Kind.symmetricInt8, .asymmetricUInt8])
func notANumberCodesToTheZeroPoint(kind: ActivationEncoding.Kind) {
    let e = ActivationEncoding.covering(min: -1, max: 3, kind: kind)
    #expect(e.code(.nan) == e.zeroPoint)
    #expect(e.code(-.nan) == e.zeroPoint)
    #expect(e.fakeQuantize(.nan) == 0)
    #expect(e.code(.infinity) == e.qmax && e.code(-.infinity) == e.qmin)
}

@Test(arguments: [ActivationEncoding.Kind.symmetricInt8, .asymmetricUInt8])
func nonFiniteBoundsAreClampedNotTrapped(kind: ActivationEncoding.Kind) {
    let big = Float.greatestFiniteMagnitude
    let bounds: [(Float, Float)] = [(-.infinity, .infinity), (-1, .infinity), (-.infinity, 1), (.nan, .nan), (.nan, 2),
                                    (-2, .nan), (-big, big), (-.leastNonzeroMagnitude, .leastNonzeroMagnitude)]
    for (lo, hi) in bounds {
        let e = ActivationEncoding.covering(min: lo, max: hi, kind: kind)
        #expect(e.scale.isFinite && e.scale > 0, "[\(lo), \(hi)]: scale \(e.scale)")
        #expect((e.qmin...e.qmax).contains(e.zeroPoint), "[\(lo), \(hi)]: zero point \(e.zeroPoint)")
        #expect(e.fakeQuantize(0) == 0, "[\(lo), \(hi)]")
        #expect(e.fakeQuantize(1).isFinite, "[\(lo), \(hi)]")
    }
    // A NaN bound counts as 0: the other bound alone sets the range.
    #expect(ActivationEncoding.covering(min: .nan, max: 2, kind: kind) == ActivationEncoding.covering(min: 0, max: 2, kind: kind))
}

@Test func rangeEstimatorsSurviveNonFiniteSamples() {
    let samples: [Float] = [-1, 0.5, .infinity, 2, -.infinity, 0.25]
    for kind in [ActivationEncoding.Kind.symmetricInt8, .asymmetricUInt8] {
        #expect(ActivationRangeEstimator.percentile(samples, p: 100, kind: kind).scale.isFinite)
        #expect(ActivationRangeEstimator.mse(samples, min: -.infinity, max: .infinity, kind: kind).scale.isFinite)
    }
    let row = DynamicPerTokenQuantizer.fakeQuantize([.infinity, 1, .nan, -2], rows: 2, width: 2)
    #expect(row[1] == 0 && row[2] == 0)
    #expect(abs(row[3] - -2) < 0.02)
}

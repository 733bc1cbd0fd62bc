import VideoDiT

/// A linear executor that runs float32 and records every block linear's input statistics per
/// sampler step: calibration is an ordinary FP sampling run with this executor on the seam.
public final class CalibrationObserver: LinearExecutor {
    /// Statistics per layer name, per step (index in the sampler schedule; nil → step 0).
    public private(set) var statistics: [String: [Int: LayerStepStatistics]] = [:]
    public let reservoirRows: Int

    public init(reservoirRows: Int = 32) { self.reservoirRows = reservoirRows }

    public func run(_ layer: BlockLinear, step: Int?, input: UnsafePointer<Float>, rows: Int,
                    output: UnsafeMutablePointer<Float>) throws {
        let s = step ?? 0
        let fresh = LayerStepStatistics(width: layer.inputs, reservoirCapacity: reservoirRows,
                                        seed: layer.name.hashValueStable &+ UInt64(s))
        // Mutated in place through the defaulting subscripts (no copy of the arrays per call).
        statistics[layer.name, default: [:]][s, default: fresh].observe(input, rows: rows)
        try layer.float32.forward(input, rows: rows, into: output)
    }
}

extension String {
    /// FNV-1a of the UTF-8 bytes: stable across runs (Swift's hashValue is seeded per process).
    var hashValueStable: UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }
}

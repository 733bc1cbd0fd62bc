import VideoDiT

/// A linear executor that runs float32 and records every block linear's input statistics per
/// sampler step, and the operands of every attention's two products (`<attention>.q`, `.k`, `.v`,
/// `AttentionOperand`): calibration is an ordinary FP sampling run with this executor on the seam.
public final class CalibrationObserver: AttentionProductExecutor {
    /// Statistics per layer name, per step (index in the sampler schedule; nil → step 0).
    public private(set) var statistics: [String: [Int: LayerStepStatistics]] = [:]
    public let reservoirRows: Int

    public init(reservoirRows: Int = 32) { self.reservoirRows = reservoirRows }

    public func run(_ layer: BlockLinear, step: Int?, input: UnsafePointer<Float>, rows: Int,
                    output: UnsafeMutablePointer<Float>) throws {
        // Mutated in place through the defaulting subscripts (no copy of the arrays per call).
        observe(layer.name, step: step, input, rows: rows, width: layer.inputs)
        try layer.float32.forward(input, rows: rows, into: output)
    }

    public var observesAttentionOperands: Bool { true }

    public func observeAttentionOperands(_ attention: String, step: Int?, q: UnsafePointer<Float>, queryRows: Int,
                                         k: UnsafePointer<Float>, v: UnsafePointer<Float>, keyRows: Int, width: Int) {
        observe(AttentionOperand.q.name(of: attention), step: step, q, rows: queryRows, width: width)
        // A batch without caption tokens has no keys: no statistics rather than an empty range.
        guard keyRows > 0 else { return }
        observe(AttentionOperand.k.name(of: attention), step: step, k, rows: keyRows, width: width)
        observe(AttentionOperand.v.name(of: attention), step: step, v, rows: keyRows, width: width)
    }

    private func observe(_ name: String, step: Int?, _ x: UnsafePointer<Float>, rows: Int, width: Int) {
        let s = step ?? 0
        let fresh = LayerStepStatistics(width: width, reservoirCapacity: reservoirRows, seed: name.hashValueStable &+ UInt64(s))
        statistics[name, default: [:]][s, default: fresh].observe(x, rows: rows)
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

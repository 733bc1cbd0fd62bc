import Quantization
import Tensors
import VideoDiT

/// The activation statistics of a calibration and what the current plan makes of them, per
/// (layer, sampler step): the data behind the activation screen. Immutable once built; a reference
/// type so the state can hold it without copying its arrays.
public final class ActivationData: @unchecked Sendable {
    /// `statistics[layer][step]`, step 0 the noisiest.
    public let statistics: [String: [Int: LayerStepStatistics]]
    /// Sampler timesteps `t` per step.
    public let timesteps: [Float]
    /// The calibration cache entry (`CalibrationCache.Key.digest`).
    public let calibrationDigest: String
    /// Prompts × seeds the statistics come from.
    public let samples: Int
    /// Per quantized layer, per step: the plan's static encoding.
    public let encodings: [String: [ActivationEncoding]]
    /// Per quantized layer: one encoding for all steps (what naive static quantization would use).
    public let globalEncodings: [String: ActivationEncoding]
    /// Per layer: max|W[:, j]| per input channel (SmoothQuant's weight side), `[K]`; computed
    /// when first asked for (one layer's weights read, not the model's).
    private let weightAbsMax: @Sendable (String) -> [Float]?

    public var steps: Int { timesteps.count }

    public convenience init(statistics: [String: [Int: LayerStepStatistics]], timesteps: [Float], calibrationDigest: String, samples: Int,
                            encodings: [String: [ActivationEncoding]], globalEncodings: [String: ActivationEncoding],
                            weightInputAbsMax: [String: [Float]]) {
        self.init(statistics: statistics, timesteps: timesteps, calibrationDigest: calibrationDigest, samples: samples,
                  encodings: encodings, globalEncodings: globalEncodings, weightAbsMax: { weightInputAbsMax[$0] })
    }

    private init(statistics: [String: [Int: LayerStepStatistics]], timesteps: [Float], calibrationDigest: String, samples: Int,
                 encodings: [String: [ActivationEncoding]], globalEncodings: [String: ActivationEncoding],
                 weightAbsMax: @escaping @Sendable (String) -> [Float]?) {
        self.statistics = statistics
        self.timesteps = timesteps
        self.calibrationDigest = calibrationDigest
        self.samples = samples
        self.encodings = encodings
        self.globalEncodings = globalEncodings
        self.weightAbsMax = weightAbsMax
    }

    /// max|W[:, j]| per input channel of `layer` `[K]`, or nil for a layer the model lacks.
    public func weightInputAbsMax(_ layer: String) -> [Float]? { weightAbsMax(layer) }

    /// Builds the data for `plan` (its encodings per step) and the same plan with one global
    /// scale, from the statistics of every block linear of `model`.
    public convenience init(model: STDiT3, statistics: [String: [Int: LayerStepStatistics]], plan: QuantizationPlan) throws {
        var global = plan
        global.defaults.activationGranularity = .global
        let encodings = try QuantizedModel.activationEncodings(model: model, statistics: statistics, plan: plan)
        let globalEncodings = try QuantizedModel.activationEncodings(model: model, statistics: statistics, plan: global).compactMapValues(\.first)
        let linears = Dictionary(uniqueKeysWithValues: model.blockLinears.map { ($0.name, $0) })
        self.init(statistics: statistics, timesteps: plan.timesteps, calibrationDigest: plan.calibration.digest,
                  samples: plan.calibration.prompts.count * plan.calibration.seeds.count, encodings: encodings,
                  globalEncodings: globalEncodings, weightAbsMax: { linears[$0]?.inputAbsMax })
    }

    /// The statistics of `layer` at one step, or merged over all steps.
    public func statistics(_ layer: String, _ selection: StepSelection) -> LayerStepStatistics? {
        guard let perStep = statistics[layer] else { return nil }
        switch selection {
        case .step(let s): return perStep[s]
        case .all:
            var merged: LayerStepStatistics?
            for s in 0..<steps {
                guard let st = perStep[s] else { continue }
                if merged == nil { merged = st } else { merged!.merge(st) }
            }
            return merged
        }
    }

    /// The plan's encoding of `layer` at a step (the global one for `.all`).
    public func encoding(_ layer: String, _ selection: StepSelection) -> ActivationEncoding? {
        switch selection {
        case .step(let s): return encodings[layer].flatMap { $0.indices.contains(s) ? $0[s] : nil }
        case .all: return globalEncodings[layer]
        }
    }

    /// `[steps][K]` per-channel max|x| of `layer` (zeros where a step has no statistics).
    public func channelAbsMax(_ layer: String) -> [[Float]] {
        guard let perStep = statistics[layer], let width = perStep.values.first?.width else { return [] }
        return (0..<steps).map { perStep[$0]?.channelAbsMax ?? [Float](repeating: 0, count: width) }
    }
}

/// Which sampler step the activation views show: one, or all of them merged.
public enum StepSelection: Sendable, Equatable, Hashable {
    case step(Int)
    case all
}

import DemoModel
import Foundation
import Testing
import Tensors
@testable import Quantization
@testable import VideoDiT

/// Per-layer calibration of one model evaluation of the bundled demo model: the FP input of
/// every block linear, and W8A8 plans with min-max encodings from those inputs.
struct DemoCalibration {
    let model: VideoModel
    let inputs: ModelInputs
    let captures: [String: CapturingExecutor.Capture]

    init() throws {
        let path = try #require(DemoModel.checkpointPath)
        model = try ModelLoader.load(path: path).model
        let golden = try SafetensorsFile(path: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Fixtures/demo-golden.safetensors").path)
        inputs = try ModelInputs(file: golden)
        let capture = CapturingExecutor(pattern: "*")
        _ = try model.forward(inputs, executor: capture, step: nil)
        captures = Dictionary(capture.captures.map { ($0.layer, $0) }, uniquingKeysWith: { a, _ in a })
    }

    /// A one-step W8A8 model whose statistics are exactly the captured inputs: per-channel weights,
    /// min-max activation encodings of this very input.
    func quantized(_ kind: ActivationEncoding.Kind) throws -> QuantizedModel {
        var statistics: [String: [Int: LayerStepStatistics]] = [:]
        for layer in model.blockLinears {
            let capture = captures[layer.name]!
            var st = LayerStepStatistics(width: layer.inputs)
            capture.input.withUnsafeBufferPointer { st.observe($0.baseAddress!, rows: capture.rows) }
            statistics[layer.name] = [0: st]
        }
        var defaults = LayerSettings()
        defaults.activations = kind == .symmetricInt8 ? .int8 : .uint8
        let key = CalibrationCache.Key(checkpointHash: "test", prompts: ["golden"], sampler: "rflow", steps: 1, cfgScale: 1, seeds: [0])
        let plan = QuantizationPlan(checkpointHash: "test", architecture: "STDiT3", calibration: key, timesteps: [inputs.timestep[0]],
                                    stepGroups: [0...0], defaults: defaults)
        return try QuantizedModel(model: try #require(model as? STDiT3), statistics: statistics, plan: plan)
    }
}

/// Both paths see the same integers; they differ only in float rounding: the fake-quant GEMM sums
/// K products of dequantized values in float32, the int8 path scales exact sums once. Bound:
/// K·2⁻²³ relative to Σ_k |x̂_k·ŵ_k| (the float32 error of a K-term sum), summed as
/// 4·K·ulp(max|y|) with a margin for the epilogue.
@Test(arguments: [ActivationEncoding.Kind.asymmetricUInt8, .symmetricInt8])
func int8AndFakeQuantAgreePerLayerOnTheDemoModel(kind: ActivationEncoding.Kind) throws {
    let calibration = try sharedDemoCalibration.get()
    let model = try calibration.quantized(kind)
    let fake = QuantizedModelExecutor(model: model, mode: .fakeQuant), int8 = QuantizedModelExecutor(model: model, mode: .int8)
    var worstRelative: Float = 0
    for layer in calibration.model.blockLinears {
        let capture = calibration.captures[layer.name]!
        var a = [Float](repeating: 0, count: capture.rows * layer.outputs), b = a
        try capture.input.withUnsafeBufferPointer { x in
            try fake.run(layer, step: 0, input: x.baseAddress!, rows: capture.rows, output: &a)
            try int8.run(layer, step: 0, input: x.baseAddress!, rows: capture.rows, output: &b)
        }
        let scale = a.map(abs).max()!
        let worst = zip(a, b).map { abs($0 - $1) }.max()!
        worstRelative = max(worstRelative, worst / scale)
        #expect(worst <= 4 * Float(layer.inputs) * scale.ulp, "\(layer.name): max|Δ| \(worst), max|y| \(scale)")
    }
    #expect(worstRelative < 1e-4)
}

/// Built once for the whole suite: loading and calibrating the demo model is the slow part.
let sharedDemoCalibration = Result { try DemoCalibration() }

/// A whole W8A8 evaluation on the int8 path stays close to float32 (min-max scales of this very
/// input, so this is the best case a static plan can reach), and the dynamic run agrees with it.
@Test func int8ModelTracksFloat32OnTheDemoModel() throws {
    let calibration = try sharedDemoCalibration.get()
    let fp = try calibration.model.forward(calibration.inputs, executor: Float32Executor(), step: nil)
    let q = try calibration.model.forward(calibration.inputs, executor: QuantizedModelExecutor(model: try calibration.quantized(.asymmetricUInt8), mode: .int8), step: nil)
    let sqnr = sqnrDB(reference: fp.scalars, approximation: q.scalars)
    #expect(sqnr > 20, "W8A8 output SQNR \(sqnr) dB")
}

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

    func plan(_ kind: ActivationEncoding.Kind) -> [String: LayerQuantization] {
        var layers: [String: LayerQuantization] = [:]
        for layer in model.blockLinears {
            let x = captures[layer.name]!.input
            let encoding = ActivationEncoding.covering(min: x.min()!, max: x.max()!, kind: kind)
            layers[layer.name] = LayerQuantization(
                weights: WeightQuantizer.quantize(layer.weight, outputs: layer.outputs, inputs: layer.inputs),
                bias: layer.bias, encoding: { _ in encoding })
        }
        return layers
    }
}

/// Both paths see the same integers; they differ only in float rounding: the fake-quant GEMM sums
/// K products of dequantized values in float32, the int8 path scales exact sums once. Bound:
/// K·2⁻²³ relative to Σ_k |x̂_k·ŵ_k| (the float32 error of a K-term sum), summed as
/// 4·K·ulp(max|y|) with a margin for the epilogue.
@Test(arguments: [ActivationEncoding.Kind.asymmetricUInt8, .symmetricInt8])
func int8AndFakeQuantAgreePerLayerOnTheDemoModel(kind: ActivationEncoding.Kind) throws {
    let calibration = try sharedDemoCalibration.get()
    let plan = calibration.plan(kind)
    let fake = FakeQuantExecutor(layers: plan), int8 = Int8Executor(layers: plan)
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
    let q = try calibration.model.forward(calibration.inputs, executor: Int8Executor(layers: calibration.plan(.asymmetricUInt8)), step: nil)
    let sqnr = sqnrDB(reference: fp.scalars, approximation: q.scalars)
    #expect(sqnr > 20, "W8A8 output SQNR \(sqnr) dB")
}

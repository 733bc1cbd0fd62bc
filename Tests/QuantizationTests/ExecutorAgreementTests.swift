import DemoModel
import Foundation
import Testing
import Tensors
@testable import Quantization
@testable import VideoDiT

/// One evaluation of the bundled demo model on the golden inputs as a calibration: built once
/// for the whole suite (loading and capturing is the slow part).
let sharedDemoCalibration = Result { () throws -> OneEvaluationCheck in
    let path = try #require(DemoModel.checkpointPath)
    let model = try #require(try ModelLoader.load(path: path).model as? STDiT3)
    let golden = try SafetensorsFile(path: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/demo-golden.safetensors").path)
    return try OneEvaluationCheck(model: model, inputs: try ModelInputs(file: golden))
}

private func w8a8(_ activations: LayerSettings.Activations, symmetricWeights: Bool = true, alpha: Double = 0) -> LayerSettings {
    var defaults = LayerSettings()
    defaults.activations = activations
    defaults.weightSymmetric = symmetricWeights
    defaults.alpha = alpha
    return defaults
}

/// Per layer, the int8 path and the fake-quant reference on the same input (min-max encodings of
/// that input, so both see the same integers): within `OneEvaluationCheck`'s rounding bound, for
/// symmetric and asymmetric activations and weights, with SmoothQuant's explicit multipliers.
@Test(arguments: [(LayerSettings.Activations.uint8, true, 0.0), (.int8, true, 0.0), (.uint8, false, 0.5), (.int8, true, 0.5)])
func int8AndFakeQuantAgreePerLayerOnTheDemoModel(activations: LayerSettings.Activations, symmetricWeights: Bool, alpha: Double) throws {
    let check = try sharedDemoCalibration.get()
    let model = try check.quantized(w8a8(activations, symmetricWeights: symmetricWeights, alpha: alpha),
                                    explicitAlpha: alpha > 0 ? alpha : nil)
    let agreements = try check.int8AgreesWithFakeQuant(model)
    #expect(agreements.count == check.model.blockLinears.count)
    for a in agreements {
        #expect(a.passed, "\(a.layer): max|Δ| \(a.worst) > bound \(a.bound) on \(InstructionSet.effective)")
    }
}

/// A whole W8A8 evaluation on the int8 path: int8 and fake-quant compute the same integers, so the
/// int8 output must be as close to float32 as the fake-quant output — within 1 dB of its SQNR
/// (they differ by float rounding only; saturated int16 sums on AVX2 cost 8 dB here).
@Test(arguments: [LayerSettings.Activations.uint8, .int8])
func int8ModelTracksFakeQuantOnTheDemoModel(activations: LayerSettings.Activations) throws {
    let check = try sharedDemoCalibration.get()
    let quantized = try check.quantized(w8a8(activations))
    let fp = try check.model.forward(check.inputs, executor: Float32Executor(), step: nil)
    let int8 = try check.model.forward(check.inputs, executor: QuantizedModelExecutor(model: quantized, mode: .int8), step: 0)
    let fake = try check.model.forward(check.inputs, executor: QuantizedModelExecutor(model: quantized, mode: .fakeQuant), step: 0)
    let int8SQNR = sqnrDB(reference: fp.scalars, approximation: int8.scalars)
    let fakeSQNR = sqnrDB(reference: fp.scalars, approximation: fake.scalars)
    #expect(int8SQNR >= fakeSQNR - 1, "int8 \(int8SQNR) dB vs fake-quant \(fakeSQNR) dB on \(InstructionSet.effective)")
    #expect(fakeSQNR > 25, "fake-quant W8A8 output SQNR \(fakeSQNR) dB")
}

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

/// An executor built `reusing` the one of the plan before an edit takes over every unchanged
/// int8 product and makes only the edited block's again, and its output equals a fresh
/// executor's bit for bit (the products it took over are the same integers, scales and bias).
@Test func anExecutorReusingThePreviousPlansProductsMakesOnlyTheEditedBlocks() throws {
    let f = try sharedSmoothQuantFixture.get()
    let before = try QuantizedModel(model: f.model, statistics: f.statistics, plan: f.plan { $0.alpha = 0.5 })
    var edited = f.plan { $0.alpha = 0.5 }
    edited.blocks = [("temporal_blocks.1", .object([("alpha", .double(0.8))]))]
    let after = try QuantizedModel(model: f.model, statistics: f.statistics, plan: edited)
    let first = QuantizedModelExecutor(model: before, mode: .int8)
    _ = try f.model.forward(f.inputs, executor: first, step: 1)
    #expect(first.int8ProductsMade == 56)
    let reusing = QuantizedModelExecutor(model: after, mode: .int8, reusing: first)
    let fresh = QuantizedModelExecutor(model: after, mode: .int8)
    let a = try f.model.forward(f.inputs, executor: reusing, step: 1)
    let b = try f.model.forward(f.inputs, executor: fresh, step: 1)
    #expect(a.scalars == b.scalars)
    // temporal_blocks.1's five foldable layers change with its α; fc2 and q_linear keep theirs.
    #expect(reusing.int8ProductsMade == 5, "\(reusing.int8ProductsMade) products made again")
    let c = try f.model.forward(f.inputs, executor: QuantizedModelExecutor(model: before, mode: .int8, reusing: reusing), step: 1)
    #expect(c.scalars == (try f.model.forward(f.inputs, executor: QuantizedModelExecutor(model: before, mode: .int8), step: 1)).scalars)
}

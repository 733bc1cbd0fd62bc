import DemoModel
import Foundation
import Testing
import Quantization
import Tensors
import VideoDiT
@testable import Workbench

/// The demo model without its text encoder: a checkpoint this tool cannot sample, like a real
/// OpenSora one (captions from T5). Weights written as float32 (the fp16 values exactly).
private func checkpointWithoutTextEncoder(in folder: String) throws -> String {
    let demo = try SafetensorsFile(path: try #require(DemoModel.checkpointPath))
    var writer = SafetensorsWriter()
    writer.metadata = demo.metadata.filter { $0.key != "vocabulary" }
    for name in demo.names where !name.hasPrefix("text_encoder.") { writer.add(name, try demo.tensor(name)) }
    let path = folder + "/no-encoder.safetensors"
    try writer.write(to: path)
    return path
}

/// Statistics recorded elsewhere (here: the demo model's own calibration, which is what
/// `stsq-collect` writes for the same weights) under the key of the checkpoint without an encoder.
private func importStatistics(for path: String, options: CalibrationSetup.Options, cache: String) throws -> CalibrationSetup {
    let demo = try CalibrationSetup(path: try #require(DemoModel.checkpointPath), options: options)
    let target = try CalibrationSetup(path: path, options: options)
    try CalibrationCache(directory: cache).save(try demo.calibrate(), for: target.key)
    return target
}

/// With imported statistics the workbench does everything that needs no sampling — activations,
/// the plan with local SQNR from the sampled rows, an α edit requantizing, export — and the preview
/// and calibration say why they cannot run instead of failing.
@Test func aCheckpointWithoutTextEncoderWorksOnImportedStatistics() throws {
    let folder = NSTemporaryDirectory() + "stsq-imported-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let path = try checkpointWithoutTextEncoder(in: folder)
    let options = CalibrationSetup.Options(prompts: ["a red circle moving left on a blue background"], steps: 2)
    let setup = try importStatistics(for: path, options: options, cache: folder + "/cache")
    #expect(setup.encoder == nil)
    #expect(throws: CalibrationSetupError.self) { try setup.textEncoder() }

    let source = CalibrationSource(options: options, cacheDirectory: folder + "/cache")
    let workbench = Workbench(session: try CheckpointSession(path: path), calibration: source, backgroundJobs: false)
    workbench.dispatch(.requestCalibration)
    let data = try #require(workbench.state.activations)
    #expect(data.statistics.count == 56 + 2 + 3 * 16, "block linears, patch embedding and final linear, q, k, v of 16 attentions")
    let initial = try #require(workbench.state.tuning)
    guard case .done = initial.requantize else { Issue.record("\(initial.requantize)"); return }
    #expect(initial.layerSQNR.count == 56 && initial.layerSQNR.values.allSatisfy { $0.isFinite && $0 > 10 })

    workbench.dispatch(.showScreen(.tuning))
    let failure = try #require(workbench.state.preview?.failure)
    #expect(failure.contains("no text encoder") && failure.contains("stsq-collect"), "\(failure)")
    workbench.dispatch(.moveBlock(1))
    let block = try #require(workbench.state.tuning?.selectedBlock)
    workbench.dispatch(.adjustAlpha(0.5))
    let after = try #require(workbench.state.tuning)
    guard case .done = after.requantize else { Issue.record("\(after.requantize)"); return }
    #expect(after.layerSQNR[block + ".attn.qkv"] != initial.layerSQNR[block + ".attn.qkv"])

    let out = folder + "/export"
    workbench.dispatch(.beginExport)
    workbench.dispatch(.setExportDirectory(out))
    // Space on the model option: the plan alone, then the model with its AIMET encodings.
    workbench.dispatch(.toggleExportField)
    workbench.dispatch(.toggleExportModel)
    workbench.dispatch(.toggleExportModel)
    #expect(workbench.state.tuning?.export?.includesModel == true && workbench.state.tuning?.export?.includesEncodings == true)
    workbench.dispatch(.endExport(accept: true))
    #expect(workbench.state.tuning?.isModified == false, "\(String(describing: workbench.state.message))")
    #expect(workbench.state.message?.text.contains("encodings/ (") == true, "\(String(describing: workbench.state.message))")
    #expect(FileManager.default.fileExists(atPath: out + "/quantized.safetensors"))
    let index = try JSONValue.parse(try String(contentsOfFile: out + "/encodings/index.json", encoding: .utf8))
    #expect(index["steps"]?.arrayValue?.count == 2 && index["format"]?.stringValue == AIMETExport.format)
    let exported = try QuantizationPlan(json: try JSONValue.parse(try String(contentsOfFile: out + "/plan.json", encoding: .utf8)), source: "plan.json")
    #expect(exported == after.plan && exported.checkpointHash == setup.checkpointHash)

    // One more Space: the model with ONNX QDQ models, traced by stsq_collect's Python (tested with
    // ONNX Runtime in tools/stsq_collect/tests/test_onnx.py). Without that Python, the error says
    // what to install, and the plan and model are written.
    workbench.onnxPython = "/nonexistent/python3"
    let onnxOut = folder + "/export-onnx"
    workbench.dispatch(.beginExport)
    workbench.dispatch(.setExportDirectory(onnxOut))
    workbench.dispatch(.toggleExportField)
    for _ in 0..<3 { workbench.dispatch(.toggleExportModel) }
    let dialog = try #require(workbench.state.tuning?.export)
    #expect(dialog.includesModel && dialog.includesONNX && !dialog.includesEncodings)
    workbench.dispatch(.endExport(accept: true))
    let message = workbench.state.message?.text ?? ""
    #expect(message.contains("stsq_collect, torch and onnx") && message.contains("/nonexistent/python3"), "\(message)")
    #expect(FileManager.default.fileExists(atPath: onnxOut + "/quantized.safetensors") && FileManager.default.fileExists(atPath: onnxOut + "/plan.json"))
}

/// Without statistics for its key, the calibration is unavailable and says what to run.
@Test func aCheckpointWithoutTextEncoderAndNoStatisticsSaysWhy() throws {
    let folder = NSTemporaryDirectory() + "stsq-imported-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let path = try checkpointWithoutTextEncoder(in: folder)
    let source = CalibrationSource(options: .init(prompts: ["a red circle"], steps: 2), cacheDirectory: folder + "/cache")
    let workbench = Workbench(session: try CheckpointSession(path: path), calibration: source, backgroundJobs: false)
    guard case .unavailable(let why) = workbench.state.calibration else { Issue.record("\(workbench.state.calibration)"); return }
    #expect(why.contains("no calibration") && why.contains("no text encoder") && why.contains("stsq-collect"), "\(why)")
    workbench.dispatch(.requestCalibration)
    #expect(workbench.state.activations == nil)
}

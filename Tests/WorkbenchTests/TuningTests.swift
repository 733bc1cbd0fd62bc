import DemoModel
import Foundation
import Testing
import Quantization
import Tensors
import VideoDiT
@testable import Workbench

// The plan screen's state: α edits with undo/redo, requantize results (stale ones dropped), the
// unsaved-changes prompt, and the whole loop on the demo model with inline jobs.

/// A plan for the layout fixture's blocks (no model needed for the reducer).
private func tuningState(blocks: [String] = ["spatial_blocks.0", "spatial_blocks.1", "temporal_blocks.0"]) -> TuningState {
    let key = CalibrationCache.Key(checkpointHash: "00", prompts: ["p"], sampler: "rflow", steps: 2, cfgScale: 5, seeds: [0])
    let plan = QuantizationPlan(checkpointHash: "00", architecture: "STDiT3", calibration: key, timesteps: [1000, 500],
                                stepGroups: [0...1])
    return TuningState(plan: plan, name: "default plan", path: nil, blocks: blocks)
}

private func state(_ tuning: TuningState = tuningState()) throws -> WorkbenchState {
    let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures")
    let session = try CheckpointSession(path: fixtures.appendingPathComponent("stdit3-layout.safetensors").path)
    var s = WorkbenchState(checkpointName: "layout", checkpointPath: session.path, catalog: session.catalog)
    s.tuning = tuning
    return s
}

@Test func alphaEditsAreUndoableAndRedoable() throws {
    var s = try state()
    Reducer.apply(.adjustAlpha(0.05), to: &s)
    Reducer.apply(.adjustAlpha(0.05), to: &s)
    Reducer.apply(.moveBlock(1), to: &s)
    Reducer.apply(.adjustAlpha(0.25), to: &s)
    var t = try #require(s.tuning)
    #expect(t.alpha(of: "spatial_blocks.0") == 0.1 && t.alpha(of: "spatial_blocks.1") == 0.25 && t.alpha(of: "temporal_blocks.0") == 0)
    #expect(t.isModified && t.generation == 3 && t.undoStack.count == 3 && t.requantize == .pending)
    // Block entries are kept in model order whatever order they were edited in.
    #expect(t.plan.blocks.map(\.0) == ["spatial_blocks.0", "spatial_blocks.1"])
    Reducer.apply(.undo, to: &s)
    Reducer.apply(.undo, to: &s)
    t = try #require(s.tuning)
    #expect(t.alpha(of: "spatial_blocks.0") == 0.05 && t.alpha(of: "spatial_blocks.1") == 0 && t.redoStack.count == 2)
    Reducer.apply(.redo, to: &s)
    #expect(s.tuning?.alpha(of: "spatial_blocks.0") == 0.1)
    // A new edit drops the redo history; undoing everything gives back the saved plan.
    Reducer.apply(.adjustAlpha(-1), to: &s)
    #expect(s.tuning?.redoStack.isEmpty == true && s.tuning?.alpha(of: "spatial_blocks.1") == 0)
    for _ in 0..<3 { Reducer.apply(.undo, to: &s) }
    #expect(s.tuning?.plan.blocks.isEmpty == true || s.tuning?.plan.blocks.allSatisfy { $0.1["alpha"]?.doubleValue == 0 } == true)
    Reducer.apply(.undo, to: &s)
    #expect(s.message?.text == "nothing to undo")
    // α stays in [0, 1], to two decimals; a typed value is checked.
    Reducer.apply(.adjustAlpha(5), to: &s)
    #expect(s.tuning?.alpha(of: "spatial_blocks.1") == 1)
    Reducer.apply(.beginAlphaEntry, to: &s)
    Reducer.apply(.setAlphaEntry("0.37x"), to: &s)
    #expect(s.tuning?.alphaEntry == "0.37")
    Reducer.apply(.endAlphaEntry(accept: true), to: &s)
    #expect(s.tuning?.alpha(of: "spatial_blocks.1") == 0.37)
    Reducer.apply(.beginAlphaEntry, to: &s)
    Reducer.apply(.setAlphaEntry("1.5"), to: &s)
    Reducer.apply(.endAlphaEntry(accept: true), to: &s)
    #expect(s.tuning?.alpha(of: "spatial_blocks.1") == 0.37 && s.message?.severity == .error)
}

@Test func staleRequantizeResultsAreDropped() throws {
    var s = try state()
    Reducer.apply(.adjustAlpha(0.5), to: &s)          // generation 1
    Reducer.apply(.adjustAlpha(0.1), to: &s)          // generation 2, while 1 is building
    let old = RequantizeResult(generation: 1, layerSQNR: ["spatial_blocks.0.attn.qkv": 30], milliseconds: 12)
    Reducer.apply(.requantized(.success(old), generation: 1), to: &s)
    #expect(s.tuning?.requantize == .pending && s.tuning?.layerSQNR.isEmpty == true)
    let new = RequantizeResult(generation: 2, layerSQNR: ["spatial_blocks.0.attn.qkv": 33], milliseconds: 9)
    Reducer.apply(.requantized(.success(new), generation: 2), to: &s)
    #expect(s.tuning?.requantize == .done(milliseconds: 9) && s.tuning?.layerSQNR["spatial_blocks.0.attn.qkv"] == 33)
    Reducer.apply(.adjustAlpha(0.05), to: &s)
    let next = RequantizeResult(generation: 3, layerSQNR: ["spatial_blocks.0.attn.qkv": 34], milliseconds: 8)
    Reducer.apply(.requantized(.success(next), generation: 3), to: &s)
    #expect(s.tuning?.previousLayerSQNR["spatial_blocks.0.attn.qkv"] == 33 && s.tuning?.layerSQNR["spatial_blocks.0.attn.qkv"] == 34)
}

@Test func quittingWithUnsavedChangesAsksFirst() throws {
    var s = try state()
    Reducer.apply(.quit, to: &s)
    #expect(s.shouldQuit, "nothing edited: quits at once")
    s = try state()
    Reducer.apply(.adjustAlpha(0.05), to: &s)
    Reducer.apply(.quit, to: &s)
    #expect(!s.shouldQuit && s.tuning?.confirmingQuit == true && s.message?.text.contains("unsaved") == true)
    // A job finishing in between does not count as an answer; any user action does.
    Reducer.apply(.statisticsFinished(layer: "x", .failure(WorkbenchError("x"))), to: &s)
    #expect(s.tuning?.confirmingQuit == true)
    Reducer.apply(.moveBlock(1), to: &s)
    #expect(s.tuning?.confirmingQuit == false)
    Reducer.apply(.quit, to: &s)
    Reducer.apply(.quit, to: &s)
    #expect(s.shouldQuit)
    // An export saves: quitting after it does not ask.
    s = try state()
    Reducer.apply(.adjustAlpha(0.05), to: &s)
    Reducer.apply(.beginExport, to: &s)
    Reducer.apply(.setExportDirectory("/tmp/out"), to: &s)
    Reducer.apply(.endExport(accept: true), to: &s)
    #expect(s.tuning?.export?.isWriting == true)
    let json = try #require(s.tuning?.plan.json.serialized(pretty: true))
    Reducer.apply(.exportFinished(.success("exported"), planJSON: json, path: "/tmp/out/plan.json"), to: &s)
    #expect(s.tuning?.export == nil && s.tuning?.isModified == false && s.tuning?.name == "out/plan.json")
    Reducer.apply(.quit, to: &s)
    #expect(s.shouldQuit)
}

/// The loop on the demo model (inline jobs): the plan appears with the statistics, an α edit
/// requantizes and changes the block's local SQNR, other blocks keep theirs, and the export
/// reproduces what `quantize` builds from the exported plan.
@Test func anAlphaEditRequantizesTheBlockAndTheExportMatchesTheHeadlessBuild() throws {
    let path = try #require(DemoModel.checkpointPath)
    let cache = NSTemporaryDirectory() + "stsq-tuning-\(UUID().uuidString)"
    defer { try? FileManager.default.removeItem(atPath: cache) }
    let source = CalibrationSource(options: .init(prompts: ["a red circle moving left on a blue background",
                                                            "a green square growing on a black background"], steps: 2),
                                   cacheDirectory: cache)
    let workbench = Workbench(session: try CheckpointSession(path: path), calibration: source, backgroundJobs: false)
    workbench.dispatch(.requestCalibration)
    let initial = try #require(workbench.state.tuning)
    #expect(initial.name == "default plan" && !initial.isModified)
    guard case .done = initial.requantize else { Issue.record("\(initial.requantize)"); return }
    #expect(initial.layerSQNR.count == 56)
    #expect(workbench.state.preview == nil, "no sampling before the plan screen is opened")
    workbench.dispatch(.showScreen(.tuning))
    #expect(workbench.state.focus == .blocks)
    // The plan screen samples the preview prompt: FP once, then the quantized plan.
    let preview = try #require(workbench.state.preview)
    #expect(preview.prompt == "a red circle moving left on a blue background")
    #expect(preview.reference?.frames == 8 && preview.quantizedGeneration == 0 && preview.metrics?.stepError.count == 2)
    #expect((preview.metrics?.psnr ?? 0) > 15 && (preview.metrics?.ssim ?? 0) > 0.5, "\(String(describing: preview.metrics))")
    workbench.dispatch(.moveBlock(2))
    let block = try #require(workbench.state.tuning?.selectedBlock)
    workbench.dispatch(.adjustAlpha(0.5))
    let after = try #require(workbench.state.tuning)
    #expect(after.alpha(of: block) == 0.5 && after.isModified)
    guard case .done(let ms) = after.requantize else { Issue.record("\(after.requantize)"); return }
    #expect(ms > 0)
    // The quantized video is re-sampled for the edited plan, and the time from the edit is kept.
    #expect(workbench.state.preview?.quantizedGeneration == after.generation)
    #expect((workbench.state.preview?.editToPreviewMilliseconds ?? 0) > ms)
    let qkv = block + ".attn.qkv", other = "spatial_blocks.0.attn.qkv"
    #expect(after.layerSQNR[qkv] != initial.layerSQNR[qkv], "α 0.5 left \(qkv) at \(after.layerSQNR[qkv] ?? .nan) dB")
    #expect(after.previousLayerSQNR[qkv] == initial.layerSQNR[qkv] && after.layerSQNR[other] == initial.layerSQNR[other])
    // The figures equal a full measurement of the edited plan.
    let setup = try workbench.session.calibrationSetup(source)
    let data = try #require(workbench.state.activations)
    let full = try LayerSQNR.local(try QuantizedModel(model: setup.model, statistics: data.statistics, plan: after.plan),
                                   model: setup.model, statistics: data.statistics)
    #expect(full == after.layerSQNR)
    // The quality map follows the edited plan.
    let map = try LayerSQNR.perStep(try QuantizedModel(model: setup.model, statistics: data.statistics, plan: after.plan),
                                    model: setup.model, statistics: data.statistics)
    #expect(workbench.state.qualityMap?.mapValues { $0.description } == map.mapValues { $0.description })

    // fc2 takes α only from its own entry (explicit 1/s): the layer pane's +.
    workbench.dispatch(.focus(.blockLayers))
    workbench.dispatch(.moveBlockLayer(6))
    let fc2 = block + ".mlp.fc2"
    let fc2Before = try #require(workbench.state.tuning?.layerSQNR[fc2])
    workbench.dispatch(.overrideLayer(.alpha(0.5)))
    let withFC2 = try #require(workbench.state.tuning)
    #expect(try withFC2.plan.settings(for: fc2, foldable: false).alpha == 0.5)
    #expect(withFC2.layerSQNR[fc2] != fc2Before && withFC2.layerSQNR[other] == initial.layerSQNR[other])
    let fullAgain = try LayerSQNR.local(try QuantizedModel(model: setup.model, statistics: data.statistics, plan: withFC2.plan),
                                        model: setup.model, statistics: data.statistics)
    #expect(fullAgain == withFC2.layerSQNR)
    workbench.dispatch(.undo)
    #expect(workbench.state.tuning?.plan == after.plan)

    let out = cache + "/export"
    workbench.dispatch(.beginExport)
    workbench.dispatch(.setExportDirectory(out))
    workbench.dispatch(.endExport(accept: true))
    #expect(workbench.state.tuning?.export == nil && workbench.state.tuning?.isModified == false, "\(String(describing: workbench.state.message))")
    #expect(workbench.state.message?.text.contains("quantized.safetensors") == true)
    let exported = try QuantizationPlan(json: try JSONValue.parse(try String(contentsOfFile: out + "/plan.json", encoding: .utf8)), source: "plan.json")
    #expect(exported == after.plan)
    let rebuilt = NSTemporaryDirectory() + "stsq-tuning-rebuilt-\(UUID().uuidString)"
    defer { try? FileManager.default.removeItem(atPath: rebuilt) }
    try QuantizedModelExport.write(try QuantizedModel(model: setup.model, statistics: data.statistics, plan: exported),
                                   model: setup.model, fps: setup.fps, to: rebuilt)
    #expect(FileManager.default.contents(atPath: out + "/quantized.safetensors") == FileManager.default.contents(atPath: rebuilt + "/quantized.safetensors"))

    // The α search of the selected block: 21 points, the best applied as an undoable edit.
    let before = try #require(workbench.state.tuning)
    workbench.dispatch(.autoAlpha)
    let searched = try #require(workbench.state.tuning)
    let curve = try #require(searched.alphaCurve)
    #expect(curve.block == block && curve.points.count == 21 && searched.autoAlphaBlock == nil)
    let expected = try AlphaSearch.curve(block: block, model: setup.model, statistics: data.statistics, plan: before.plan)
    #expect(curve.points.map(\.error) == expected.map(\.error))
    #expect(searched.alpha(of: block) == AlphaSearch.best(expected))
    #expect(curve.points.first { $0.alpha == searched.alpha(of: block) }!.error <= curve.points.first { $0.alpha == 0.5 }!.error)
    if searched.alpha(of: block) != 0.5 {
        workbench.dispatch(.undo)
        #expect(workbench.state.tuning?.alpha(of: block) == 0.5)
    }
    // Two step groups with time-step-wise smoothing of the block: one weight set per group.
    workbench.dispatch(.toggleSmoothing)
    workbench.dispatch(.changeStepGroups(1))
    let grouped = try #require(workbench.state.tuning)
    guard case .done = grouped.requantize else { Issue.record("\(grouped.requantize)"); return }
    let model = try QuantizedModel(model: setup.model, statistics: data.statistics, plan: grouped.plan)
    #expect(model[block + ".attn.qkv"]?.weightSets.count == 2)
    #expect(try LayerSQNR.local(model, model: setup.model, statistics: data.statistics) == grouped.layerSQNR)
    // α per step group on the step groups pane: the figures equal a full measurement again.
    workbench.dispatch(.focus(.stepGroups))
    workbench.dispatch(.lastStep)
    workbench.dispatch(.adjustGroupAlpha(0.25))
    let perGroup = try #require(workbench.state.tuning)
    #expect(perGroup.hasGroupAlphas(block) && perGroup.groupAlphas(of: block)[1] == perGroup.groupAlphas(of: block)[0] + 0.25)
    let perGroupModel = try QuantizedModel(model: setup.model, statistics: data.statistics, plan: perGroup.plan)
    #expect(try LayerSQNR.local(perGroupModel, model: setup.model, statistics: data.statistics) == perGroup.layerSQNR)

    // The α search of that group alone: the curve scores the group's steps, the best α is set for it.
    workbench.dispatch(.autoAlpha)
    let searchedGroup = try #require(workbench.state.tuning)
    let groupCurve = try #require(searchedGroup.alphaCurve)
    #expect(groupCurve.block == block && groupCurve.group == 1)
    let expectedGroup = try AlphaSearch.curve(block: block, group: 1, model: setup.model, statistics: data.statistics, plan: perGroup.plan)
    #expect(groupCurve.points.map(\.error) == expectedGroup.map(\.error))
    #expect(searchedGroup.groupAlphas(of: block) == [perGroup.groupAlphas(of: block)[0], AlphaSearch.best(expectedGroup)!])

    // The plan alone is refused where a quantized model of another plan would be left without its
    // plan; the earlier export stays as it was.
    let exportedBytes = FileManager.default.contents(atPath: out + "/plan.json")
    workbench.dispatch(.beginExport)
    workbench.dispatch(.setExportDirectory(out))
    workbench.dispatch(.toggleExportField)
    workbench.dispatch(.toggleExportModel)
    workbench.dispatch(.endExport(accept: true))
    #expect(workbench.state.message?.text.contains("was built from another plan") == true, "\(String(describing: workbench.state.message))")
    #expect(FileManager.default.contents(atPath: out + "/plan.json") == exportedBytes)

    // The export dialog can leave the quantized model out: plan.json alone is written.
    let planOnly = cache + "/plan-only"
    workbench.dispatch(.beginExport)
    workbench.dispatch(.setExportDirectory(planOnly))
    workbench.dispatch(.toggleExportField)
    workbench.dispatch(.setExportDirectory(planOnly + "-ignored"))
    workbench.dispatch(.toggleExportModel)
    workbench.dispatch(.endExport(accept: true))
    #expect(workbench.state.message?.text.hasPrefix("exported to \(planOnly): plan.json") == true, "\(String(describing: workbench.state.message))")
    #expect(try FileManager.default.contentsOfDirectory(atPath: planOnly) == ["plan.json"])
    let reread = try QuantizationPlan(json: try JSONValue.parse(try String(contentsOfFile: planOnly + "/plan.json", encoding: .utf8)), source: "plan.json")
    #expect(reread == searchedGroup.plan && workbench.state.tuning?.isModified == false)
}

@Test func layerOverridesAreWrittenToThePlanAndUndoable() throws {
    var s = try state()
    s.screen = .tuning
    Reducer.apply(.moveBlockLayer(6), to: &s)                 // spatial_blocks.0.mlp.fc2
    let fc2 = "spatial_blocks.0.mlp.fc2"
    Reducer.apply(.overrideLayer(.alpha(0.05)), to: &s)
    Reducer.apply(.overrideLayer(.cycleWeightBits), to: &s)   // 8 → 6
    Reducer.apply(.overrideLayer(.cycleWeightBits), to: &s)   // 6 → 4
    Reducer.apply(.overrideLayer(.cycleActivations), to: &s)  // int8 → uint8
    Reducer.apply(.overrideLayer(.cycleEstimator), to: &s)    // minmax → percentile
    var t = try #require(s.tuning)
    var settings = try t.plan.settings(for: fc2, foldable: false)
    #expect(settings.alpha == 0.05 && settings.weightBits == 4 && settings.activations == .uint8 && settings.estimator == .percentile)
    #expect(t.plan.layers.map(\.0) == [fc2] && t.undoStack.count == 5)
    // Another layer's entry goes in model order; the written plan reads back the same.
    Reducer.apply(.moveBlockLayer(-6), to: &s)                // attn.qkv
    Reducer.apply(.overrideLayer(.toggleKeepFloat), to: &s)
    t = try #require(s.tuning)
    #expect(t.plan.layers.map(\.0) == ["spatial_blocks.0.attn.qkv", fc2])
    #expect(try QuantizationPlan(json: try JSONValue.parse(t.plan.json.serialized()), source: "p") == t.plan)
    Reducer.apply(.overrideLayer(.clear), to: &s)
    #expect(s.tuning?.plan.layers.map(\.0) == [fc2])
    Reducer.apply(.undo, to: &s)
    Reducer.apply(.undo, to: &s)
    settings = try #require(try s.tuning?.plan.settings(for: "spatial_blocks.0.attn.qkv", foldable: true))
    #expect(!settings.keepFloat && s.tuning?.plan.layers.count == 1)
    // Moving to another block puts the layer cursor on its first layer.
    Reducer.apply(.moveBlock(1), to: &s)
    #expect(s.tuning?.layerCursor == 0)
}

/// `S` turns a channel shift on for `attn.qkv`/`mlp.fc1` and is refused, with a message and no
/// edit, on a layer where it cannot fold; `r` switches the weight rounding to GPTQ and back.
@Test func shiftAndGPTQAreLayerEditsWhereTheyApply() throws {
    var s = try state()
    s.screen = .tuning
    let qkv = "spatial_blocks.0.attn.qkv"
    Reducer.apply(.overrideLayer(.toggleShift), to: &s)            // the cursor is on attn.qkv
    Reducer.apply(.overrideLayer(.toggleWeightRounding), to: &s)
    var settings = try #require(try s.tuning?.plan.settings(for: qkv, foldable: true))
    #expect(settings.shift && settings.weightRounding == .gptq && s.tuning?.undoStack.count == 2)
    Reducer.apply(.moveBlockLayer(1), to: &s)                      // attn.proj
    Reducer.apply(.overrideLayer(.toggleShift), to: &s)
    #expect(s.message?.text.contains("only attn.qkv and mlp.fc1 take one") == true && s.tuning?.undoStack.count == 2)
    Reducer.apply(.moveBlockLayer(-1), to: &s)
    Reducer.apply(.overrideLayer(.toggleWeightRounding), to: &s)
    Reducer.apply(.overrideLayer(.toggleShift), to: &s)
    settings = try #require(try s.tuning?.plan.settings(for: qkv, foldable: true))
    #expect(!settings.shift && settings.weightRounding == .nearest)
}

/// `P` moves the preview to the next prompt; a video sampled for the previous prompt is dropped.
@Test func thePreviewPromptCyclesAndDropsVideosOfThePreviousPrompt() throws {
    var s = try state()
    s.preview = PreviewState(prompt: "a", prompts: ["a", "b", "c"])
    func video(_ prompt: String) -> PreviewVideo {
        PreviewVideo(video: Tensor(shape: [3, 1, 2, 2], scalars: [Float](repeating: 0, count: 12)), prompt: prompt, stepLatents: [[0]])
    }
    Reducer.apply(.previewReference(video("a")), to: &s)
    #expect(s.preview?.reference?.prompt == "a")
    Reducer.apply(.nextPreviewPrompt(1), to: &s)
    #expect(s.preview?.prompt == "b" && s.preview?.reference == nil)
    Reducer.apply(.previewQuantized(video("a"), generation: 0, editToPreviewMilliseconds: nil), to: &s)
    Reducer.apply(.previewReference(video("a")), to: &s)
    #expect(s.preview?.reference == nil && s.preview?.quantized == nil)
    Reducer.apply(.nextPreviewPrompt(-2), to: &s)
    #expect(s.preview?.prompt == "c")
    // A typed prompt: Esc keeps the preview; an empty one is refused; Enter samples it (and P
    // cycles through it with the others).
    Reducer.apply(.beginPromptEntry, to: &s)
    Reducer.apply(.setPromptEntry("a blue square"), to: &s)
    Reducer.apply(.endPromptEntry(accept: false), to: &s)
    #expect(s.preview?.prompt == "c" && s.preview?.promptEntry == nil)
    Reducer.apply(.beginPromptEntry, to: &s)
    Reducer.apply(.setPromptEntry("   "), to: &s)
    Reducer.apply(.endPromptEntry(accept: true), to: &s)
    #expect(s.preview?.prompt == "c" && s.message?.severity == .error)
    Reducer.apply(.previewReference(video("c")), to: &s)
    Reducer.apply(.beginPromptEntry, to: &s)
    Reducer.apply(.setPromptEntry(" a blue square moving up "), to: &s)
    Reducer.apply(.endPromptEntry(accept: true), to: &s)
    #expect(s.preview?.prompt == "a blue square moving up" && s.preview?.reference == nil)
    #expect(s.preview?.prompts == ["a", "b", "c", "a blue square moving up"])
    Reducer.apply(.nextPreviewPrompt(1), to: &s)
    #expect(s.preview?.prompt == "a")
}

@Test func stepGroupsSplitAndMergeEquallyAndUndo() throws {
    var s = try state()                                     // 2 steps, one group
    Reducer.apply(.changeStepGroups(1), to: &s)
    #expect(s.tuning?.plan.stepGroups == [0...0, 1...1] && s.message?.text == "step groups: 0–0 1–1")
    Reducer.apply(.changeStepGroups(1), to: &s)
    #expect(s.tuning?.plan.stepGroups.count == 2 && s.message?.text.contains("one group per step") == true)
    Reducer.apply(.undo, to: &s)
    #expect(s.tuning?.plan.stepGroups == [0...1])
    Reducer.apply(.changeStepGroups(-1), to: &s)
    #expect(s.tuning?.plan.stepGroups == [0...1] && s.tuning?.undoStack.isEmpty == true)
}

/// Split and merge at the selected step, the block's α per step group (time-step-wise smoothing
/// only), typed α per group, the block's +/- moving the whole profile, and undo of each.
@Test func stepGroupsSplitAndMergeAtTheSelectedStepWithAlphaPerGroup() throws {
    let key = CalibrationCache.Key(checkpointHash: "00", prompts: ["p"], sampler: "rflow", steps: 6, cfgScale: 5, seeds: [0])
    let plan = QuantizationPlan(checkpointHash: "00", architecture: "STDiT3", calibration: key, timesteps: (0..<6).map { 1000 - Float($0) * 150 },
                                stepGroups: [0...5])
    var s = try state(TuningState(plan: plan, name: "default plan", path: nil, blocks: ["spatial_blocks.0", "spatial_blocks.1"]))
    s.screen = .tuning
    s.focus = .stepGroups
    s.step = .step(0)
    Reducer.apply(.splitStepGroup, to: &s)
    #expect(s.tuning?.plan.stepGroups == [0...5] && s.message?.text.contains("already starts group 1") == true)
    s.step = .step(3)
    Reducer.apply(.splitStepGroup, to: &s)
    #expect(s.tuning?.plan.stepGroups == [0...2, 3...5] && s.message?.text == "split at step 3: 0–2 3–5")
    // α per group needs time-step-wise smoothing.
    Reducer.apply(.adjustGroupAlpha(0.25), to: &s)
    #expect(s.message?.text.contains("needs time-step-wise smoothing") == true && s.tuning?.undoStack.count == 1)
    Reducer.apply(.toggleSmoothing, to: &s)
    Reducer.apply(.adjustGroupAlpha(0.25), to: &s)
    #expect(s.tuning?.groupAlphas(of: "spatial_blocks.0") == [0, 0.25])
    s.step = .step(1)
    Reducer.apply(.beginAlphaEntry, to: &s)
    #expect(s.tuning?.alphaEntryGroup == 0)
    Reducer.apply(.setAlphaEntry("0.6"), to: &s)
    Reducer.apply(.endAlphaEntry(accept: true), to: &s)
    #expect(s.tuning?.groupAlphas(of: "spatial_blocks.0") == [0.6, 0.25])
    // The block's +/- moves every group's α (clamped to 0…1).
    Reducer.apply(.adjustAlpha(0.5), to: &s)
    #expect(s.tuning?.groupAlphas(of: "spatial_blocks.0") == [1, 0.75])
    // Split the first group at step 1: both halves keep its α; merge at step 3 keeps the earlier.
    Reducer.apply(.splitStepGroup, to: &s)
    #expect(s.tuning?.plan.stepGroups == [0...0, 1...2, 3...5])
    #expect(s.tuning?.groupAlphas(of: "spatial_blocks.0") == [1, 1, 0.75])
    s.step = .step(4)
    Reducer.apply(.mergeStepGroup, to: &s)
    #expect(s.tuning?.plan.stepGroups == [0...0, 1...5] && s.message?.text == "merged groups 2 and 3: 0–0 1–5")
    #expect(s.tuning?.groupAlphas(of: "spatial_blocks.0") == [1, 1])
    s.step = .step(0)
    Reducer.apply(.mergeStepGroup, to: &s)
    #expect(s.message?.text.contains("no group before it") == true)
    // Typing the block's one α drops the α per group.
    s.focus = .blocks
    Reducer.apply(.beginAlphaEntry, to: &s)
    Reducer.apply(.setAlphaEntry("0.3"), to: &s)
    Reducer.apply(.endAlphaEntry(accept: true), to: &s)
    #expect(s.tuning?.hasGroupAlphas("spatial_blocks.0") == false && s.tuning?.groupAlphas(of: "spatial_blocks.0") == [0.3, 0.3])
    // Every step undoes, back to the plan as opened.
    while s.tuning?.undoStack.isEmpty == false { Reducer.apply(.undo, to: &s) }
    #expect(s.tuning?.plan == plan && s.tuning?.isModified == false)

    // A group's α search whose groups were edited while it ran is dropped, never applied elsewhere.
    Reducer.apply(.toggleSmoothing, to: &s)
    s.step = .step(3)
    Reducer.apply(.splitStepGroup, to: &s)
    s.focus = .stepGroups
    Reducer.apply(.autoAlpha, to: &s)
    #expect(s.tuning?.autoAlphaGroup == 1)
    Reducer.apply(.mergeStepGroup, to: &s)
    let before = try #require(s.tuning?.plan)
    Reducer.apply(.autoAlphaFinished(block: "spatial_blocks.0", group: 1, .success([AlphaPoint(alpha: 0.4, error: 1)])), to: &s)
    #expect(s.tuning?.plan == before && s.message?.text.contains("is dropped") == true && s.tuning?.autoAlphaBlock == nil)
    // Typing a preview prompt brings the preview back in place of the step groups.
    s.preview = PreviewState(prompt: "a")
    s.lowerTuningPane = .stepGroups
    Reducer.apply(.beginPromptEntry, to: &s)
    #expect(s.lowerTuningPane == .preview && s.focus == .preview && s.preview?.promptEntry == "")
}

import Foundation
import Testing
import Quantization
import Tensors
import VideoDiT
@testable import TerminalUI
@testable import Workbench

// Text snapshots of the plan screen on the layout fixture, with made-up local SQNR figures (no
// model run: the same on every CPU).

/// Layer i of the catalog at 40 − i/4 dB, plus `lift` dB for the layers of `lifted`.
private func sqnr(_ catalog: LayerCatalog, lifted: String? = nil, lift: Double = 0) -> [String: Double] {
    var result: [String: Double] = [:]
    for (i, layer) in catalog.quantizableLinears.enumerated() {
        let boost = lifted.map { layer.name.hasPrefix($0 + ".") } == true ? lift : 0
        result[layer.name] = 40 - Double(i) / 4 + boost
    }
    return result
}

private func planWorkbench() throws -> Workbench {
    let wb = try workbench()
    let key = CalibrationCache.Key(checkpointHash: "00", prompts: ["p"], sampler: "rflow", steps: 6, cfgScale: 5, seeds: [0])
    let plan = QuantizationPlan(checkpointHash: "00", architecture: "STDiT3", calibration: key, timesteps: (0..<6).map { 1000 - Float($0) * 150 },
                                stepGroups: [0...2, 3...5])
    wb.dispatch(.tuningReady(TuningState(plan: plan, name: "default plan", path: nil, blocks: wb.state.catalog.blocks.map(\.name))))
    wb.dispatch(.requantized(.success(RequantizeResult(generation: 0, layerSQNR: sqnr(wb.state.catalog), milliseconds: 41)), generation: 0))
    wb.dispatch(.showScreen(.tuning))
    return wb
}

@Test func thePlanScreenAfterAnAlphaEdit() throws {
    let wb = try planWorkbench()
    wb.dispatch(.moveBlock(1))
    wb.dispatch(.adjustAlpha(0.5))
    wb.dispatch(.toggleSmoothing)
    let block = try #require(wb.state.tuning?.selectedBlock)
    wb.dispatch(.requantized(.success(RequantizeResult(generation: 2, layerSQNR: sqnr(wb.state.catalog, lifted: block, lift: 1.5),
                                                       milliseconds: 23)), generation: 2))
    assertSnapshot(render(wb), named: "plan-edited")
    assertSnapshot(render(wb, width: 80, height: 24), named: "plan-80x24")
}

@Test func perLayerOverridesOnTheLayersPane() throws {
    let wb = try planWorkbench()
    wb.dispatch(.focus(.blockLayers))
    wb.dispatch(.moveBlockLayer(6))
    wb.dispatch(.overrideLayer(.alpha(0.5)))
    wb.dispatch(.overrideLayer(.cycleWeightBits))
    wb.dispatch(.moveBlockLayer(-4))
    wb.dispatch(.overrideLayer(.toggleKeepFloat))
    // mlp.fc1 with a channel shift and GPTQ rounding: `W8G/A8z`, the column widens for it.
    wb.dispatch(.moveBlockLayer(3))
    wb.dispatch(.overrideLayer(.toggleShift))
    wb.dispatch(.overrideLayer(.toggleWeightRounding))
    assertSnapshot(render(wb, width: 100, height: 24), named: "plan-layer-overrides")
}

@Test func theExportDialogAndTypingAnAlpha() throws {
    let wb = try planWorkbench()
    wb.dispatch(.adjustAlpha(0.25))
    wb.dispatch(.beginAlphaEntry)
    wb.dispatch(.setAlphaEntry("0.6"))
    assertSnapshot(render(wb, width: 100, height: 24), named: "plan-typing-alpha")
    wb.dispatch(.endAlphaEntry(accept: true))
    wb.dispatch(.beginExport)
    wb.dispatch(.setExportDirectory("/data/exports/layout-quantized"))
    assertSnapshot(render(wb, width: 100, height: 24), named: "plan-export")
    wb.dispatch(.toggleExportField)
    wb.dispatch(.toggleExportModel)
    assertSnapshot(render(wb, width: 100, height: 24), named: "plan-export-plan-only")
    // Every glyph of the plan screen has an ASCII form.
    for grid in [render(wb), render(wb, width: 80, height: 24)] {
        for line in grid.textLines() {
            for ch in line { #expect(ch == "?" || Terminal.asciiFallback(ch) != "?", "no ASCII fallback for \(ch)") }
        }
    }
}

/// A 4-frame 32×32 scene: a red 8×8 square moving right on blue; `noise` perturbs it (a made-up
/// quantization error, deterministic).
private func sceneVideo(noise: Float) -> PreviewVideo {
    let (T, H, W) = (4, 32, 32)
    var pixels = [Float](repeating: -1, count: 3 * T * H * W)
    for t in 0..<T {
        for y in 0..<H {
            for x in 0..<W {
                let inside = (12..<20).contains(y) && ((4 + 6 * t)..<(12 + 6 * t)).contains(x)
                let wobble = noise * Float((x * 7 + y * 3 + t) % 5 - 2) / 2
                pixels[((0 * T + t) * H + y) * W + x] = (inside ? 1 : -1) + wobble
                pixels[((2 * T + t) * H + y) * W + x] = (inside ? -1 : 1) - wobble
            }
        }
    }
    let steps = noise == 0 ? [[Float]](repeating: [1, 2, 3, 4], count: 6) : (0..<6).map { s in [1, 2, 3, 4 + Float(s) * 0.01] }
    return PreviewVideo(video: Tensor(shape: [3, T, H, W], scalars: pixels), prompt: "a red square moving right on a blue background",
                        stepLatents: steps)
}

@Test func thePreviewShowsBothVideosTheirDifferenceAndTheMetrics() throws {
    let wb = try planWorkbench()
    var state = wb.state
    state.preview = PreviewState(prompt: "a red square moving right on a blue background")
    Reducer.apply(.previewReference(sceneVideo(noise: 0)), to: &state)
    Reducer.apply(.previewQuantized(sceneVideo(noise: 0.2), generation: 0, editToPreviewMilliseconds: 812), to: &state)
    Reducer.apply(.tickPreview, to: &state)
    #expect(state.preview?.frame == 1)
    let grid = WorkbenchScreen.render(state, theme: .dark, width: 120, height: 36)
    assertSnapshot(grid, named: "plan-preview")
    // Every glyph has an ASCII form (the half blocks become the luminance ramp, tested below).
    for line in grid.textLines() {
        for ch in line where ch != "▀" { #expect(ch == "?" || Terminal.asciiFallback(ch) != "?", "no ASCII fallback for \(ch)") }
    }
    // The video cells carry the exact pixel colours: frame 1, the square's top-left pixel pair.
    let origin = try #require(grid.textLines().firstIndex { $0.contains("FP32") })
    let cell = grid[1 + 10, origin + 1 + 6]
    #expect(cell.character == "▀" && cell.style.foreground == .rgb(RGB(255, 0, 0)) && cell.style.background == .rgb(RGB(255, 0, 0)))
    #expect(grid[1, origin + 1].style.foreground == .rgb(RGB(0, 0, 255)))
    // Without colour the backend draws the luminance ramp instead of the half blocks.
    #expect(Terminal.pixelGlyph(cell, plain: true) == "-" && Terminal.pixelGlyph(cell, plain: false) == nil)
    Reducer.apply(.beginPromptEntry, to: &state)
    Reducer.apply(.setPromptEntry("a green circle growing"), to: &state)
    assertSnapshot(WorkbenchScreen.render(state, theme: .dark, width: 100, height: 30), named: "plan-preview-typing-prompt")
    Reducer.apply(.endPromptEntry(accept: false), to: &state)
    Reducer.apply(.stepPreviewFrame(-1), to: &state)
    #expect(state.preview?.frame == 0 && state.preview?.playing == false)
    Reducer.apply(.tickPreview, to: &state)
    #expect(state.preview?.frame == 0, "paused")
}

@Test func theStepGroupsPaneAfterASplitAndAnAlphaPerGroup() throws {
    let wb = try planWorkbench()
    wb.dispatch(.activationsReady(fixtureActivations(wb.state.catalog)))
    wb.dispatch(.qualityMapReady(fixtureQualityMap(wb.state.catalog)))
    wb.dispatch(.moveBlock(1))
    wb.dispatch(.toggleSmoothing)
    wb.dispatch(.focus(.stepGroups))
    #expect(wb.state.lowerTuningPane == .stepGroups)
    wb.dispatch(.moveStep(4))
    wb.dispatch(.splitStepGroup)
    wb.dispatch(.adjustGroupAlpha(0.5))
    wb.dispatch(.moveStep(-3))
    wb.dispatch(.adjustGroupAlpha(0.25))
    let t = try #require(wb.state.tuning)
    #expect(t.plan.stepGroups == [0...2, 3...3, 4...5])
    #expect(t.groupAlphas(of: "temporal_blocks.0") == [0.25, 0, 0.5])
    assertSnapshot(render(wb), named: "plan-step-groups")
    assertSnapshot(render(wb, width: 80, height: 24), named: "plan-step-groups-80x24")
    for grid in [render(wb), render(wb, width: 80, height: 24)] {
        for line in grid.textLines() {
            for ch in line { #expect(ch == "?" || Terminal.asciiFallback(ch) != "?", "no ASCII fallback for \(ch)") }
        }
    }
}

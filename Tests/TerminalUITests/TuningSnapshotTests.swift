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
    // Every glyph of the plan screen has an ASCII form.
    for grid in [render(wb), render(wb, width: 80, height: 24)] {
        for line in grid.textLines() {
            for ch in line { #expect(ch == "?" || Terminal.asciiFallback(ch) != "?", "no ASCII fallback for \(ch)") }
        }
    }
}

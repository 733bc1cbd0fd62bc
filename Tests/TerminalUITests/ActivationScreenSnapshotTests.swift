import Foundation
import Testing
import Quantization
import Tensors
import VideoDiT
@testable import TerminalUI
@testable import Workbench

// Text snapshots of the activations screen on the layout fixture with made-up statistics whose
// every number follows from the construction below (no sampling, the same on every CPU).

private func calibratedWorkbench() throws -> Workbench {
    let wb = try workbench()
    wb.dispatch(.activationsReady(fixtureActivations(wb.state.catalog)))
    wb.dispatch(.qualityMapReady(fixtureQualityMap(wb.state.catalog)))
    wb.dispatch(.showScreen(.activations))
    return wb
}

@Test func activationsAtAStepWithTheGlobalScale() throws {
    let wb = try calibratedWorkbench()
    wb.dispatch(.moveCursor(5))        // spatial_blocks.0.mlp.fc1 (K = 64)
    wb.dispatch(.focus(.histogram))
    wb.dispatch(.moveStep(2))
    wb.dispatch(.toggleGlobalScale)
    wb.dispatch(.focus(.heatmap))
    wb.dispatch(.moveHeatChannel(37))
    assertSnapshot(render(wb), named: "activations-step-2")
}

@Test func activationsAt80By24() throws {
    let wb = try calibratedWorkbench()
    wb.dispatch(.moveStep(5))
    assertSnapshot(render(wb, width: 80, height: 24), named: "activations-80x24")
}

@Test func activationsOfAllStepsMerged() throws {
    let wb = try calibratedWorkbench()
    wb.dispatch(.toggleAllSteps)
    assertSnapshot(render(wb), named: "activations-all-steps")
}

@Test func layerByStepQualityMap() throws {
    let wb = try calibratedWorkbench()
    wb.dispatch(.focus(.quality))
    wb.dispatch(.moveQualityCursor(layers: 6, steps: 4))
    assertSnapshot(render(wb), named: "activations-quality-map")
}

@Test func activationsBeforeCalibration() throws {
    let wb = try workbench()
    wb.dispatch(.calibrationStatus(.missing))
    wb.dispatch(.showScreen(.activations))
    assertSnapshot(render(wb, width: 100, height: 24), named: "activations-not-calibrated")
    wb.dispatch(.calibrationStatus(.running(done: 37, total: 150, elapsedSeconds: 12.4)))
    assertSnapshot(render(wb, width: 100, height: 24), named: "activations-calibrating")
}

/// The range-over-steps plot: a plan that clips step 1 at half its max|x| draws the bar above the
/// half in the bad colour with the limit's cell in warn; the global scale's line runs above.
@Test func theStepRangePlotShowsWhatThePlanClipsAndTheGlobalScale() throws {
    var statistics: [Int: LayerStepStatistics] = [:]
    for s in 0..<2 {
        var st = LayerStepStatistics(width: 1)
        let rows: [Float] = [Float(4 * (s + 1)), -1]
        rows.withUnsafeBufferPointer { st.observe($0.baseAddress!, rows: 2) }
        statistics[s] = st
    }
    let encodings: [ActivationEncoding] = [.covering(min: -4, max: 4, kind: .symmetricInt8), .covering(min: -4, max: 4, kind: .symmetricInt8)]
    let data = ActivationData(statistics: ["l": statistics], timesteps: [1000, 500], calibrationDigest: "0", samples: 1,
                              encodings: ["l": encodings], globalEncodings: ["l": .covering(min: -10, max: 10, kind: .symmetricInt8)],
                              weightInputAbsMax: [:])
    var state = try workbench().state
    state.step = .step(0)
    var grid = CellGrid(width: 16, height: 12)
    StepRangePlotView.draw(state, data: data, layer: "l", in: Rect(x: 0, y: 0, width: 16, height: 12), grid: &grid)
    // 10 plot rows (1…10) for 0…10: step 0 (columns 6–10) reaches 4 = row 7, step 1 (11–15) reaches 8 = row 3.
    let roles = (1...10).map { y in (grid[6, y].style.foreground, grid[11, y].style.foreground) }
    #expect(roles[6] == (.role(.warn), .role(.warn)), "the plan's limit at 4 on both bars")
    #expect(roles[2..<6].allSatisfy { $0.1 == .role(.bad) } && roles[2..<6].allSatisfy { $0.0 != .role(.bad) }, "step 1 clipped above 4")
    #expect(roles[7...].allSatisfy { $0.0 == .role(.accent) && $0.1 == .role(.barPositive) }, "step 0 selected")
    #expect(grid[6, 1].character == "┄" && grid[11, 1].character == "┄", "the global line at 10, above both bars")
    #expect(grid[6, 11].character == "▲")
}

/// `--ascii` draws every glyph of every screen as ASCII: nothing falls back to `?`.
@Test func everyGlyphOfEveryScreenHasAnASCIIFallback() throws {
    var grids: [CellGrid] = []
    let wb = try calibratedWorkbench()
    wb.dispatch(.moveCursor(5))
    wb.dispatch(.toggleGlobalScale)
    grids += [render(wb), render(wb, width: 80, height: 24)]
    wb.dispatch(.focus(.quality))
    grids.append(render(wb))
    wb.dispatch(.showScreen(.weights))
    grids.append(render(wb))
    wb.dispatch(.showHelp)
    grids.append(render(wb))
    wb.dispatch(.hideHelp)
    wb.dispatch(.beginSearch)
    wb.dispatch(.setSearch("fc"))
    grids.append(render(wb))
    let fresh = try workbench()
    fresh.dispatch(.calibrationStatus(.running(done: 3, total: 10, elapsedSeconds: 4)))
    fresh.dispatch(.showScreen(.activations))
    grids.append(render(fresh))
    var missing: Set<Character> = []
    for grid in grids {
        for line in grid.textLines() {
            for ch in line where ch != "?" && Terminal.asciiFallback(ch) == "?" { missing.insert(ch) }
        }
    }
    #expect(missing.isEmpty, "no ASCII fallback for \(String(missing.sorted()))")
}

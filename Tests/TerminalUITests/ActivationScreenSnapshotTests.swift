import Foundation
import Testing
import Quantization
import Tensors
import VideoDiT
@testable import TerminalUI
@testable import Workbench

// Text snapshots of the activations screen on the layout fixture with made-up statistics whose
// every number follows from the construction below (no sampling, the same on every CPU).

/// 6 steps; at step s input channel j of every layer spans ±(1 + s/2)·c_j with c_j = 1 + (j mod 7)/4,
/// except channels 5 and 37, which grow to 12× (channel 5) and 30× (channel 37) over the steps.
private func activations(_ catalog: LayerCatalog) -> ActivationData {
    let steps = 6
    var statistics: [String: [Int: LayerStepStatistics]] = [:]
    var encodings: [String: [ActivationEncoding]] = [:], global: [String: ActivationEncoding] = [:]
    var weights: [String: [Float]] = [:]
    for layer in catalog.quantizableLinears {
        var top: Float = 0
        for s in 0..<steps {
            let K = layer.inputs
            func magnitude(_ j: Int) -> Float {
                let base = (1 + Float(s) / 2) * (1 + Float(j % 7) / 4)
                return j == 5 ? base * (1 + 11 * Float(s) / 5) : j == 37 && K > 37 ? base * (1 + 29 * Float(s * s) / 25) : base
            }
            // Row r of 8: channel j at magnitude(j)·(r + 1)/8, alternating signs.
            let rows = (0..<(8 * K)).map { i in magnitude(i % K) * Float(i / K + 1) / 8 * (i % 2 == 0 ? 1 : -1) }
            var st = LayerStepStatistics(width: K)
            rows.withUnsafeBufferPointer { st.observe($0.baseAddress!, rows: 8) }
            statistics[layer.name, default: [:]][s] = st
            let m = max(-st.minimum, st.maximum)
            top = max(top, m)
            encodings[layer.name, default: []].append(.covering(min: -m, max: m, kind: .symmetricInt8))
        }
        global[layer.name] = .covering(min: -top, max: top, kind: .symmetricInt8)
        weights[layer.name] = (0..<layer.inputs).map { 0.1 + Float($0 % 5) / 20 }
    }
    return ActivationData(statistics: statistics, timesteps: [1000, 833.3, 666.7, 500, 333.3, 166.7], calibrationDigest: "0123456789abcdef",
                          samples: 2, encodings: encodings, globalEncodings: global, weightInputAbsMax: weights)
}

/// Local SQNR per layer and step: 40 dB less 2 dB per step for fc2, less 1 dB per layer index.
private func qualityMap(_ catalog: LayerCatalog) -> [String: [Double]] {
    Dictionary(uniqueKeysWithValues: catalog.quantizableLinears.enumerated().map { i, layer in
        (layer.name, (0..<6).map { s in 40 - Double(i) / 4 - (layer.name.hasSuffix("fc2") ? 2 * Double(s) : 0) })
    })
}

private func calibratedWorkbench() throws -> Workbench {
    let wb = try workbench()
    wb.dispatch(.activationsReady(activations(wb.state.catalog)))
    wb.dispatch(.qualityMapReady(qualityMap(wb.state.catalog)))
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

import DemoModel
import Foundation
import Testing
import Quantization
import Tensors
import VideoDiT
@testable import Workbench

// The activations screen's state: screens, steps, channels, the quality map's cursor, and the
// calibration's life in the app (demo model, a 2-prompt, 2-step calibration in a private cache).

/// Made-up statistics for every block linear of a catalog: at step s channel j spans ±(s + 1)·(j + 1).
func syntheticActivations(_ catalog: LayerCatalog, steps: Int) -> ActivationData {
    var statistics: [String: [Int: LayerStepStatistics]] = [:]
    var encodings: [String: [ActivationEncoding]] = [:], global: [String: ActivationEncoding] = [:]
    for layer in catalog.quantizableLinears {
        for s in 0..<steps {
            var st = LayerStepStatistics(width: layer.inputs)
            let rows = (0..<(2 * layer.inputs)).map { i in Float(s + 1) * Float(i % layer.inputs + 1) * (i < layer.inputs ? 1 : -1) }
            rows.withUnsafeBufferPointer { st.observe($0.baseAddress!, rows: 2) }
            statistics[layer.name, default: [:]][s] = st
            encodings[layer.name, default: []].append(.covering(min: -st.maximum, max: st.maximum, kind: .symmetricInt8))
        }
        let top = Float(steps * layer.inputs)
        global[layer.name] = .covering(min: -top, max: top, kind: .symmetricInt8)
    }
    return ActivationData(statistics: statistics, timesteps: (0..<steps).map { 1000 - Float($0) * 100 }, calibrationDigest: "synthetic",
                          samples: 1, encodings: encodings, globalEncodings: global, weightInputAbsMax: [:])
}

@Test func stepsMoveWithinTheScheduleAndAllMergesThem() throws {
    let workbench = try openFixture()
    workbench.dispatch(.showScreen(.activations))
    #expect(workbench.state.screen == .activations && workbench.state.focus == .tree)
    workbench.dispatch(.activationsReady(syntheticActivations(workbench.state.catalog, steps: 4)))
    workbench.dispatch(.moveStep(2))
    #expect(workbench.state.step == .step(2))
    workbench.dispatch(.moveStep(5))
    #expect(workbench.state.step == .step(3))
    workbench.dispatch(.firstStep)
    #expect(workbench.state.step == .step(0))
    workbench.dispatch(.toggleAllSteps)
    #expect(workbench.state.step == .all)
    let layer = try #require(workbench.state.selectedLayer?.name)
    let merged = try #require(workbench.state.activations?.statistics(layer, .all))
    #expect(merged.maximum == Float(4 * merged.width) && merged.rows == 8)
    #expect(workbench.state.activations?.encoding(layer, .all) == workbench.state.activations?.globalEncodings[layer])
}

@Test func screensKeepTheLayerAndMapPaneNumbers() throws {
    let workbench = try openFixture()
    workbench.dispatch(.moveCursor(3))
    let layer = workbench.state.selectedLayer?.name
    workbench.dispatch(.focus(.ranges))
    workbench.dispatch(.showScreen(.activations))
    #expect(workbench.state.selectedLayer?.name == layer && workbench.state.focus == .histogram)
    workbench.dispatch(.focusNumber(4))
    #expect(workbench.state.focus == .quality && workbench.state.lowerActivationPane == .quality)
    workbench.dispatch(.focusNumber(3))
    #expect(workbench.state.focus == .heatmap && workbench.state.lowerActivationPane == .heatmap)
    workbench.dispatch(.showScreen(.weights))
    #expect(workbench.state.focus == .outliers && workbench.state.selectedLayer?.name == layer)
}

@Test func theQualityCursorOpensItsLayerAndStep() throws {
    let workbench = try openFixture()
    workbench.dispatch(.activationsReady(syntheticActivations(workbench.state.catalog, steps: 5)))
    workbench.dispatch(.focus(.quality))
    workbench.dispatch(.moveQualityCursor(layers: 9, steps: 3))
    workbench.dispatch(.openQualityCell)
    #expect(workbench.state.selectedLayer?.name == workbench.state.catalog.quantizableLinears[9].name)
    #expect(workbench.state.step == .step(3) && workbench.state.focus == .histogram)
    workbench.dispatch(.moveQualityCursor(layers: 1000, steps: 1000))
    #expect(workbench.state.qualityLayer == 27 && workbench.state.qualityStep == 4)
}

@Test func theHeatMapChannelStaysInTheLayerAndInView() throws {
    let workbench = try openFixture()
    workbench.dispatch(.viewport(treeRows: 20, channelColumns: 40, heatColumns: 10))
    workbench.dispatch(.moveHeatChannel(25))
    #expect(workbench.state.heatChannel == 25 && workbench.state.heatChannelOffset == 16)
    workbench.dispatch(.moveHeatChannel(1_000_000))
    let width = try #require(workbench.state.selectedLayer?.inputs)
    #expect(workbench.state.heatChannel == width - 1 && workbench.state.heatChannelOffset == width - 10)
    workbench.dispatch(.moveCursor(1))
    #expect(workbench.state.heatChannel == 0 && workbench.state.heatChannelOffset == 0)
}

/// A private cache and a 2-prompt, 2-step calibration of the demo model.
private func demoSource() throws -> (String, CalibrationSource) {
    let cache = NSTemporaryDirectory() + "stsq-app-calibration-\(UUID().uuidString)"
    let source = CalibrationSource(options: .init(prompts: ["a red circle moving left on a blue background",
                                                            "a green square growing on a black background"], steps: 2),
                                   cacheDirectory: cache)
    return (try #require(DemoModel.checkpointPath), source)
}

@Test func theAppCalibratesCachesAndReopensFromTheCache() throws {
    let (path, source) = try demoSource()
    defer { try? FileManager.default.removeItem(atPath: source.cacheDirectory) }
    let workbench = Workbench(session: try CheckpointSession(path: path), calibration: source, backgroundJobs: false)
    #expect(workbench.state.calibration == .missing && workbench.state.activations == nil)
    workbench.dispatch(.requestCalibration)
    #expect(workbench.state.calibration == .ready)
    let data = try #require(workbench.state.activations)
    #expect(data.steps == 2 && data.statistics.count == 56 + 2 + 3 * 16 && data.samples == 2)
    #expect(workbench.state.qualityMap?.count == 56)
    #expect(workbench.state.qualityMap?.values.allSatisfy { $0.count == 2 && $0.allSatisfy { $0.isFinite && $0 > 10 } } == true)
    // The same key as `stsq-tui calibrate`: a second launch opens the cached entry without sampling.
    let again = Workbench(session: try CheckpointSession(path: path), calibration: source, backgroundJobs: false)
    #expect(again.state.calibration == .ready && again.state.activations?.calibrationDigest == data.calibrationDigest)
    #expect(again.state.activations?.statistics["spatial_blocks.0.attn.qkv"]?[1] == data.statistics["spatial_blocks.0.attn.qkv"]?[1])

    // A truncated entry is reported, not read; C recalibrates and replaces it.
    let folder = source.cacheDirectory + "/" + data.calibrationDigest
    let file = try FileHandle(forUpdating: URL(fileURLWithPath: folder + "/statistics.safetensors"))
    try file.truncate(atOffset: 4096)
    try file.close()
    let damaged = Workbench(session: try CheckpointSession(path: path), calibration: source, backgroundJobs: false)
    guard case .damaged(let why) = damaged.state.calibration else {
        Issue.record("a truncated cache gave \(damaged.state.calibration)")
        return
    }
    #expect(why.contains("truncated") && damaged.state.activations == nil && damaged.state.message?.severity == .error)
    damaged.dispatch(.requestCalibration)
    #expect(damaged.state.calibration == .ready)
    #expect(damaged.state.activations?.statistics["spatial_blocks.0.attn.qkv"]?[1] == data.statistics["spatial_blocks.0.attn.qkv"]?[1])
}

@Test func aStoppedCalibrationLeavesNoCacheEntry() throws {
    let (path, source) = try demoSource()
    defer { try? FileManager.default.removeItem(atPath: source.cacheDirectory) }
    let session = try CheckpointSession(path: path)
    let setup = try session.calibrationSetup(source)
    var steps = 0
    #expect(throws: CalibrationCancelled.self) {
        _ = try session.calibrate(setup, source, progress: { done, _ in steps = done }, shouldStop: { steps >= 1 })
    }
    #expect(steps == 1)
    #expect(try session.cachedActivations(setup, source) == nil)
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: source.cacheDirectory)) ?? []
    #expect(entries.isEmpty, "left behind: \(entries)")
}

@Test func aCheckpointTheEngineCannotSampleSaysWhy() throws {
    let cache = NSTemporaryDirectory() + "stsq-app-unavailable-\(UUID().uuidString)"
    let workbench = Workbench(session: try CheckpointSession(path: fixtures.appendingPathComponent("stdit3-layout.safetensors").path),
                              calibration: CalibrationSource(options: .init(prompts: ["x"]), cacheDirectory: cache), backgroundJobs: false)
    guard case .unavailable(let why) = workbench.state.calibration else {
        Issue.record("expected unavailable, got \(workbench.state.calibration)")
        return
    }
    #expect(why.contains("text encoder"))
    workbench.dispatch(.requestCalibration)
    #expect(workbench.state.message?.severity == .error)
}

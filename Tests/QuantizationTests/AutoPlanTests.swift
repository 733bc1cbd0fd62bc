import DemoModel
import Foundation
import Testing
import Tensors
@testable import Quantization
@testable import VideoDiT

/// A block replayed on its recorded input gives what the forward pass gave: under fp32 the next
/// block's recorded input bit for bit, and under a folded float model the same within the fold
/// tolerance of `foldedFloatModelEqualsTheOriginal` (1e-5 · max|ref|).
@Test func aReplayedBlockGivesWhatTheForwardPassGave() throws {
    let f = try sharedSmoothQuantFixture.get()
    let recorder = BlockInputRecorder()
    let output = try f.model.forward(f.inputs, executor: recorder, step: 1)
    #expect(recorder.inputs.map(\.name) == f.model.blockNames && recorder.inputs.allSatisfy { $0.step == 1 })
    #expect(try f.model.forward(f.inputs, executor: Float32Executor(), step: 1).scalars == output.scalars, "observing changed the output")
    for i in 0..<(recorder.inputs.count - 1) {
        #expect(try f.model.replay(recorder.inputs[i], executor: Float32Executor()) == recorder.inputs[i + 1].hidden, "block \(i)")
    }
    let folded = QuantizedModelExecutor(model: try QuantizedModel(model: f.model, statistics: f.statistics,
                                                                  plan: f.plan({ $0.alpha = 0.7 }, layers: explicitLayerOverrides(f.model, alpha: 0.7))),
                                        mode: .float)
    for input in recorder.inputs {
        let reference = try f.model.replay(input, executor: Float32Executor())
        let replayed = try f.model.replay(input, executor: folded)
        let scale = reference.map(abs).max()!
        let worst = zip(reference, replayed).map { abs($0 - $1) }.max()!
        #expect(worst <= 1e-5 * scale, "\(input.name): max|Δ| \(worst) vs max|ref| \(scale)")
    }
}

/// The recorded trajectories of the search: one input per block and step, along FP sampling.
struct AutoPlanFixture: Sendable {
    let search: AutoPlanSearch
    init() throws {
        let f = try sharedSmoothQuantFixture.get()
        let path = try #require(DemoModel.checkpointPath)
        let encoder = try #require(try ModelLoader.load(path: path).textEncoder)
        func record(_ prompt: String, seed: UInt64) throws -> [BlockInput] {
            try AutoPlanSearch.recordBlockInputs(model: f.model, conditions: [try encoder.encode([prompt])], seed: seed,
                                                 schedule: RectifiedFlowSchedule(steps: 3, ratio: nil), cfgScale: 5, fps: 24, size: [8, 32, 32])
        }
        search = try AutoPlanSearch(model: f.model, statistics: f.statistics,
                                    fit: try record("a red circle moving left on a blue background", seed: 3),
                                    heldOut: try record("a blue triangle moving up on a black background", seed: 5))
    }
}

let sharedAutoPlanFixture = Result { try AutoPlanFixture() }

/// The search's error is the block's output error under the whole plan: `Σ‖out_q − out_fp‖² /
/// Σ‖out_fp − in‖²` over that block's recorded inputs (restricted to the given steps), the other
/// blocks' settings playing no part — computed here by hand from the full plan's fake-quant model.
@Test func theSearchScoresABlockByItsOutputErrorUnderThePlan() throws {
    let f = try sharedSmoothQuantFixture.get()
    let search = try sharedAutoPlanFixture.get().search
    #expect(search.fit.count == 8 * 3 && search.heldOut.count == 8 * 3)
    let plan = f.plan({ $0.alpha = 0.5; $0.activations = .uint8 }, layers: explicitLayerOverrides(f.model, alpha: 0.3))
    let full = QuantizedModelExecutor(model: try QuantizedModel(model: f.model, statistics: f.statistics, plan: plan), mode: .fakeQuant)
    let block = "temporal_blocks.1"
    for steps in [nil, Set([2])] as [Set<Int>?] {
        var signal = 0.0, noise = 0.0
        for input in search.fit where input.name == block && (steps?.contains(input.step!) ?? true) {
            let reference = try f.model.replay(input, executor: Float32Executor())
            let quantized = try f.model.replay(input, executor: full)
            for i in reference.indices {
                let d = Double(quantized[i]) - Double(reference[i]), u = Double(reference[i]) - Double(input.hidden[i])
                noise += d * d
                signal += u * u
            }
        }
        #expect(try search.error(of: block, plan: plan, steps: steps) == noise / signal, "steps \(String(describing: steps))")
    }
    // A float plan has no error; a coarser one has more.
    #expect(try search.error(of: block, plan: f.plan { $0.keepFloat = true }) == 0)
    #expect(try search.error(of: block, plan: f.plan { $0.weightBits = 4 }) > search.error(of: block, plan: f.plan { _ in }))
}

/// The greedy search never makes a block worse on what it fits, touches only the blocks it was
/// given, writes choices the plan format keeps (JSON round trip), and reports held-out figures
/// computed as `error` computes them.
@Test(arguments: [LayerSettings.Smoothing.aggregated, .timestep])
func theAutoSearchImprovesTheFittedBlocksAndReportsHeldOut(smoothing: LayerSettings.Smoothing) throws {
    let f = try sharedSmoothQuantFixture.get()
    var search = try sharedAutoPlanFixture.get().search
    search.alphaGrid = [0, 1]
    search.blocks = ["spatial_blocks.1"]
    search.searchEstimators = smoothing == .aggregated   // once is enough (debug builds are slow)
    search.searchRotation = smoothing == .timestep
    let start = f.plan({ $0.alpha = 0.5; $0.smoothing = smoothing })
    let (plan, reports) = try search.run(from: start)
    #expect(reports.map(\.block) == ["spatial_blocks.1"])
    let r = reports[0]
    #expect(r.fitAfter <= r.fitBefore && r.fitAfter < r.fitBefore, "\(r.choices): \(r.fitBefore) → \(r.fitAfter)")
    #expect(r.fitBefore == (try search.error(of: r.block, plan: start)))
    #expect(r.heldOutAfter == (try search.error(of: r.block, plan: plan, heldOut: true)))
    // Candidates: the starting error and a shift flip of qkv and fc1 (3); per pass (one per step
    // group time-step-wise) the current α and each other grid value, for the block and each of its
    // 7 layers (2 or 3 values each: 3 while the current α, 0.5 at the start, is off the grid);
    // then the all-step error and one code flip per layer (8), the same for weight clipping (8);
    // then, with estimators, the all-step error and two other estimators per layer (15); with
    // rotation, the all-step error and a rotation of each layer (8).
    let passes = smoothing == .timestep ? 3 : 1
    let tail = 3 + 8 + 8 + (search.searchEstimators ? 15 : 0) + (search.searchRotation ? 8 : 0)
    #expect((passes * 8 * 2 + tail...passes * 8 * 3 + tail).contains(r.candidates), "\(r.candidates) candidates")
    #expect(r.layerErrors.map(\.layer) == f.model.blockLinears.map(\.name).filter { $0.hasPrefix("spatial_blocks.1.") })
    #expect(r.layerErrors.allSatisfy { $0.error > 0 && $0.error < r.fitAfter * 1.5 })
    // Only spatial_blocks.1 (and its layers) have entries.
    #expect(plan.blocks.allSatisfy { $0.0 == "spatial_blocks.1" })
    #expect(plan.layers.allSatisfy { $0.0.hasPrefix("spatial_blocks.1.") })
    if smoothing == .timestep {
        #expect(try plan.blockSettings("spatial_blocks.1").groupAlpha?.count == 3)
        // A rotated layer's entry holds no α or shift of its own (the format refuses the mix).
        for (layer, entry) in plan.layers where entry["rotation"]?.stringValue == "hadamard" {
            #expect(entry["alpha"] == nil && entry["group_alpha"] == nil && entry["shift"] == nil, "\(layer)")
        }
    }
    let reread = try QuantizationPlan(json: try JSONValue.parse(plan.json.serialized(pretty: true)), source: "auto.json")
    #expect(reread == plan)
    _ = try QuantizedModel(model: f.model, statistics: f.statistics, plan: reread)
}

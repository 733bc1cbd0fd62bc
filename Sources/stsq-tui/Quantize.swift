import ArgumentParser
import Foundation
import Quantization
import Tensors
import VideoDiT

/// `stsq-tui plan [CHECKPOINT] --out plan.json [settings]`: a starting plan for a checkpoint.
struct Plan: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a quantization plan (plan.json) for a checkpoint: its hash, schedule, calibration and default settings.")

    @Argument(help: "An STDiT3 checkpoint; default: the bundled demo model. Without a text encoder of its own, its statistics come from stsq-collect.")
    var checkpoint: String?
    @OptionGroup var calibration: CalibrationOptions
    @Option(help: "Output plan.") var out: String
    @Option(help: "Weight bits, 4…8.") var weightBits = 8
    @Flag(help: "Asymmetric weights (a per-channel zero point).") var asymmetricWeights = false
    @Option(help: "Activations: int8, uint8, dynamic or dynamic_uint8.") var activations = "int8"
    @Option(help: "Activation scales per: step, group or global.") var granularity = "step"
    @Option(help: "Range estimator: minmax, percentile or mse.") var estimator = "minmax"
    @Option(help: "SmoothQuant α for the foldable layers of every block (0 disables).") var alpha = 0.0
    @Option(help: "Smoothing: aggregated or timestep.") var smoothing = "aggregated"
    @Option(help: "Number of step groups (equal, contiguous).") var groups = 1
    @Option(help: "Attention's two products (QKᵀ, P·V): float, or int8 (static q, k, v scales per step, P on uint8 [0, 1]).")
    var attentionProducts = "float"
    @Option(help: "Rotation of every static layer's input: none, or hadamard (online, folded into the weights; replaces α and the shift).")
    var rotation = "none"
    @Flag(help: "Also quantize the patch embedding and the final linear (x_embedder.proj, final_layer.linear), with the default settings less α and shift, the final linear's input Hadamard-rotated; they stay float otherwise.")
    var quantizeOuter = false
    @Flag(help: "Channel shift per step on attn.qkv and mlp.fc1: centre each input channel on its calibrated range's midpoint (folded into the modulation rows and a per-step bias).")
    var shift = false
    @Flag(help: "GPTQ weight rounding from the calibration rows (per-channel grid kept; with --auto, applied after the search).")
    var gptq = false
    @Flag(help: "With --auto: also try a Hadamard rotation of each layer's input (online, folded into the weights), in place of its α and shift.")
    var autoRotation = false
    @Flag(help: "With --auto: also search the range estimator per layer (min-max, percentile, MSE); on the demo model this lowered video PSNR.")
    var autoEstimators = false
    @Flag(help: "Choose α per block by search (grid 0…1 step 0.05, local error of the block's linears on the calibration rows); calibrates first if needed.")
    var autoAlpha = false
    @Flag(help: "Search per block: a channel shift on qkv/fc1, the block's α and each layer's own α (per step group with --smoothing timestep), int8/uint8 and the weight clip per layer, scored on the block's output on FP trajectories of calibration prompts; prints a per-block report with held-out figures.")
    var auto = false
    @Option(help: "With --auto: only these blocks are searched (comma-separated, e.g. temporal_blocks.2); the others keep the options' settings.")
    var autoBlocks: String?
    @Option(help: "With --auto: the α values tried, comma-separated.") var autoGrid = "0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1"
    @Option(help: "With --auto: calibration prompts (the first N) whose trajectories the search fits on.") var autoPrompts = 1
    @Option(help: "With --auto: calibration prompts (the last N) scored only, never searched on.") var heldOutPrompts = 1

    func run() throws {
        try reportingErrors {
            try OutputFolder.checkWritable(AtomicFile.folder(of: out), purpose: "the plan")
            let setup = try QuantizationSetup(checkpoint: checkpoint, options: calibration)
            let settings: JSONValue = .object([("weight_bits", .int(weightBits)),
                                               ("weight_symmetric", .bool(!asymmetricWeights)), ("activations", .string(activations)),
                                               ("activation_granularity", .string(granularity)), ("estimator", .string(estimator)),
                                               ("alpha", .double(alpha)), ("smoothing", .string(smoothing)), ("shift", .bool(shift)),
                                               ("weight_rounding", .string(gptq ? "gptq" : "nearest")),
                                               ("attention_products", .string(attentionProducts)), ("rotation", .string(rotation))])
            var defaults = LayerSettings()
            do { try QuantizationPlan.applySettings(settings, to: &defaults, path: "options") } catch let e as PlanError { throw ValidationError(e.description) }
            guard groups >= 1 else { throw ValidationError("--groups must be at least 1") }
            var plan = setup.plan(defaults: defaults, groups: groups)
            guard !(auto && autoAlpha) else { throw ValidationError("--auto and --auto-alpha are two searches: choose one") }
            if auto { plan = try autoPlan(plan, setup: setup) }
            if quantizeOuter {
                for layer in setup.model.outerLinears.map(\.name) {
                    plan.layers = QuantizationPlan.entries(plan.layers, setting: "keep_fp", to: .bool(false), of: layer, order: [])
                }
                // The final linear writes the velocity; its input is a modulated LayerNorm, like
                // fc1's. Rotated, its worst step went 29.4 → 34.2 dB on the demo (docs/results.md).
                plan.layers = QuantizationPlan.entries(plan.layers, setting: "rotation", to: .string("hadamard"), of: "final_layer.linear", order: [])
            }
            if autoAlpha {
                let statistics = try setup.statistics(cacheDirectory: calibration.cacheDirectory)
                let start = monotonicSeconds()
                let result = try AlphaSearch.search(model: setup.model, statistics: statistics, plan: plan)
                let blocks = result.best.keys.sorted { a, b in
                    let order = setup.model.blockLinears.map { QuantizationPlan.block(of: $0.name) }
                    return order.firstIndex(of: a)! < order.firstIndex(of: b)!
                }
                plan.blocks = blocks.map { ($0, .object([("alpha", .double(result.best[$0]!))])) }
                print(String(format: "α search over %d values in %.1f s; relative error of each block's linears (α = 0 → best):", AlphaSearch.defaultGrid.count,
                             monotonicSeconds() - start))
                for block in blocks {
                    let curve = result.curves[block]!
                    let at0 = curve.first { $0.alpha == 0 }?.error ?? .nan
                    let best = curve.first { $0.alpha == result.best[block]! }!.error
                    print(String(format: "  %-20@ α %.2f  %.3e → %.3e", block as NSString, result.best[block]!, at0, best))
                }
            }
            try AtomicFile.write(Array(plan.json.serialized(pretty: true).utf8), to: out)
            print("wrote \(out) (\(plan.steps) steps, \(plan.stepGroups.count) step groups, calibration \(plan.calibration.digest))")
        }
    }
}

extension Plan {
    /// `--auto`: records block inputs on FP trajectories, runs `AutoPlanSearch`, prints its report.
    func autoPlan(_ plan: QuantizationPlan, setup: QuantizationSetup) throws -> QuantizationPlan {
        let prompts = setup.key.prompts
        guard autoPrompts >= 1 else { throw ValidationError("--auto-prompts must be at least 1") }
        guard heldOutPrompts >= 0, autoPrompts + heldOutPrompts <= prompts.count else {
            throw ValidationError("--auto-prompts \(autoPrompts) + --held-out-prompts \(heldOutPrompts) exceed the \(prompts.count) calibration prompts")
        }
        let grid = try autoGrid.split(separator: ",").map { text -> Double in
            guard let a = Double(text.trimmingCharacters(in: .whitespaces)), (0...1).contains(a) else {
                throw ValidationError("--auto-grid: \"\(text)\" is not an α in [0, 1]")
            }
            return a
        }
        guard !grid.isEmpty else { throw ValidationError("--auto-grid is empty") }
        let blocks = try autoBlocks.map { list in
            let names = list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            for name in names where !setup.model.blockNames.contains(name) {
                throw ValidationError("--auto-blocks: \(name) is not a block of \(setup.path) (blocks: \(setup.model.blockNames.joined(separator: ", ")))")
            }
            return Set(names)
        }
        let statistics = try setup.statistics(cacheDirectory: calibration.cacheDirectory)
        let start = monotonicSeconds()
        func record(_ chosen: ArraySlice<String>) throws -> [BlockInput] {
            try AutoPlanSearch.recordBlockInputs(model: setup.model, conditions: chosen.map { try setup.textEncoder().encode([$0]) },
                                                 seed: setup.key.seeds[0], schedule: setup.schedule, cfgScale: setup.cfgScale,
                                                 fps: setup.fps, size: setup.size)
        }
        var search = try AutoPlanSearch(model: setup.model, statistics: statistics, fit: try record(prompts.prefix(autoPrompts)),
                                        heldOut: try record(prompts.suffix(heldOutPrompts)))
        search.alphaGrid = grid
        search.blocks = blocks
        search.searchEstimators = autoEstimators
        search.searchRotation = autoRotation
        FileHandleStderr.write(String(format: "recorded block inputs of %d + %d prompts × %d steps in %.1f s\n", autoPrompts, heldOutPrompts,
                                      plan.steps, monotonicSeconds() - start))
        let result = try search.run(from: plan) { done, total in
            FileHandleStderr.write(String(format: "\rsearching: block %d/%d, %.0f s", done, total, monotonicSeconds() - start))
        }
        FileHandleStderr.write("\n")
        print(String(format: "auto plan in %.1f s: per block, the output error ‖out_q − out_fp‖² / ‖out_fp − in‖² as SQNR dB, before → after", monotonicSeconds() - start))
        print("(fit: the first \(autoPrompts) calibration prompts' trajectories; held out: the last \(heldOutPrompts), never searched on)")
        func dB(_ e: Double) -> String { e > 0 ? String(format: "%5.1f", -10 * log10(e)) : "  inf" }
        for r in result.reports {
            let held = heldOutPrompts > 0 ? "\(dB(r.heldOutBefore)) → \(dB(r.heldOutAfter))" : "    —"
            print("  \(r.block.padding(toLength: 18, withPad: " ", startingAt: 0)) fit \(dB(r.fitBefore)) → \(dB(r.fitAfter))   held out \(held)   \(r.choices)")
            let alone = r.layerErrors.sorted { $0.error > $1.error }.prefix(3)
                .map { "\($0.layer.dropFirst(r.block.count + 1)) \(dB($0.error).trimmingCharacters(in: .whitespaces))" }
            if !alone.isEmpty { print("      alone (SQNR dB of the block with one layer quantized, lowest first): \(alone.joined(separator: ", "))") }
        }
        return result.plan
    }
}

/// `stsq-tui quantize [CHECKPOINT] --plan plan.json --out DIR [--explain]`.
struct Quantize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Build the quantized model a plan describes from cached calibration statistics and write it (plan.json + quantized.safetensors).")

    @Argument(help: "The checkpoint the plan was made for; default: the bundled demo model.")
    var checkpoint: String?
    @Option(help: "The plan (see `stsq-tui plan`).") var plan: String
    @Option(help: "Output folder.") var out: String?
    @Flag(help: "Print, per layer, how it is quantized, where SmoothQuant's 1/s went and its local SQNR (as the plan screen shows it).") var explain = false
    @Option(help: "Calibration cache folder.") var cacheDirectory = CalibrationCache.defaultDirectory

    func run() throws {
        try reportingErrors {
            guard out != nil || explain else { throw ValidationError("give --out DIR, --explain, or both") }
            if let out { try OutputFolder.checkWritable(out, purpose: "the quantized model") }
            let (setup, statistics, quantized, seconds) = try buildQuantized(checkpoint: checkpoint, plan: plan, cacheDirectory: cacheDirectory)
            if explain {
                let sqnr = try LayerSQNR.local(quantized, model: setup.model, statistics: statistics)
                let deployed = try QuantizedModelExport.deployedBytes(quantized, model: setup.model, fps: setup.fps)
                QuantizedModelExport.explain(quantized, sqnr: sqnr, deployed: deployed).forEach { print($0) }
            }
            if let out {
                try QuantizedModelExport.write(quantized, model: setup.model, fps: setup.fps, to: out)
                print(String(format: "quantized %d layers in %.0f ms: %d weight bytes, %d activation-scale bytes → %@/quantized.safetensors",
                             quantized.layers.filter(\.isQuantized).count, seconds * 1000, quantized.weightBytes, quantized.scaleBytes, out))
            }
        }
    }
}

/// The plan's quantized model from the cached statistics (shared by `quantize` and `export`).
private func buildQuantized(checkpoint: String?, plan: String, cacheDirectory: String) throws
    -> (QuantizationSetup, [String: [Int: LayerStepStatistics]], QuantizedModel, Double) {
    let parsed = try readPlan(plan)
    var options = try CalibrationOptions.parse([])
    options.cacheDirectory = cacheDirectory
    let setup = try QuantizationSetup(checkpoint: checkpoint, options: options, overridingKey: parsed.calibration)
    try setup.check(parsed, source: plan)
    let statistics = try setup.statistics(cacheDirectory: cacheDirectory)
    let start = monotonicSeconds()
    do {
        let quantized = try QuantizedModel(model: setup.model, statistics: statistics, plan: parsed)
        return (setup, statistics, quantized, monotonicSeconds() - start)
    } catch let e as PlanError {
        throw ValidationError("\(plan): \(e.description)")
    }
}

/// `stsq-tui export CHECKPOINT --plan P --out DIR --format stsq|aimet|onnx-qdq`.
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write the quantized model a plan describes for a runtime: stsq (plan.json + quantized.safetensors), aimet (the same plus AIMET/QAIRT encodings per static configuration and the int32 biases) or onnx-qdq (the same plus ONNX QDQ models, traced in PyTorch by stsq_collect).")

    @Argument(help: "The checkpoint the plan was made for; default: the bundled demo model.")
    var checkpoint: String?
    @Option(help: "The plan (see `stsq-tui plan`).") var plan: String
    @Option(help: "Output folder.") var out: String
    @Option(help: "stsq, aimet or onnx-qdq.") var format = "stsq"
    @Option(help: "onnx-qdq: the Python with stsq_collect, torch and onnx (default: $STSQ_PYTHON, else python3).") var python: String?
    @Option(help: "Calibration cache folder.") var cacheDirectory = CalibrationCache.defaultDirectory

    func run() throws {
        try reportingErrors {
            guard ["stsq", "aimet", "onnx-qdq"].contains(format) else { throw ValidationError("--format \(format): use stsq, aimet or onnx-qdq") }
            try OutputFolder.checkWritable(out, purpose: "the export")
            let (setup, _, quantized, _) = try buildQuantized(checkpoint: checkpoint, plan: plan, cacheDirectory: cacheDirectory)
            var files: [String]
            if format == "aimet" {
                files = try AIMETExport.write(quantized, model: setup.model, fps: setup.fps, to: out)
            } else {
                try QuantizedModelExport.write(quantized, model: setup.model, fps: setup.fps, to: out)
                files = ["plan.json", "quantized.safetensors"]
            }
            if format == "onnx-qdq" {
                files += try ONNXQDQExport.write(checkpoint: setup.setup.path, folder: out, python: ONNXQDQExport.interpreter(python),
                                                 passThrough: true)
            }
            print("exported \(format) to \(out): " + files.joined(separator: ", "))
        }
    }
}

import ArgumentParser
import Evaluation
import Foundation
import Quantization
import Tensors
import VideoDiT

/// `stsq-tui eval [CHECKPOINT] [--prompts FILE] [--seeds 0,1] [--json]`: the headline table.
struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The headline table: FP32, dynamic per-token, static global, static per-step and SmoothQuant (aggregated, time-step-wise; W8A8 and W4A8) on the same prompts and seeds.",
        discussion: """
            Video PSNR, SSIM and flicker ratio are against the FP32 video of the same prompt and seed; step error is \
            ‖v_q − v_fp‖²/‖v_fp‖² of the guided velocity at every step of the quantized run; worst SQNR is the lowest \
            local layer SQNR on the calibration rows. Static rows run the int8 path (dynamic per-token runs fake-quant).
            """)

    @Argument(help: "An STDiT3 checkpoint with its own text encoder; default: the bundled demo model.")
    var checkpoint: String?
    @Option(help: "Evaluation prompt list, one a line.") var prompts = "sample-prompts/eval.txt"
    @Option(help: "Comma-separated noise seeds for the evaluation videos.") var seeds = "0,1"
    @OptionGroup var calibration: CalibrationOptions
    @Option(help: "SmoothQuant α of the smoothed rows.") var alpha = 0.5
    @Option(help: "Step groups of the time-step-wise rows (default: one per step).") var groups: Int?
    @Option(help: "Static activations: int8 (symmetric) or uint8 (asymmetric).") var activations = "int8"
    @Option(help: "Comma-separated row ids to run (fp32 always runs first).") var rows: String?
    @Option(name: .customLong("plan"), help: "A plan file to score as a row of its own (repeatable). The table then uses the plans' calibration; with --plan and no --rows, only FP32 and the plans run.")
    var plans: [String] = []
    @Flag(help: "Run the fake-quant reference instead of the int8 path.") var fakeQuant = false
    @Flag(help: "Print JSON instead of a table.") var json = false
    @Option(help: "Prompts per sampler batch.") var batch = 12

    func run() throws {
        try reportingErrors {
            // Plans bring their calibration: every plan must share it, and the table uses it.
            let parsedPlans = try plans.map { (path: $0, plan: try readPlan($0)) }
            if let first = parsedPlans.first, let other = parsedPlans.first(where: { $0.plan.calibration != first.plan.calibration }) {
                throw ValidationError("\(other.path): calibrated on \(other.plan.calibration.digest), \(first.path) on \(first.plan.calibration.digest); the plans of one table must share a calibration")
            }
            let setup = try QuantizationSetup(checkpoint: checkpoint, options: calibration, overridingKey: parsedPlans.first?.plan.calibration)
            for (path, plan) in parsedPlans { try setup.check(plan, source: path) }
            guard setup.model.config.inChannels == 3 else {
                throw ValidationError("\(setup.path): eval compares RGB frames, so it needs a pixel-space model (in_channels 3); this one has \(setup.model.config.inChannels) latent channels and no VAE here")
            }
            let list = try readPromptFile(prompts)
            guard !list.isEmpty else { throw ValidationError("\(prompts): no prompts") }
            let seedList = try parseSeeds(seeds, option: "--seeds")
            guard (0...1).contains(alpha) else { throw ValidationError("--alpha must be in [0, 1], got \(alpha)") }
            guard let kind = LayerSettings.Activations(rawValue: activations), !kind.isDynamic else {
                throw ValidationError("--activations must be int8 or uint8, got '\(activations)'")
            }
            let steps = setup.schedule.timesteps.count
            guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
            var methods = HeadlineTable.Method.standard(alpha: alpha, timestepGroups: min(max(groups ?? steps, 1), steps), activations: kind)
            if let rows {
                let wanted = Set(rows.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
                let unknown = wanted.subtracting(methods.map(\.id))
                guard unknown.isEmpty else { throw ValidationError("--rows: unknown \(unknown.sorted()) (known: \(methods.map(\.id).joined(separator: ", ")))") }
                methods = methods.filter { $0.id == "fp32" || wanted.contains($0.id) }
            } else if !parsedPlans.isEmpty {
                methods = methods.filter { $0.id == "fp32" }
            }
            for (i, (path, plan)) in parsedPlans.enumerated() {
                let stem = (path.split(separator: "/").last.map(String.init) ?? path).replacingOccurrences(of: ".json", with: "")
                // A plan's row is named by its file (`auto-w8a8.json` → `auto_w8a8`) unless that
                // name is generic or taken.
                let named = stem.replacingOccurrences(of: "-", with: "_")
                let id = stem == "plan" || methods.contains(where: { $0.id == named }) ? "plan\(i + 1)" : named
                methods.append(.init(id: id, title: "plan \(stem == "plan" ? path : stem)", plan: plan))
            }
            let statistics = try setup.statistics(cacheDirectory: calibration.cacheDirectory)
            let table = HeadlineTable(model: setup.model, encoder: try setup.textEncoder(), statistics: statistics,
                                      basePlan: setup.plan(defaults: LayerSettings(), groups: 1), schedule: setup.schedule,
                                      cfgScale: setup.cfgScale, fps: setup.fps, size: setup.size)
            let result = try table.run(methods: methods, prompts: list, seeds: seedList, batch: batch, int8: !fakeQuant) { id, i, n in
                FileHandleStderr.write("\r\(id): batch \(i)/\(n)   ")
            }
            FileHandleStderr.write("\n")
            if json {
                print(HeadlineTable.json(result).serialized())
                return
            }
            for (method, (path, _)) in zip(methods.suffix(parsedPlans.count), parsedPlans) { print("\(method.id): \(path)") }
            print("\(list.count) prompts × \(seedList.count) seeds, \(steps) steps, CFG \(setup.cfgScale); calibration \(setup.key.prompts.count) prompts × \(setup.key.seeds.count) seeds; α = \(alpha), \(kind.rawValue) activations, \(fakeQuant ? "fake-quant" : "int8") path")
            HeadlineTable.markdown(result).forEach { print($0) }
            for r in result where r.worstLayer != nil {
                let cell = r.worstStepCell.map { String(format: ", worst layer-step %@ at step %d", $0.layer, $0.step) } ?? ""
                FileHandleStderr.write(String(format: "%@: worst layer %@%@, %.1f s\n", r.id, r.worstLayer!, cell, r.seconds))
            }
        }
    }
}

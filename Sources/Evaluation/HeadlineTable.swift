import Foundation
import Quantization
import Tensors
import VideoDiT

/// The headline table (QUANTIZATION.md, "The headline table"): on the same prompts and seeds,
/// FP32 and each quantization method, with video quality against FP, prompt fidelity, step
/// error, worst local layer SQNR and deployed memory.
public struct HeadlineTable {
    /// One row's method.
    public struct Method: Sendable {
        public let id: String
        public let title: String
        /// Nil: the FP32 reference row.
        public let settings: LayerSettings?
        /// Step groups for time-step-wise smoothing (nil: one group).
        public let groups: Int?
        /// A whole plan (`eval --plan`): used as it is, `settings` and `groups` aside.
        public let plan: QuantizationPlan?

        public init(id: String, title: String, settings: LayerSettings?, groups: Int? = nil) {
            self.id = id
            self.title = title
            self.settings = settings
            self.groups = groups
            plan = nil
        }

        /// A row that scores `plan` as it is (its blocks, layers, step groups and defaults).
        public init(id: String, title: String, plan: QuantizationPlan) {
            self.id = id
            self.title = title
            settings = plan.defaults
            groups = plan.stepGroups.count
            self.plan = plan
        }

        /// The eight rows of the issue, W8A8 unless named W4A8; SmoothQuant α for the foldable
        /// layers (explicit-vector layers keep α = 0, QUANTIZATION.md's default).
        public static func standard(alpha: Double, timestepGroups: Int, activations: LayerSettings.Activations = .int8) -> [Method] {
            func s(_ edit: (inout LayerSettings) -> Void) -> LayerSettings {
                var v = LayerSettings()
                v.activations = activations
                edit(&v)
                return v
            }
            return [
                Method(id: "fp32", title: "FP32", settings: nil),
                // ViDiT-Q's OpenSora W8A8 configuration (w8a8_dynamic.yaml): weights per channel,
                // activations per token, dynamic, both asymmetric min-max (`sym` defaults to False).
                Method(id: "dynamic_w8a8", title: "dynamic per-token W8A8, asymmetric (ViDiT-Q's setting)",
                       settings: s { $0.activations = .dynamicUInt8; $0.weightSymmetric = false }),
                Method(id: "dynamic_w8a8_sym", title: "dynamic per-token W8A8, symmetric", settings: s { $0.activations = .dynamic }),
                Method(id: "static_w8a8_global", title: "static W8A8, one global scale", settings: s { $0.activationGranularity = .global }),
                Method(id: "static_w8a8_per_step", title: "static W8A8, per-step scales", settings: s { _ in }),
                Method(id: "asq_w8a8", title: "per-step + aggregated SmoothQuant W8A8", settings: s { $0.alpha = alpha }),
                Method(id: "tsq_w8a8", title: "per-step + time-step-wise SmoothQuant W8A8",
                       settings: s { $0.alpha = alpha; $0.smoothing = .timestep }, groups: timestepGroups),
                Method(id: "asq_w4a8", title: "per-step + aggregated SmoothQuant W4A8", settings: s { $0.alpha = alpha; $0.weightBits = 4 }),
                Method(id: "tsq_w4a8", title: "per-step + time-step-wise SmoothQuant W4A8",
                       settings: s { $0.alpha = alpha; $0.smoothing = .timestep; $0.weightBits = 4 }, groups: timestepGroups),
            ]
        }
    }

    public struct Row: Sendable {
        public var id: String
        public var title: String
        /// Means over videos; PSNR is +inf for FP32 against itself.
        public var psnr: Double, ssim: Double, flickerRatio: Double
        /// Nil when the prompts are not the demo model's scene world.
        public var promptFidelity: Double?
        /// Mean over steps and videos of ‖v_q − v_fp‖²/‖v_fp‖² (guided velocity on the quantized trajectory).
        public var stepError: Double
        /// Lowest local layer SQNR (dB), energies pooled over all steps; +inf for FP32.
        public var worstSQNR: Double
        public var worstLayer: String?
        /// Lowest local layer SQNR (dB) of any layer at any single step: what pooling hides.
        public var worstStepSQNR: Double
        public var worstStepCell: (layer: String, step: Int)?
        public var weightBytes: Int, scaleBytes: Int
        /// Everything a runtime needs of the block linears' export (`QuantizedModelExport.DeployedBytes`):
        /// packed integer weights, scales, biases, multipliers, encodings, folded float tables; for
        /// FP32 the block linears' float32 weights and biases.
        public var deployedBytes: Int
        public var seconds: Double
    }

    public let model: STDiT3
    public let encoder: WordTextEncoder
    public let statistics: [String: [Int: LayerStepStatistics]]
    /// The plan every row starts from (checkpoint, calibration key, timesteps).
    public let basePlan: QuantizationPlan
    public let schedule: RectifiedFlowSchedule
    public let cfgScale: Float
    public let fps: Float
    /// Model-input size T, H, W (pixels for the demo model).
    public let size: [Int]

    public init(model: STDiT3, encoder: WordTextEncoder, statistics: [String: [Int: LayerStepStatistics]], basePlan: QuantizationPlan,
                schedule: RectifiedFlowSchedule, cfgScale: Float, fps: Float, size: [Int]) {
        self.model = model
        self.encoder = encoder
        self.statistics = statistics
        self.basePlan = basePlan
        self.schedule = schedule
        self.cfgScale = cfgScale
        self.fps = fps
        self.size = size
    }

    /// The plan of one row.
    public func plan(for method: Method) -> QuantizationPlan? {
        if let plan = method.plan { return plan }
        guard let settings = method.settings else { return nil }
        var p = basePlan
        p.defaults = settings
        p.stepGroups = QuantizationPlan.equalGroups(steps: basePlan.steps, count: method.groups ?? 1)
        return p
    }

    public func run(methods: [Method], prompts: [String], seeds: [UInt64], batch: Int = 8, int8: Bool = true,
                    progress: (String, Int, Int) -> Void = { _, _, _ in }) throws -> [Row] {
        let sampler = RectifiedFlowSampler(model: model, cfgScale: cfgScale, fps: fps)
        let cin = model.config.inChannels, perVideo = cin * size.reduce(1, *)
        let (height, width) = (Float(size[1]) * (cin == 3 ? 1 : 8), Float(size[2]) * (cin == 3 ? 1 : 8))
        let scored = prompts.allSatisfy { SceneWorld.parse($0) != nil }
        // Batches: (seed, prompts) with the seed's noise for every video.
        var batches: [(noise: Tensor, prompts: [String])] = []
        for seed in seeds {
            var generator = NoiseGenerator(seed: seed)
            let noise = generator.gaussian(shape: [cin] + size).scalars
            for start in stride(from: 0, to: prompts.count, by: max(batch, 1)) {
                let chunk = Array(prompts[start..<min(start + batch, prompts.count)])
                batches.append((Tensor(shape: [chunk.count, cin] + size, scalars: Array(repeating: noise, count: chunk.count).flatMap { $0 }), chunk))
            }
        }
        func videos(_ t: Tensor, _ n: Int) -> [Tensor] {
            (0..<n).map { Tensor(shape: [cin] + size, scalars: Array(t.scalars[($0 * perVideo)..<(($0 + 1) * perVideo)])) }
        }
        var reference: [[Tensor]] = []
        var rows: [Row] = []
        for method in methods {
            let start = monotonicSeconds()
            let plan = plan(for: method)
            let quantized = try plan.map { try QuantizedModel(model: model, statistics: statistics, plan: $0) }
            let executor: LinearExecutor = quantized.map { QuantizedModelExecutor(model: $0, mode: int8 ? .int8 : .fakeQuant) } ?? Float32Executor()
            var psnr = 0.0, ssim = 0.0, flicker = 0.0, fidelity = 0.0, stepError = 0.0, stepCount = 0, count = 0
            for (b, batchInput) in batches.enumerated() {
                let condition = try encoder.encode(batchInput.prompts)
                var z = batchInput.noise
                for (i, t) in schedule.timesteps.enumerated() {
                    let v = try sampler.guidedVelocity(z, condition: condition, timestep: t, step: i, height: height, width: width, executor: executor)
                    if quantized != nil {
                        let vfp = try sampler.guidedVelocity(z, condition: condition, timestep: t, step: i, height: height, width: width)
                        for n in 0..<batchInput.prompts.count {
                            var num = 0.0, den = 0.0
                            for j in (n * perVideo)..<((n + 1) * perVideo) {
                                let d = Double(v[j] - vfp[j])
                                num += d * d
                                den += Double(vfp[j]) * Double(vfp[j])
                            }
                            stepError += den > 0 ? num / den : 0
                            stepCount += 1
                        }
                    } else {
                        stepCount += batchInput.prompts.count
                    }
                    for j in 0..<z.count { z.scalars[j] += v[j] * schedule.dt[i] }
                }
                let produced = videos(z, batchInput.prompts.count)
                if method.settings == nil { reference.append(produced) }
                guard b < reference.count else { throw ModelLoadError("the FP32 row must come first") }
                for (n, video) in produced.enumerated() {
                    let ref = reference[b][n]
                    psnr += min(VideoMetrics.psnr(video, reference: ref), 1e9)
                    ssim += VideoMetrics.ssim(video, reference: ref)
                    flicker += VideoMetrics.flickerRatio(video, reference: ref)
                    if scored, let s = PromptFidelity.score(video, prompt: batchInput.prompts[n]) { fidelity += s.fidelity }
                    count += 1
                }
                progress(method.id, b + 1, batches.count)
            }
            var worst = Double.infinity, worstLayer: String?
            var worstStep = Double.infinity, worstCell: (layer: String, step: Int)?
            if let quantized {
                // One pass over the calibration rows gives both: pooled over steps, and per step.
                let energies = try LayerSQNR.energiesPerStep(quantized, model: model, statistics: statistics, mode: int8 ? .int8 : .fakeQuant)
                for name in model.quantizableLinears.map(\.name) {
                    guard let steps = energies[name] else { continue }
                    let db = LayerSQNR.decibels(LayerSQNR.total(steps))
                    if db < worst { (worst, worstLayer) = (db, name) }
                    for (s, e) in steps.enumerated() {
                        let stepDB = LayerSQNR.stepDecibels(e)
                        if stepDB < worstStep { (worstStep, worstCell) = (stepDB, (name, s)) }
                    }
                }
            }
            let fpBytes = model.blockLinears.reduce(0) { $0 + 4 * $1.outputs * $1.inputs }
            let fpDeployed = model.blockLinears.reduce(0) { $0 + 4 * $1.outputs * ($1.inputs + ($1.bias == nil ? 0 : 1)) }
            let deployed = try quantized.map { try QuantizedModelExport.deployedBytes($0, model: model, fps: fps).total } ?? fpDeployed
            let n = Double(max(count, 1))
            rows.append(Row(id: method.id, title: method.title, psnr: psnr / n >= 1e9 ? .infinity : psnr / n, ssim: ssim / n,
                            flickerRatio: flicker / n, promptFidelity: scored ? fidelity / n : nil,
                            stepError: stepError / Double(max(stepCount, 1)), worstSQNR: worst, worstLayer: worstLayer,
                            worstStepSQNR: worstStep, worstStepCell: worstCell,
                            weightBytes: quantized?.weightBytes ?? fpBytes, scaleBytes: quantized?.scaleBytes ?? 0, deployedBytes: deployed,
                            seconds: monotonicSeconds() - start))
        }
        return rows
    }

    /// `{"rows":[{"id":…, "psnr_db":…, …}]}`; non-finite figures and a missing fidelity are null.
    public static func json(_ rows: [Row]) -> JSONValue {
        func number(_ x: Double?) -> JSONValue { x.map { $0.isFinite ? .double($0) : .null } ?? .null }
        return .object([("rows", .array(rows.map { r in
            .object([("id", .string(r.id)), ("psnr_db", number(r.psnr)), ("ssim", number(r.ssim)),
                     ("flicker_ratio", number(r.flickerRatio)), ("prompt_fidelity", number(r.promptFidelity)),
                     ("step_error", number(r.stepError)), ("worst_sqnr_db", number(r.worstSQNR)),
                     ("worst_step_sqnr_db", number(r.worstStepSQNR)),
                     ("weight_bytes", .int(r.weightBytes)), ("scale_bytes", .int(r.scaleBytes)), ("deployed_bytes", .int(r.deployedBytes))])
        }))])
    }

    /// A Markdown table.
    public static func markdown(_ rows: [Row]) -> [String] {
        func f(_ x: Double?, _ digits: Int) -> String {
            guard let x else { return "—" }
            return x.isFinite ? String(format: "%.\(digits)f", x) : "∞"
        }
        var lines = ["| method | PSNR dB | SSIM | flicker ratio | prompt fidelity | step error | worst layer SQNR dB | worst layer-step SQNR dB | weight bytes | scale bytes | deployed bytes |",
                     "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in rows {
            lines.append("| \(r.title) | \(f(r.psnr, 2)) | \(f(r.ssim, 4)) | \(f(r.flickerRatio, 3)) | \(f(r.promptFidelity, 3)) | "
                         + "\(String(format: "%.2e", r.stepError)) | \(f(r.worstSQNR, 1)) | \(f(r.worstStepSQNR, 1)) | \(r.weightBytes) | \(r.scaleBytes) | \(r.deployedBytes) |")
        }
        return lines
    }
}

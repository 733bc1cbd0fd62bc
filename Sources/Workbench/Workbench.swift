import Dispatch
import Quantization
import Tensors
import VideoDiT
#if canImport(Glibc)
import Glibc
#endif

/// The application core: holds the state, applies actions and runs background jobs. Jobs run on
/// a background queue and post their results as actions into `completed`; the UI thread calls
/// `drainCompletedJobs()` between input timeouts, so state is only ever mutated on that thread.
public final class Workbench: @unchecked Sendable {
    public private(set) var state: WorkbenchState
    public let session: CheckpointSession
    /// The Python the export dialog's ONNX option runs (`ONNXQDQExport`): `$STSQ_PYTHON`, else python3.
    public var onnxPython = ONNXQDQExport.interpreter()

    /// When false, statistics are computed inline (tests and headless rendering).
    private let runsJobsInBackground: Bool
    private let jobQueue = DispatchQueue(label: "stsq.workbench.jobs", qos: .userInitiated)
    /// Calibration and its follow-ups run apart, so a minute of calibration does not hold up the
    /// weight statistics of the layer the user is looking at (oneDNN calls still take turns).
    private let calibrationQueue = DispatchQueue(label: "stsq.workbench.calibration", qos: .userInitiated)
    private var mutex = pthread_mutex_t()
    private var completed: [Action] = []
    private let calibrationSource: CalibrationSource?
    private let stopCalibration = StopFlag()
    /// Set by `shutdown`: long jobs end early.
    private let stopping = StopFlag()
    /// The loaded model of a runnable checkpoint (set by the check job).
    private var calibrationSetup: CalibrationSetup?
    /// The layer whose weight statistics are being computed: one at a time, so moving through
    /// layers quickly computes the one on screen next, not every layer passed on the way.
    private var statisticsInFlight: String?
    /// After the selected layer, compute every other layer's statistics in the background (the
    /// tree's ⚑ flags without a visit); off for inline jobs, where it would compute them all at once.
    private let prefetchesStatistics: Bool
    /// Requantize and export jobs: one at a time, apart from calibration.
    private let tuningQueue = DispatchQueue(label: "stsq.workbench.tuning", qos: .userInitiated)
    /// The plan generation a requantize job is building, if one runs.
    private var requantizeInFlight: Int?
    private var exportInFlight = false
    /// The newest quantized model built and the plan it was built from (tuning queue and mutex).
    private var latest: Build?
    /// Preview sampling runs on its own queue, one video at a time.
    private let previewQueue = DispatchQueue(label: "stsq.workbench.preview", qos: .userInitiated)
    private var previewInFlight = false
    /// The int8 executor of the last quantized preview, whose products the next one takes over.
    private var previewExecutor: QuantizedModelExecutor?
    private var autoAlphaInFlight = false
    /// The newest plan generation and when its edit was made, for edit → preview latency (only
    /// the newest generation is ever previewed).
    private var lastEdit: (generation: Int, seconds: Double)?
    /// A quantized model and its local SQNR, overall and per step, per layer.
    private struct Build {
        let plan: QuantizationPlan
        /// Nil once a newer build has started: two XL models are not held at once.
        var model: QuantizedModel?
        /// The activation data it was built from (a recalibration makes its weight sets stale:
        /// GPTQ's codes come from its rows). Held, so that its identity cannot pass to a newer one.
        let data: ActivationData
        let sqnr: [String: Double]
        let perStep: [String: [Double]]
    }

    /// `calibration`: where activation statistics come from; nil shows weights only, with
    /// `calibrationProblem` (why there is none) on the activations screen.
    public init(session: CheckpointSession, calibration: CalibrationSource? = nil, calibrationProblem: String? = nil,
                backgroundJobs: Bool = true) {
        self.session = session
        self.state = WorkbenchState(checkpointName: session.displayName, checkpointPath: session.path,
                                    catalog: session.catalog)
        self.runsJobsInBackground = backgroundJobs
        self.prefetchesStatistics = backgroundJobs
        calibrationSource = calibration
        pthread_mutex_init(&mutex, nil)
        if calibration != nil { state.calibration = .checking }
        if let calibrationProblem { state.calibration = .unavailable(calibrationProblem) }
        startJobsIfNeeded()
        if let calibration { checkCalibration(calibration) }
    }

    deinit { pthread_mutex_destroy(&mutex) }

    /// Stops what can stop (calibration, preview sampling) and waits for every running job, so the
    /// process never exits under a job that still reads the model or its mapped checkpoint.
    public func shutdown() {
        stopping.set(true)
        stopCalibration.set(true)
        for queue in [jobQueue, calibrationQueue, tuningQueue, previewQueue] { queue.sync {} }
    }

    public func dispatch(_ action: Action) {
        if case .statisticsFinished(let layer, _) = action, layer == statisticsInFlight { statisticsInFlight = nil }
        if case .requantized(_, let generation) = action, generation == requantizeInFlight { requantizeInFlight = nil }
        if case .exportFinished = action { exportInFlight = false }
        if case .autoAlphaFinished = action { autoAlphaInFlight = false }
        switch action {
        case .previewReference, .previewQuantized, .previewFailed: previewInFlight = false
        default: break
        }
        let generation = state.tuning?.generation
        Reducer.apply(action, to: &state)
        if let now = state.tuning?.generation, now != generation { lastEdit = (now, monotonicSeconds()) }
        startJobsIfNeeded()
    }

    /// Applies the results of finished jobs; returns whether anything changed.
    @discardableResult
    public func drainCompletedJobs() -> Bool {
        pthread_mutex_lock(&mutex)
        let actions = completed
        completed.removeAll()
        pthread_mutex_unlock(&mutex)
        for action in actions { dispatch(action) }
        return !actions.isEmpty
    }

    /// Whether a job is still running (the UI shows a spinner and keeps polling).
    public var hasRunningJobs: Bool {
        state.selectedLayer.map { state.statistics[$0.name] == nil || state.statistics[$0.name] == .computing } ?? false
            || state.calibration.isBusy
            || requantizeInFlight != nil || exportInFlight || previewInFlight || autoAlphaInFlight
    }

    private func post(_ action: Action) {
        pthread_mutex_lock(&mutex)
        completed.append(action)
        pthread_mutex_unlock(&mutex)
    }

    private func startJobsIfNeeded() {
        startCalibrationJobsIfNeeded()
        startTuningJobsIfNeeded()
        guard statisticsInFlight == nil, let layer = nextLayerForStatistics() else { return }
        statisticsInFlight = layer.name
        state.statistics[layer.name] = .computing
        let session = self.session
        let job: @Sendable () -> Action = {
            do {
                return .statisticsFinished(layer: layer.name, .success(try session.weightStatistics(for: layer)))
            } catch {
                return .statisticsFinished(layer: layer.name, .failure(WorkbenchError("\(error)")))
            }
        }
        if runsJobsInBackground {
            jobQueue.async { [weak self] in self?.post(job()) }
        } else {
            dispatch(job())
        }
    }

    /// The selected layer if it has no statistics yet, else (when prefetching) the first such
    /// layer in tree order.
    private func nextLayerForStatistics() -> LinearLayer? {
        if let layer = state.selectedLayer, state.statistics[layer.name] == nil { return layer }
        guard prefetchesStatistics else { return nil }
        return state.catalog.layersInTreeOrder.first { state.statistics[$0.name] == nil }
    }

    // MARK: - Calibration

    private func run(on queue: DispatchQueue, _ job: @escaping @Sendable () -> [Action]) {
        if runsJobsInBackground {
            queue.async { [weak self] in job().forEach { self?.post($0) } }
        } else {
            job().forEach(dispatch)
        }
    }

    /// Loads the model and looks for a cached calibration.
    private func checkCalibration(_ source: CalibrationSource) {
        let session = self.session
        run(on: calibrationQueue) { [weak self] in
            do {
                let setup = try session.calibrationSetup(source)
                self?.setSetup(setup)
                if let data = try session.cachedActivations(setup, source) { return [.activationsReady(data)] }
                guard setup.encoder != nil else {
                    return [.calibrationStatus(.unavailable("no calibration \(setup.key.digest) in \(source.cacheDirectory), and " + CalibrationSetup.cannotSample(setup.path)))]
                }
                return [.calibrationStatus(.missing)]
            } catch let error as CalibrationSetupError {
                return [.calibrationStatus(.unavailable(error.description))]
            } catch let error as CalibrationCacheDamaged {
                return [.calibrationStatus(.damaged(error.description))]
            } catch {
                return [.calibrationStatus(.failed("\(error)"))]
            }
        }
    }

    private func setSetup(_ setup: CalibrationSetup) {
        pthread_mutex_lock(&mutex)
        calibrationSetup = setup
        pthread_mutex_unlock(&mutex)
    }

    private func loadedSetup() -> CalibrationSetup? {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return calibrationSetup
    }

    private func startCalibrationJobsIfNeeded() {
        if state.calibration == .cancelling { stopCalibration.set(true) }
        if state.calibration == .requested && (calibrationSource == nil || loadedSetup() == nil) {
            state.calibration = .failed("the model is not loaded")
        }
        if state.calibration == .requested, let source = calibrationSource, let setup = loadedSetup() {
            state.calibration = .running(done: 0, total: 0, elapsedSeconds: 0)
            stopCalibration.set(false)
            let session = self.session, stop = stopCalibration
            let start = monotonicSeconds()
            run(on: calibrationQueue) { [weak self] in
                do {
                    let data = try session.calibrate(setup, source, progress: { done, total in
                        self?.post(.calibrationStatus(.running(done: done, total: total, elapsedSeconds: monotonicSeconds() - start)))
                    }, shouldStop: { stop.value })
                    return [.activationsReady(data), .showMessage(StatusMessage(
                        "calibrated \(setup.key.prompts.count) prompts × \(setup.key.seeds.count) seeds in \(Int(monotonicSeconds() - start)) s; cached"))]
                } catch is CalibrationCancelled {
                    return [.calibrationStatus(.missing), .showMessage(StatusMessage("calibration cancelled; nothing was saved"))]
                } catch {
                    return [.calibrationStatus(.failed("\(error)"))]
                }
            }
        }
        // The quality map comes with the plan's first requantize (see `requantize`).
    }
}

// MARK: - Tuning

extension Workbench {
    /// The plan once the model and statistics are loaded; a requantize for each new edit (one job
    /// at a time: an edit made while one runs is built next, and results for older plans are
    /// dropped); the export when the dialog says write.
    private func startTuningJobsIfNeeded() {
        guard let data = state.activations, let setup = loadedSetup() else { return }
        if state.tuning == nil {
            let opened = calibrationSource?.plan
            let plan = opened?.plan ?? CheckpointSession.defaultPlan(setup)
            let name = opened.map { $0.path.split(separator: "/").last.map(String.init) ?? $0.path } ?? "default plan"
            Reducer.apply(.tuningReady(TuningState(plan: plan, name: name, path: opened?.path,
                                                   blocks: state.catalog.blocks.map(\.name))), to: &state)
        }
        guard let tuning = state.tuning else { return }
        if tuning.requantize == .pending && requantizeInFlight == nil {
            requantizeInFlight = tuning.generation
            let plan = tuning.plan, generation = tuning.generation, blocks = tuning.blocks
            run(on: tuningQueue) { [weak self] in
                guard let self else { return [] }
                do {
                    return [.requantized(.success(try self.requantize(plan, generation: generation, blocks: blocks, setup: setup, data: data)),
                                         generation: generation)]
                } catch {
                    return [.requantized(.failure(WorkbenchError("\(error)")), generation: generation)]
                }
            }
        }
        startPreviewJobsIfNeeded(setup: setup)
        if let block = tuning.autoAlphaBlock, !autoAlphaInFlight {
            autoAlphaInFlight = true
            let plan = tuning.plan, group = tuning.autoAlphaGroup
            run(on: tuningQueue) {
                do {
                    let curve = try AlphaSearch.curve(block: block, group: group, model: setup.model, statistics: data.statistics, plan: plan)
                    return [.autoAlphaFinished(block: block, group: group, .success(curve.map { AlphaPoint(alpha: $0.alpha, error: $0.error) }))]
                } catch {
                    return [.autoAlphaFinished(block: block, group: group, .failure(WorkbenchError("\(error)")))]
                }
            }
        }
        if let dialog = tuning.export, dialog.isWriting, !exportInFlight {
            exportInFlight = true
            let plan = tuning.plan
            run(on: tuningQueue) { [weak self] in
                guard let self else { return [] }
                let json = plan.json.serialized(pretty: true)
                let path = dialog.directory + "/plan.json"
                do {
                    let text = try self.export(plan, to: dialog.directory, includingModel: dialog.includesModel,
                                               encodings: dialog.includesEncodings, onnx: dialog.includesONNX, setup: setup, data: data)
                    return [.exportFinished(.success(text), planJSON: json, path: path)]
                } catch {
                    return [.exportFinished(.failure(WorkbenchError("\(error)")), planJSON: json, path: path)]
                }
            }
        }
    }

    /// Builds the quantized model of `plan` and the local SQNR of the layers whose block settings
    /// changed since the last build (every layer the first time): other layers keep their figures.
    private func requantize(_ plan: QuantizationPlan, generation: Int, blocks: [String], setup: CalibrationSetup,
                            data: ActivationData) throws -> RequantizeResult {
        let start = monotonicSeconds()
        var previous = latestBuild()
        // Its unchanged layers serve the new model; then it goes (a running preview holds its own).
        let reusable = previous?.data === data ? previous?.model : nil
        if previous != nil {
            previous!.model = nil
            setLatestBuild(previous!)
        }
        let model = try QuantizedModel(model: setup.model, statistics: data.statistics, plan: plan, reusing: reusable)
        let milliseconds = (monotonicSeconds() - start) * 1000
        // Only the blocks whose entry, or one of whose layers' entries, changed need measuring
        // again (a layer's 1/s folds into other layers of its block, never beyond); a change of
        // the defaults or the step groups touches every layer.
        var changed: Set<String>? = nil
        if let previous, previous.plan.defaults == plan.defaults, previous.plan.stepGroups == plan.stepGroups {
            let names = setup.model.blockLinears.map(\.name)
            let edited = Set(names.filter { name in
                previous.plan.layers.first { $0.0 == name }?.1 != plan.layers.first { $0.0 == name }?.1
            }.map(QuantizationPlan.block(of:)))
            let touched = Set(blocks).filter { block in
                edited.contains(block) || previous.plan.blocks.first { $0.0 == block }?.1 != plan.blocks.first { $0.0 == block }?.1
            }
            changed = Set(names.filter { touched.contains(QuantizationPlan.block(of: $0)) })
        }
        // One pass over the calibration rows gives both: per step, and all steps (energies summed).
        let energies = try LayerSQNR.energiesPerStep(model, model: setup.model, statistics: data.statistics, mode: .int8, layers: changed)
        var sqnr = changed == nil ? [:] : previous?.sqnr ?? [:]
        var perStep = changed == nil ? [:] : previous?.perStep ?? [:]
        // A layer now kept in float (or dynamic) has no figure any more.
        for layer in changed ?? [] { (sqnr[layer], perStep[layer]) = (nil, nil) }
        for (layer, steps) in energies {
            sqnr[layer] = LayerSQNR.decibels(LayerSQNR.total(steps))
            perStep[layer] = steps.map(LayerSQNR.stepDecibels)
        }
        setLatestBuild(Build(plan: plan, model: model, data: data, sqnr: sqnr, perStep: perStep))
        return RequantizeResult(generation: generation, layerSQNR: sqnr, perStepSQNR: perStep, milliseconds: milliseconds)
    }

    /// Writes `plan.json` and, `includingModel`, `quantized.safetensors` (each atomically; the
    /// quantized file records the plan's digest), with `encodings` the AIMET encodings folder too,
    /// and says what was written.
    private func export(_ plan: QuantizationPlan, to directory: String, includingModel: Bool, encodings: Bool, onnx: Bool,
                        setup: CalibrationSetup, data: ActivationData) throws -> String {
        try OutputFolder.checkWritable(directory, purpose: "the export")
        var encodingFiles = 0, onnxModels = 0
        if includingModel {
            let built = latestBuild()
            let model = try (built?.plan == plan ? built?.model : nil) ?? QuantizedModel(model: setup.model, statistics: data.statistics, plan: plan)
            if encodings {
                encodingFiles = try AIMETExport.write(model, model: setup.model, fps: setup.fps, to: directory).filter { $0.hasPrefix("encodings/") }.count
            } else {
                try QuantizedModelExport.write(model, model: setup.model, fps: setup.fps, to: directory)
            }
            if onnx {
                onnxModels = try ONNXQDQExport.write(checkpoint: setup.path, folder: directory, python: onnxPython, passThrough: false)
                    .filter { $0.hasSuffix(".onnx") }.count
            }
        } else {
            try QuantizedModelExport.writePlan(plan, to: directory)
        }
        let sizes = (includingModel ? ["plan.json", "quantized.safetensors"] : ["plan.json"]).map { name -> String in
            var info = stat()
            let bytes = stat(directory + "/" + name, &info) == 0 ? Int(info.st_size) : 0
            return "\(name) \(bytes >= 1 << 20 ? String(format: "%.1f MiB", Double(bytes) / 1048576) : String(format: "%.1f KiB", Double(bytes) / 1024))"
        }
        return "exported to \(directory): " + (sizes + (encodingFiles > 0 ? ["encodings/ (\(encodingFiles) files, AIMET)"] : [])
                                                + (onnxModels > 0 ? ["onnx/ (\(onnxModels) QDQ models)"] : [])).joined(separator: ", ")
    }

    /// On the plan screen: the FP video of the preview prompt once, then the quantized video of
    /// each newest built plan (an edit made while one samples is sampled next).
    private func startPreviewJobsIfNeeded(setup: CalibrationSetup) {
        guard state.screen == .tuning || state.preview != nil, let tuning = state.tuning, !previewInFlight else { return }
        if state.preview == nil {
            let prompts = calibrationSource?.previewPrompts ?? []
            state.preview = PreviewState(prompt: prompts.first ?? setup.key.prompts.first ?? "", prompts: prompts)
        }
        guard let preview = state.preview, preview.failure == nil else { return }
        guard setup.model.config.inChannels == 3 else {
            state.preview?.failure = "a latent-space model: its videos need the VAE decoder, which this tool does not have"
            return
        }
        guard setup.encoder != nil else {
            state.preview?.failure = "no preview: " + CalibrationSetup.cannotSample(setup.path)
            return
        }
        let prompt = preview.prompt, seed = preview.seed, stop = stopping
        if preview.reference == nil {
            previewInFlight = true
            run(on: previewQueue) {
                do { return [.previewReference(try Self.sample(prompt, seed: seed, setup: setup, executor: Float32Executor(), stop: stop))] } catch {
                    return [.previewFailed("\(error)")]
                }
            }
            return
        }
        guard case .done = tuning.requantize, preview.quantizedGeneration != tuning.generation,
              let build = latestBuild(), build.plan == tuning.plan, let built = build.model else { return }
        previewInFlight = true
        let generation = tuning.generation, editTime = lastEdit.flatMap { $0.generation == generation ? $0.seconds : nil }
        // Previews run one at a time, so the last one's products can be taken over: only the
        // layers the edit changed get new integer products (packing, primitives).
        let previous = previewExecutor
        let executor = QuantizedModelExecutor(model: built, mode: .int8, reusing: previous)
        previewExecutor = executor
        run(on: previewQueue) {
            do {
                let video = try Self.sample(prompt, seed: seed, setup: setup, executor: executor, stop: stop)
                return [.previewQuantized(video, generation: generation,
                                          editToPreviewMilliseconds: editTime.map { (monotonicSeconds() - $0) * 1000 })]
            } catch {
                return [.previewFailed("\(error)")]
            }
        }
    }

    /// One video of `prompt` with the calibration's sampler settings and noise of `seed`.
    private static func sample(_ prompt: String, seed: UInt64, setup: CalibrationSetup, executor: LinearExecutor,
                               stop: StopFlag) throws -> PreviewVideo {
        var generator = NoiseGenerator(seed: seed)
        let noise = generator.gaussian(shape: [1, setup.model.config.inChannels] + setup.size)
        let sampler = RectifiedFlowSampler(model: setup.model, cfgScale: setup.cfgScale, fps: setup.fps)
        var latents: [[Float]] = []
        let video = try sampler.sample(noise: noise, condition: try setup.textEncoder().encode([prompt]), schedule: setup.schedule,
                                       height: Float(setup.size[1]), width: Float(setup.size[2]), executor: executor) { _, z in
            if stop.value { throw CalibrationCancelled() }
            latents.append(z.scalars)
        }
        return PreviewVideo(video: Tensor(shape: Array(video.shape.dropFirst()), scalars: video.scalars), prompt: prompt, stepLatents: latents)
    }

    private func latestBuild() -> Build? {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return latest
    }

    private func setLatestBuild(_ build: Build) {
        pthread_mutex_lock(&mutex)
        latest = build
        pthread_mutex_unlock(&mutex)
    }
}

/// A flag one thread sets and another polls (a calibration's stop request).
final class StopFlag: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    private var flag = false
    init() { pthread_mutex_init(&mutex, nil) }
    deinit { pthread_mutex_destroy(&mutex) }
    var value: Bool {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return flag
    }
    func set(_ value: Bool) {
        pthread_mutex_lock(&mutex)
        flag = value
        pthread_mutex_unlock(&mutex)
    }
}

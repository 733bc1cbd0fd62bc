import Foundation
import Quantization
import Tensors

/// The tuning screen's part of the reducer: edits of the plan (each one undoable), requantize
/// results (stale ones dropped), the export dialog. Pure, like `Reducer`.
enum TuningReducer {
    static func apply(_ action: Action, to state: inout WorkbenchState) {
        switch action {
        case .tuningReady(let tuning):
            state.tuning = tuning
            return
        default: break
        }
        guard var t = state.tuning else {
            if case .requantized = action { return }
            state.message = StatusMessage(planUnavailable(state), severity: .error)
            return
        }
        defer { state.tuning = t }
        switch action {
        case .moveBlock(let delta):
            let previous = t.blockCursor
            t.blockCursor = min(max(t.blockCursor + delta, 0), max(t.blocks.count - 1, 0))
            if t.blockCursor != previous { t.layerCursor = 0 }
        case .moveBlockLayer(let delta):
            let count = layers(of: t.selectedBlock, state).count
            t.layerCursor = min(max(t.layerCursor + delta, 0), max(count - 1, 0))
        case .overrideLayer(let change):
            let names = layers(of: t.selectedBlock, state)
            guard names.indices.contains(t.layerCursor) else { return }
            let layer = names[t.layerCursor]
            guard let current = try? t.plan.settings(for: layer, foldable: SmoothQuant.fold(of: layer).isFolded) else { return }
            let order = state.catalog.quantizableLinears.map(\.name)
            func set(_ key: String, _ value: JSONValue?) { t.commit(t.plan(setting: key, to: value, ofLayer: layer, order: order)) }
            switch change {
            case .alpha(let delta): set("alpha", .double((min(max(current.alpha + delta, 0), 1) * 100).rounded() / 100))
            case .cycleWeightBits: set("weight_bits", .int(current.weightBits == 8 ? 6 : current.weightBits == 6 ? 4 : 8))
            case .toggleKeepFloat: set("keep_fp", .bool(!current.keepFloat))
            case .toggleWeightGranularity:
                set("weight_granularity", .string((current.weightGranularity == .perChannel ? QuantizedWeights.Granularity.perTensor : .perChannel).rawValue))
            case .toggleWeightSymmetry: set("weight_symmetric", .bool(!current.weightSymmetric))
            case .cycleActivations:
                let all = LayerSettings.Activations.allCases
                set("activations", .string(all[(all.firstIndex(of: current.activations)! + 1) % all.count].rawValue))
            case .cycleEstimator:
                let all = LayerSettings.Estimator.allCases
                set("estimator", .string(all[(all.firstIndex(of: current.estimator)! + 1) % all.count].rawValue))
            case .clear:
                guard t.override(of: layer) != nil else { return }
                var next = t.plan
                next.layers.removeAll { $0.0 == layer }
                t.commit(next)
            }
        case .adjustAlpha(let delta):
            guard let block = t.selectedBlock else { return }
            setAlpha(t.alpha(of: block) + delta, of: block, &t)
        case .beginAlphaEntry:
            guard let block = t.selectedBlock else { return }
            t.alphaEntry = String(format: "%.2f", t.alpha(of: block))
        case .setAlphaEntry(let text):
            guard t.alphaEntry != nil else { return }
            t.alphaEntry = String(text.filter { $0.isNumber || $0 == "." }.prefix(6))
        case .endAlphaEntry(let accept):
            guard let text = t.alphaEntry else { return }
            t.alphaEntry = nil
            guard accept, let block = t.selectedBlock else { return }
            guard let value = Double(text), value.isFinite, (0...1).contains(value) else {
                state.message = StatusMessage("α must be a number in 0…1, got '\(text)'", severity: .error)
                return
            }
            setAlpha(value, of: block, &t)
        case .toggleSmoothing:
            guard let block = t.selectedBlock else { return }
            let next: LayerSettings.Smoothing = t.smoothing(of: block) == .aggregated ? .timestep : .aggregated
            t.commit(t.plan(setting: "smoothing", to: .string(next.rawValue), of: block))
            if next == .timestep && t.plan.stepGroups.count == 1 {
                state.message = StatusMessage("time-step-wise smoothing with one step group is aggregated smoothing: the plan has \(t.plan.stepGroups.count) group")
            }
        case .autoAlpha:
            guard let block = t.selectedBlock else { return }
            guard t.autoAlphaBlock == nil else {
                state.message = StatusMessage("an α search of \(t.autoAlphaBlock!) is running")
                return
            }
            t.autoAlphaBlock = block
            state.message = StatusMessage("searching α for \(block) (21 values)…")
        case .autoAlphaFinished(let block, let result):
            t.autoAlphaBlock = nil
            switch result {
            case .success(let points):
                t.alphaCurve = (block, points)
                guard let best = AlphaPoint.best(points) else { return }
                let current = points.first { abs($0.alpha - t.alpha(of: block)) < 1e-9 }
                setAlpha(best.alpha, of: block, &t)
                state.message = StatusMessage("\(block): α \(String(format: "%.2f", best.alpha)) has the least local error, "
                    + String(format: "%.2e", best.error) + (current.map { String(format: " (was %.2e)", $0.error) } ?? "") + " · u undoes")
            case .failure(let error):
                state.message = StatusMessage("α search: \(error.message)", severity: .error)
            }
        case .changeStepGroups(let delta):
            let steps = t.plan.steps
            let count = min(max(t.plan.stepGroups.count + delta, 1), steps)
            guard count != t.plan.stepGroups.count else {
                state.message = StatusMessage(count == 1 ? "one step group already" : "one group per step already (\(steps))")
                return
            }
            var next = t.plan
            next.stepGroups = QuantizationPlan.equalGroups(steps: steps, count: count)
            t.commit(next)
            state.message = StatusMessage("step groups: " + next.stepGroups.map { "\($0.lowerBound)–\($0.upperBound)" }.joined(separator: " "))
        case .undo:
            if !t.step(from: \.undoStack, to: \.redoStack) { state.message = StatusMessage("nothing to undo") }
        case .redo:
            if !t.step(from: \.redoStack, to: \.undoStack) { state.message = StatusMessage("nothing to redo") }
        case .requantized(let result, let generation):
            // A result for an older plan is dropped: the job for the newest edit follows.
            guard generation == t.generation else { return }
            switch result {
            case .success(let r):
                t.previousLayerSQNR = t.layerSQNR.isEmpty ? r.layerSQNR : t.layerSQNR
                t.layerSQNR = r.layerSQNR
                t.requantize = .done(milliseconds: r.milliseconds)
                // The quality map follows the plan being tuned.
                if !r.perStepSQNR.isEmpty { state.qualityMap = r.perStepSQNR }
            case .failure(let error):
                t.requantize = .failed(error.message)
                state.message = StatusMessage("requantize: \(error.message)", severity: .error)
            }
        case .beginExport:
            t.export = ExportDialog(directory: defaultExportDirectory(state, t))
        case .setExportDirectory(let text):
            guard t.export?.isWriting == false else { return }
            t.export?.directory = text
        case .endExport(let accept):
            guard let dialog = t.export, !dialog.isWriting else { return }
            if accept {
                guard !dialog.directory.trimmingCharacters(in: .whitespaces).isEmpty else {
                    state.message = StatusMessage("give a folder to export to", severity: .error)
                    return
                }
                t.export?.isWriting = true
            } else {
                t.export = nil
            }
        case .exportFinished(let result, let planJSON, let path):
            t.export = nil
            switch result {
            case .success(let text):
                t.savedJSON = planJSON
                t.path = path
                t.name = path.split(separator: "/").suffix(2).joined(separator: "/")
                state.message = StatusMessage(text)
            case .failure(let error):
                state.message = StatusMessage("export failed: \(error.message)", severity: .error)
            }
        default: break
        }
    }

    /// The block's linears in model order.
    static func layers(of block: String?, _ state: WorkbenchState) -> [String] {
        state.catalog.blocks.first { $0.name == block }?.linears.map(\.name) ?? []
    }

    private static func setAlpha(_ value: Double, of block: String, _ t: inout TuningState) {
        let alpha = (min(max(value, 0), 1) * 100).rounded() / 100
        t.commit(t.plan(setting: "alpha", to: .double(alpha), of: block))
    }

    /// Next to the plan file it was opened from, else next to the checkpoint: `NAME-quantized/`.
    static func defaultExportDirectory(_ state: WorkbenchState, _ t: TuningState) -> String {
        if let path = t.path, let slash = path.lastIndex(of: "/") { return String(path[..<slash]) }
        let checkpoint = state.checkpointPath
        let folder = checkpoint.lastIndex(of: "/").map { String(checkpoint[..<$0]) } ?? "."
        let stem = (checkpoint.split(separator: "/").last.map(String.init) ?? "model").replacingOccurrences(of: ".safetensors", with: "")
        // The bundled model lives in the build folder: export to the working directory instead.
        let base = folder.contains("/.build/") ? FileManager.default.currentDirectoryPath : folder
        return base + "/" + stem + "-quantized"
    }

    private static func planUnavailable(_ state: WorkbenchState) -> String {
        switch state.calibration {
        case .ready: return "the plan is loading"
        case .unavailable(let why): return "no plan to tune: \(why)"
        default: return "the plan needs the calibration statistics: calibrate on the activations screen (a, then C)"
        }
    }
}

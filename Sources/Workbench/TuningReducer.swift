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
            if state.screen == .tuning, let layer = state.selectedLayer?.name { follow(layer: layer, &state) }
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
            selectInTree(t, &state)
        case .moveBlockLayer(let delta):
            let count = layers(of: t.selectedBlock, state).count
            t.layerCursor = min(max(t.layerCursor + delta, 0), max(count - 1, 0))
            selectInTree(t, &state)
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
            case .toggleShift:
                guard SmoothQuant.fold(of: layer).takesShift else {
                    state.message = StatusMessage("\(layer): a channel shift folds only into the modulation rows, so only attn.qkv and mlp.fc1 take one")
                    return
                }
                set("shift", .bool(!current.shift))
            case .toggleWeightRounding:
                set("weight_rounding", .string((current.weightRounding == .nearest ? LayerSettings.WeightRounding.gptq : .nearest).rawValue))
            case .clear:
                guard t.override(of: layer) != nil else { return }
                var next = t.plan
                next.layers.removeAll { $0.0 == layer }
                t.commit(next)
            }
        case .adjustAlpha(let delta):
            guard let block = t.selectedBlock else { return }
            if t.hasGroupAlphas(block) {
                // α per group: the whole profile moves.
                setGroupAlphas(t.groupAlphas(of: block).map { $0 + delta }, of: block, &t)
            } else {
                setAlpha(t.alpha(of: block) + delta, of: block, &t)
            }
        case .beginAlphaEntry:
            guard let block = t.selectedBlock else { return }
            if state.focus == .stepGroups {
                guard let group = groupForAlpha(of: block, t, &state) else { return }
                t.alphaEntryGroup = group
                t.alphaEntry = String(format: "%.2f", t.groupAlphas(of: block)[group])
            } else {
                t.alphaEntryGroup = nil
                t.alphaEntry = String(format: "%.2f", t.alpha(of: block))
            }
        case .setAlphaEntry(let text):
            guard t.alphaEntry != nil else { return }
            t.alphaEntry = String(text.filter { $0.isNumber || $0 == "." }.prefix(6))
        case .endAlphaEntry(let accept):
            guard let text = t.alphaEntry else { return }
            let group = t.alphaEntryGroup
            t.alphaEntry = nil
            t.alphaEntryGroup = nil
            guard accept, let block = t.selectedBlock else { return }
            guard let value = Double(text), value.isFinite, (0...1).contains(value) else {
                state.message = StatusMessage("α must be a number in 0…1, got '\(text)'", severity: .error)
                return
            }
            if let group {
                var alphas = t.groupAlphas(of: block)
                guard alphas.indices.contains(group) else { return }
                alphas[group] = value
                setGroupAlphas(alphas, of: block, &t)
            } else {
                setAlpha(value, of: block, &t)
            }
        case .adjustGroupAlpha(let delta):
            guard let block = t.selectedBlock, let group = groupForAlpha(of: block, t, &state) else { return }
            var alphas = t.groupAlphas(of: block)
            alphas[group] += delta
            setGroupAlphas(alphas, of: block, &t)
        case .splitStepGroup:
            guard let step = selectedStep(&state) else { return }
            let groups = t.plan.stepGroups
            guard let g = groups.firstIndex(where: { $0.contains(step) }) else { return }
            guard groups[g].lowerBound != step else {
                state.message = StatusMessage("step \(step) already starts group \(g + 1) (\(groups[g].lowerBound)–\(groups[g].upperBound)): move to a step inside a group to split it")
                return
            }
            var next = groups
            next.replaceSubrange(g...g, with: [groups[g].lowerBound...(step - 1), step...groups[g].upperBound])
            t.commit(t.plan.regrouped(next))
            state.message = StatusMessage("split at step \(step): " + describe(next))
        case .mergeStepGroup:
            guard let step = selectedStep(&state) else { return }
            let groups = t.plan.stepGroups
            guard let g = groups.firstIndex(where: { $0.contains(step) }) else { return }
            guard g > 0 else {
                state.message = StatusMessage(groups.count == 1 ? "one step group already" : "group 1 has no group before it to merge into (move to a later group)")
                return
            }
            var next = groups
            next.replaceSubrange((g - 1)...g, with: [groups[g - 1].lowerBound...groups[g].upperBound])
            t.commit(t.plan.regrouped(next))
            state.message = StatusMessage("merged groups \(g) and \(g + 1): " + describe(next))
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
            var group: Int?
            if state.focus == .stepGroups {
                guard let g = groupForAlpha(of: block, t, &state) else { return }
                group = g
            }
            t.autoAlphaBlock = block
            t.autoAlphaGroup = group
            t.autoAlphaGroups = t.plan.stepGroups
            state.message = StatusMessage("searching α for \(block)\(group.map { " in step group \($0 + 1)" } ?? "") (21 values)…")
        case .autoAlphaFinished(let block, let group, let result):
            let searchedGroups = t.autoAlphaGroups
            t.autoAlphaBlock = nil
            t.autoAlphaGroup = nil
            t.autoAlphaGroups = nil
            if let group, case .success = result,
               searchedGroups != t.plan.stepGroups || t.smoothing(of: block) != .timestep || !t.plan.stepGroups.indices.contains(group) {
                state.message = StatusMessage("\(block): the α search of step group \(group + 1) is dropped: the step groups or the smoothing changed while it ran (A again)")
                return
            }
            switch result {
            case .success(let points):
                t.alphaCurve = (block, group, points)
                guard let best = AlphaPoint.best(points) else { return }
                var alphas = t.groupAlphas(of: block)
                // The α the searched plan had (none to compare with when one α replaces a profile).
                let was: Double? = group.map { alphas[$0] } ?? (t.hasGroupAlphas(block) ? nil : t.alpha(of: block))
                let current = was.flatMap { was in points.first { abs($0.alpha - was) < 1e-9 } }
                if let group {
                    alphas[group] = best.alpha
                    setGroupAlphas(alphas, of: block, &t)
                } else {
                    setAlpha(best.alpha, of: block, &t)
                }
                state.message = StatusMessage("\(block)\(group.map { ", step group \($0 + 1)" } ?? ""): α \(String(format: "%.2f", best.alpha)) has the least local error, "
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
            let next = t.plan.regrouped(QuantizationPlan.equalGroups(steps: steps, count: count))
            t.commit(next)
            state.message = StatusMessage("step groups: " + describe(next.stepGroups))
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
            // Typing goes to the folder field only.
            guard t.export?.isWriting == false, t.export?.isOnModelOption == false else { return }
            t.export?.directory = text
        case .toggleExportField:
            guard t.export?.isWriting == false else { return }
            t.export?.isOnModelOption.toggle()
        case .toggleExportModel:
            guard t.export?.isWriting == false else { return }
            // Space cycles: the model → the plan alone → + AIMET encodings → + ONNX QDQ → the model.
            guard let dialog = t.export else { return }
            if dialog.includesONNX {
                t.export?.includesONNX = false
            } else if dialog.includesEncodings {
                t.export?.includesEncodings = false
                t.export?.includesONNX = true
            } else if dialog.includesModel {
                t.export?.includesModel = false
            } else {
                t.export?.includesModel = true
                t.export?.includesEncodings = true
            }
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

    /// The plan screen's cursor on `layer`'s block and layer (the layer selected on another screen).
    static func follow(layer: String, _ state: inout WorkbenchState) {
        guard var t = state.tuning, let b = t.blocks.firstIndex(of: QuantizationPlan.block(of: layer)) else { return }
        t.blockCursor = b
        t.layerCursor = layers(of: t.blocks[b], state).firstIndex(of: layer) ?? 0
        state.tuning = t
    }

    /// The tree (and so the other screens) follows the plan screen's block and layer.
    private static func selectInTree(_ t: TuningState, _ state: inout WorkbenchState) {
        let names = layers(of: t.selectedBlock, state)
        guard names.indices.contains(t.layerCursor), state.selectedLayer?.name != names[t.layerCursor] else { return }
        Reducer.select(layer: names[t.layerCursor], &state)
    }

    /// The block's linears in model order.
    static func layers(of block: String?, _ state: WorkbenchState) -> [String] {
        state.catalog.blocks.first { $0.name == block }?.linears.map(\.name) ?? []
    }

    /// One α for all the block's step groups (an α per group is dropped).
    private static func setAlpha(_ value: Double, of block: String, _ t: inout TuningState) {
        var next = t.plan(setting: "alpha", to: .double(rounded(value)), of: block)
        next.blocks = QuantizationPlan.entries(next.blocks, setting: "group_alpha", to: nil, of: block, order: t.blocks)
        t.commit(next)
    }

    private static func setGroupAlphas(_ values: [Double], of block: String, _ t: inout TuningState) {
        t.commit(t.plan(setting: "group_alpha", to: .array(values.map { .double(rounded($0)) }), of: block))
    }

    /// α clamped to 0…1 on a grid of 0.01.
    private static func rounded(_ value: Double) -> Double { (min(max(value, 0), 1) * 100).rounded() / 100 }

    /// The selected step's group when the block can take an α per group; else says why not.
    private static func groupForAlpha(of block: String, _ t: TuningState, _ state: inout WorkbenchState) -> Int? {
        guard t.smoothing(of: block) == .timestep else {
            state.message = StatusMessage("α per step group needs time-step-wise smoothing: m switches \(block) to it")
            return nil
        }
        guard t.plan.stepGroups.count > 1 else {
            state.message = StatusMessage("one step group: split it at a step first (s here, or > for equal groups)")
            return nil
        }
        guard let step = selectedStep(&state) else { return nil }
        return t.plan.groupOfStep[step]
    }

    /// The selected sampler step; with all steps merged, says to pick one.
    private static func selectedStep(_ state: inout WorkbenchState) -> Int? {
        guard let tuning = state.tuning else { return nil }
        guard case .step(let s) = state.step, (0..<tuning.plan.steps).contains(s) else {
            state.message = StatusMessage("select a sampler step first (h/l or ,/.)")
            return nil
        }
        return s
    }

    private static func describe(_ groups: [ClosedRange<Int>]) -> String {
        groups.map { "\($0.lowerBound)–\($0.upperBound)" }.joined(separator: " ")
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

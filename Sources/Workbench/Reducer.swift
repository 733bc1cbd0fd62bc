import Quantization

/// Applies an action to the state: pure, no I/O. Side effects (starting jobs) are decided by
/// `Workbench` from the state afterwards.
public enum Reducer {
    public static func apply(_ action: Action, to state: inout WorkbenchState) {
        // A pending "quit without saving?" lasts until the user does anything else.
        if !action.isFromJobOrLayout, !(action.isQuit) { state.tuning?.confirmingQuit = false }
        switch action {
        case .moveCursor(let delta): moveCursor(to: state.cursor + delta, &state)
        case .moveToFirst: moveCursor(to: 0, &state)
        case .moveToLast: moveCursor(to: state.rows.count - 1, &state)
        case .page(let pages): moveCursor(to: state.cursor + pages * max(state.treeViewportRows - 1, 1), &state)
        case .selectRow(let index): moveCursor(to: index, &state)
        case .moveLayer(let delta):
            let layers = state.catalog.layersInTreeOrder
            guard !layers.isEmpty else { return }
            let target: Int
            if let name = state.selectedLayer?.name, let i = layers.firstIndex(where: { $0.name == name }) {
                target = min(max(i + delta, 0), layers.count - 1)
            } else {
                // On a block or section row: the first layer below it (or the last above it).
                let below = state.rows[state.cursor...].compactMap(\.linear).first
                let above = state.rows[...state.cursor].compactMap(\.linear).last
                let anchor = (delta > 0 ? below ?? above : above ?? below).flatMap { l in layers.firstIndex { $0.name == l.name } }
                target = anchor ?? (delta > 0 ? 0 : layers.count - 1)
            }
            select(layer: layers[target].name, &state)

        case .beginSearch:
            state.search = LayerSearch(origin: state.selectedRow?.id)
            state.message = nil
        case .setSearch(let query):
            guard var search = state.search else { return }
            search.query = query
            let layers = state.catalog.layersInTreeOrder
            search.matches = layers.filter { LayerSearch.matches($0.name, query) }.count
            state.search = search
            let start = layers.firstIndex { $0.name == search.origin } ?? 0
            if let found = (0..<layers.count).map({ layers[(start + $0) % layers.count] }).first(where: { LayerSearch.matches($0.name, query) }) {
                select(layer: found.name, &state)
            } else if let origin = search.origin {
                select(row: origin, &state)
            }
        case .endSearch(let accept):
            guard let search = state.search else { return }
            state.search = nil
            if accept && !search.query.isEmpty {
                state.lastSearch = search.query
                state.message = StatusMessage(search.matches == 0 ? "no layer matches '\(search.query)'"
                                              : "\(search.matches) layer\(search.matches == 1 ? "" : "s") match '\(search.query)' · n/N next/previous",
                                              severity: search.matches == 0 ? .error : .info)
            } else if let origin = search.origin {
                select(row: origin, &state)
            }
        case .repeatSearch(let delta):
            guard !state.lastSearch.isEmpty else {
                state.message = StatusMessage("no search yet — / finds a layer by name")
                return
            }
            let layers = state.catalog.layersInTreeOrder
            let matching = layers.indices.filter { LayerSearch.matches(layers[$0].name, state.lastSearch) }
            guard !matching.isEmpty else {
                state.message = StatusMessage("no layer matches '\(state.lastSearch)'", severity: .error)
                return
            }
            let current = state.selectedLayer.flatMap { l in layers.firstIndex { $0.name == l.name } } ?? -1
            let next = delta > 0 ? matching.first { $0 > current } ?? matching[0] : matching.last { $0 < current } ?? matching[matching.count - 1]
            select(layer: layers[next].name, &state)
            let position = matching.firstIndex(of: next)! + 1
            state.message = StatusMessage("'\(state.lastSearch)' \(position)/\(matching.count)")

        case .expandOrEnter:
            guard let row = state.selectedRow else { return }
            if row.isExpandable && !row.isExpanded {
                state.expanded.insert(row.id)
                state.rebuildRows(keeping: row.id)
            } else if row.isExpandable {
                moveCursor(to: state.cursor + 1, &state)
            } else if row.linear != nil {
                state.focus = state.screen == .weights ? .ranges : .histogram
            }
        case .collapseOrParent:
            guard let row = state.selectedRow else { return }
            if row.isExpanded {
                state.expanded.remove(row.id)
                state.rebuildRows(keeping: row.id)
            } else if let parent = ModelTree.parent(of: state.cursor, in: state.rows) {
                moveCursor(to: parent, &state)
            }
        case .toggleExpanded:
            guard let row = state.selectedRow, row.isExpandable else { return }
            if row.isExpanded { state.expanded.remove(row.id) } else { state.expanded.insert(row.id) }
            state.rebuildRows(keeping: row.id)

        case .scrollChannels(let delta): setChannelOffset(state.activeChannelOffset + delta, nil, &state)
        case .scrollChannelsPage(let pages): setChannelOffset(state.activeChannelOffset + pages * max(state.channelViewportColumns - 4, 1), nil, &state)
        case .selectRangesPlot(let plot): state.rangesPlot = plot ?? (state.rangesPlot == .outputs ? .inputs : .outputs)
        case .scrollChannelsToStart: setChannelOffset(0, nil, &state)
        case .scrollChannelsToEnd: setChannelOffset(Int.max / 2, nil, &state)
        case .scrollOutliers(let delta):
            state.outlierScroll = max(0, min(state.outlierScroll + delta, WeightRangeStatistics.rankedCount - state.outlierViewportRows))

        case .showScreen(let screen): show(screen, &state)
        case .moveStep(let delta):
            guard let steps = state.activations?.steps, steps > 0 else { return }
            switch state.step {
            case .step(let s): state.step = .step(min(max(s + delta, 0), steps - 1))
            case .all: state.step = .step(delta > 0 ? 0 : steps - 1)
            }
        case .firstStep: state.step = .step(0)
        case .lastStep: state.step = .step(max((state.activations?.steps ?? 1) - 1, 0))
        case .toggleAllSteps: state.step = state.step == .all ? .step(state.qualityStep) : .all
        case .toggleGlobalScale: state.showsGlobalScale.toggle()
        case .moveHeatChannel(let delta): setHeatChannel(state.heatChannel + delta, &state)
        case .moveQualityCursor(let layers, let steps):
            let layerCount = state.catalog.quantizableLinears.count, stepCount = state.activations?.steps ?? 1
            state.qualityLayer = min(max(state.qualityLayer + layers, 0), max(layerCount - 1, 0))
            state.qualityStep = min(max(state.qualityStep + steps, 0), max(stepCount - 1, 0))
        case .openQualityCell:
            guard state.catalog.quantizableLinears.indices.contains(state.qualityLayer) else { return }
            select(layer: state.catalog.quantizableLinears[state.qualityLayer].name, &state)
            state.step = .step(state.qualityStep)
            state.focus = .histogram
            if state.zoomed != nil { state.zoomed = .histogram }

        case .requestCalibration:
            switch state.calibration {
            case .missing, .failed, .damaged: state.calibration = .requested
            case .ready: state.message = StatusMessage("already calibrated (\(state.activations?.calibrationDigest ?? ""))")
            case .unavailable(let why): state.message = StatusMessage(why, severity: .error)
            default: break
            }
        case .cancelCalibration:
            if case .running = state.calibration { state.calibration = .cancelling }
        case .calibrationStatus(let status):
            state.calibration = status
            if case .failed(let why) = status { state.message = StatusMessage("calibration: \(why)", severity: .error) }
            if case .damaged(let why) = status { state.message = StatusMessage(why + " · C recalibrates", severity: .error) }
        case .activationsReady(let data):
            state.activations = data
            state.calibration = .ready
            state.qualityMap = nil
            if case .step(let s) = state.step, s >= data.steps { state.step = .step(0) }
            state.qualityStep = min(state.qualityStep, max(data.steps - 1, 0))
        case .qualityMapReady(let map): state.qualityMap = map

        case .focusNumber(let n):
            let panes = state.screen.panes
            if panes.indices.contains(n - 1) { apply(.focus(panes[n - 1]), to: &state) }
        case .focus(let pane):
            if pane.screen != state.screen && pane != .tree { show(pane.screen, &state) }
            state.focus = pane
            if pane == .heatmap || pane == .quality { state.lowerActivationPane = pane }
            if pane == .preview || pane == .stepGroups { state.lowerTuningPane = pane }
            if state.zoomed != nil { state.zoomed = pane }
        case .focusNext: cycleFocus(1, &state)
        case .focusPrevious: cycleFocus(-1, &state)
        case .toggleZoom: state.zoomed = state.zoomed == nil ? state.focus : nil

        case .showHelp: state.help = HelpState()
        case .hideHelp: state.help = nil
        case .beginHelpFilter: state.help?.isEditingFilter = true
        case .setHelpFilter(let text):
            state.help?.filter = text
            state.help?.scroll = 0
        case .endHelpFilter: state.help?.isEditingFilter = false
        case .scrollHelp(let delta):
            if let scroll = state.help?.scroll { state.help?.scroll = max(0, scroll + delta) }

        case .showMessage(let message): state.message = message
        case .clearMessage: state.message = nil
        case .viewport(let treeRows, let channelColumns, let heatColumns, let outlierRows):
            state.outlierViewportRows = max(outlierRows, 1)
            state.outlierScroll = min(state.outlierScroll, max(WeightRangeStatistics.rankedCount - state.outlierViewportRows, 0))
            state.treeViewportRows = max(treeRows, 1)
            state.channelViewportColumns = max(channelColumns, 1)
            state.heatViewportColumns = max(heatColumns, 1)
            keepCursorVisible(&state)
            for plot in [RangesPlot.outputs, .inputs] { setChannelOffset(state.channelOffset(plot), plot, &state) }
            setHeatChannel(state.heatChannel, &state)

        case .statisticsFinished(let layer, let result):
            switch result {
            case .success(let stats): state.statistics[layer] = .ready(stats)
            case .failure(let error):
                state.statistics[layer] = .failed(error.message)
                state.message = StatusMessage("\(layer): \(error.message)", severity: .error)
            }
        case .quit:
            // Unsaved plan edits: the first quit asks, a second one leaves.
            if let tuning = state.tuning, tuning.isModified, !tuning.confirmingQuit {
                state.tuning?.confirmingQuit = true
                state.message = StatusMessage("the plan has unsaved changes: q again quits without them; any other key stays (e on the plan screen exports)",
                                              severity: .error)
            } else {
                state.shouldQuit = true
            }
        case .previewReference(let video):
            guard state.preview?.prompt == video.prompt else { return }
            state.preview?.reference = video
            state.preview?.failure = nil
        case .previewQuantized(let video, let generation, let milliseconds):
            guard var preview = state.preview, let reference = preview.reference, video.prompt == preview.prompt else { return }
            preview.quantized = video
            preview.quantizedGeneration = generation
            preview.metrics = PreviewMetrics(quantized: video, reference: reference)
            if let milliseconds { preview.editToPreviewMilliseconds = milliseconds }
            state.preview = preview
        case .previewFailed(let why):
            state.preview?.failure = why
            state.message = StatusMessage("preview: \(why)", severity: .error)
        case .tickPreview:
            guard var preview = state.preview, preview.playing, let frames = preview.reference?.frames, frames > 0 else { return }
            preview.frame = (preview.frame + 1) % frames
            state.preview = preview
        case .togglePreviewPlay: state.preview?.playing.toggle()
        case .nextPreviewPrompt(let delta):
            guard let preview = state.preview, preview.prompts.count > 1 else {
                state.message = StatusMessage("one preview prompt: give --preview-prompt, or add prompts to sample-prompts/eval.txt")
                return
            }
            let i = preview.prompts.firstIndex(of: preview.prompt) ?? 0
            let n = preview.prompts.count
            var next = PreviewState(prompt: preview.prompts[((i + delta) % n + n) % n], prompts: preview.prompts)
            next.playing = preview.playing
            state.preview = next
        case .beginPromptEntry:
            guard state.preview != nil else {
                state.message = StatusMessage("the preview starts with the plan screen's first requantize")
                return
            }
            state.preview?.promptEntry = ""
            // The entry is drawn in the preview pane: bring it back if the step groups are shown.
            if state.screen == .tuning && state.lowerTuningPane != .preview {
                state.lowerTuningPane = .preview
                state.focus = .preview
                if state.zoomed != nil { state.zoomed = .preview }
            }
        case .setPromptEntry(let text):
            guard state.preview?.promptEntry != nil else { return }
            state.preview?.promptEntry = String(text.filter { !$0.isNewline }.prefix(200))
        case .endPromptEntry(let accept):
            guard let preview = state.preview, let text = preview.promptEntry else { return }
            state.preview?.promptEntry = nil
            let prompt = text.trimmingCharacters(in: .whitespaces)
            guard accept else { return }
            guard !prompt.isEmpty else {
                state.message = StatusMessage("an empty prompt: type one, or P for the next eval prompt", severity: .error)
                return
            }
            guard prompt != preview.prompt else { return }
            // The typed prompt joins the list P cycles through.
            var next = PreviewState(prompt: prompt, prompts: preview.prompts.contains(prompt) ? preview.prompts : preview.prompts + [prompt])
            next.playing = preview.playing
            next.seed = preview.seed
            state.preview = next
        case .stepPreviewFrame(let delta):
            guard var preview = state.preview, let frames = preview.reference?.frames, frames > 0 else { return }
            preview.playing = false
            preview.frame = ((preview.frame + delta) % frames + frames) % frames
            state.preview = preview
        case .tuningReady, .changeStepGroups, .splitStepGroup, .mergeStepGroup, .adjustGroupAlpha, .moveBlock, .moveBlockLayer, .overrideLayer, .autoAlpha, .autoAlphaFinished, .adjustAlpha, .beginAlphaEntry, .setAlphaEntry, .endAlphaEntry, .toggleSmoothing, .undo, .redo,
             .requantized, .beginExport, .setExportDirectory, .toggleExportField, .toggleExportModel, .endExport, .exportFinished:
            TuningReducer.apply(action, to: &state)
        }
    }

    private static func moveCursor(to index: Int, _ state: inout WorkbenchState) {
        guard !state.rows.isEmpty else { return }
        let previous = state.selectedLayer?.name
        state.cursor = min(max(index, 0), state.rows.count - 1)
        if state.selectedLayer?.name != previous {
            state.channelOffset = 0
            state.inputChannelOffset = 0
            state.outlierScroll = 0
            state.heatChannel = 0
            state.heatChannelOffset = 0
            if let name = state.selectedLayer?.name, let i = state.catalog.quantizableLinears.firstIndex(where: { $0.name == name }) {
                state.qualityLayer = i
            }
        }
        keepCursorVisible(&state)
    }

    private static func keepCursorVisible(_ state: inout WorkbenchState) {
        let height = max(state.treeViewportRows, 1)
        if state.cursor < state.treeScroll { state.treeScroll = state.cursor }
        if state.cursor >= state.treeScroll + height { state.treeScroll = state.cursor - height + 1 }
        state.treeScroll = max(0, min(state.treeScroll, max(state.rows.count - height, 0)))
    }

    /// Scrolls the bar plot the keys move (`plot`: another one), within its channel count.
    private static func setChannelOffset(_ offset: Int, _ plot: RangesPlot?, _ state: inout WorkbenchState) {
        let plot = plot ?? state.rangesPlot
        let channels = (plot == .outputs ? state.selectedLayer?.outputs : state.selectedLayer?.inputs) ?? 0
        let clamped = max(0, min(offset, max(channels - state.channelViewportColumns, 0)))
        if plot == .outputs { state.channelOffset = clamped } else { state.inputChannelOffset = clamped }
    }

    /// Shows `screen`, keeping the focus on the tree or moving it to the pane in the same place.
    private static func show(_ screen: Screen, _ state: inout WorkbenchState) {
        guard state.screen != screen else { return }
        let position = state.screen.panes.firstIndex(of: state.focus) ?? 0
        state.screen = screen
        if screen == .tuning, let layer = state.selectedLayer?.name { TuningReducer.follow(layer: layer, &state) }
        state.focus = screen.panes[min(position, screen.panes.count - 1)]
        // The lower pane in view keeps the focus there rather than switching what is shown.
        if state.focus == .heatmap || state.focus == .quality { state.focus = state.lowerActivationPane }
        if state.focus == .preview || state.focus == .stepGroups { state.focus = state.lowerTuningPane }
        if state.zoomed != nil { state.zoomed = state.focus }
    }

    /// Moves the tree cursor to the row of `layer`, opening its block or kept group if needed.
    static func select(layer: String, _ state: inout WorkbenchState) {
        if !state.rows.contains(where: { $0.id == layer }) {
            if let block = state.catalog.blocks.first(where: { $0.linears.contains { $0.name == layer } }) {
                state.expanded.formUnion([ModelTree.quantizedSection, block.name])
            } else if let group = state.catalog.kept.first(where: { $0.linears.contains { $0.name == layer } }) {
                state.expanded.formUnion([ModelTree.keptSection, "§kept." + group.name])
            }
            state.rebuildRows(keeping: state.selectedRow?.id)
        }
        select(row: layer, &state)
    }

    /// Moves the tree cursor to the row with `id` if it is visible.
    private static func select(row id: String, _ state: inout WorkbenchState) {
        if let i = state.rows.firstIndex(where: { $0.id == id }) { moveCursor(to: i, &state) }
    }

    private static func setHeatChannel(_ channel: Int, _ state: inout WorkbenchState) {
        let width = state.selectedLayer?.inputs ?? 0
        state.heatChannel = max(0, min(channel, max(width - 1, 0)))
        let columns = max(state.heatViewportColumns, 1)
        if state.heatChannel < state.heatChannelOffset { state.heatChannelOffset = state.heatChannel }
        if state.heatChannel >= state.heatChannelOffset + columns { state.heatChannelOffset = state.heatChannel - columns + 1 }
        state.heatChannelOffset = max(0, min(state.heatChannelOffset, max(width - columns, 0)))
    }

    private static func cycleFocus(_ step: Int, _ state: inout WorkbenchState) {
        let panes = state.screen.panes
        let i = panes.firstIndex(of: state.focus) ?? 0
        state.focus = panes[(i + step + panes.count) % panes.count]
        if state.focus == .heatmap || state.focus == .quality { state.lowerActivationPane = state.focus }
        if state.focus == .preview || state.focus == .stepGroups { state.lowerTuningPane = state.focus }
        if state.zoomed != nil { state.zoomed = state.focus }
    }
}

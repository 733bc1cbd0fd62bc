import Quantization

/// Everything the user (or a finished job) can do to the workbench.
public enum Action: Sendable {
    // Model tree
    case moveCursor(Int)
    case moveToFirst
    case moveToLast
    case page(Int)
    case expandOrEnter
    case collapseOrParent
    case toggleExpanded
    case selectRow(Int)
    /// The next (or previous) layer in tree order, skipping block and section rows.
    case moveLayer(Int)
    // Finding a layer
    case beginSearch
    case setSearch(String)
    /// Enter keeps the match; Esc (`accept: false`) returns to where the search began.
    case endSearch(accept: Bool)
    /// The next (1) or previous (-1) layer matching the last search.
    case repeatSearch(Int)
    // Bar plots and lists
    case scrollChannels(Int)
    case scrollChannelsPage(Int)
    case scrollChannelsToStart
    case scrollChannelsToEnd
    case scrollOutliers(Int)
    /// Which bar plot the scroll keys move (nil: the other one).
    case selectRangesPlot(RangesPlot?)
    // Screens and steps
    case showScreen(Screen)
    case moveStep(Int)
    case firstStep
    case lastStep
    /// All steps merged ↔ the last single step.
    case toggleAllSteps
    case toggleGlobalScale
    case moveHeatChannel(Int)
    case moveQualityCursor(layers: Int, steps: Int)
    /// Jumps to the layer and step under the quality map's cursor.
    case openQualityCell
    // Calibration
    case requestCalibration
    case cancelCalibration
    case calibrationStatus(CalibrationStatus)
    case activationsReady(ActivationData)
    case qualityMapReady([String: [Double]])
    // Tuning (the plan screen)
    /// The plan to tune is ready (the workbench posts it once the model and statistics are loaded).
    case tuningReady(TuningState)
    case moveBlock(Int)
    /// The layer cursor within the selected block (per-layer overrides).
    case moveBlockLayer(Int)
    /// Sets (or with nil removes) one setting of the selected layer's own entry in the plan.
    case overrideLayer(LayerOverride)
    /// Changes the selected block's α by `delta`, within [0, 1], to two decimals.
    case adjustAlpha(Double)
    case beginAlphaEntry
    case setAlphaEntry(String)
    case endAlphaEntry(accept: Bool)
    /// Aggregated ↔ time-step-wise smoothing for the selected block.
    case toggleSmoothing
    /// One more (1) or one fewer (-1) contiguous step group of (nearly) equal length; time-step-wise
    /// smoothing and group scales follow them.
    case changeStepGroups(Int)
    /// Splits the step group holding the selected step so that the step starts a new group (its
    /// α per group carries to both halves).
    case splitStepGroup
    /// Merges the selected step's group into the group before it (that group's α per group stays).
    case mergeStepGroup
    /// The selected block's α of the selected step's group, by a step (time-step-wise smoothing).
    case adjustGroupAlpha(Double)
    /// Searches the selected block's α (grid 0…1 step 0.05, local error of its layers) in the
    /// background and applies the best as an edit; on the step groups pane, the α of the selected
    /// step's group alone (error over that group's steps).
    case autoAlpha
    case autoAlphaFinished(block: String, group: Int? = nil, Result<[AlphaPoint], WorkbenchError>)
    case undo
    case redo
    case requantized(Result<RequantizeResult, WorkbenchError>, generation: Int)
    case beginExport
    case setExportDirectory(String)
    /// Tab in the export dialog: the folder field ↔ the quantized-model option.
    case toggleExportField
    /// Writes `quantized.safetensors` with the plan, or the plan alone.
    case toggleExportModel
    /// Enter writes (`accept`), Esc closes the dialog.
    case endExport(accept: Bool)
    /// The written paths and sizes as a message, or why it failed.
    case exportFinished(Result<String, WorkbenchError>, planJSON: String, path: String)
    // Preview (FP vs quantized video of one prompt)
    case previewReference(PreviewVideo)
    case previewQuantized(PreviewVideo, generation: Int, editToPreviewMilliseconds: Double?)
    case previewFailed(String)
    /// The app's animation clock: the next frame when playing.
    case tickPreview
    case togglePreviewPlay
    /// The next prompt of the preview list: both videos are sampled again.
    case nextPreviewPrompt(Int)
    /// Typing a prompt of the user's own for the preview; Enter (`accept`) samples both videos.
    case beginPromptEntry
    case setPromptEntry(String)
    case endPromptEntry(accept: Bool)
    case stepPreviewFrame(Int)
    // Panes and overlays
    case focus(Pane)
    /// The n-th pane of the current screen.
    case focusNumber(Int)
    case focusNext
    case focusPrevious
    case toggleZoom
    case showHelp
    case hideHelp
    case beginHelpFilter
    case setHelpFilter(String)
    case endHelpFilter
    case scrollHelp(Int)
    case showMessage(StatusMessage)
    case clearMessage
    /// The UI reports its pane sizes after layout.
    case viewport(treeRows: Int, channelColumns: Int, heatColumns: Int = 32, outlierRows: Int = 10)
    // Jobs
    case statisticsFinished(layer: String, Result<WeightRangeStatistics, WorkbenchError>)
    case quit
}

extension Action {
    /// Results of background jobs and layout reports: not the user's doing.
    var isFromJobOrLayout: Bool {
        switch self {
        case .statisticsFinished, .calibrationStatus, .activationsReady, .qualityMapReady, .tuningReady, .requantized,
             .exportFinished, .viewport, .showMessage, .autoAlphaFinished, .previewReference, .previewQuantized, .previewFailed, .tickPreview:
            return true
        default:
            return false
        }
    }

    var isQuit: Bool { if case .quit = self { return true } else { return false } }
}

/// The per-layer settings the plan screen edits; each key cycles through its values.
public enum LayerOverride: Sendable, Equatable {
    /// The layer's own α, by a step (the only α of `mlp.fc2` and `cross_attn.q_linear`).
    case alpha(Double)
    /// Weight bits 8 → 6 → 4 → 8.
    case cycleWeightBits
    case toggleKeepFloat
    /// Per channel ↔ per tensor.
    case toggleWeightGranularity
    case toggleWeightSymmetry
    /// int8 → uint8 → dynamic → dynamic_uint8 → int8.
    case cycleActivations
    /// minmax → percentile → mse → minmax.
    case cycleEstimator
    /// A channel shift on or off (`attn.qkv` and `mlp.fc1` only: where it folds).
    case toggleShift
    /// Nearest ↔ GPTQ weight rounding.
    case toggleWeightRounding
    /// Removes the layer's entry: block and default settings apply again.
    case clear
}

/// An error a job reports, as text the UI can show.
public struct WorkbenchError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

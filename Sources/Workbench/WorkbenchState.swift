import Quantization
import VideoDiT

/// The two screens: weights (ranges and outliers of the weights) and activations (statistics
/// of the calibration by sampler step). The model tree, the selected layer and step carry across.
public enum Screen: String, Sendable, CaseIterable {
    case weights, activations, tuning

    public var title: String {
        switch self {
        case .weights: return "Weights"
        case .activations: return "Activations"
        case .tuning: return "Plan"
        }
    }

    /// Its panes in focus order (`Tab`, number keys 1…).
    public var panes: [Pane] {
        switch self {
        case .weights: return [.tree, .ranges, .outliers]
        case .activations: return [.tree, .histogram, .heatmap, .quality]
        case .tuning: return [.blocks, .blockLayers, .preview, .stepGroups]
        }
    }
}

/// The panes of both screens.
public enum Pane: Int, Sendable, CaseIterable {
    case tree = 1, ranges, outliers, histogram, heatmap, quality, blocks, blockLayers, preview, stepGroups

    public var title: String {
        switch self {
        case .tree: return "Model"
        case .ranges: return "Weight ranges"
        case .outliers: return "Outliers"
        case .histogram: return "Activations"
        case .heatmap: return "Channels × steps"
        case .quality: return "Layer × step SQNR"
        case .blocks: return "Blocks"
        case .blockLayers: return "Layers of the block"
        case .preview: return "Preview"
        case .stepGroups: return "Step groups"
        }
    }

    public var screen: Screen {
        switch self {
        case .histogram, .heatmap, .quality: return .activations
        case .blocks, .blockLayers, .preview, .stepGroups: return .tuning
        default: return .weights
        }
    }

    /// Its number on its screen (the focus key).
    public var number: Int { (self == .tree ? Screen.weights : screen).panes.firstIndex(of: self)! + 1 }
}

/// The two bar plots of the weight-ranges pane: per output channel (rows of W) and per input
/// channel (columns of W); each scrolls on its own.
public enum RangesPlot: Sendable, Equatable {
    case outputs, inputs
}

/// Where the activation statistics stand.
public enum CalibrationStatus: Sendable, Equatable {
    /// The workbench was opened without a calibration source (weights only).
    case notConfigured
    /// Loading the model and looking for a cached calibration.
    case checking
    /// This machine cannot sample the checkpoint (why, in words).
    case unavailable(String)
    /// Runnable, not calibrated yet: the user may start it.
    case missing
    case requested
    case running(done: Int, total: Int, elapsedSeconds: Double)
    case cancelling
    case ready
    case failed(String)
    /// A cache entry exists but fails its size, hash or key check (why, in words); never read.
    case damaged(String)

    public var isBusy: Bool {
        switch self {
        case .checking, .requested, .running, .cancelling: return true
        default: return false
        }
    }
}

/// Statistics of one layer as the UI sees them.
public enum StatisticsState: Sendable, Equatable {
    case computing
    case ready(WeightRangeStatistics)
    case failed(String)
}

/// A one-line message under the panes.
public struct StatusMessage: Sendable, Equatable {
    public enum Severity: Sendable { case info, error }
    public let text: String
    public let severity: Severity

    public init(_ text: String, severity: Severity = .info) {
        self.text = text
        self.severity = severity
    }
}

/// The help overlay: listed bindings filtered by `filter` (case-insensitive substring).
public struct HelpState: Sendable, Equatable {
    public var filter = ""
    public var isEditingFilter = false
    public var scroll = 0

    public init() {}
}

/// Finding a layer by name (`/`): every whitespace-separated term of `query` must occur in the
/// name, case-insensitively; the selection follows the first match from where the search began.
public struct LayerSearch: Sendable, Equatable {
    public var query = ""
    /// The layer row selected when the search began; Esc returns to it.
    public var origin: String?
    /// Layers the query matches (0 for an empty query).
    public var matches = 0

    public init(origin: String?) { self.origin = origin }

    public static func matches(_ name: String, _ query: String) -> Bool {
        let terms = query.lowercased().split(whereSeparator: \.isWhitespace)
        let lowered = name.lowercased()
        return !terms.isEmpty && terms.allSatisfy { lowered.contains($0) }
    }
}

/// Everything the screen shows, as a value: views are functions of it.
public struct WorkbenchState: Sendable {
    public let checkpointName: String
    public let checkpointPath: String
    public let catalog: LayerCatalog

    public var expanded: Set<String>
    public private(set) var rows: [TreeRow]
    public var cursor = 0
    /// First visible tree row; kept so the cursor stays visible (see `treeViewportRows`).
    public var treeScroll = 0
    /// Rows of the tree pane at the last layout, so paging moves by a screenful.
    public var treeViewportRows = 20
    /// First output channel shown in the upper bar plot, first input channel in the lower one.
    public var channelOffset = 0
    public var inputChannelOffset = 0
    /// The bar plot the scroll keys move.
    public var rangesPlot: RangesPlot = .outputs
    /// Channels that fit in the bar plots at the last layout.
    public var channelViewportColumns = 64
    public var outlierScroll = 0
    /// Ranked channels the outliers pane shows at once (its last full page bounds the scroll).
    public var outlierViewportRows = 10
    /// The layer search being typed, and the last query (`n`/`N` repeat it).
    public var search: LayerSearch?
    public var lastSearch = ""

    public var screen: Screen = .weights
    public var focus: Pane = .tree
    public var zoomed: Pane?

    // Activations
    public var calibration: CalibrationStatus = .notConfigured
    public var activations: ActivationData?
    /// Local SQNR per layer and step: under the default plan, then under the plan being tuned.
    public var qualityMap: [String: [Double]]?
    public var step: StepSelection = .step(0)
    /// Which pane sits under the histogram: the heat map or the quality map (the last focused).
    public var lowerActivationPane: Pane = .heatmap
    /// What the plan screen shows below the blocks: the preview or the step groups.
    public var lowerTuningPane: Pane = .preview

    /// The lower pane of the current screen (the layout's choice).
    public var lowerPane: Pane { screen == .tuning ? lowerTuningPane : lowerActivationPane }
    /// Draw one global scale for all steps beside the plan's per-step scale.
    public var showsGlobalScale = false
    /// The input channel picked in the heat map, and the first channel shown.
    public var heatChannel = 0
    public var heatChannelOffset = 0
    /// Channels that fit across the heat map at the last layout.
    public var heatViewportColumns = 32
    /// The quality map's cell cursor: a quantized layer (index in `catalog.quantizableLinears`) and a step.
    public var qualityLayer = 0
    public var qualityStep = 0
    /// The plan being tuned, once the model and the calibration statistics are loaded.
    public var tuning: TuningState?
    /// The FP and quantized videos of the preview prompt (once the plan screen was opened).
    public var preview: PreviewState?
    public var help: HelpState?
    public var message: StatusMessage?
    public var statistics: [String: StatisticsState] = [:]
    public var shouldQuit = false

    public init(checkpointName: String, checkpointPath: String, catalog: LayerCatalog) {
        self.checkpointName = checkpointName
        self.checkpointPath = checkpointPath
        self.catalog = catalog
        // Open on the first block's layers: the user sees a real layer immediately.
        var expanded: Set<String> = [ModelTree.quantizedSection]
        if let first = catalog.blocks.first { expanded.insert(first.name) }
        self.expanded = expanded
        rows = ModelTree.rows(catalog, expanded: expanded)
        cursor = rows.firstIndex { $0.linear != nil } ?? 0
    }

    public func channelOffset(_ plot: RangesPlot) -> Int { plot == .outputs ? channelOffset : inputChannelOffset }
    public var activeChannelOffset: Int { channelOffset(rangesPlot) }

    public var selectedRow: TreeRow? { rows.indices.contains(cursor) ? rows[cursor] : nil }
    public var selectedLayer: LinearLayer? { selectedRow?.linear }

    public var selectedStatistics: WeightRangeStatistics? {
        guard let layer = selectedLayer, case .ready(let stats)? = statistics[layer.name] else { return nil }
        return stats
    }

    mutating func rebuildRows(keeping id: String?) {
        rows = ModelTree.rows(catalog, expanded: expanded)
        if let id, let i = rows.firstIndex(where: { $0.id == id }) { cursor = i }
        cursor = min(max(cursor, 0), max(rows.count - 1, 0))
    }
}

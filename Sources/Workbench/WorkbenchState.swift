import Quantization
import VideoDiT

/// The panes of the weights screen, in focus order (`Tab`, number keys).
public enum Pane: Int, Sendable, CaseIterable {
    case tree = 1, ranges, outliers

    public var title: String {
        switch self {
        case .tree: return "Model"
        case .ranges: return "Weight ranges"
        case .outliers: return "Outliers"
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
    /// First channel shown in the bar plots.
    public var channelOffset = 0
    /// Channels that fit in the bar plots at the last layout.
    public var channelViewportColumns = 64
    public var outlierScroll = 0

    public var focus: Pane = .tree
    public var zoomed: Pane?
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

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
    // Bar plots and lists
    case scrollChannels(Int)
    case scrollChannelsPage(Int)
    case scrollChannelsToStart
    case scrollChannelsToEnd
    case scrollOutliers(Int)
    // Panes and overlays
    case focus(Pane)
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
    case viewport(treeRows: Int, channelColumns: Int)
    // Jobs
    case statisticsFinished(layer: String, Result<WeightRangeStatistics, WorkbenchError>)
    case quit
}

/// An error a job reports, as text the UI can show.
public struct WorkbenchError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

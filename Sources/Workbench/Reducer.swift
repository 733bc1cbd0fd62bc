import Quantization

/// Applies an action to the state: pure, no I/O. Side effects (starting jobs) are decided by
/// `Workbench` from the state afterwards.
public enum Reducer {
    public static func apply(_ action: Action, to state: inout WorkbenchState) {
        switch action {
        case .moveCursor(let delta): moveCursor(to: state.cursor + delta, &state)
        case .moveToFirst: moveCursor(to: 0, &state)
        case .moveToLast: moveCursor(to: state.rows.count - 1, &state)
        case .page(let pages): moveCursor(to: state.cursor + pages * max(state.treeViewportRows - 1, 1), &state)
        case .selectRow(let index): moveCursor(to: index, &state)

        case .expandOrEnter:
            guard let row = state.selectedRow else { return }
            if row.isExpandable && !row.isExpanded {
                state.expanded.insert(row.id)
                state.rebuildRows(keeping: row.id)
            } else if row.isExpandable {
                moveCursor(to: state.cursor + 1, &state)
            } else if row.linear != nil {
                state.focus = .ranges
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

        case .scrollChannels(let delta): setChannelOffset(state.channelOffset + delta, &state)
        case .scrollChannelsPage(let pages): setChannelOffset(state.channelOffset + pages * max(state.channelViewportColumns - 4, 1), &state)
        case .scrollChannelsToStart: setChannelOffset(0, &state)
        case .scrollChannelsToEnd: setChannelOffset(Int.max / 2, &state)
        case .scrollOutliers(let delta):
            state.outlierScroll = max(0, min(state.outlierScroll + delta, WeightRangeStatistics.rankedCount - 1))

        case .focus(let pane):
            state.focus = pane
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
        case .viewport(let treeRows, let channelColumns):
            state.treeViewportRows = max(treeRows, 1)
            state.channelViewportColumns = max(channelColumns, 1)
            keepCursorVisible(&state)
            setChannelOffset(state.channelOffset, &state)

        case .statisticsFinished(let layer, let result):
            switch result {
            case .success(let stats): state.statistics[layer] = .ready(stats)
            case .failure(let error):
                state.statistics[layer] = .failed(error.message)
                state.message = StatusMessage("\(layer): \(error.message)", severity: .error)
            }
        case .quit: state.shouldQuit = true
        }
    }

    private static func moveCursor(to index: Int, _ state: inout WorkbenchState) {
        guard !state.rows.isEmpty else { return }
        let previous = state.selectedLayer?.name
        state.cursor = min(max(index, 0), state.rows.count - 1)
        if state.selectedLayer?.name != previous {
            state.channelOffset = 0
            state.outlierScroll = 0
        }
        keepCursorVisible(&state)
    }

    private static func keepCursorVisible(_ state: inout WorkbenchState) {
        let height = max(state.treeViewportRows, 1)
        if state.cursor < state.treeScroll { state.treeScroll = state.cursor }
        if state.cursor >= state.treeScroll + height { state.treeScroll = state.cursor - height + 1 }
        state.treeScroll = max(0, min(state.treeScroll, max(state.rows.count - height, 0)))
    }

    private static func setChannelOffset(_ offset: Int, _ state: inout WorkbenchState) {
        let channels = max(state.selectedLayer?.outputs ?? 0, state.selectedLayer?.inputs ?? 0)
        let maxOffset = max(channels - state.channelViewportColumns, 0)
        state.channelOffset = max(0, min(offset, maxOffset))
    }

    private static func cycleFocus(_ step: Int, _ state: inout WorkbenchState) {
        let panes = Pane.allCases
        let i = panes.firstIndex(of: state.focus)!
        state.focus = panes[(i + step + panes.count) % panes.count]
        if state.zoomed != nil { state.zoomed = state.focus }
    }
}

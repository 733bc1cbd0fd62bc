import Workbench

/// The whole screen as a function of the state: header, the panes of the weights or the
/// activations screen, message line, hint bar, and the help overlay on top.
public enum WorkbenchScreen {
    public static func render(_ state: WorkbenchState, theme: Theme, width: Int, height: Int, busy: Bool = false) -> CellGrid {
        var grid = CellGrid(width: width, height: height)
        guard ScreenLayout.fits(width: width, height: height) else {
            drawTooSmall(width: width, height: height, grid: &grid)
            return grid
        }
        let layout = layout(state, width: width, height: height)
        HeaderView.draw(state, in: layout.header, grid: &grid)
        for (pane, rect) in layout.panes {
            let focused = state.focus == pane
            switch pane {
            case .tree: TreeView.draw(state, in: rect, focused: focused, grid: &grid)
            case .ranges: RangesView.draw(state, theme: theme, in: rect, focused: focused, grid: &grid)
            case .outliers: OutliersView.draw(state, in: rect, focused: focused, grid: &grid)
            case .histogram: ActivationHistogramView.draw(state, theme: theme, in: rect, focused: focused, grid: &grid)
            case .heatmap: ChannelHeatMapView.draw(state, theme: theme, in: rect, focused: focused, grid: &grid)
            case .quality: QualityMapView.draw(state, theme: theme, in: rect, focused: focused, grid: &grid)
            case .blocks: TuningViews.drawBlocks(state, in: rect, focused: focused, grid: &grid)
            case .blockLayers: TuningViews.drawLayers(state, in: rect, focused: focused, grid: &grid)
            case .preview: PreviewView.draw(state, theme: theme, in: rect, focused: focused, grid: &grid)
            case .stepGroups: StepGroupsView.draw(state, in: rect, focused: focused, grid: &grid)
            }
        }
        FooterViews.drawMessage(state, busy: busy, in: layout.message, grid: &grid)
        FooterViews.drawHints(focus: state.focus, screen: state.screen, in: layout.hints, grid: &grid)
        if let dialog = state.tuning?.export { TuningViews.drawExport(dialog, in: grid.bounds, grid: &grid) }
        if let help = state.help { HelpOverlay.draw(help, in: grid.bounds, grid: &grid) }
        return grid
    }

    /// The layout of the state's screen.
    public static func layout(_ state: WorkbenchState, width: Int, height: Int) -> ScreenLayout {
        ScreenLayout(width: width, height: height, screen: state.screen, zoomed: state.zoomed, lowerPane: state.lowerPane)
    }

    /// The sizes the reducer needs for paging and scrolling.
    public static func viewport(_ state: WorkbenchState, width: Int, height: Int) -> (treeRows: Int, channelColumns: Int, heatColumns: Int, outlierRows: Int) {
        let layout = layout(state, width: width, height: height)
        let full = Rect(x: 0, y: 0, width: width, height: height)
        let tree = layout.tree.isEmpty ? full : layout.tree
        let ranges = layout.ranges.isEmpty ? ScreenLayout(width: width, height: height, zoomed: nil).ranges : layout.ranges
        let heat = layout.rect(of: .heatmap).isEmpty
            ? ScreenLayout(width: width, height: height, screen: .activations, zoomed: nil).rect(of: .heatmap) : layout.rect(of: .heatmap)
        let outliers = layout.outliers.isEmpty ? ScreenLayout(width: width, height: height, zoomed: nil).outliers : layout.outliers
        return (max(tree.height - 2, 1), RangesView.channelColumns(for: ranges), ChannelHeatMapView.channelColumns(for: heat),
                OutliersView.listRows(for: outliers))
    }

    static func drawTooSmall(width: Int, height: Int, grid: inout CellGrid) {
        let lines = [
            "Terminal too small",
            "need \(ScreenLayout.minimumWidth)×\(ScreenLayout.minimumHeight), have \(width)×\(height)",
            "enlarge the window, or q to quit",
        ]
        for (i, line) in lines.enumerated() {
            let y = height / 2 - 1 + i
            grid.text(max((width - line.count) / 2, 0), y, line, i == 0 ? .role(.warn, bold: true) : .role(.text))
        }
    }
}

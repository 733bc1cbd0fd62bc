import Workbench

/// The whole weights screen as a function of the state: header, model tree, weight ranges,
/// outliers, message line, hint bar, and the help overlay on top.
public enum WorkbenchScreen {
    public static func render(_ state: WorkbenchState, theme: Theme, width: Int, height: Int, busy: Bool = false) -> CellGrid {
        var grid = CellGrid(width: width, height: height)
        guard ScreenLayout.fits(width: width, height: height) else {
            drawTooSmall(width: width, height: height, grid: &grid)
            return grid
        }
        let layout = ScreenLayout(width: width, height: height, zoomed: state.zoomed)
        HeaderView.draw(state, in: layout.header, grid: &grid)
        TreeView.draw(state, in: layout.tree, focused: state.focus == .tree, grid: &grid)
        RangesView.draw(state, theme: theme, in: layout.ranges, focused: state.focus == .ranges, grid: &grid)
        OutliersView.draw(state, in: layout.outliers, focused: state.focus == .outliers, grid: &grid)
        FooterViews.drawMessage(state, busy: busy, in: layout.message, grid: &grid)
        FooterViews.drawHints(focus: state.focus, in: layout.hints, grid: &grid)
        if let help = state.help { HelpOverlay.draw(help, in: grid.bounds, grid: &grid) }
        return grid
    }

    /// The sizes the reducer needs for paging and scrolling.
    public static func viewport(width: Int, height: Int, zoomed: Pane?) -> (treeRows: Int, channelColumns: Int) {
        let layout = ScreenLayout(width: width, height: height, zoomed: zoomed)
        let rangesRect = layout.ranges.isEmpty ? Rect(x: 0, y: 0, width: width, height: height) : layout.ranges
        return (max(layout.tree.height - 2, 1), RangesView.channelColumns(for: rangesRect))
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

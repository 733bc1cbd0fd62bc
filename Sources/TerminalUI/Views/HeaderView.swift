import Workbench

/// The top line: program, checkpoint, architecture and totals.
enum HeaderView {
    static func draw(_ state: WorkbenchState, in rect: Rect, grid: inout CellGrid) {
        let style = Style(foreground: .role(.headerText), background: .role(.header))
        grid.fill(rect, " ", style)
        let catalog = state.catalog
        let parts = [
            state.checkpointName,
            catalog.architecture.rawValue,
            "\(NumberFormat.grouped(catalog.totalParameters)) params",
            NumberFormat.bytes(catalog.totalBytes),
            "\(catalog.blocks.count) blocks · \(catalog.quantizableLinears.count) quantizable linears",
        ]
        var x = rect.x
        x += grid.text(x, rect.y, " stsq-tui ", Style(foreground: .role(.headerText), background: .role(.header), bold: true))
        for part in parts where x < rect.maxX {
            x += grid.text(x, rect.y, "│ ", Style(foreground: .role(.dim), background: .role(.header)), maxWidth: rect.maxX - x)
            x += grid.text(x, rect.y, part + " ", style, maxWidth: rect.maxX - x)
        }
    }
}

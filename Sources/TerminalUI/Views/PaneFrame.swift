import Workbench

/// The border and title of a pane; focus shows in the border colour and a bold title, and — so
/// it survives `--color none` — in the title's `[n]` marker.
enum PaneFrame {
    static func draw(_ pane: Pane, title: String, in rect: Rect, focused: Bool, grid: inout CellGrid) {
        let border = Style(foreground: .role(focused ? .borderFocus : .border), bold: focused)
        let titleStyle = Style(foreground: .role(focused ? .titleFocus : .title), bold: focused)
        let marker = focused ? "[\(pane.number)]" : " \(pane.number) "
        grid.box(rect, title: "\(marker) \(title)", style: border, titleStyle: titleStyle)
    }
}

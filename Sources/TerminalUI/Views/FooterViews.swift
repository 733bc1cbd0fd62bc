import Workbench

/// The message line and the hint bar of the keys that work in the focused pane.
enum FooterViews {
    static func drawMessage(_ state: WorkbenchState, busy: Bool, in rect: Rect, grid: inout CellGrid) {
        guard rect.height > 0 else { return }
        if let message = state.message {
            let style: Style = message.severity == .error ? .role(.bad, bold: true) : .role(.accent)
            grid.text(rect.x + 1, rect.y, (message.severity == .error ? "✗ " : "• ") + message.text, style, maxWidth: rect.width - 2)
        } else if let layer = state.selectedLayer {
            let role = layer.role.map { "block linear (\($0.rawValue)), quantized by default" } ?? "kept in floating point by default"
            grid.text(rect.x + 1, rect.y, "\(layer.name): \(role)" + (busy ? " · computing…" : ""), .role(.dim), maxWidth: rect.width - 2)
        }
    }

    /// Hint entries and the cells they occupy (for mouse clicks on hints).
    static func hintRegions(focus: Pane, screen: Screen, in rect: Rect) -> [(Rect, Key)] {
        var x = rect.x + 1
        var regions: [(Rect, Key)] = []
        for binding in KeyBindings.hints(focus: focus, screen: screen) {
            let text = "\(binding.keyLabel) \(binding.hint)"
            guard x + text.count <= rect.maxX else { break }
            regions.append((Rect(x: x, y: rect.y, width: text.count, height: 1), binding.keys[0]))
            x += text.count + 2
        }
        return regions
    }

    static func drawHints(focus: Pane, screen: Screen, in rect: Rect, grid: inout CellGrid) {
        guard rect.height > 0 else { return }
        grid.fill(rect, " ", Style(foreground: .role(.hintText), background: .role(.header)))
        let bindings = KeyBindings.hints(focus: focus, screen: screen)
        for ((region, _), binding) in zip(hintRegions(focus: focus, screen: screen, in: rect), bindings) {
            let keys = binding.keyLabel
            grid.text(region.x, region.y, keys, Style(foreground: .role(.hintKey), background: .role(.header), bold: true))
            grid.text(region.x + keys.count + 1, region.y, binding.hint, Style(foreground: .role(.hintText), background: .role(.header)))
        }
    }
}

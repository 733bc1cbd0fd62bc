import Workbench

/// The message line and the hint bar of the keys that work in the focused pane.
enum FooterViews {
    static func drawMessage(_ state: WorkbenchState, busy: Bool, in rect: Rect, grid: inout CellGrid) {
        guard rect.height > 0 else { return }
        if let search = state.search {
            let x = rect.x + 1 + grid.text(rect.x + 1, rect.y, "/" + search.query + "▏", .role(.accent, bold: true), maxWidth: rect.width - 2)
            let count = search.query.isEmpty ? "find a layer: terms in any order" : search.matches == 0 ? "no layer matches"
                : "\(search.matches) layer\(search.matches == 1 ? "" : "s")"
            let style: Style = search.matches == 0 && !search.query.isEmpty ? .role(.bad) : .role(.dim)
            grid.text(x + 1, rect.y, count + " · Enter keeps · Esc returns", style, maxWidth: rect.maxX - x - 2)
        } else if let message = state.message {
            let style: Style = message.severity == .error ? .role(.bad, bold: true) : .role(.accent)
            grid.text(rect.x + 1, rect.y, (message.severity == .error ? "✗ " : "• ") + message.text, style, maxWidth: rect.width - 2)
        } else if state.screen == .tuning, let t = state.tuning {
            // The plan at a glance: what differs from its defaults.
            let smoothed = t.blocks.filter { t.blockSettings(of: $0).smooths }.count
            let summary = "\(t.name): \(smoothed) of \(t.blocks.count) blocks smoothed · \(t.plan.layers.count) layer override"
                + (t.plan.layers.count == 1 ? "" : "s") + " · \(t.plan.stepGroups.count) step group" + (t.plan.stepGroups.count == 1 ? "" : "s")
                + " · W\(t.plan.defaults.weightBits) A \(t.plan.defaults.activations.rawValue) \(t.plan.defaults.activationGranularity.rawValue) scales"
            grid.text(rect.x + 1, rect.y, summary + (busy ? " · working…" : ""), .role(.dim), maxWidth: rect.width - 2)
        } else if let layer = state.selectedLayer {
            let role = layer.role.map { "block linear (\($0.rawValue)), quantized by default" } ?? "kept in floating point by default"
            grid.text(rect.x + 1, rect.y, "\(layer.name): \(role)" + (busy ? " · computing…" : ""), .role(.dim), maxWidth: rect.width - 2)
        }
    }

    /// Hint entries and the cells they occupy (for mouse clicks on hints).
    static func hintRegions(focus: Pane, screen: Screen, in rect: Rect) -> [(Rect, Key)] {
        var x = rect.x + 1
        var regions: [(Rect, Key)] = []
        for binding in fittingHints(focus: focus, screen: screen, width: rect.width - 1) {
            let text = "\(binding.keyLabel) \(binding.hint)"
            regions.append((Rect(x: x, y: rect.y, width: text.count, height: 1), binding.keys[0]))
            x += text.count + 2
        }
        return regions
    }

    /// The hints that fit in `width`: when they do not all fit, the global conveniences go first
    /// (theme, zoom, pane, find), then entries from the end; `? help` and `q quit` stay longest.
    static func fittingHints(focus: Pane, screen: Screen, width: Int) -> [KeyBinding] {
        var hints = KeyBindings.hints(focus: focus, screen: screen)
        let cost = { (list: [KeyBinding]) in list.reduce(0) { $0 + $1.keyLabel.count + 1 + $1.hint.count + 2 } - 2 }
        for hint in ["theme", "zoom", "pane", "find"] where cost(hints) > width {
            hints.removeAll { $0.scope == .global && $0.hint == hint }
        }
        while cost(hints) > width, let i = hints.lastIndex(where: { !($0.scope == .global && ["help", "quit"].contains($0.hint)) }) {
            hints.remove(at: i)
        }
        while cost(hints) > width { hints.removeLast() }
        return hints
    }

    static func drawHints(focus: Pane, screen: Screen, in rect: Rect, grid: inout CellGrid) {
        guard rect.height > 0 else { return }
        grid.fill(rect, " ", Style(foreground: .role(.hintText), background: .role(.header)))
        let bindings = fittingHints(focus: focus, screen: screen, width: rect.width - 1)
        for ((region, _), binding) in zip(hintRegions(focus: focus, screen: screen, in: rect), bindings) {
            let keys = binding.keyLabel
            grid.text(region.x, region.y, keys, Style(foreground: .role(.hintKey), background: .role(.header), bold: true))
            grid.text(region.x + keys.count + 1, region.y, binding.hint, Style(foreground: .role(.hintText), background: .role(.header)))
        }
    }
}

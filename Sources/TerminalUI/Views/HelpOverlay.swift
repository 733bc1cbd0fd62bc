import Workbench

/// `?`: every binding, grouped by where it works, filterable with `/`.
enum HelpOverlay {
    static func rect(in screen: Rect) -> Rect {
        let width = min(screen.width - 4, 86)
        let height = min(screen.height - 2, 34)
        return Rect(x: screen.x + (screen.width - width) / 2, y: screen.y + (screen.height - height) / 2, width: width, height: height)
    }

    /// The largest useful scroll for `filter` on a screen this size (the last page's first line).
    static func maxScroll(filter: String, in screen: Rect) -> Int {
        max(lines(filter: filter).count - (rect(in: screen).inner.height - 2), 0)
    }

    /// (keys, description, isHeading) rows of the bindings matching `filter`, under scope headings.
    private static func lines(filter: String) -> [(String, String, Bool)] {
        var lines: [(String, String, Bool)] = []
        var scope: BindingScope?
        for binding in KeyBindings.helpRows(filter: filter) {
            if binding.scope != scope {
                scope = binding.scope
                lines.append((binding.scope.title, "", true))
            }
            lines.append((binding.keyLabel, binding.description, false))
        }
        return lines
    }

    static func draw(_ help: HelpState, in screen: Rect, grid: inout CellGrid) {
        let rect = rect(in: screen)
        grid.fill(rect, " ", .plain)
        grid.box(rect, title: "Keys · Esc closes · / filters", style: Style(foreground: .role(.borderFocus), bold: true),
                 titleStyle: Style(foreground: .role(.titleFocus), bold: true))
        let inner = rect.inner
        var lines = lines(filter: help.filter)
        if lines.isEmpty { lines.append(("", "no key matches \"\(help.filter)\"", false)) }
        let listHeight = inner.height - 2
        let first = min(help.scroll, max(lines.count - listHeight, 0))
        for (i, line) in lines.dropFirst(first).prefix(listHeight).enumerated() {
            let y = inner.y + i
            if line.2 {
                grid.text(inner.x + 1, y, line.0, Style(foreground: .role(.accent), bold: true))
            } else {
                grid.text(inner.x + 3, y, line.0, Style(foreground: .role(.hintKey), bold: true), maxWidth: 20)
                grid.text(inner.x + 24, y, line.1, .role(.text), maxWidth: inner.width - 25)
            }
        }
        let filterLine = help.isEditingFilter ? "/" + help.filter + "▏" : (help.filter.isEmpty ? "/ to filter" : "filter: " + help.filter)
        grid.text(inner.x + 1, inner.maxY - 1, filterLine, help.isEditingFilter ? .role(.warn, bold: true) : .role(.dim))
        if lines.count > listHeight {
            grid.textRight(inner.maxX - 1, inner.maxY - 1, "j/k scroll · g/G top/end", .role(.dim))
        }
    }
}

import Workbench

/// The model tree: sections → blocks → linear layers, with shape, dtype and parameter counts.
enum TreeView {
    static func draw(_ state: WorkbenchState, in rect: Rect, focused: Bool, grid: inout CellGrid) {
        guard !rect.isEmpty else { return }
        PaneFrame.draw(.tree, title: Pane.tree.title, in: rect, focused: focused, grid: &grid)
        let inner = rect.inner
        guard inner.height > 0 else { return }
        let first = min(state.treeScroll, max(state.rows.count - 1, 0))
        for (line, index) in (first..<min(state.rows.count, first + inner.height)).enumerated() {
            drawRow(state.rows[index], selected: index == state.cursor, focused: focused, state: state,
                    x: inner.x, y: inner.y + line, width: inner.width, grid: &grid)
        }
        if state.rows.count > inner.height {
            let shown = "\(first + 1)–\(min(first + inner.height, state.rows.count))/\(state.rows.count)"
            grid.textRight(rect.maxX - 2, rect.maxY - 1, " \(shown) ", .role(.dim))
        }
    }

    private static func drawRow(_ row: TreeRow, selected: Bool, focused: Bool, state: WorkbenchState,
                                x: Int, y: Int, width: Int, grid: inout CellGrid) {
        var base: Style
        switch row.kind {
        case .section: base = Style(foreground: .role(.accent), bold: true)
        case .block, .keptGroup: base = .role(.text, bold: true)
        case .linear: base = .role(.text)
        case .tensor: base = .role(.dim)
        }
        var detailStyle = Style.role(.dim)
        if selected {
            let background: Color = .role(focused ? .selection : .header)
            base = Style(foreground: .role(.selectionText), background: background, bold: base.bold, reverse: false)
            detailStyle = Style(foreground: .role(.selectionText), background: background)
            grid.fill(Rect(x: x, y: y, width: width, height: 1), " ", base)
        }
        let marker = row.isExpandable ? (row.isExpanded ? "▾ " : "▸ ") : "  "
        let indent = String(repeating: "  ", count: row.depth)
        let label = indent + marker + row.label
        // The name first: the details shrink (then go) before the name is cut.
        let details = self.details(row, state: state)
        let detail = details.first { label.count + 1 + $0.count <= width } ?? details.last ?? ""
        let labelWidth = max(width - (detail.isEmpty ? 0 : detail.count + 1), 4)
        grid.text(x, y, label, base, maxWidth: labelWidth)
        if !detail.isEmpty && detail.count + 6 < width { grid.textRight(x + width, y, detail, detailStyle) }
        if selected && !focused { grid.put(x, y, "›", base) }
    }

    /// The row's details from the fullest to the shortest (the last is kept when none fits).
    private static func details(_ row: TreeRow, state: WorkbenchState) -> [String] {
        switch row.kind {
        case .linear(let layer):
            var flag = ""
            if case .ready(let stats)? = state.statistics[layer.name], let top = stats.inputOutliers.first, top.ratio >= 4 { flag = "⚑ " }
            let shape = "\(layer.outputs)×\(layer.inputs)", count = NumberFormat.count(layer.parameterCount)
            return [flag + "\(shape) \(layer.dtype.name) \(count)", flag + "\(shape) \(count)", flag + shape, flag.trimmingCharacters(in: .whitespaces)]
        case .tensor(let entry):
            return ["[" + entry.shape.map(String.init).joined(separator: ",") + "] \(entry.dtype.name)", ""]
        case .block(let kind):
            return ["\(kind.rawValue) \(NumberFormat.count(row.parameters))", NumberFormat.count(row.parameters), ""]
        case .section, .keptGroup:
            return [NumberFormat.count(row.parameters), ""]
        }
    }
}

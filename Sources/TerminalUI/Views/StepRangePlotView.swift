import Quantization
import Workbench

/// The layer's tensor range over the sampler steps: max|x| per step as bars (the selected step in
/// the accent colour), the plan's static range per step in the warn colour (a `─` above a bar, or
/// the bar's cell it falls in; what a bar holds above it is clipped, in the bad colour) and the
/// one global scale's range as a dashed line.
enum StepRangePlotView {
    /// Steps per column are merged (their largest value) when the steps outnumber the columns; a
    /// few steps get several columns each.
    static func draw(_ state: WorkbenchState, data: ActivationData, layer: String, in rect: Rect, grid: inout CellGrid) {
        let gutter = 6
        guard rect.height >= 5, rect.width >= gutter + 4 else { return }
        var x = rect.x + grid.text(rect.x, rect.y, rect.width >= 31 ? "max|x| by step  " : "max|x|  ", .role(.text, bold: true), maxWidth: rect.width)
        for (glyph, label, role) in [("─", " plan ", ThemeRole.warn), ("┄", " global", ThemeRole.accent)] where x + label.count < rect.maxX {
            x += grid.text(x, rect.y, glyph, .role(role))
            x += grid.text(x, rect.y, label, .role(.dim))
        }

        let steps = data.steps
        let available = rect.width - gutter
        let plot = Rect(x: rect.x + gutter, y: rect.y + 1, width: steps <= available ? available / steps * steps : available,
                        height: rect.height - 2)
        let columns = plot.width
        let buckets = (0..<columns).map { c in (c * steps / columns)..<max((c + 1) * steps / columns, c * steps / columns + 1) }
        let tensorMax = (0..<steps).map { s in data.statistics(layer, .step(s)).map { max(abs($0.minimum), abs($0.maximum)) } ?? 0 }
        let clip = (0..<steps).map { s in data.encoding(layer, .step(s)).map(ActivationAnalysis.clipThreshold) ?? 0 }
        let global = data.globalEncodings[layer].map(ActivationAnalysis.clipThreshold)
        let top = max(tensorMax.max() ?? 0, clip.max() ?? 0, global ?? 0)
        guard top > 0 else { return }
        grid.text(rect.x, plot.y, NumberFormat.short(top), .role(.axis), maxWidth: gutter - 1)
        grid.text(rect.x, plot.maxY - 1, "0", .role(.axis))

        var selectedStep = -1
        if case .step(let s) = state.step { selectedStep = s }
        let level = { (v: Float) -> Int in Int((v / top * Float(plot.height * 8)).rounded()) }
        /// The row holding the top of a bar `v` high (its last eighth).
        let row = { (v: Float) -> Int in plot.maxY - max((level(v) + 7) / 8, 1) }
        for (c, bucket) in buckets.enumerated() {
            let x = plot.x + c
            let value = bucket.map { tensorMax[$0] }.max() ?? 0
            let limit = bucket.map { clip[$0] }.max() ?? 0
            let selected = bucket.contains(selectedStep)
            var remaining = min(level(value), plot.height * 8), y = plot.maxY - 1
            while remaining > 0 {
                let style: Style = limit <= 0 ? .role(.barPositive) : y < row(limit) ? .role(.bad) : y == row(limit) ? .role(.warn)
                    : selected ? .role(.accent, bold: true) : .role(.barPositive)
                grid.put(x, y, BarPlot.rising[min(remaining, 8)], style)
                remaining -= 8
                y -= 1
            }
            if limit > 0, grid[x, row(limit)].character == " " { grid.put(x, row(limit), "─", .role(.warn)) }
            if let global, grid[x, row(global)].character == " " { grid.put(x, row(global), "┄", .role(.accent)) }
        }
        let axis = plot.maxY
        grid.text(plot.x, axis, "0", .role(.axis))
        let last = "\(steps - 1)"
        if columns > last.count + 2 { grid.text(plot.x + columns - last.count, axis, last, .role(.axis)) }
        if let c = buckets.firstIndex(where: { $0.contains(selectedStep) }) { grid.put(plot.x + c, axis, "▲", .role(.accent, bold: true)) }
    }
}

import Quantization
import Workbench

/// The plan's step groups over the sampler steps, under the activation range that decides them:
/// max|x| per step of the selected layer (before smoothing) as bars, each group's range (the
/// largest of its steps: what one static scale per group must cover) as `─`, boundaries as `│`,
/// then per group the selected block's α and its worst local SQNR over the group's steps (from
/// the layer × step map under the plan being tuned).
enum StepGroupsView {
    static let gutter = 7

    static func draw(_ state: WorkbenchState, in rect: Rect, focused: Bool, grid: inout CellGrid) {
        guard !rect.isEmpty else { return }
        let t = state.tuning
        let title = "Step groups" + (t.map { " · \($0.plan.stepGroups.count) of \($0.plan.steps) steps" } ?? "")
            + (t?.selectedBlock.map { " · \($0) \(t!.smoothing(of: $0) == .timestep ? "time-step-wise" : "aggregated")" } ?? "")
        PaneFrame.draw(.stepGroups, title: title, in: rect, focused: focused, grid: &grid)
        let inner = rect.inner
        guard inner.height >= 5, inner.width >= gutter + 20 else { return }
        guard let t, let block = t.selectedBlock, let data = state.activations else {
            RangesView.placeholder("The step groups follow the plan once it is loaded.", inner, &grid)
            return
        }
        let layers = state.catalog.blocks.first { $0.name == block }?.linears.map(\.name) ?? []
        let layer = layers.indices.contains(t.layerCursor) ? layers[t.layerCursor] : layers.first
        let steps = t.plan.steps
        let groups = t.plan.stepGroups
        let groupOfStep = t.plan.groupOfStep
        var selected = -1
        if case .step(let s) = state.step { selected = s }

        let layout = Columns(width: inner.width - gutter, steps: steps)
        let (plotX, columns, perStep) = (inner.x + gutter, layout.count, layout.perStep)
        let stepsIn = layout.steps(in:)
        func isGap(_ c: Int) -> Bool { perStep >= 2 && c % perStep == perStep - 1 }
        func isBoundary(_ c: Int) -> Bool {
            guard isGap(c) else { return false }
            let s = c / perStep
            return s + 1 < steps && groupOfStep[s + 1] != groupOfStep[s]
        }
        func span(of g: Int) -> (x: Int, width: Int) {
            let first = (0..<columns).first { stepsIn($0).contains(groups[g].lowerBound) } ?? 0
            let last = (0..<columns).last { stepsIn($0).contains(groups[g].upperBound) } ?? first
            return (plotX + first, last - first + (perStep >= 2 ? 0 : 1))
        }

        let hintRows = 1, bandRows = 3
        let plot = Rect(x: plotX, y: inner.y + 1, width: columns, height: max(inner.height - 1 - bandRows - hintRows, 1))
        var x = inner.x + grid.text(inner.x, inner.y, "max|x| by step" + (layer.map { " · \(String($0.dropFirst(block.count + 1)))" } ?? "") + "  ",
                                    .role(.text, bold: true), maxWidth: inner.width)
        for (glyph, label, role) in [("─", " group range  ", ThemeRole.warn), ("│", " group boundary", ThemeRole.dim)] where x + label.count < inner.maxX {
            x += grid.text(x, inner.y, glyph, .role(role))
            x += grid.text(x, inner.y, label, .role(.dim))
        }

        if let layer {
            let tensorMax = (0..<steps).map { s in data.statistics(layer, .step(s)).map { max(abs($0.minimum), abs($0.maximum)) } ?? 0 }
            let groupMax = groups.map { g in g.map { tensorMax[$0] }.max() ?? 0 }
            let top = tensorMax.max() ?? 0
            if top > 0 {
                grid.text(inner.x, plot.y, NumberFormat.short(top), .role(.axis), maxWidth: gutter - 1)
                grid.text(inner.x, plot.maxY - 1, "0", .role(.axis))
                let level = { (v: Float) -> Int in Int((v / top * Float(plot.height * 8)).rounded()) }
                for c in 0..<columns where !isGap(c) {
                    let bucket = stepsIn(c)
                    let value = bucket.map { tensorMax[$0] }.max() ?? 0
                    let g = groupOfStep[bucket.lowerBound]
                    let style: Style = bucket.contains(selected) ? .role(.accent, bold: true) : .role(g % 2 == 0 ? .barPositive : .barNegative)
                    var remaining = min(level(value), plot.height * 8), y = plot.maxY - 1
                    while remaining > 0 {
                        grid.put(plot.x + c, y, BarPlot.rising[min(remaining, 8)], style)
                        remaining -= 8
                        y -= 1
                    }
                    let limitRow = plot.maxY - max((level(groupMax[g]) + 7) / 8, 1)
                    if grid[plot.x + c, limitRow].character == " " { grid.put(plot.x + c, limitRow, "─", .role(.warn)) }
                }
            }
        }
        for c in 0..<columns where isBoundary(c) {
            for y in plot.y..<(plot.maxY + bandRows) { grid.put(plot.x + c, y, "│", .role(.dim)) }
        }

        // Step axis: the first step of each group, the selected step marked.
        let axis = plot.maxY
        grid.text(inner.x, axis, "step", .role(.dim))
        for g in groups.indices {
            let (gx, width) = span(of: g)
            let label = "\(groups[g].lowerBound)"
            if label.count < width { grid.text(gx, axis, label, .role(.axis)) }
        }
        if let c = (0..<columns).first(where: { stepsIn($0).contains(selected) }) {
            grid.put(plot.x + c, axis, "▲", .role(.accent, bold: true))
        }

        // Per group: the block's α and its worst local SQNR over the group's steps.
        let selectedGroup = selected >= 0 && selected < steps ? groupOfStep[selected] : -1
        let timestep = t.smoothing(of: block) == .timestep
        let alphas = t.groupAlphas(of: block)
        grid.text(inner.x, axis + 1, "α", .role(.dim))
        grid.text(inner.x, axis + 2, "worst", .role(.dim))
        for g in groups.indices {
            let (gx, width) = span(of: g)
            let isSelected = g == selectedGroup
            let typing = isSelected && t.alphaEntry != nil && t.alphaEntryGroup == g
            let alphaText = typing ? "=\(t.alphaEntry!)▏" : NumberFormat.fixed(timestep ? alphas[g] : t.alpha(of: block), 2)
            let style: Style = typing ? .role(.warn, bold: true) : isSelected ? .role(.accent, bold: true) : .role(timestep ? .text : .dim)
            grid.text(gx, axis + 1, alphaText, style, maxWidth: max(width, 1))
            if let worst = worstSQNR(block: layers, steps: groups[g], state) {
                let text = width >= 7 ? NumberFormat.fixed(worst, 1) + "dB" : NumberFormat.fixed(worst, 0)
                grid.text(gx, axis + 2, text, .role(worst < 25 ? .bad : isSelected ? .accent : .text), maxWidth: max(width, 1))
            }
        }
        let hint = t.alphaEntry != nil && t.alphaEntryGroup != nil ? "type the group's α in 0…1 · Enter sets · Esc cancels"
            : timestep ? "h/l step · s split at the step · x merge into the group before · +/- ]/[ the group's α · = type · >/< equal groups"
            : "h/l step · s split at the step · x merge into the group before · >/< equal groups · m: time-step-wise smoothing for α per group"
        grid.text(inner.x, inner.maxY - 1, hint, .role(.dim), maxWidth: inner.width)
    }

    /// Plot columns: each step gets `perStep` columns, its last one a gap (a boundary `│` where a
    /// group ends); with more steps than columns (`perStep` 0), steps share columns.
    struct Columns {
        let steps: Int
        let perStep: Int
        let count: Int

        init(width: Int, steps: Int) {
            self.steps = steps
            perStep = steps <= width ? width / steps : 0
            count = perStep > 0 ? perStep * steps : width
        }

        func steps(in c: Int) -> Range<Int> {
            perStep > 0 ? (c / perStep)..<(c / perStep + 1) : (c * steps / count)..<max((c + 1) * steps / count, c * steps / count + 1)
        }
    }

    /// The sampler step under a click at column `x` of the pane at `rect`, if any.
    static func step(atColumn x: Int, in rect: Rect, steps: Int) -> Int? {
        let inner = rect.inner
        let columns = Columns(width: inner.width - gutter, steps: steps)
        let c = x - inner.x - gutter
        guard steps > 0, c >= 0, c < columns.count else { return nil }
        return columns.steps(in: c).lowerBound
    }

    /// The least local SQNR (dB) of `layers` over `steps` in the layer × step map (the plan being tuned).
    static func worstSQNR(block layers: [String], steps: ClosedRange<Int>, _ state: WorkbenchState) -> Double? {
        guard let map = state.qualityMap else { return nil }
        let values = layers.flatMap { layer in steps.compactMap { s in map[layer].flatMap { $0.indices.contains(s) ? $0[s] : nil } } }
            .filter(\.isFinite)
        return values.min()
    }
}

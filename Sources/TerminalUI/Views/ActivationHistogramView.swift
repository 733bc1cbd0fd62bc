import Foundation
import Quantization
import Tensors
import Workbench

/// The selected layer's input at the selected step: the step strip, the log-binned |x| histogram
/// with the plan's static range (and, on request, the one global scale) drawn on it, and what
/// the range clips and resolves.
enum ActivationHistogramView {
    static func draw(_ state: WorkbenchState, theme: Theme, in rect: Rect, focused: Bool, grid: inout CellGrid) {
        guard !rect.isEmpty else { return }
        var title = Pane.histogram.title
        if let layer = state.selectedLayer { title += " · \(layer.name) input" }
        PaneFrame.draw(.histogram, title: title, in: rect, focused: focused, grid: &grid)
        let inner = rect.inner
        guard inner.height >= 5, inner.width >= 30 else { return }
        if CalibrationStatusView.drawIfNoData(state, in: inner, grid: &grid) { return }
        let data = state.activations!
        drawStepStrip(state, data: data, in: Rect(x: inner.x, y: inner.y, width: inner.width, height: 1), grid: &grid)
        guard let layer = state.selectedLayer else {
            RangesView.placeholder("Select a block linear in the model tree.", inner, &grid)
            return
        }
        guard let stats = data.statistics(layer.name, state.step) else {
            RangesView.placeholder("\(layer.name) is kept in float: no calibration statistics.", inner, &grid)
            return
        }
        let encoding = data.encoding(layer.name, state.step)
        let global = state.showsGlobalScale ? data.globalEncodings[layer.name] : nil
        let summaryRows = inner.height >= 8 ? 2 : 1
        // Beside the histogram when there is room: the range over the steps.
        let stepPlotWidth = inner.width >= 70 ? min(max(data.steps, 30) + 6, inner.width * 2 / 5) : 0
        let histogramWidth = inner.width - (stepPlotWidth > 0 ? stepPlotWidth + 2 : 0)
        let plot = Rect(x: inner.x, y: inner.y + 1, width: histogramWidth, height: inner.height - 2 - summaryRows)
        drawHistogram(stats.histogram, encoding: encoding, global: global, theme: theme, plot: plot,
                      axis: Rect(x: inner.x, y: plot.maxY, width: histogramWidth, height: 1), grid: &grid)
        if stepPlotWidth > 0 {
            StepRangePlotView.draw(state, data: data, layer: layer.name,
                                   in: Rect(x: inner.maxX - stepPlotWidth, y: plot.y, width: stepPlotWidth, height: plot.height + 1), grid: &grid)
        }
        drawSummary(stats, encoding: encoding, global: global, state: state,
                    in: Rect(x: inner.x, y: inner.maxY - summaryRows, width: inner.width, height: summaryRows), grid: &grid)
    }

    /// `step 12/30 · t 612.3` and a strip of the steps with the selected one marked.
    static func drawStepStrip(_ state: WorkbenchState, data: ActivationData, in rect: Rect, grid: inout CellGrid) {
        let label: String
        switch state.step {
        case .step(let s): label = "step \(s)/\(data.steps - 1) t \(NumberFormat.fixed(Double(data.timesteps[s]), 1)) "
        case .all: label = "all \(data.steps) steps merged "
        }
        var x = rect.x + grid.text(rect.x, rect.y, label, .role(.accent, bold: true), maxWidth: rect.width)
        let stripWidth = min(data.steps, rect.maxX - x - 1)
        guard stripWidth > 0 else { return }
        for i in 0..<stripWidth {
            let step = i * data.steps / stripWidth
            let next = (i + 1) * data.steps / stripWidth
            let selected: Bool
            if case .step(let s) = state.step { selected = (step..<max(next, step + 1)).contains(s) } else { selected = true }
            grid.put(x + i, rect.y, selected ? "●" : "·", selected ? .role(.accent) : .role(.dim))
        }
        x += stripWidth + 1
        grid.text(x, rect.y, ", . step  A all", .role(.dim), maxWidth: rect.maxX - x)
    }

    private static func drawHistogram(_ histogram: [UInt64], encoding: ActivationEncoding?, global: ActivationEncoding?,
                                      theme: Theme, plot: Rect, axis: Rect, grid: inout CellGrid) {
        guard plot.height > 0, plot.width > 0 else { return }
        let last = LayerStepStatistics.binCount - 2
        let nonzero = (1...last).filter { histogram[$0] > 0 }
        guard var first = nonzero.first, var top = nonzero.last else {
            RangesView.placeholder("every recorded value is zero", plot, &grid)
            return
        }
        let thresholds = [encoding, global].compactMap { $0 }.map(ActivationAnalysis.clipThreshold)
        for t in thresholds where t > 0 { top = max(top, min(LayerStepStatistics.bin(of: t), last)); first = min(first, LayerStepStatistics.bin(of: t)) }
        let binsPerColumn = max(1, (top - first + plot.width) / plot.width)
        let columns = min(plot.width, (top - first) / binsPerColumn + 1)
        let counts = (0..<columns).map { c in (0..<binsPerColumn).reduce(UInt64(0)) { $0 + (first + c * binsPerColumn + $1 <= top ? histogram[first + c * binsPerColumn + $1] : 0) } }
        let maxLog = log10(Double((counts.max() ?? 0) + 1))
        let columnOf = { (t: Float) -> Int in min(max((LayerStepStatistics.bin(of: t) - first) / binsPerColumn, 0), columns - 1) }
        let clipColumn = encoding.map { columnOf(ActivationAnalysis.clipThreshold($0)) }
        let globalColumn = global.map { columnOf(ActivationAnalysis.clipThreshold($0)) }
        for (c, count) in counts.enumerated() {
            let eighths = maxLog > 0 ? Int((log10(Double(count + 1)) / maxLog * Double(plot.height * 8)).rounded()) : 0
            let clipped = clipColumn.map { c > $0 } ?? false
            var remaining = min(eighths, plot.height * 8), y = plot.maxY - 1
            while remaining > 0 {
                grid.put(plot.x + c, y, BarPlot.rising[min(remaining, 8)], clipped ? .role(.bad) : .role(.barPositive))
                remaining -= 8
                y -= 1
            }
            if c == clipColumn { markColumn(plot.x + c, plot, "┊", .role(.warn), grid: &grid) }
            if c == globalColumn && globalColumn != clipColumn { markColumn(plot.x + c, plot, "┆", .role(.accent), grid: &grid) }
        }
        // |x| at the left and right edges; the range's end under its marker wins over the right label.
        let left = NumberFormat.short(LayerStepStatistics.lowerEdge(of: first))
        grid.text(axis.x, axis.y, left, .role(.axis))
        var clipLabel: Rect?
        if let clipColumn, let encoding {
            let label = "↑" + NumberFormat.short(ActivationAnalysis.clipThreshold(encoding))
            let x = max(min(axis.x + clipColumn, axis.x + axis.width - label.count), axis.x + left.count + 1)
            grid.text(x, axis.y, label, .role(.warn))
            clipLabel = Rect(x: x, y: axis.y, width: label.count, height: 1)
        }
        let right = NumberFormat.short(LayerStepStatistics.lowerEdge(of: min(first + columns * binsPerColumn, last + 1)))
        let rightX = axis.x + columns - right.count
        if rightX > axis.x + left.count, clipLabel.map({ rightX >= $0.maxX + 1 || rightX + right.count < $0.x }) ?? true {
            grid.text(rightX, axis.y, right, .role(.axis))
        }
    }

    /// Marks a column's empty cells (above the bar) with a dashed line.
    private static func markColumn(_ x: Int, _ plot: Rect, _ glyph: Character, _ style: Style, grid: inout CellGrid) {
        for y in plot.y..<plot.maxY where grid[x, y].character == " " { grid.put(x, y, glyph, style) }
    }

    private static func drawSummary(_ stats: LayerStepStatistics, encoding: ActivationEncoding?, global: ActivationEncoding?,
                                    state: WorkbenchState, in rect: Rect, grid: inout CellGrid) {
        var first = "|x| ≤ \(NumberFormat.short(max(abs(stats.minimum), abs(stats.maximum))))"
            + "  range [\(NumberFormat.short(stats.minimum)), \(NumberFormat.short(stats.maximum))]  \(NumberFormat.grouped(stats.rows)) rows"
        var second = ""
        if let encoding {
            let clipped = ActivationAnalysis.clippedFraction(stats.histogram, above: ActivationAnalysis.clipThreshold(encoding))
            let kind = state.step == .all ? "one global scale" : "per-step scale"
            first += "  Δx \(NumberFormat.short(encoding.scale)) (\(encoding.kind.rawValue), \(kind))"
            second = "clips " + percent(clipped)
            if let global, state.step != .all {
                let ratio = Double(global.scale / encoding.scale)
                second += " · global Δx \(NumberFormat.short(global.scale)): \(NumberFormat.fixed(ratio, 1))× coarser here"
                    + " (\(NumberFormat.fixed(log2(max(ratio, 1)), 1)) bits lost), clips "
                    + percent(ActivationAnalysis.clippedFraction(stats.histogram, above: ActivationAnalysis.clipThreshold(global)))
            } else if state.step != .all {
                second += " · s compares one global scale"
            }
        }
        grid.text(rect.x, rect.y, first, .role(.text), maxWidth: rect.width)
        if rect.height > 1 { grid.text(rect.x, rect.y + 1, second, .role(.dim), maxWidth: rect.width) }
    }

    static func percent(_ fraction: Double) -> String {
        fraction > 0 && fraction < 0.0001 ? "<0.01%" : NumberFormat.fixed(100 * fraction, 2) + "%"
    }
}

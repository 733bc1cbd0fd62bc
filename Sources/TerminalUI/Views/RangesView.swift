import Quantization
import VideoDiT
import Workbench

/// Per-channel weight ranges of the selected layer: per-output-channel min/max as diverging bars
/// and per-input-channel max|W| (SmoothQuant's divisor) as rising bars, outliers highlighted.
enum RangesView {
    /// Columns left of the plots for axis labels.
    static let gutter = 9

    /// Channels that fit across the plots of a pane of this size.
    static func channelColumns(for rect: Rect) -> Int { max(rect.inner.width - gutter, 1) }

    static func draw(_ state: WorkbenchState, theme: Theme, in rect: Rect, focused: Bool, grid: inout CellGrid) {
        guard !rect.isEmpty else { return }
        var title = Pane.ranges.title
        if let layer = state.selectedLayer {
            // The layer's name before its shape when the frame is narrow.
            let shape = " [\(layer.outputs)×\(layer.inputs)] \(layer.dtype.name)"
            title += " · \(layer.name)" + (title.count + layer.name.count + 3 + shape.count + 6 <= rect.width ? shape : "")
        }
        PaneFrame.draw(.ranges, title: title, in: rect, focused: focused, grid: &grid)
        let inner = rect.inner
        guard inner.height >= 4, inner.width > gutter + 4 else { return }
        guard let layer = state.selectedLayer else {
            placeholder("Select a linear layer in the model tree (j/k move, l opens a block).", inner, &grid)
            return
        }
        switch state.statistics[layer.name] {
        case .ready(let stats)?: drawPlots(stats, state: state, theme: theme, inner: inner, focused: focused, grid: &grid)
        case .failed(let message)?: placeholder("Cannot read this layer: \(message)", inner, &grid, style: .role(.bad))
        case .computing?, nil: placeholder("Computing per-channel ranges…", inner, &grid)
        }
    }

    static func placeholder(_ text: String, _ rect: Rect, _ grid: inout CellGrid, style: Style = .role(.dim)) {
        grid.text(rect.x + 1, rect.y + rect.height / 2, text, style, maxWidth: rect.width - 2)
    }

    private static func drawPlots(_ stats: WeightRangeStatistics, state: WorkbenchState, theme: Theme,
                                  inner: Rect, focused: Bool, grid: inout CellGrid) {
        let columns = channelColumns(for: Rect(x: inner.x - 1, y: inner.y - 1, width: inner.width + 2, height: inner.height + 2))
        // Two plots, each: caption row, bars, tick row.
        let plotRows = max((inner.height - 4) / 2, 1)
        let outputTop = Rect(x: inner.x, y: inner.y, width: inner.width, height: 1)
        let outputPlot = Rect(x: inner.x + gutter, y: inner.y + 1, width: columns, height: plotRows)
        let outputTicks = Rect(x: inner.x + gutter, y: outputPlot.maxY, width: columns, height: 1)
        let inputTop = Rect(x: inner.x, y: outputTicks.maxY, width: inner.width, height: 1)
        let inputPlot = Rect(x: inner.x + gutter, y: inputTop.maxY, width: columns, height: max(inner.maxY - inputTop.maxY - 1, 1))
        let inputTicks = Rect(x: inner.x + gutter, y: inputPlot.maxY, width: columns, height: 1)

        // Output channels: min/max per row of W.
        let outFirst = min(state.channelOffset(.outputs), max(stats.outputs - columns, 0))
        let outRange = outFirst..<min(outFirst + columns, stats.outputs)
        let outScale = max(stats.outputMax.map(abs).max() ?? 0, stats.outputMin.map(abs).max() ?? 0)
        let loudOutputs = Set(stats.outputOutliers.filter { $0.ratio >= 2 }.map(\.channel))
        caption("Output channels · min/max of each row of W", shown: outRange, total: stats.outputs,
                active: focused && state.rangesPlot == .outputs, in: outputTop, grid: &grid)
        axisLabels(top: "+" + NumberFormat.short(outScale), bottom: "-" + NumberFormat.short(outScale),
                   middle: "0", plot: outputPlot, grid: &grid)
        BarPlot.drawDiverging(mins: stats.outputMin[outRange], maxs: stats.outputMax[outRange], scale: outScale,
                              in: outputPlot, grid: &grid,
                              upStyle: { loudOutputs.contains($0) ? .role(.warn) : .role(.barPositive) },
                              downStyle: { loudOutputs.contains($0) ? .role(.warn) : .role(.barNegative) })
        BarPlot.drawChannelTicks(first: outFirst, count: outRange.count, in: outputTicks, grid: &grid, style: .role(.axis))

        // Input channels: max over rows of |W[:, j]|, coloured by how far above the median.
        let inFirst = min(state.channelOffset(.inputs), max(stats.inputs - columns, 0))
        let inRange = inFirst..<min(inFirst + columns, stats.inputs)
        let inMax = stats.inputAbsMax.max() ?? 0
        let median = stats.inputAbsMax.sorted()[stats.inputs / 2]
        caption("Input channels · max|W[:, j]| (SmoothQuant divides by these)", shown: inRange, total: stats.inputs,
                active: focused && state.rangesPlot == .inputs, in: inputTop, grid: &grid)
        axisLabels(top: NumberFormat.short(inMax), bottom: nil, middle: nil, plot: inputPlot, grid: &grid)
        BarPlot.drawRising(stats.inputAbsMax[inRange], maxValue: inMax, in: inputPlot, grid: &grid) { j in
            let ratio = median > 0 ? Double(stats.inputAbsMax[j] / median) : 1
            if ratio >= 4 { return .role(.bad) }
            if ratio >= 2 { return .role(.warn) }
            return Style(foreground: .rgb(theme.heatColor(0.15 + 0.2 * min(ratio, 2) / 2)))
        }
        BarPlot.drawChannelTicks(first: inFirst, count: inRange.count, in: inputTicks, grid: &grid, style: .role(.axis))
    }

    /// The plot's caption and the channels it shows; the plot the scroll keys move is marked `▸`.
    private static func caption(_ text: String, shown: Range<Int>, total: Int, active: Bool, in rect: Rect, grid: inout CellGrid) {
        let range = shown.count < total ? "  \(shown.lowerBound)–\(shown.upperBound - 1) of \(total) ←/→" : "  \(total) channels"
        var used = active ? grid.text(rect.x, rect.y, "▸", .role(.accent, bold: true)) : 0
        used += grid.text(rect.x + used, rect.y, text, active ? .role(.accent, bold: true) : .role(.text, bold: true),
                          maxWidth: rect.width - range.count - used)
        grid.text(rect.x + used, rect.y, range, .role(.dim), maxWidth: rect.width - used)
    }

    /// Value labels left of a plot; the zero mark only where it has a row of its own.
    private static func axisLabels(top: String, bottom: String?, middle: String?, plot: Rect, grid: inout CellGrid) {
        grid.textRight(plot.x - 1, plot.y, top, .role(.axis))
        let middleRow = plot.y + plot.height / 2 - 1
        if let middle, middleRow > plot.y, middleRow < plot.maxY - 1 {
            grid.textRight(plot.x - 1, middleRow, middle + "┄", .role(.axis))
        }
        if let bottom { grid.textRight(plot.x - 1, plot.maxY - 1, bottom, .role(.axis)) }
    }
}

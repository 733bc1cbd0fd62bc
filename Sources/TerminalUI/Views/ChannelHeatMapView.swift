import Quantization
import Workbench

/// Outliers by timestep: per-input-channel max|x| of the selected layer over channels × steps (a
/// log colour scale), each step's tensor range as a bar beside its row, the channels that stand
/// out most and the picked channel's range over the steps next to its weight max|W[:, j]|.
enum ChannelHeatMapView {
    /// Step label, range bar and value left of the map.
    static let gutter = 17
    static let listWidth = 22

    /// Channels that fit across the map in a pane of this size.
    static func channelColumns(for rect: Rect) -> Int {
        let inner = rect.inner
        return max(inner.width - gutter - (inner.width >= 70 ? listWidth + 1 : 0), 1)
    }

    static func draw(_ state: WorkbenchState, theme: Theme, in rect: Rect, focused: Bool, grid: inout CellGrid) {
        guard !rect.isEmpty else { return }
        PaneFrame.draw(.heatmap, title: Pane.heatmap.title, in: rect, focused: focused, grid: &grid)
        let inner = rect.inner
        guard inner.height >= 4, inner.width >= 40 else { return }
        if CalibrationStatusView.drawIfNoData(state, in: inner, grid: &grid) { return }
        let data = state.activations!
        guard let layer = state.selectedLayer, data.statistics[layer.name] != nil else {
            RangesView.placeholder("Select a block linear in the model tree.", inner, &grid)
            return
        }
        let absMax = data.channelAbsMax(layer.name)
        let width = absMax.first?.count ?? 0
        let columns = min(channelColumns(for: rect), width)
        let first = min(state.heatChannelOffset, max(width - columns, 0))
        let rows = inner.height - 2
        let selectedStep: Int
        if case .step(let s) = state.step { selectedStep = s } else { selectedStep = -1 }
        let firstStep = max(0, min(max(selectedStep, 0) - rows / 2, data.steps - rows))
        let visibleSteps = firstStep..<min(firstStep + rows, data.steps)
        guard let scale = HeatMap.LogScale(absMax.joined()) else {
            RangesView.placeholder("every recorded value is zero", inner, &grid)
            return
        }

        let range = columns < width ? "ch \(first)–\(first + columns - 1) of \(width) h/l" : "\(width) channels"
        let headerWidth = gutter + columns
        let used = grid.text(inner.x, inner.y, "max|x| per channel × step  ", .role(.text, bold: true),
                             maxWidth: max(headerWidth - range.count, 0))
        grid.text(inner.x + used, inner.y, range, .role(.dim), maxWidth: headerWidth - used)

        let tensorMax = absMax.map { $0.max() ?? 0 }
        let largest = tensorMax.max() ?? 0
        for (row, step) in visibleSteps.enumerated() {
            let y = inner.y + 1 + row
            let selected = step == selectedStep
            grid.text(inner.x, y, (selected ? "▸" : " ") + pad("\(step)", 3), selected ? .role(.accent, bold: true) : .role(.dim))
            grid.text(inner.x + 5, y, horizontalBar(tensorMax[step] / max(largest, .leastNormalMagnitude), width: 6), .role(.barPositive))
            grid.text(inner.x + 11, y, pad(NumberFormat.short(tensorMax[step]), 6), .role(.dim))
        }
        let map = Rect(x: inner.x + gutter, y: inner.y + 1, width: columns, height: visibleSteps.count)
        HeatMap.draw(rows: visibleSteps.count, columns: columns, in: map, grid: &grid, theme: theme) { r, c in
            scale.position(absMax[visibleSteps.lowerBound + r][first + c])
        }
        if (first..<(first + columns)).contains(state.heatChannel) {
            for r in 0..<visibleSteps.count {
                var cell = grid[map.x + state.heatChannel - first, map.y + r]
                cell.style.underline = true
                if visibleSteps.lowerBound + r == selectedStep { cell.style.reverse = true }
                grid[map.x + state.heatChannel - first, map.y + r] = cell
            }
        }
        if inner.width >= 70 {
            drawOutlierList(absMax, in: Rect(x: map.x + columns + 1, y: inner.y, width: listWidth, height: inner.height - 1), grid: &grid)
        }
        drawLegend(state, data: data, layer: layer.name, absMax: absMax, scale: scale, theme: theme,
                   in: Rect(x: inner.x, y: inner.maxY - 1, width: inner.width, height: 1), grid: &grid)
    }

    private static func drawOutlierList(_ absMax: [[Float]], in rect: Rect, grid: inout CellGrid) {
        grid.text(rect.x, rect.y, "outliers ÷ median", .role(.text, bold: true), maxWidth: rect.width)
        for (i, c) in ActivationAnalysis.outlierChannels(absMax, count: rect.height - 1).enumerated() {
            let style: Style = c.ratio >= 8 ? .role(.bad) : c.ratio >= 4 ? .role(.warn) : .role(.text)
            grid.text(rect.x, rect.y + 1 + i, pad("ch \(c.channel)", 7) + pad("×" + NumberFormat.fixed(Double(c.ratio), 1), 7) + "s\(c.peakStep)",
                      style, maxWidth: rect.width)
        }
    }

    /// The log colour scale, and the picked channel over the steps beside its max|W[:, j]|.
    private static func drawLegend(_ state: WorkbenchState, data: ActivationData, layer: String, absMax: [[Float]],
                                   scale: HeatMap.LogScale, theme: Theme, in rect: Rect, grid: inout CellGrid) {
        var x = rect.x + HeatMap.drawLegend(low: NumberFormat.short(scale.low), high: NumberFormat.short(scale.high), at: rect.x, rect.y,
                                            maxWidth: rect.width, grid: &grid, theme: theme)
        let j = state.heatChannel
        guard absMax.first.map({ $0.indices.contains(j) }) ?? false else { return }
        let line = absMax.map { $0[j] }
        let peak = line.max() ?? 0
        let weight = data.weightInputAbsMax(layer).map { $0.indices.contains(j) ? " max|W| \(NumberFormat.short($0[j]))" : "" } ?? ""
        x += grid.text(x, rect.y, "  ch \(j) ", .role(.accent, bold: true), maxWidth: rect.maxX - x)
        x += grid.text(x, rect.y, HeatMap.sparkline(line, maximum: peak), .role(.accent), maxWidth: rect.maxX - x)
        grid.text(x, rect.y, " ≤\(NumberFormat.short(peak))" + weight, .role(.dim), maxWidth: rect.maxX - x)
    }

    static let eighths: [Character] = [" ", "▏", "▎", "▍", "▌", "▋", "▊", "▉", "█"]

    /// A left-aligned bar of `fraction` (0…1) of `width` cells, in eighths.
    static func horizontalBar(_ fraction: Float, width: Int) -> String {
        let total = Int((max(0, min(1, fraction)) * Float(width * 8)).rounded())
        var text = String(repeating: "█", count: total / 8)
        if total % 8 > 0 { text.append(eighths[total % 8]) }
        return text + String(repeating: " ", count: max(width - text.count, 0))
    }

    static func pad(_ s: String, _ width: Int) -> String {
        s.count >= width ? s + " " : s + String(repeating: " ", count: width - s.count)
    }
}

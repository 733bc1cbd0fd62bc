import Quantization
import Workbench

/// Ranked outlier channels of the selected layer and what per-channel weight quantization buys.
enum OutliersView {
    /// Below this inner width the SQNR summary is one line above two compact lists.
    static let compactWidth = 74

    /// Ranked channels visible at once in a pane of this size.
    static func listRows(for rect: Rect) -> Int {
        max(rect.inner.height - 1 - (rect.inner.width < compactWidth ? 1 : 0), 1)
    }

    static func draw(_ state: WorkbenchState, in rect: Rect, focused: Bool, grid: inout CellGrid) {
        guard !rect.isEmpty else { return }
        PaneFrame.draw(.outliers, title: Pane.outliers.title, in: rect, focused: focused, grid: &grid)
        let inner = rect.inner
        guard inner.height >= 3, inner.width >= 30 else { return }
        guard let stats = state.selectedStatistics else {
            RangesView.placeholder(state.selectedLayer == nil ? "No layer selected." : "Computing…", inner, &grid)
            return
        }
        if inner.width < compactWidth {
            let gain = stats.perChannelSQNRdB - stats.perTensorSQNRdB
            var x = inner.x + grid.text(inner.x, inner.y, "W8 SQNR ", .role(.text, bold: true), maxWidth: inner.width)
            x += grid.text(x, inner.y, "per-ch " + db(stats.perChannelSQNRdB), .role(.good), maxWidth: inner.maxX - x)
            x += grid.text(x, inner.y, " · per-tensor " + db(stats.perTensorSQNRdB), .role(gain >= 6 ? .warn : .text), maxWidth: inner.maxX - x)
            let lists = Rect(x: inner.x, y: inner.y + 1, width: inner.width, height: inner.height - 1)
            let half = (lists.width - 1) / 2
            ranked("Input ÷ median", stats.inputOutliers, scroll: state.outlierScroll, compact: true,
                   in: Rect(x: lists.x, y: lists.y, width: half, height: lists.height), grid: &grid)
            ranked("Output ÷ median", stats.outputOutliers, scroll: state.outlierScroll, compact: true,
                   in: Rect(x: lists.x + half + 1, y: lists.y, width: lists.width - half - 1, height: lists.height), grid: &grid)
            return
        }
        let summaryWidth = min(36, inner.width / 3)
        let listsWidth = inner.width - summaryWidth - 2
        let listWidth = listsWidth / 2
        let inputs = Rect(x: inner.x, y: inner.y, width: listWidth, height: inner.height)
        let summary = Rect(x: inner.x + listsWidth + 2, y: inner.y, width: inner.maxX - inner.x - listsWidth - 2, height: inner.height)
        ranked("Input · max|W| ÷ median", stats.inputOutliers, scroll: state.outlierScroll, compact: false, in: inputs, grid: &grid)
        let outputs = Rect(x: inputs.maxX + 1, y: inner.y, width: listWidth, height: inner.height)
        ranked("Output · max|W| ÷ median", stats.outputOutliers, scroll: state.outlierScroll, compact: false, in: outputs, grid: &grid)
        for y in inner.y..<inner.maxY { grid.put(summary.x - 1, y, "│", .role(.border)) }
        drawSummary(stats, in: summary, grid: &grid)
    }

    /// The list from `scroll` on; it never scrolls past its last full page.
    private static func ranked(_ title: String, _ channels: [OutlierChannel], scroll: Int, compact: Bool, in rect: Rect, grid: inout CellGrid) {
        grid.text(rect.x, rect.y, title, .role(.text, bold: true), maxWidth: rect.width)
        let rows = rect.height - 1
        let first = min(scroll, max(channels.count - rows, 0))
        for (line, channel) in channels.dropFirst(first).prefix(rows).enumerated() {
            let rank = first + line + 1
            let style: Style = channel.ratio >= 4 ? .role(.bad) : channel.ratio >= 2 ? .role(.warn) : .role(.text)
            let ratio = "×" + NumberFormat.fixed(Double(channel.ratio), 1)
            let text = compact ? pad("#\(rank)", 3) + pad("ch \(channel.channel)", 7) + ratio
                : pad("#\(rank)", 4) + pad("ch \(channel.channel)", 8) + pad(NumberFormat.short(channel.value), 7) + ratio
            grid.text(rect.x, rect.y + 1 + line, text, style, maxWidth: rect.width)
        }
    }

    private static func drawSummary(_ stats: WeightRangeStatistics, in rect: Rect, grid: inout CellGrid) {
        let gain = stats.perChannelSQNRdB - stats.perTensorSQNRdB
        let lines: [(String, Style)] = [
            ("int8 weight SQNR", .role(.text, bold: true)),
            ("per-channel " + db(stats.perChannelSQNRdB), .role(.good)),
            ("per-tensor  " + db(stats.perTensorSQNRdB), .role(gain >= 6 ? .warn : .text)),
            ((gain >= 0 ? "+" : "") + NumberFormat.fixed(gain, 1) + " dB from per-channel Δw", .role(.accent)),
            ("", .plain),
            ("loudest input ch: \(stats.inputOutliers.first.map { "\($0.channel) ×\(NumberFormat.fixed(Double($0.ratio), 1))" } ?? "-")", .role(.dim)),
        ]
        for (i, (text, style)) in lines.enumerated() where i < rect.height {
            grid.text(rect.x, rect.y + i, text, style, maxWidth: rect.width)
        }
    }

    private static func db(_ value: Double) -> String {
        value.isFinite ? NumberFormat.fixed(value, 1) + " dB" : (value > 0 ? "exact" : "-inf dB")
    }

    private static func pad(_ s: String, _ width: Int) -> String {
        s.count >= width ? s + " " : s + String(repeating: " ", count: width - s.count)
    }
}

import Foundation
import Quantization
import Workbench

/// Local SQNR of every quantized layer at every step under the plan being tuned (the default plan
/// until the first edit; int8 path, the calibration's reservoir rows): layers down, steps across,
/// the worst cells listed; Enter jumps to the layer and step under the cursor.
enum QualityMapView {
    static let gutter = 16
    static let listWidth = 26

    static func draw(_ state: WorkbenchState, theme: Theme, in rect: Rect, focused: Bool, grid: inout CellGrid) {
        guard !rect.isEmpty else { return }
        PaneFrame.draw(.quality, title: Pane.quality.title, in: rect, focused: focused, grid: &grid)
        let inner = rect.inner
        guard inner.height >= 4, inner.width >= 40 else { return }
        if CalibrationStatusView.drawIfNoData(state, in: inner, grid: &grid) { return }
        guard let map = state.qualityMap else {
            RangesView.placeholder("Computing the local SQNR of every layer at every step…", inner, &grid)
            return
        }
        let layers = state.catalog.quantizableLinears.map(\.name).filter { map[$0] != nil }
        let steps = state.activations?.steps ?? 0
        guard !layers.isEmpty, steps > 0 else { return }
        let values = layers.flatMap { map[$0]! }.filter(\.isFinite)
        let (low, high) = (values.min() ?? 0, values.max() ?? 1)
        let rows = inner.height - 2
        let cursor = min(state.qualityLayer, layers.count - 1)
        let firstRow = max(0, min(cursor - rows / 2, layers.count - rows))
        let visible = firstRow..<min(firstRow + rows, layers.count)
        // The worst-cells list goes right of the map when both fit.
        let showsList = inner.width - gutter - min(steps, 30) >= listWidth + 1
        let columns = min(steps, inner.width - gutter - (showsList ? listWidth + 1 : 0))
        grid.text(inner.x, inner.y, " layer", .role(.text, bold: true))
        grid.text(inner.x + gutter, inner.y, "steps 0…\(steps - 1)", .role(.text, bold: true), maxWidth: columns)
        for (r, i) in visible.enumerated() {
            let y = inner.y + 1 + r
            grid.text(inner.x, y, (i == cursor ? "▸" : " ") + short(layers[i]), i == cursor ? .role(.accent, bold: true) : .role(.dim),
                      maxWidth: gutter - 1)
            for c in 0..<columns {
                let step = c * steps / columns
                let db = map[layers[i]]![step]
                // Green (good) for high SQNR, red for low: the heat gradient reversed.
                var cell = db.isFinite ? HeatMap.cell(1 - (db - low) / max(high - low, 1e-9), theme: theme) : Cell(" ", .role(.dim))
                if i == cursor && step == state.qualityStep { cell.style.reverse = true }
                grid[inner.x + gutter + c, y] = cell
            }
        }
        if showsList {
            drawWorst(map, layers: layers, in: Rect(x: inner.x + gutter + columns + 1, y: inner.y, width: listWidth, height: inner.height - 1),
                      grid: &grid)
        }
        let picked = map[layers[cursor]]![min(state.qualityStep, steps - 1)]
        var x = inner.x + HeatMap.drawLegend(low: NumberFormat.fixed(high, 1), high: NumberFormat.fixed(low, 1) + " dB", at: inner.x,
                                             inner.maxY - 1, maxWidth: inner.width, grid: &grid, theme: theme)
        x += grid.text(x, inner.maxY - 1, "  \(short(layers[cursor])) step \(state.qualityStep): \(NumberFormat.fixed(picked, 1)) dB",
                       .role(.accent), maxWidth: inner.maxX - x)
        grid.text(x, inner.maxY - 1, " · Enter opens", .role(.dim), maxWidth: inner.maxX - x)
    }

    private static func drawWorst(_ map: [String: [Double]], layers: [String], in rect: Rect, grid: inout CellGrid) {
        grid.text(rect.x, rect.y, "worst cells", .role(.text, bold: true), maxWidth: rect.width)
        let cells = layers.flatMap { layer in map[layer]!.enumerated().map { (layer, $0.offset, $0.element) } }
            .filter { $0.2.isFinite }.sorted { $0.2 < $1.2 }.prefix(rect.height - 1)
        for (i, cell) in cells.enumerated() {
            grid.text(rect.x, rect.y + 1 + i, ChannelHeatMapView.pad(short(cell.0), 12) + ChannelHeatMapView.pad("s\(cell.1)", 4)
                      + NumberFormat.fixed(cell.2, 1) + " dB", .role(i == 0 ? .bad : .text), maxWidth: rect.width)
        }
    }

    /// `spatial_blocks.3.cross_attn.q_linear` → `s3.cross.q`.
    static func short(_ name: String) -> String {
        var parts = name.split(separator: ".").map(String.init)
        guard parts.count >= 3 else { return name }
        let block = (parts[0].hasPrefix("temporal") ? "t" : parts[0].hasPrefix("spatial") ? "s" : "b") + parts[1]
        parts.removeFirst(2)
        let rest = parts.joined(separator: ".").replacingOccurrences(of: "cross_attn", with: "cross")
            .replacingOccurrences(of: "attn_temp", with: "tattn").replacingOccurrences(of: "_linear", with: "")
        return block + "." + rest
    }
}

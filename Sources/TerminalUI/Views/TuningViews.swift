import Foundation
import Quantization
import Workbench

/// The plan screen: blocks with their α and smoothing (left), the selected block's layers with
/// how each is quantized and its local SQNR before → after the last edit (right), and the export
/// dialog on top when open.
enum TuningViews {
    static func drawBlocks(_ state: WorkbenchState, in rect: Rect, focused: Bool, grid: inout CellGrid) {
        guard !rect.isEmpty else { return }
        PaneFrame.draw(.blocks, title: Pane.blocks.title, in: rect, focused: focused, grid: &grid)
        let inner = rect.inner
        guard inner.height >= 3, inner.width >= 20 else { return }
        guard let t = state.tuning else {
            if !CalibrationStatusView.drawIfNoData(state, in: inner, grid: &grid) {
                RangesView.placeholder("Loading the plan…", inner, &grid)
            }
            return
        }
        // Narrow (80 columns): the smoothing mode as agg/tsq.
        let compact = inner.width < 48
        let (blockWidth, alphaWidth, modeWidth) = compact ? (19, 5, 4) : (20, 10, 11)
        grid.text(inner.x, inner.y, pad(" block", blockWidth) + pad("α", alphaWidth) + pad(compact ? "sm" : "smoothing", modeWidth) + "worst",
                  .role(.text, bold: true), maxWidth: inner.width)
        let rows = inner.height - 2
        let first = max(0, min(t.blockCursor - rows / 2, t.blocks.count - rows))
        for (r, i) in (first..<min(first + rows, t.blocks.count)).enumerated() {
            let block = t.blocks[i], selected = i == t.blockCursor
            let y = inner.y + 1 + r
            let typing = selected && t.alphaEntry != nil && t.alphaEntryGroup == nil
            let alphaText = typing ? "=\(t.alphaEntry!)▏" : alphaLabel(t.blockSettings(of: block), groups: t.plan.stepGroups.count, compact: compact)
            let worst = worstSQNR(of: block, t, state)
            let style: Style = selected ? .role(.accent, bold: true) : .role(.text)
            var x = inner.x
            let mode = t.smoothing(of: block)
            x += grid.text(x, y, (selected ? "▸" : " ") + pad(block, blockWidth - 1), style, maxWidth: inner.maxX - x)
            x += grid.text(x, y, pad(alphaText, alphaWidth), typing ? .role(.warn, bold: true) : style, maxWidth: inner.maxX - x)
            x += grid.text(x, y, pad(compact ? (mode == .aggregated ? "agg" : "tsq") : mode.rawValue, modeWidth), .role(.dim), maxWidth: inner.maxX - x)
            if let worst { grid.text(x, y, NumberFormat.fixed(worst, 1) + " dB", .role(worst < 25 ? .bad : .text), maxWidth: inner.maxX - x) }
        }
        let footer = t.alphaEntry != nil ? "type α in 0…1 · Enter sets · Esc cancels"
            : "+/- α ±0.05 · ]/[ ±0.25 · = type · m smoothing · u undo · U redo · e export"
        grid.text(inner.x, inner.maxY - 1, footer, .role(.dim), maxWidth: inner.width)
    }

    static func drawLayers(_ state: WorkbenchState, in rect: Rect, focused: Bool, grid: inout CellGrid) {
        guard !rect.isEmpty else { return }
        let block = state.tuning?.selectedBlock
        PaneFrame.draw(.blockLayers, title: block.map { "Layers of \($0)" } ?? Pane.blockLayers.title, in: rect, focused: focused, grid: &grid)
        let inner = rect.inner
        guard inner.height >= 3, inner.width >= 30, let t = state.tuning, let block else { return }
        let layers = state.catalog.blocks.first { $0.name == block }?.linears ?? []
        let nameWidth = min(24, max(16, inner.width - 40))
        // Narrow: the figure now and the change, without the figure before.
        let showsBefore = inner.width >= 56
        let settingsOf = layers.map { try? t.plan.settings(for: $0.name, foldable: SmoothQuant.fold(of: $0.name).isFolded) }
        let described = zip(layers, settingsOf).map { layer, settings in
            settings.map { describe($0, shiftApplies: SmoothQuant.fold(of: layer.name).takesShift) } ?? "?"
        }
        // As wide as the longest label needs (`W4G/uA8z` with GPTQ and a shift), 7 at least.
        let settingsWidth = max(7, (described.map(\.count).max() ?? 0) + 1)
        grid.text(inner.x, inner.y, pad(" layer", nameWidth) + pad("α", 6) + pad("W/A", settingsWidth) + (showsBefore ? "local SQNR (before → now)" : "SQNR dB, Δ"),
                  .role(.text, bold: true), maxWidth: inner.width)
        for (i, layer) in layers.enumerated() where i < inner.height - 3 {
            let y = inner.y + 1 + i
            let settings = settingsOf[i]
            var x = inner.x
            var name = String(layer.name.dropFirst(block.count + 1))
            if nameWidth < 20 { name = name.replacingOccurrences(of: "cross_attn", with: "cross") }
            // The cursor shows where the layer keys act; `*` marks a layer with its own entry.
            let selected = focused && i == t.layerCursor
            let marker = selected ? "▸" : t.override(of: layer.name) != nil ? "*" : " "
            x += grid.text(x, y, marker + pad(name, nameWidth - 1), selected ? .role(.accent, bold: true) : .role(.text), maxWidth: inner.maxX - x)
            x += grid.text(x, y, pad(settings.map { alphaLabel($0, groups: t.plan.stepGroups.count, compact: true) } ?? "?", 6), .role(.text), maxWidth: inner.maxX - x)
            x += grid.text(x, y, pad(described[i], settingsWidth), .role(.dim), maxWidth: inner.maxX - x)
            guard let now = t.layerSQNR[layer.name] else {
                grid.text(x, y, settings?.keepFloat == true ? "float" : "…", .role(.dim), maxWidth: inner.maxX - x)
                continue
            }
            let before = t.previousLayerSQNR[layer.name] ?? now
            let delta = now - before
            // "before →" only where the last edit moved the figure.
            if showsBefore && abs(delta) >= 0.05 { x += grid.text(x, y, NumberFormat.fixed(before, 1) + " → ", .role(.dim), maxWidth: inner.maxX - x) }
            x += grid.text(x, y, NumberFormat.fixed(now, 1) + (showsBefore ? " dB" : ""), .role(.text, bold: true), maxWidth: inner.maxX - x)
            if abs(delta) >= 0.05 {
                grid.text(x, y, " " + (delta > 0 ? "▲+" : "▼") + NumberFormat.fixed(delta, 1), .role(delta > 0 ? .good : .bad), maxWidth: inner.maxX - x)
            }
        }
        if t.autoAlphaBlock == block {
            grid.text(inner.x, inner.maxY - 1, "searching α over 0…1…", .role(.warn), maxWidth: inner.width)
        } else if let curve = t.alphaCurve, curve.block == block, !curve.points.isEmpty {
            let alphas = t.groupAlphas(of: block)
            let current = curve.group.flatMap { alphas.indices.contains($0) ? alphas[$0] : nil } ?? t.alpha(of: block)
            drawCurve(curve.points, current: current, group: curve.group, at: inner.x, inner.maxY - 1, width: inner.width, grid: &grid)
        } else {
            let note = focused ? "b bits · f float · g granularity · y symmetry · o activations · E estimator · S shift · r GPTQ · X clear"
                : "A searches α · fc2 and cross_attn.q_linear: α per layer (2, then +/-)"
            grid.text(inner.x, inner.maxY - 1, note, .role(.dim), maxWidth: inner.width)
        }
    }

    /// The α search's curve: local error against α as bars (lower is better), the chosen point in
    /// the accent colour, the block's current α underlined.
    static func drawCurve(_ points: [AlphaPoint], current: Double, group: Int? = nil, at x0: Int, _ y: Int, width: Int, grid: inout CellGrid) {
        var x = x0 + grid.text(x0, y, "error vs α 0…1 " + (group.map { "(group \($0 + 1)) " } ?? ""), .role(.dim), maxWidth: width)
        let bars: [Character] = ["▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"]
        let (low, high) = (points.map(\.error).min() ?? 0, points.map(\.error).max() ?? 1)
        guard let best = AlphaPoint.best(points) else { return }
        for p in points where x < x0 + width {
            let level = high > low ? Int((p.error - low) / (high - low) * Double(bars.count - 1) + 0.5) : 0
            var style: Style = p == best ? .role(.accent, bold: true) : .role(.dim)
            style.underline = abs(p.alpha - current) < 1e-9
            grid[x, y] = Cell(bars[min(max(level, 0), bars.count - 1)], style)
            x += 1
        }
        grid.text(x, y, " best α \(NumberFormat.fixed(best.alpha, 2)) · " + String(format: "%.1e", best.error), .role(.accent), maxWidth: x0 + width - x)
    }

    /// The export dialog: the folder being typed and what will be written.
    static func drawExport(_ dialog: ExportDialog, in bounds: Rect, grid: inout CellGrid) {
        let width = min(bounds.width - 4, 78), height = 7
        let rect = Rect(x: bounds.x + (bounds.width - width) / 2, y: bounds.y + (bounds.height - height) / 2, width: width, height: height)
        grid.fill(rect, " ", .role(.text))
        grid.box(rect, title: " Export ", style: .role(.borderFocus, bold: true), titleStyle: .role(.titleFocus, bold: true))
        let inner = rect.inner
        grid.text(inner.x + 1, inner.y, "Folder:", .role(.text, bold: true))
        let field = dialog.directory + (dialog.isWriting || dialog.isOnModelOption ? "" : "▏")
        // Long paths show their end, where the user types.
        let shown = field.count > inner.width - 10 ? "…" + String(field.suffix(inner.width - 11)) : field
        grid.text(inner.x + 9, inner.y, shown, .role(dialog.isOnModelOption ? .text : .accent, bold: true), maxWidth: inner.width - 10)
        var x = inner.x + 1
        x += grid.text(x, inner.y + 2, "plan.json", .role(.text), maxWidth: inner.maxX - x)
        x += grid.text(x, inner.y + 2, " (always) · ", .role(.dim), maxWidth: inner.maxX - x)
        x += grid.text(x, inner.y + 2, (dialog.includesModel ? "[x]" : "[ ]") + " quantized.safetensors"
                       + (dialog.includesEncodings ? " + AIMET encodings" : dialog.includesONNX ? " + ONNX QDQ" : ""),
                       dialog.isOnModelOption ? .role(.accent, bold: true) : .role(.text), maxWidth: inner.maxX - x)
        grid.text(x, inner.y + 2, " · each written atomically", .role(.dim), maxWidth: inner.maxX - x)
        let keys = dialog.isOnModelOption ? "Space: model/plan/+AIMET/+ONNX · Tab: folder · Enter writes · Esc cancels"
            : "Enter writes · Tab: the quantized-model option · Esc cancels"
        grid.text(inner.x + 1, inner.y + 4, dialog.isWriting ? "writing…" : keys, .role(dialog.isWriting ? .warn : .dim), maxWidth: inner.width - 2)
    }

    /// The α of settings: one value, or with an α per step group its range (`0.25–0.50`; compact:
    /// `grp`, the step groups pane lists them).
    static func alphaLabel(_ s: LayerSettings, groups: Int, compact: Bool) -> String {
        guard s.smoothing == .timestep, let list = s.groupAlpha, list.count == groups, let low = list.min(), let high = list.max(), low != high else {
            return NumberFormat.fixed(s.smoothing == .timestep ? s.groupAlpha?.first ?? s.alpha : s.alpha, 2)
        }
        return compact ? "grp" : NumberFormat.fixed(low, 2) + "–" + NumberFormat.fixed(high, 2)
    }

    /// `W8/A8`, `W4/A8`, `W8/dyn`, `float`; `G` after the bits: GPTQ rounding; `z` at the end: a
    /// channel shift, shown only where one applies (`W4G/uA8z`).
    static func describe(_ s: LayerSettings, shiftApplies: Bool = false) -> String {
        if s.keepFloat { return "float" }
        let a: String
        switch s.activations {
        case .int8: a = "A8"
        case .uint8: a = "uA8"
        case .dynamic: a = "dyn"
        case .dynamicUInt8: a = "udyn"
        }
        return "W\(s.weightBits)" + (s.weightRounding == .gptq ? "G" : "") + "/\(a)" + (s.shift && shiftApplies ? "z" : "")
    }

    static func worstSQNR(of block: String, _ t: TuningState, _ state: WorkbenchState) -> Double? {
        let names = state.catalog.blocks.first { $0.name == block }?.linears.map(\.name) ?? []
        return names.compactMap { t.layerSQNR[$0] }.filter(\.isFinite).min()
    }

    static func pad(_ s: String, _ width: Int) -> String {
        s.count >= width ? String(s.prefix(width - 1)) + " " : s + String(repeating: " ", count: width - s.count)
    }
}

import Foundation
import Workbench

/// The preview pane of the plan screen: the FP video and the quantized video of one prompt side
/// by side, animated, as half-block cells (`▀`: the top pixel in the foreground colour, the bottom
/// one in the background; the backend draws a luminance ramp instead without colour or with
/// `--ascii`), |FP − Q| as a heat map beside them, and the metrics under them.
enum PreviewView {
    /// Gain of the difference panel: |FP − Q| of 1/4 of the range is full scale.
    static let differenceGain: Float = 4

    static func draw(_ state: WorkbenchState, theme: Theme, in rect: Rect, focused: Bool, grid: inout CellGrid) {
        guard !rect.isEmpty else { return }
        let preview = state.preview
        PaneFrame.draw(.preview, title: "Preview" + (preview.map { " · \"\($0.prompt)\" seed \($0.seed)" } ?? ""), in: rect,
                       focused: focused, grid: &grid)
        let inner = rect.inner
        guard inner.height >= 5, inner.width >= 40 else { return }
        if let entry = preview?.promptEntry {
            // The prompt being typed replaces the pane's first row (the panel titles).
            var x = inner.x + grid.text(inner.x, inner.y, "prompt: ", .role(.text, bold: true), maxWidth: inner.width)
            let tail = " · Enter samples · Esc cancels"
            let room = max(inner.maxX - x - tail.count - 1, 8)
            let shown = entry.count > room ? "…" + String(entry.suffix(room - 1)) : entry
            x += grid.text(x, inner.y, shown + "▏", .role(.warn, bold: true), maxWidth: inner.maxX - x)
            grid.text(x, inner.y, tail, .role(.dim), maxWidth: inner.maxX - x)
        }
        let titleRow = preview?.promptEntry == nil
        guard let preview else {
            RangesView.placeholder(state.tuning == nil ? "The preview follows the plan once it is loaded." : "Starting the preview…", inner, &grid)
            return
        }
        if let failure = preview.failure {
            RangesView.placeholder("No preview: \(failure)", inner, &grid, style: .role(.bad))
            return
        }
        guard let reference = preview.reference else {
            RangesView.placeholder("Sampling the FP32 video…", inner, &grid)
            return
        }
        let gap = 2
        let videoRows = inner.height - 3
        let panelWidth = min(reference.width, (inner.width - 2 * gap) / 3)
        let panelRows = min((reference.height + 1) / 2, videoRows)
        let frame = min(preview.frame, reference.frames - 1)
        let generation = state.tuning?.generation
        let stale = preview.quantizedGeneration != generation
        let titles = ["FP32", preview.quantized == nil ? "quantized: sampling…" : "quantized" + (stale ? " (re-rendering…)" : ""),
                      "|FP − Q| ×\(Int(differenceGain))"]
        for (i, title) in titles.enumerated() where titleRow {
            grid.text(inner.x + i * (panelWidth + gap), inner.y, title, .role(i == 1 && stale ? .warn : .text, bold: true), maxWidth: panelWidth + gap - 1)
        }
        let top = inner.y + 1
        drawVideo(reference, frame: frame, at: inner.x, top, width: panelWidth, rows: panelRows, grid: &grid)
        if let quantized = preview.quantized {
            drawVideo(quantized, frame: frame, at: inner.x + panelWidth + gap, top, width: panelWidth, rows: panelRows, grid: &grid)
            drawDifference(quantized, reference, frame: frame, at: inner.x + 2 * (panelWidth + gap), top, width: panelWidth, rows: panelRows,
                           theme: theme, grid: &grid)
        }
        drawMetrics(preview, in: Rect(x: inner.x, y: inner.maxY - 2, width: inner.width, height: 2), grid: &grid)
    }

    private static func drawVideo(_ video: PreviewVideo, frame: Int, at x0: Int, _ y0: Int, width: Int, rows: Int, grid: inout CellGrid) {
        for cy in 0..<rows {
            for cx in 0..<width {
                let px = cx * video.width / width
                let upper = (2 * cy) * video.height / (2 * rows), lower = min((2 * cy + 1) * video.height / (2 * rows), video.height - 1)
                let a = video.rgb(frame: frame, x: px, y: upper), b = video.rgb(frame: frame, x: px, y: lower)
                grid[x0 + cx, y0 + cy] = Cell("▀", Style(foreground: .rgb(rgb(a)), background: .rgb(rgb(b))))
            }
        }
    }

    private static func drawDifference(_ q: PreviewVideo, _ r: PreviewVideo, frame: Int, at x0: Int, _ y0: Int, width: Int, rows: Int,
                                       theme: Theme, grid: inout CellGrid) {
        for cy in 0..<rows {
            for cx in 0..<width {
                let px = cx * r.width / width
                var total: Float = 0
                for py in [(2 * cy) * r.height / (2 * rows), min((2 * cy + 1) * r.height / (2 * rows), r.height - 1)] {
                    let a = q.rgb(frame: frame, x: px, y: py), b = r.rgb(frame: frame, x: px, y: py)
                    total += (abs(a.0 - b.0) + abs(a.1 - b.1) + abs(a.2 - b.2)) / 6
                }
                grid[x0 + cx, y0 + cy] = HeatMap.cell(Double(min(total * differenceGain, 1)), theme: theme)
            }
        }
    }

    private static func drawMetrics(_ preview: PreviewState, in rect: Rect, grid: inout CellGrid) {
        guard let m = preview.metrics else {
            grid.text(rect.x, rect.y, "metrics follow the quantized video", .role(.dim), maxWidth: rect.width)
            return
        }
        var x = rect.x
        let frames = preview.reference?.frames ?? 0
        let parts = ["frame \(min(preview.frame, max(frames - 1, 0)) + 1)/\(frames) " + (preview.playing ? "▶" : "‖"),
                     "PSNR \(NumberFormat.fixed(m.psnr, 1)) dB", "SSIM \(NumberFormat.fixed(m.ssim, 3))",
                     "flicker ×\(NumberFormat.fixed(m.flickerRatio, 2))"]
            + (preview.editToPreviewMilliseconds.map { ["edit → preview \(NumberFormat.fixed($0, 0)) ms"] } ?? [])
        for (i, part) in parts.enumerated() {
            if i > 0 { x += grid.text(x, rect.y, " · ", .role(.dim), maxWidth: rect.maxX - x) }
            x += grid.text(x, rect.y, part, .role(.text), maxWidth: rect.maxX - x)
        }
        x = rect.x + grid.text(rect.x, rect.y + 1, "step error ", .role(.dim), maxWidth: rect.width)
        let top = m.stepError.max() ?? 0
        let bars: [Character] = ["▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"]
        for (i, e) in m.stepError.prefix(max(rect.maxX - x - 16, 0)).enumerated() {
            let level = top > 0 ? min(Int(e / top * Double(bars.count - 1) + 0.5), bars.count - 1) : 0
            grid[x + i, rect.y + 1] = Cell(bars[level], .role(.accent))
        }
        x += min(m.stepError.count, max(rect.maxX - x - 16, 0))
        x += grid.text(x, rect.y + 1, " max \(String(format: "%.1e", top))", .role(.dim), maxWidth: rect.maxX - x)
        // The prompt-fidelity verdict of both videos: what the scene judge sees in each.
        for (name, video) in [("FP", preview.reference), ("Q", preview.quantized)] {
            guard let video, let f = video.fidelity else { continue }
            let j = video.judged
            let seen = [j.colour, j.shape, j.motion, j.background].map { $0 ?? "?" }.joined(separator: " ")
            x += grid.text(x, rect.y + 1, " · \(name) fidelity ", .role(.dim), maxWidth: rect.maxX - x)
            x += grid.text(x, rect.y + 1, NumberFormat.fixed(f.fidelity, 2), .role(f.fidelity >= 1 ? .good : .warn), maxWidth: rect.maxX - x)
            x += grid.text(x, rect.y + 1, " (\(seen))", .role(.dim), maxWidth: rect.maxX - x)
        }
    }

    private static func rgb(_ c: (Float, Float, Float)) -> RGB {
        RGB(UInt8((c.0 * 255).rounded()), UInt8((c.1 * 255).rounded()), UInt8((c.2 * 255).rounded()))
    }
}

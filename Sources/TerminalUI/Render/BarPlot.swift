/// Column bar plots drawn with block characters, one column per value, for per-channel ranges.
/// Pure functions of their inputs: testable without a terminal.
public enum BarPlot {
    /// Lower eighth blocks, index 1…8 = 1/8 … full.
    static let rising: [Character] = [" ", "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"]

    /// Bars rising from the bottom of `rect`; `values[i]` is drawn in column `rect.x + i`, its
    /// height `value / maxValue` of the rect in eighths of a cell.
    public static func drawRising(_ values: ArraySlice<Float>, maxValue: Float, in rect: Rect,
                                  grid: inout CellGrid, style: (Int) -> Style) {
        guard rect.height > 0, maxValue > 0 else { return }
        for (column, index) in values.indices.enumerated() where column < rect.width {
            let eighths = Int((max(values[index], 0) / maxValue * Float(rect.height * 8)).rounded())
            drawColumn(x: rect.x + column, bottom: rect.maxY - 1, eighths: min(eighths, rect.height * 8),
                       grid: &grid, style: style(index))
        }
    }

    private static func drawColumn(x: Int, bottom: Int, eighths: Int, grid: inout CellGrid, style: Style) {
        var remaining = eighths
        var y = bottom
        while remaining > 0 {
            grid.put(x, y, rising[min(remaining, 8)], style)
            remaining -= 8
            y -= 1
        }
    }

    /// Diverging bars about a zero axis: `maxs` rise above it, `mins` hang below, both scaled by
    /// `scale` (the largest magnitude). The axis is the boundary between the upper `rect.height / 2`
    /// rows and the rest; hanging bars have half-cell resolution (`▀`).
    public static func drawDiverging(mins: ArraySlice<Float>, maxs: ArraySlice<Float>, scale: Float, in rect: Rect,
                                     grid: inout CellGrid, upStyle: (Int) -> Style, downStyle: (Int) -> Style) {
        guard rect.height >= 2, scale > 0 else { return }
        let upRows = rect.height / 2
        let downRows = rect.height - upRows
        for (column, index) in maxs.indices.enumerated() where column < rect.width {
            let x = rect.x + column
            let up = Int((max(maxs[index], 0) / scale * Float(upRows * 8)).rounded())
            drawColumn(x: x, bottom: rect.y + upRows - 1, eighths: min(up, upRows * 8), grid: &grid, style: upStyle(index))
            var halves = min(Int((max(-mins[index], 0) / scale * Float(downRows * 2)).rounded()), downRows * 2)
            var y = rect.y + upRows
            while halves > 0 {
                grid.put(x, y, halves >= 2 ? "█" : "▀", downStyle(index))
                halves -= 2
                y += 1
            }
        }
    }

    /// Channel index labels under a plot: a tick label every `step` columns, starting at `first`.
    public static func drawChannelTicks(first: Int, count: Int, in rect: Rect, grid: inout CellGrid, style: Style) {
        guard rect.height > 0, count > 0 else { return }
        let step = rect.width >= 80 ? 16 : 8
        var column = (step - first % step) % step
        while column < min(count, rect.width) {
            let label = "\(first + column)"
            if column + label.count <= rect.width {
                grid.put(rect.x + column, rect.y, "╵", style)
                grid.text(rect.x + column + 1, rect.y, label, style, maxWidth: rect.width - column - 1)
            }
            column += step
        }
    }
}

/// Compact number formatting for narrow columns.
public enum NumberFormat {
    /// Fixed decimals without Foundation: `fixed(3.14159, 2)` → "3.14".
    public static func fixed(_ value: Double, _ decimals: Int) -> String {
        guard value.isFinite else { return value.isNaN ? "nan" : (value > 0 ? "inf" : "-inf") }
        var p = 1.0
        for _ in 0..<decimals { p *= 10 }
        let scaled = (abs(value) * p).rounded()
        let integer = Int(scaled / p)
        let fraction = Int(scaled - Double(integer) * p)
        var text = "\(integer)"
        if decimals > 0 {
            let f = "\(fraction)"
            text += "." + String(repeating: "0", count: decimals - f.count) + f
        }
        return (value < 0 && scaled > 0 ? "-" : "") + text
    }

    /// 4 significant digits in a short form: "0.0213", "12.50", "3.1e-05".
    public static func short(_ value: Float) -> String {
        let v = Double(value)
        let a = abs(v)
        if a == 0 { return "0" }
        if a >= 1000 || a < 0.001 { return scientific(v) }
        if a >= 100 { return fixed(v, 1) }
        if a >= 10 { return fixed(v, 2) }
        if a >= 1 { return fixed(v, 3) }
        return fixed(v, 4)
    }

    static func scientific(_ v: Double) -> String {
        var exponent = 0
        var m = abs(v)
        while m >= 10 { m /= 10; exponent += 1 }
        while m < 1 { m *= 10; exponent -= 1 }
        let e = abs(exponent) < 10 ? "0\(abs(exponent))" : "\(abs(exponent))"
        return (v < 0 ? "-" : "") + fixed(m, 1) + "e" + (exponent < 0 ? "-" : "+") + e
    }

    /// 1234567 → "1,234,567"
    public static func grouped(_ n: Int) -> String {
        let digits = String(n.magnitude)
        var out = ""
        for (i, ch) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(ch)
        }
        return (n < 0 ? "-" : "") + out
    }

    /// Parameter counts: "12.5K", "1.21B".
    public static func count(_ n: Int) -> String {
        let v = Double(n)
        if v >= 1e9 { return fixed(v / 1e9, 2) + "B" }
        if v >= 1e6 { return fixed(v / 1e6, 2) + "M" }
        if v >= 1e4 { return fixed(v / 1e3, 1) + "K" }
        return "\(n)"
    }

    /// Bytes in binary units: "670.2 KiB".
    public static func bytes(_ n: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(n)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 { value /= 1024; unit += 1 }
        return unit == 0 ? "\(n) B" : fixed(value, 1) + " " + units[unit]
    }
}

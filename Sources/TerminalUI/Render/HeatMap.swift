import Foundation

/// Matrices as coloured cells: each value a cell whose glyph density and colour both rise with it,
/// so the picture survives 256 colours, 16, none (density only) and `--ascii` (the backend maps
/// `░▒▓█` to `.:=#`). Pure functions of their inputs: testable without a terminal.
public enum HeatMap {
    /// Glyphs from low to high.
    /// Density glyphs, lowest first; the lowest is a dot operator (not the middle dot of separators)
    /// so that `--ascii` draws it as a blank and the ramp stays ordered: ` . : = #`.
    static let ramp: [Character] = ["⋅", "░", "▒", "▓", "█"]

    /// A scale from values to [0, 1]: logarithmic between `low` and `high` (both > 0), so outliers
    /// an order of magnitude apart stay distinguishable.
    public struct LogScale: Sendable, Equatable {
        public let low: Float, high: Float

        public init(low: Float, high: Float) {
            self.low = max(low, .leastNormalMagnitude)
            self.high = max(high, self.low * 1.0001)
        }

        /// The positive finite values' range; nil when there are none.
        public init?(_ values: some Sequence<Float>) {
            var lo = Float.infinity, hi: Float = 0
            for v in values where v > 0 && v.isFinite { lo = min(lo, v); hi = max(hi, v) }
            guard hi > 0 else { return nil }
            self.init(low: lo, high: hi)
        }

        public func position(_ value: Float) -> Double {
            guard value > 0, value.isFinite else { return 0 }
            return max(0, min(1, Double(log(value / low) / log(high / low))))
        }
    }

    /// The cell for a position `t` ∈ [0, 1].
    public static func cell(_ t: Double, theme: Theme) -> Cell {
        let index = min(Int(t * Double(ramp.count - 1) + 0.5), ramp.count - 1)
        return Cell(ramp[max(index, 0)], Style(foreground: .rgb(theme.heatColor(t))))
    }

    /// Draws `value(row, column)` for `rows × columns` cells at `rect`'s top-left (clipped to it).
    public static func draw(rows: Int, columns: Int, in rect: Rect, grid: inout CellGrid, theme: Theme,
                            position: (_ row: Int, _ column: Int) -> Double?) {
        for r in 0..<min(rows, rect.height) {
            for c in 0..<min(columns, rect.width) {
                guard let t = position(r, c) else { continue }
                grid[rect.x + c, rect.y + r] = cell(t, theme: theme)
            }
        }
    }

    /// A legend: `low` label, the ramp in colour, `high` label; returns the columns used.
    @discardableResult
    public static func drawLegend(low: String, high: String, at x: Int, _ y: Int, maxWidth: Int, grid: inout CellGrid, theme: Theme) -> Int {
        var used = grid.text(x, y, low + " ", .role(.dim), maxWidth: maxWidth)
        for i in 0..<8 where used < maxWidth {
            grid[x + used, y] = cell(Double(i) / 7, theme: theme)
            used += 1
        }
        used += grid.text(x + used, y, " " + high, .role(.dim), maxWidth: maxWidth - used)
        return used
    }

    /// A one-row sparkline of `values` (eighth blocks), scaled to `maximum`.
    public static func sparkline(_ values: [Float], maximum: Float) -> String {
        String(values.map { v -> Character in
            guard maximum > 0, v > 0 else { return " " }
            return BarPlot.rising[max(1, min(8, Int((v / maximum * 8).rounded())))]
        })
    }
}

import Tensors

/// An in-memory screen: `width × height` cells that views draw into. The backend diffs it against
/// the previous frame and writes only the changes; tests read it back as text.
public struct CellGrid: Equatable, Sendable {
    public let width: Int
    public let height: Int
    public private(set) var cells: [Cell]

    public init(width: Int, height: Int, fill: Cell = Cell()) {
        self.width = max(width, 0)
        self.height = max(height, 0)
        cells = [Cell](repeating: fill, count: self.width * self.height)
    }

    public var bounds: Rect { Rect(x: 0, y: 0, width: width, height: height) }

    public subscript(x: Int, y: Int) -> Cell {
        get { cells[y * width + x] }
        set {
            guard x >= 0, y >= 0, x < width, y < height else { return }
            cells[y * width + x] = newValue
        }
    }

    public mutating func put(_ x: Int, _ y: Int, _ character: Character, _ style: Style) {
        guard x >= 0, y >= 0, x < width, y < height else { return }
        // A control character from a file (a tensor name, a path) must never reach the terminal.
        let safe: Character = character.unicodeScalars.contains(where: TerminalText.isControl) ? "?" : character
        cells[y * width + x] = Cell(safe, style)
    }

    /// Writes `text` from (x, y), clipped to `maxWidth` columns (and the grid); a text cut short
    /// ends in `…`. Returns the number of columns written.
    @discardableResult
    public mutating func text(_ x: Int, _ y: Int, _ text: String, _ style: Style, maxWidth: Int? = nil) -> Int {
        let limit = min(maxWidth ?? (width - x), width - x)
        guard limit > 0, y >= 0, y < height else { return 0 }
        let characters = Array(text.unicodeScalars.contains(where: TerminalText.isControl) ? TerminalText.escaped(text) : text)
        let clipped = characters.count > limit
        var column = 0
        for (i, ch) in characters.enumerated() {
            if column >= limit { break }
            let glyph: Character = clipped && column == limit - 1 ? "…" : ch
            put(x + column, y, glyph, style)
            column += 1
            if clipped && column == limit { break }
            _ = i
        }
        return column
    }

    /// Writes text right-aligned so it ends at column `maxX` (exclusive).
    public mutating func textRight(_ maxX: Int, _ y: Int, _ text: String, _ style: Style) {
        let count = text.count
        self.text(maxX - count, y, text, style)
    }

    public mutating func fill(_ rect: Rect, _ character: Character = " ", _ style: Style = .plain) {
        for y in max(rect.y, 0)..<min(rect.maxY, height) {
            for x in max(rect.x, 0)..<min(rect.maxX, width) { cells[y * width + x] = Cell(character, style) }
        }
    }

    /// A rounded box with an optional title in the top border.
    public mutating func box(_ rect: Rect, title: String? = nil, style: Style, titleStyle: Style? = nil) {
        guard rect.width >= 2, rect.height >= 2 else { return }
        let (l, r, t, b) = (rect.x, rect.maxX - 1, rect.y, rect.maxY - 1)
        for x in (l + 1)..<r {
            put(x, t, "─", style)
            put(x, b, "─", style)
        }
        for y in (t + 1)..<b {
            put(l, y, "│", style)
            put(r, y, "│", style)
        }
        put(l, t, "╭", style)
        put(r, t, "╮", style)
        put(l, b, "╰", style)
        put(r, b, "╯", style)
        if let title, rect.width > 6 {
            text(l + 2, t, " \(title) ", titleStyle ?? style, maxWidth: rect.width - 4)
        }
    }

    /// The characters as lines of text, trailing spaces removed (for snapshot tests).
    public func textLines() -> [String] {
        (0..<height).map { y in
            var line = String((0..<width).map { cells[y * width + $0].character })
            while line.last == " " { line.removeLast() }
            return line
        }
    }

    public var text: String { textLines().joined(separator: "\n") }
}

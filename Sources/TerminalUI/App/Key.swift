/// A decoded input event.
public enum Key: Hashable, Sendable {
    case character(Character)
    case up, down, left, right, pageUp, pageDown, home, end
    case enter, escape, tab, backTab, backspace
    case resize
    /// F1…F12.
    case function(Int)
    /// Text the terminal delivered as one bracketed paste (never run as keys).
    case paste(String)
    /// A mouse event at a cell; `button` 1 = left click, 4/5 = wheel up/down.
    case mouse(x: Int, y: Int, button: Int)

    /// How the key is written in hints and help.
    public var label: String {
        switch self {
        case .character(" "): return "Space"
        case .character(let c):
            // Control keys arrive as their code: C-r is U+0012.
            if let v = c.unicodeScalars.first?.value, c.unicodeScalars.count == 1, v >= 1, v <= 26 {
                return "C-" + String(UnicodeScalar(UInt8(v + 96)))
            }
            return String(c)
        case .up: return "↑"
        case .down: return "↓"
        case .left: return "←"
        case .right: return "→"
        case .pageUp: return "PgUp"
        case .pageDown: return "PgDn"
        case .home: return "Home"
        case .end: return "End"
        case .enter: return "Enter"
        case .escape: return "Esc"
        case .tab: return "Tab"
        case .backTab: return "S-Tab"
        case .backspace: return "Bksp"
        case .resize: return "resize"
        case .function(let n): return "F\(n)"
        case .paste: return "paste"
        case .mouse: return "mouse"
        }
    }
}

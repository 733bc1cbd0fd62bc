import CNCursesW
#if canImport(Glibc)
import Glibc
#endif

/// The only code that talks to ncurses: starts and restores the terminal, draws cell grids
/// (writing only the cells that changed since the last frame), and decodes input.
public final class Terminal {
    public private(set) var colorMode: ColorMode
    public let ascii: Bool
    /// Whether 24-bit colour is available (a `*-direct` terminfo entry loaded).
    public let hasDirectColor: Bool
    /// Why the requested colour mode was not honoured, if it was not.
    public private(set) var notice: String?

    private var screen: OpaquePointer?
    private var previous: CellGrid?
    private var pairs: [UInt64: Int32] = [:]
    private var lastTheme: Theme?

    public init(colorMode requested: ColorMode, ascii: Bool, environment: [String: String]) throws {
        self.ascii = ascii
        setlocale(LC_ALL, "")
        TerminalRestore.saveTerminalModes()
        var mode = requested
        var direct = false
        if requested == .truecolor {
            let term = environment["TERM"] ?? "xterm"
            let directName = term.hasPrefix("tmux") || term.hasPrefix("screen") ? "tmux-direct" : "xterm-direct"
            screen = newterm(directName, stsq_stdout(), stsq_stdin())
            if screen != nil {
                direct = true
            } else {
                notice = "24-bit colour needs the '\(directName)' terminfo entry (Debian ncurses-term); using 256 colours"
                mode = .palette256
            }
        }
        if screen == nil { screen = newterm(nil, stsq_stdout(), stsq_stdin()) }
        guard let screen else { throw TerminalError("cannot start the terminal (TERM=\(environment["TERM"] ?? "unset"))") }
        set_term(screen)
        terminalIsActive = true
        hasDirectColor = direct
        cbreak()
        noecho()
        keypad(stsq_stdscr(), true)
        curs_set(0)
        set_escdelay(25)
        wtimeout(stsq_stdscr(), 50)
        mouseinterval(0)
        mousemask(stsq_mouse_mask(), nil)
        // Pasted text arrives between ESC[200~ and ESC[201~, read as one `.paste`, not as keys.
        define_key("\u{1b}[200~", Terminal.pasteStart)
        define_key("\u{1b}[201~", Terminal.pasteEnd)
        Terminal.setBracketedPaste(true)
        if has_colors() {
            start_color()
            use_default_colors()
        }
        let available = Palette.modes(colors: has_colors() ? Int(stsq_colors()) : 0, direct: direct)
        if !has_colors() && mode != .none {
            notice = "this terminal has no colours"
            mode = .none
        } else if !available.contains(mode) {
            let fallback = available.first { $0 != .truecolor } ?? .none
            if requested != .palette256 {
                notice = "this terminal (TERM=\(environment["TERM"] ?? "unset")) has \(stsq_colors()) colours; using \(fallback.rawValue)"
            }
            mode = fallback
        }
        colorMode = mode
        TerminalRestore.install()
    }

    /// Restores the terminal (leaves the alternate screen, shows the cursor).
    public func shutdown() {
        guard terminalIsActive else { return }
        terminalIsActive = false
        Terminal.setBracketedPaste(false)
        endwin()
        if let screen { delscreen(screen) }
        screen = nil
        TerminalRestore.uninstall()
    }

    deinit { shutdown() }

    public var size: (width: Int, height: Int) { (Int(getmaxx(stsq_stdscr())), Int(getmaxy(stsq_stdscr()))) }

    /// The modes the `c` key cycles through on this terminal.
    public var availableColorModes: [ColorMode] {
        Palette.modes(colors: has_colors() ? Int(stsq_colors()) : 0, direct: hasDirectColor)
    }

    public func setColorMode(_ mode: ColorMode) {
        colorMode = mode
        invalidate()
    }

    /// Forces the next `draw` to repaint every cell (after a resize or a colour change).
    public func invalidate() {
        previous = nil
        clearok(stsq_stdscr(), true)
    }

    // MARK: - Drawing

    public func draw(_ grid: CellGrid, theme: Theme) {
        if lastTheme != theme { lastTheme = theme; invalidate() }
        let full = previous == nil || previous!.width != grid.width || previous!.height != grid.height
        if full { werase(stsq_stdscr()) }
        var cchar = cchar_t()
        for y in 0..<grid.height {
            for x in 0..<grid.width {
                let cell = grid[x, y]
                if !full, previous![x, y] == cell { continue }
                var (attributes, pair) = resolve(cell.style, theme: theme)
                let glyph = Self.pixelGlyph(cell, plain: ascii || colorMode == .none) ?? (ascii ? Self.asciiFallback(cell.character) : cell.character)
                var wide: [wchar_t] = [wchar_t(bitPattern: glyph.unicodeScalars.first.map { $0.value } ?? 32), 0]
                setcchar(&cchar, &wide, attributes, 0, &pair)
                mvwadd_wch(stsq_stdscr(), Int32(y), Int32(x), &cchar)
            }
        }
        previous = grid
        wnoutrefresh(stsq_stdscr())
        doupdate()
    }

    private func resolve(_ style: Style, theme: Theme) -> (attr_t, Int32) {
        var attributes = stsq_a_normal()
        if style.bold { attributes |= stsq_a_bold() }
        if style.underline { attributes |= stsq_a_underline() }
        if style.reverse { attributes |= stsq_a_reverse() }
        if colorMode == .none {
            // Without colour, selection and bars show as reverse video.
            if case .role(let role) = style.background, role == .selection || role == .header { attributes |= stsq_a_reverse() }
            if case .role(let role) = style.foreground, [.bad, .warn, .borderFocus, .titleFocus].contains(role) {
                attributes |= stsq_a_bold()
            }
            return (attributes, 0)
        }
        var fg = colorNumber(style.foreground, theme: theme, fallback: .text)
        var bg = colorNumber(style.background, theme: theme, fallback: .background)
        if colorMode == .ansi8 || colorMode == .ansi16 {
            var highlighted = false
            if case .role(let role) = style.background { highlighted = role == .selection || role == .header }
            let plain = colorNumber(.role(.background), theme: theme, fallback: .background)
            if highlighted && bg == plain {
                // The highlight's shade is lost in this palette: reverse video keeps the row visible.
                attributes |= stsq_a_reverse()
                (fg, bg) = (-1, -1)
            } else if fg == bg && fg >= 0 {
                fg = -1
            }
        }
        let key = UInt64(UInt32(bitPattern: fg)) << 32 | UInt64(UInt32(bitPattern: bg))
        if let pair = pairs[key] { return (attributes, pair) }
        let pair = alloc_pair(fg, bg)
        // alloc_pair recycles the oldest pair when the table is full; forget our cache then.
        if pairs.count >= Int(stsq_color_pairs()) - 1 { pairs.removeAll() }
        pairs[key] = max(pair, 0)
        return (attributes, max(pair, 0))
    }

    private func colorNumber(_ color: Color, theme: Theme, fallback: ThemeRole) -> Int32 {
        let rgb: RGB
        switch color {
        case .terminalDefault: return -1
        case .role(let role): rgb = theme.color(role)
        case .rgb(let value): rgb = value
        }
        switch colorMode {
        case .truecolor:
            // xterm-direct maps values below 8 to the ANSI colours; nudge near-black up.
            let packed = Int32(rgb.r) << 16 | Int32(rgb.g) << 8 | Int32(rgb.b)
            return hasDirectColor ? max(packed, 8) : Int32(Palette.index256(rgb))
        case .palette256:
            return hasDirectColor ? Self.paletteRGB256(Palette.index256(rgb)) : Int32(Palette.index256(rgb))
        case .ansi16:
            let index = Palette.index16(rgb)
            return hasDirectColor ? Self.packed(Palette.ansi[index]) : Int32(index)
        case .ansi8:
            let index = Palette.index8(rgb)
            return hasDirectColor ? Self.packed(Palette.ansi[index]) : Int32(index)
        case .none:
            return -1
        }
    }

    private static func packed(_ c: RGB) -> Int32 { max(Int32(c.r) << 16 | Int32(c.g) << 8 | Int32(c.b), 8) }

    /// On a direct-colour terminal, the 256-colour mode is emulated by drawing palette RGB values.
    private static func paletteRGB256(_ index: Int) -> Int32 {
        if index >= 232 { let v = UInt8(8 + 10 * (index - 232)); return packed(RGB(v, v, v)) }
        let i = index - 16
        let levels = Palette.cubeLevels
        return packed(RGB(UInt8(levels[i / 36]), UInt8(levels[(i / 6) % 6]), UInt8(levels[i % 6])))
    }

    /// A half-block pixel pair (`▀`, two exact colours) where the pixels cannot be coloured: a
    /// character of the luminance ramp of the pair's mean (BT.601 weights); nil for other cells.
    static func pixelGlyph(_ cell: Cell, plain: Bool) -> Character? {
        guard plain, cell.character == "▀", case .rgb(let a) = cell.style.foreground, case .rgb(let b) = cell.style.background else { return nil }
        func luma(_ c: RGB) -> Double { (0.299 * Double(c.r) + 0.587 * Double(c.g) + 0.114 * Double(c.b)) / 255 }
        let ramp = Array(" .:-=+*#%@")
        return ramp[min(Int((luma(a) + luma(b)) / 2 * Double(ramp.count - 1) + 0.5), ramp.count - 1)]
    }

    /// `--ascii`: every glyph the views use, in plain ASCII.
    static func asciiFallback(_ ch: Character) -> Character {
        switch ch {
        case "─", "┄", "–", "—", "↔": return "-"
        case "│", "▏", "▎", "▍": return "|"
        case "┊", "┆": return ":"
        case "╭", "╮", "╰", "╯", "├", "┤", "┬", "┴", "┼": return "+"
        case "▁", "▂", "▃": return "."
        case "▄", "▅", "▆": return ":"
        case "▇", "█", "▀", "▌", "▋", "▊", "▉": return "#"
        case "░": return "."
        case "▒": return ":"
        case "▓": return "="
        case "▸", "›", "→", "▶": return ">"
        case "‖": return "|"
        case "▾", "↓", "▼": return "v"
        case "←": return "<"
        case "↑", "▲": return "^"
        case "●": return "o"
        case "÷": return "/"
        case "≤": return "<"
        case "Δ": return "d"
        case "α": return "a"
        case "±": return "+"
        case "∈": return "e"
        case "…": return "~"
        case "╵": return "'"
        case "·", "•": return "*"
        case "⋅": return " "
        case "−": return "-"
        case "×": return "x"
        case "⚑": return "!"
        case "✗": return "X"
        default: return ch.isASCII ? ch : "?"
        }
    }

    // MARK: - Input

    static let pasteStart = KEY_MAX + 1
    static let pasteEnd = KEY_MAX + 2
    /// The most text one paste keeps (the rest is read and dropped).
    static let pasteLimit = 1 << 16

    static func setBracketedPaste(_ on: Bool) {
        fputs(on ? "\u{1b}[?2004h" : "\u{1b}[?2004l", stsq_stdout())
        fflush(stsq_stdout())
    }

    /// The next input event, or nil when none arrived within `timeoutMilliseconds` (0: only
    /// what is already buffered).
    public func readKey(timeoutMilliseconds: Int32 = 50) -> Key? {
        if timeoutMilliseconds != 50 { wtimeout(stsq_stdscr(), timeoutMilliseconds) }
        defer { if timeoutMilliseconds != 50 { wtimeout(stsq_stdscr(), 50) } }
        var ch: wint_t = 0
        let result = wget_wch(stsq_stdscr(), &ch)
        if result == ERR { return nil }
        if result == KEY_CODE_YES {
            switch Int32(ch) {
            case Terminal.pasteStart: return .paste(readPaste())
            case Terminal.pasteEnd: return nil
            case KEY_F0 + 1...KEY_F0 + 12: return .function(Int(Int32(ch) - KEY_F0))
            case KEY_UP: return .up
            case KEY_DOWN: return .down
            case KEY_LEFT: return .left
            case KEY_RIGHT: return .right
            case KEY_NPAGE: return .pageDown
            case KEY_PPAGE: return .pageUp
            case KEY_HOME: return .home
            case KEY_END: return .end
            case KEY_ENTER: return .enter
            case KEY_BTAB: return .backTab
            case KEY_BACKSPACE: return .backspace
            case KEY_RESIZE:
                invalidate()
                return .resize
            case KEY_MOUSE:
                var event = MEVENT()
                guard getmouse(&event) == OK else { return nil }
                let button: Int
                if event.bstate & stsq_button1() != 0 { button = 1 }
                else if event.bstate & stsq_button4() != 0 { button = 4 }
                else if event.bstate & stsq_button5() != 0 { button = 5 }
                else { return nil }
                return .mouse(x: Int(event.x), y: Int(event.y), button: button)
            default: return nil
            }
        }
        switch ch {
        case 9: return .tab
        case 10, 13: return .enter
        case 27: return .escape
        case 8, 127: return .backspace
        default:
            guard let scalar = Unicode.Scalar(UInt32(ch)) else { return nil }
            return .character(Character(scalar))
        }
    }
}

extension Terminal {
    /// The text up to the end of a bracketed paste (or 500 ms without input).
    private func readPaste() -> String {
        wtimeout(stsq_stdscr(), 500)
        defer { wtimeout(stsq_stdscr(), 50) }
        var text = String.UnicodeScalarView()
        var count = 0
        while true {
            var ch: wint_t = 0
            let result = wget_wch(stsq_stdscr(), &ch)
            if result == ERR || (result == KEY_CODE_YES && Int32(ch) == Terminal.pasteEnd) { break }
            guard result != KEY_CODE_YES, count < Terminal.pasteLimit else { continue }
            count += 1
            if let scalar = Unicode.Scalar(UInt32(ch == 13 ? 10 : ch)) { text.append(scalar) }
        }
        return String(text)
    }
}

public struct TerminalError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// How colours reach the terminal.
public enum ColorMode: String, CaseIterable, Sendable {
    /// 24-bit RGB through a `*-direct` terminfo entry.
    case truecolor
    /// The xterm 256-colour palette (default where the terminal has it).
    case palette256 = "256"
    /// The 16 ANSI colours.
    case ansi16 = "16"
    /// The 8 basic ANSI colours (`TERM=xterm`, the Linux console).
    case ansi8 = "8"
    /// No colour at all: selection and focus show as reverse video and bold.
    case none

    /// The mode to start in: an explicit request wins, then `NO_COLOR`, then `COLORTERM`.
    public static func preferred(requested: ColorMode?, environment: [String: String]) -> ColorMode {
        if let requested { return requested }
        if let noColor = environment["NO_COLOR"], !noColor.isEmpty { return .none }
        let colorterm = environment["COLORTERM"]?.lowercased() ?? ""
        if colorterm == "truecolor" || colorterm == "24bit" { return .truecolor }
        return .palette256
    }
}

/// Maps RGB to palette indices (pure; tested).
public enum Palette {
    /// The 16 ANSI colours as xterm draws them.
    static let ansi: [RGB] = [
        RGB(0, 0, 0), RGB(205, 0, 0), RGB(0, 205, 0), RGB(205, 205, 0), RGB(0, 0, 238), RGB(205, 0, 205),
        RGB(0, 205, 205), RGB(229, 229, 229), RGB(127, 127, 127), RGB(255, 0, 0), RGB(0, 255, 0),
        RGB(255, 255, 0), RGB(92, 92, 255), RGB(255, 0, 255), RGB(0, 255, 255), RGB(255, 255, 255),
    ]
    static let cubeLevels: [Int] = [0, 95, 135, 175, 215, 255]

    static func distance(_ a: RGB, _ b: RGB) -> Int {
        let dr = Int(a.r) - Int(b.r), dg = Int(a.g) - Int(b.g), db = Int(a.b) - Int(b.b)
        return 2 * dr * dr + 4 * dg * dg + 3 * db * db
    }

    /// Nearest of the 240 cube and grey entries of the xterm palette (16…255).
    public static func index256(_ c: RGB) -> Int {
        func level(_ v: UInt8) -> Int {
            var best = 0
            for i in 1..<6 where abs(cubeLevels[i] - Int(v)) < abs(cubeLevels[best] - Int(v)) { best = i }
            return best
        }
        let (r, g, b) = (level(c.r), level(c.g), level(c.b))
        let cube = RGB(UInt8(cubeLevels[r]), UInt8(cubeLevels[g]), UInt8(cubeLevels[b]))
        let cubeIndex = 16 + 36 * r + 6 * g + b
        let average = (Int(c.r) + Int(c.g) + Int(c.b)) / 3
        let greyStep = max(0, min(23, (average - 3) / 10))
        let greyValue = UInt8(8 + 10 * greyStep)
        let grey = RGB(greyValue, greyValue, greyValue)
        return distance(c, grey) < distance(c, cube) ? 232 + greyStep : cubeIndex
    }

    /// Nearest of the 16 ANSI colours.
    public static func index16(_ c: RGB) -> Int {
        var best = 0
        for i in 1..<16 where distance(c, ansi[i]) < distance(c, ansi[best]) { best = i }
        return best
    }

    /// Nearest of the 8 basic ANSI colours.
    public static func index8(_ c: RGB) -> Int {
        var best = 0
        for i in 1..<8 where distance(c, ansi[i]) < distance(c, ansi[best]) { best = i }
        return best
    }

    /// The modes a terminal with `colors` palette entries (terminfo `colors`) can show, best first.
    public static func modes(colors: Int, direct: Bool) -> [ColorMode] {
        (direct ? [.truecolor, .palette256, .ansi16] : [])
            + (direct ? [] : (colors >= 256 ? [.palette256] : []) + (colors >= 16 ? [.ansi16] : []))
            + (colors >= 8 ? [.ansi8] : []) + [.none]
    }

}

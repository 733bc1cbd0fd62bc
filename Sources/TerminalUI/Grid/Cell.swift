/// 24-bit colour.
public struct RGB: Hashable, Sendable {
    public var r: UInt8, g: UInt8, b: UInt8
    public init(_ r: UInt8, _ g: UInt8, _ b: UInt8) {
        self.r = r
        self.g = g
        self.b = b
    }

    /// Parses `#rrggbb`.
    public init?(hex: String) {
        // Exactly six hex digits: UInt32(_:radix:) alone would take a sign ("#+12345").
        guard hex.count == 7, hex.first == "#", hex.dropFirst().allSatisfy(\.isHexDigit),
              let v = UInt32(hex.dropFirst(), radix: 16) else { return nil }
        self.init(UInt8(v >> 16), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF))
    }

    public var hex: String {
        func h(_ v: UInt8) -> String { let s = String(v, radix: 16); return s.count == 1 ? "0" + s : s }
        return "#" + h(r) + h(g) + h(b)
    }

    /// Linear blend: `t = 0` gives self, `t = 1` gives `other`.
    public func mixed(with other: RGB, _ t: Double) -> RGB {
        func m(_ a: UInt8, _ b: UInt8) -> UInt8 { UInt8(max(0, min(255, (Double(a) + (Double(b) - Double(a)) * t).rounded()))) }
        return RGB(m(r, other.r), m(g, other.g), m(b, other.b))
    }
}

/// A colour as views ask for it: a named theme role, an exact colour (images, heat maps), or the
/// terminal's default.
public enum Color: Hashable, Sendable {
    case terminalDefault
    case role(ThemeRole)
    case rgb(RGB)
}

/// How one cell is drawn.
public struct Style: Hashable, Sendable {
    public var foreground: Color
    public var background: Color
    public var bold: Bool
    public var underline: Bool
    /// Swap foreground and background; also how selection shows without colour.
    public var reverse: Bool

    public init(foreground: Color = .role(.text), background: Color = .role(.background), bold: Bool = false,
                underline: Bool = false, reverse: Bool = false) {
        self.foreground = foreground
        self.background = background
        self.bold = bold
        self.underline = underline
        self.reverse = reverse
    }

    public static let plain = Style()

    public static func role(_ role: ThemeRole, bold: Bool = false) -> Style {
        Style(foreground: .role(role), bold: bold)
    }

    public func on(_ background: Color) -> Style {
        var s = self
        s.background = background
        return s
    }
}

/// One terminal cell: a single-column character and its style.
public struct Cell: Hashable, Sendable {
    public var character: Character
    public var style: Style

    public init(_ character: Character = " ", _ style: Style = .plain) {
        self.character = character
        self.style = style
    }
}

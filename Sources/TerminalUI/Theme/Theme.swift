/// Every colour the UI uses has a name; themes assign them.
public enum ThemeRole: String, CaseIterable, Sendable, Hashable {
    case background, text, dim, accent
    case border, borderFocus = "border_focus", title, titleFocus = "title_focus"
    case selection, selectionText = "selection_text"
    case header, headerText = "header_text"
    case hintKey = "hint_key", hintText = "hint_text"
    case good, warn, bad
    case barPositive = "bar_positive", barNegative = "bar_negative", axis
}

/// A named assignment of colours to roles plus a heat-map gradient (low → high).
public struct Theme: Equatable, Sendable {
    public var name: String
    public var colors: [ThemeRole: RGB]
    /// Gradient stops for heat maps and ranked bars, at least two.
    public var heat: [RGB]

    public func color(_ role: ThemeRole) -> RGB {
        colors[role] ?? Theme.dark.colors[role]!
    }

    /// The colour at `t` ∈ [0, 1] along the heat gradient.
    public func heatColor(_ t: Double) -> RGB {
        let stops = heat.count >= 2 ? heat : Theme.dark.heat
        let x = max(0, min(1, t.isFinite ? t : 0)) * Double(stops.count - 1)
        let i = min(Int(x), stops.count - 2)
        return stops[i].mixed(with: stops[i + 1], x - Double(i))
    }

    /// The built-in default; also the fallback for any role a theme file leaves out.
    public static let dark = Theme(name: "dark", colors: [
        .background: RGB(0x16, 0x18, 0x1d), .text: RGB(0xd8, 0xdc, 0xe3), .dim: RGB(0x7a, 0x82, 0x8e),
        .accent: RGB(0x5f, 0xb3, 0xf5), .border: RGB(0x44, 0x4b, 0x57), .borderFocus: RGB(0x5f, 0xb3, 0xf5),
        .title: RGB(0xa8, 0xb0, 0xbc), .titleFocus: RGB(0xff, 0xff, 0xff),
        .selection: RGB(0x2e, 0x4a, 0x6b), .selectionText: RGB(0xff, 0xff, 0xff),
        .header: RGB(0x24, 0x2a, 0x33), .headerText: RGB(0xe6, 0xea, 0xf0),
        .hintKey: RGB(0xf5, 0xc2, 0x5f), .hintText: RGB(0x9a, 0xa3, 0xaf),
        .good: RGB(0x7c, 0xcf, 0x7a), .warn: RGB(0xf5, 0xc2, 0x5f), .bad: RGB(0xf2, 0x6d, 0x6d),
        .barPositive: RGB(0x5f, 0xb3, 0xf5), .barNegative: RGB(0xc3, 0x8b, 0xf0), .axis: RGB(0x55, 0x5d, 0x69),
    ], heat: [RGB(0x1d, 0x2b, 0x53), RGB(0x2e, 0x7d, 0x9a), RGB(0x7c, 0xcf, 0x7a), RGB(0xf5, 0xc2, 0x5f), RGB(0xf2, 0x4d, 0x4d)])
}

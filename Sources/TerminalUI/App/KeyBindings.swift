import Workbench

/// What a key does beyond the workbench's own actions (UI settings live in the UI).
public enum Command: Sendable {
    case action(Action)
    case cycleTheme
    case cycleColorMode
}

/// Where a binding works.
public enum BindingScope: Sendable, Equatable {
    case global
    case pane(Pane)

    var title: String {
        switch self {
        case .global: return "Global"
        case .pane(let pane): return pane.title
        }
    }
}

/// One entry of the keymap: the keys, a short hint label, a description for `?`, and the command.
public struct KeyBinding: Sendable {
    public let keys: [Key]
    public let hint: String
    public let description: String
    public let scope: BindingScope
    public let command: Command
    /// Shown in the hint bar (the rest only in `?`).
    public let inHintBar: Bool

    public var keyLabel: String { keys.map(\.label).joined(separator: "/") }
}

/// The whole keymap, in help order. Pane bindings shadow global ones for the focused pane.
public enum KeyBindings {
    public static let all: [KeyBinding] = [
        // Model tree
        KeyBinding(keys: [.character("j"), .down], hint: "move", description: "next row", scope: .pane(.tree), command: .action(.moveCursor(1)), inHintBar: true),
        KeyBinding(keys: [.character("k"), .up], hint: "", description: "previous row", scope: .pane(.tree), command: .action(.moveCursor(-1)), inHintBar: false),
        KeyBinding(keys: [.character("l"), .right, .enter], hint: "open", description: "expand a block, or show the layer's weight ranges", scope: .pane(.tree), command: .action(.expandOrEnter), inHintBar: true),
        KeyBinding(keys: [.character("h"), .left], hint: "close", description: "collapse, or go to the parent block", scope: .pane(.tree), command: .action(.collapseOrParent), inHintBar: true),
        KeyBinding(keys: [.character(" ")], hint: "", description: "expand or collapse", scope: .pane(.tree), command: .action(.toggleExpanded), inHintBar: false),
        KeyBinding(keys: [.character("g"), .home], hint: "", description: "first row", scope: .pane(.tree), command: .action(.moveToFirst), inHintBar: false),
        KeyBinding(keys: [.character("G"), .end], hint: "", description: "last row", scope: .pane(.tree), command: .action(.moveToLast), inHintBar: false),
        KeyBinding(keys: [.pageDown], hint: "", description: "page down", scope: .pane(.tree), command: .action(.page(1)), inHintBar: false),
        KeyBinding(keys: [.pageUp], hint: "", description: "page up", scope: .pane(.tree), command: .action(.page(-1)), inHintBar: false),
        // Weight ranges
        KeyBinding(keys: [.character("l"), .right], hint: "scroll", description: "scroll channels right", scope: .pane(.ranges), command: .action(.scrollChannels(1)), inHintBar: true),
        KeyBinding(keys: [.character("h"), .left], hint: "", description: "scroll channels left", scope: .pane(.ranges), command: .action(.scrollChannels(-1)), inHintBar: false),
        KeyBinding(keys: [.character("]"), .pageDown], hint: "page", description: "next page of channels", scope: .pane(.ranges), command: .action(.scrollChannelsPage(1)), inHintBar: true),
        KeyBinding(keys: [.character("["), .pageUp], hint: "", description: "previous page of channels", scope: .pane(.ranges), command: .action(.scrollChannelsPage(-1)), inHintBar: false),
        KeyBinding(keys: [.character("0"), .home], hint: "", description: "first channel", scope: .pane(.ranges), command: .action(.scrollChannelsToStart), inHintBar: false),
        KeyBinding(keys: [.character("$"), .end], hint: "", description: "last channel", scope: .pane(.ranges), command: .action(.scrollChannelsToEnd), inHintBar: false),
        KeyBinding(keys: [.character("j"), .down], hint: "layer", description: "next layer (without leaving the plot)", scope: .pane(.ranges), command: .action(.moveCursor(1)), inHintBar: true),
        KeyBinding(keys: [.character("k"), .up], hint: "", description: "previous layer", scope: .pane(.ranges), command: .action(.moveCursor(-1)), inHintBar: false),
        // Outliers
        KeyBinding(keys: [.character("j"), .down], hint: "scroll", description: "scroll the ranked channels", scope: .pane(.outliers), command: .action(.scrollOutliers(1)), inHintBar: true),
        KeyBinding(keys: [.character("k"), .up], hint: "", description: "scroll back", scope: .pane(.outliers), command: .action(.scrollOutliers(-1)), inHintBar: false),
        KeyBinding(keys: [.character("n")], hint: "layer", description: "next layer", scope: .pane(.outliers), command: .action(.moveCursor(1)), inHintBar: true),
        KeyBinding(keys: [.character("p")], hint: "", description: "previous layer", scope: .pane(.outliers), command: .action(.moveCursor(-1)), inHintBar: false),
        // Global
        KeyBinding(keys: [.tab], hint: "pane", description: "focus the next pane", scope: .global, command: .action(.focusNext), inHintBar: true),
        KeyBinding(keys: [.backTab], hint: "", description: "focus the previous pane", scope: .global, command: .action(.focusPrevious), inHintBar: false),
        KeyBinding(keys: [.character("1")], hint: "", description: "focus the model tree", scope: .global, command: .action(.focus(.tree)), inHintBar: false),
        KeyBinding(keys: [.character("2")], hint: "", description: "focus the weight ranges", scope: .global, command: .action(.focus(.ranges)), inHintBar: false),
        KeyBinding(keys: [.character("3")], hint: "", description: "focus the outlier list", scope: .global, command: .action(.focus(.outliers)), inHintBar: false),
        KeyBinding(keys: [.character("z")], hint: "zoom", description: "zoom the focused pane to the whole screen (again: back)", scope: .global, command: .action(.toggleZoom), inHintBar: true),
        KeyBinding(keys: [.character("t")], hint: "theme", description: "next colour theme", scope: .global, command: .cycleTheme, inHintBar: true),
        KeyBinding(keys: [.character("c")], hint: "", description: "next colour mode (truecolor, 256, 16, none)", scope: .global, command: .cycleColorMode, inHintBar: false),
        KeyBinding(keys: [.character("?")], hint: "help", description: "this help; / filters it", scope: .global, command: .action(.showHelp), inHintBar: true),
        KeyBinding(keys: [.escape], hint: "", description: "close help, clear the message", scope: .global, command: .action(.clearMessage), inHintBar: false),
        KeyBinding(keys: [.character("q")], hint: "quit", description: "quit", scope: .global, command: .action(.quit), inHintBar: true),
    ]

    /// The command for `key` with `focus` focused: the pane's binding first, then the global one.
    public static func command(for key: Key, focus: Pane) -> Command? {
        if let b = all.first(where: { $0.scope == .pane(focus) && $0.keys.contains(key) }) { return b.command }
        return all.first(where: { $0.scope == .global && $0.keys.contains(key) })?.command
    }

    /// Hint-bar entries for the focused pane, then the global ones.
    public static func hints(focus: Pane) -> [KeyBinding] {
        all.filter { $0.inHintBar && $0.scope == .pane(focus) } + all.filter { $0.inHintBar && $0.scope == .global }
    }

    /// Help rows (scope title, keys, description) matching `filter` (case-insensitive).
    public static func helpRows(filter: String) -> [KeyBinding] {
        let needle = filter.lowercased()
        guard !needle.isEmpty else { return all }
        return all.filter {
            $0.description.lowercased().contains(needle) || $0.keyLabel.lowercased().contains(needle)
                || $0.scope.title.lowercased().contains(needle)
        }
    }
}

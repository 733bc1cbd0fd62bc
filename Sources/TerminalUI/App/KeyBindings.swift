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
    case screen(Screen)
    case pane(Pane)

    var title: String {
        switch self {
        case .global: return "Global"
        case .screen(let screen): return screen.title + " screen"
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
        KeyBinding(keys: [.character("l"), .right, .enter], hint: "open", description: "expand a block, or show the layer's plots", scope: .pane(.tree), command: .action(.expandOrEnter), inHintBar: true),
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
        KeyBinding(keys: [.character("i")], hint: "plot", description: "scroll the other plot (output ↔ input channels)", scope: .pane(.ranges), command: .action(.selectRangesPlot(nil)), inHintBar: true),
        KeyBinding(keys: [.character("j"), .down], hint: "layer", description: "next layer (without leaving the plot)", scope: .pane(.ranges), command: .action(.moveLayer(1)), inHintBar: true),
        KeyBinding(keys: [.character("k"), .up], hint: "", description: "previous layer", scope: .pane(.ranges), command: .action(.moveLayer(-1)), inHintBar: false),
        // Outliers
        KeyBinding(keys: [.character("j"), .down], hint: "scroll", description: "scroll the ranked channels", scope: .pane(.outliers), command: .action(.scrollOutliers(1)), inHintBar: true),
        KeyBinding(keys: [.character("k"), .up], hint: "", description: "scroll back", scope: .pane(.outliers), command: .action(.scrollOutliers(-1)), inHintBar: false),
        KeyBinding(keys: [.character("J")], hint: "layer", description: "next layer", scope: .pane(.outliers), command: .action(.moveLayer(1)), inHintBar: true),
        KeyBinding(keys: [.character("K")], hint: "", description: "previous layer", scope: .pane(.outliers), command: .action(.moveLayer(-1)), inHintBar: false),
        // Activation histogram
        KeyBinding(keys: [.character("l"), .right], hint: "step", description: "next sampler step", scope: .pane(.histogram), command: .action(.moveStep(1)), inHintBar: true),
        KeyBinding(keys: [.character("h"), .left], hint: "", description: "previous sampler step", scope: .pane(.histogram), command: .action(.moveStep(-1)), inHintBar: false),
        KeyBinding(keys: [.character("j"), .down], hint: "layer", description: "next layer", scope: .pane(.histogram), command: .action(.moveLayer(1)), inHintBar: true),
        KeyBinding(keys: [.character("k"), .up], hint: "", description: "previous layer", scope: .pane(.histogram), command: .action(.moveLayer(-1)), inHintBar: false),
        // Channels × steps
        KeyBinding(keys: [.character("l"), .right], hint: "channel", description: "next input channel", scope: .pane(.heatmap), command: .action(.moveHeatChannel(1)), inHintBar: true),
        KeyBinding(keys: [.character("h"), .left], hint: "", description: "previous input channel", scope: .pane(.heatmap), command: .action(.moveHeatChannel(-1)), inHintBar: false),
        KeyBinding(keys: [.character("]"), .pageDown], hint: "", description: "channels a page on", scope: .pane(.heatmap), command: .action(.moveHeatChannel(16)), inHintBar: false),
        KeyBinding(keys: [.character("["), .pageUp], hint: "", description: "channels a page back", scope: .pane(.heatmap), command: .action(.moveHeatChannel(-16)), inHintBar: false),
        KeyBinding(keys: [.character("0"), .home], hint: "", description: "first channel", scope: .pane(.heatmap), command: .action(.moveHeatChannel(-1_000_000)), inHintBar: false),
        KeyBinding(keys: [.character("$"), .end], hint: "", description: "last channel", scope: .pane(.heatmap), command: .action(.moveHeatChannel(1_000_000)), inHintBar: false),
        KeyBinding(keys: [.character("j"), .down], hint: "step", description: "next sampler step", scope: .pane(.heatmap), command: .action(.moveStep(1)), inHintBar: true),
        KeyBinding(keys: [.character("k"), .up], hint: "", description: "previous sampler step", scope: .pane(.heatmap), command: .action(.moveStep(-1)), inHintBar: false),
        // Layer × step SQNR
        KeyBinding(keys: [.character("j"), .down], hint: "move", description: "next layer", scope: .pane(.quality), command: .action(.moveQualityCursor(layers: 1, steps: 0)), inHintBar: true),
        KeyBinding(keys: [.character("k"), .up], hint: "", description: "previous layer", scope: .pane(.quality), command: .action(.moveQualityCursor(layers: -1, steps: 0)), inHintBar: false),
        KeyBinding(keys: [.character("l"), .right], hint: "", description: "next step", scope: .pane(.quality), command: .action(.moveQualityCursor(layers: 0, steps: 1)), inHintBar: false),
        KeyBinding(keys: [.character("h"), .left], hint: "", description: "previous step", scope: .pane(.quality), command: .action(.moveQualityCursor(layers: 0, steps: -1)), inHintBar: false),
        KeyBinding(keys: [.enter], hint: "open", description: "show that layer at that step", scope: .pane(.quality), command: .action(.openQualityCell), inHintBar: true),
        // Activations screen
        KeyBinding(keys: [.character(".")], hint: "", description: "next sampler step", scope: .screen(.activations), command: .action(.moveStep(1)), inHintBar: false),
        KeyBinding(keys: [.character(",")], hint: "", description: "previous sampler step", scope: .screen(.activations), command: .action(.moveStep(-1)), inHintBar: false),
        KeyBinding(keys: [.character("<")], hint: "", description: "first step (noisiest)", scope: .screen(.activations), command: .action(.firstStep), inHintBar: false),
        KeyBinding(keys: [.character(">")], hint: "", description: "last step", scope: .screen(.activations), command: .action(.lastStep), inHintBar: false),
        KeyBinding(keys: [.character("A")], hint: "all", description: "all steps merged (again: back to one step)", scope: .screen(.activations), command: .action(.toggleAllSteps), inHintBar: true),
        KeyBinding(keys: [.character("s")], hint: "", description: "compare one global scale for all steps", scope: .screen(.activations), command: .action(.toggleGlobalScale), inHintBar: false),
        KeyBinding(keys: [.character("C")], hint: "", description: "calibrate now (FP sampling over the calibration prompts; cached)", scope: .screen(.activations), command: .action(.requestCalibration), inHintBar: false),
        KeyBinding(keys: [.character("x")], hint: "", description: "cancel a running calibration (nothing is saved)", scope: .screen(.activations), command: .action(.cancelCalibration), inHintBar: false),
        // Plan: the layers of the block (per-layer overrides in the plan's `layers`)
        KeyBinding(keys: [.character("j"), .down], hint: "layer", description: "next layer of the block", scope: .pane(.blockLayers), command: .action(.moveBlockLayer(1)), inHintBar: true),
        KeyBinding(keys: [.character("k"), .up], hint: "", description: "previous layer of the block", scope: .pane(.blockLayers), command: .action(.moveBlockLayer(-1)), inHintBar: false),
        KeyBinding(keys: [.character("+"), .right], hint: "α+", description: "raise the layer's own α by 0.05 (the only α of fc2 and cross_attn.q_linear)", scope: .pane(.blockLayers), command: .action(.overrideLayer(.alpha(0.05))), inHintBar: true),
        KeyBinding(keys: [.character("-"), .left], hint: "α-", description: "lower the layer's own α by 0.05", scope: .pane(.blockLayers), command: .action(.overrideLayer(.alpha(-0.05))), inHintBar: true),
        KeyBinding(keys: [.character("b")], hint: "bits", description: "the layer's weight bits 8 → 6 → 4", scope: .pane(.blockLayers), command: .action(.overrideLayer(.cycleWeightBits)), inHintBar: true),
        KeyBinding(keys: [.character("f")], hint: "float", description: "keep the layer in float (or quantize it again)", scope: .pane(.blockLayers), command: .action(.overrideLayer(.toggleKeepFloat)), inHintBar: true),
        KeyBinding(keys: [.character("g")], hint: "", description: "the layer's weights per channel ↔ per tensor", scope: .pane(.blockLayers), command: .action(.overrideLayer(.toggleWeightGranularity)), inHintBar: false),
        KeyBinding(keys: [.character("y")], hint: "", description: "the layer's weights symmetric ↔ asymmetric", scope: .pane(.blockLayers), command: .action(.overrideLayer(.toggleWeightSymmetry)), inHintBar: false),
        KeyBinding(keys: [.character("o")], hint: "", description: "the layer's activations int8 → uint8 → dynamic → dynamic_uint8", scope: .pane(.blockLayers), command: .action(.overrideLayer(.cycleActivations)), inHintBar: false),
        KeyBinding(keys: [.character("E")], hint: "", description: "the layer's range estimator minmax → percentile → mse", scope: .pane(.blockLayers), command: .action(.overrideLayer(.cycleEstimator)), inHintBar: false),
        KeyBinding(keys: [.character("S")], hint: "", description: "channel shift on/off (attn.qkv, mlp.fc1): centre each input channel per step, folded into the modulation rows", scope: .pane(.blockLayers), command: .action(.overrideLayer(.toggleShift)), inHintBar: false),
        KeyBinding(keys: [.character("r")], hint: "", description: "the layer's weight rounding nearest ↔ GPTQ (from the calibration rows)", scope: .pane(.blockLayers), command: .action(.overrideLayer(.toggleWeightRounding)), inHintBar: false),
        KeyBinding(keys: [.character("X")], hint: "", description: "clear the layer's overrides (block and default settings apply)", scope: .pane(.blockLayers), command: .action(.overrideLayer(.clear)), inHintBar: false),
        // Plan: step groups
        KeyBinding(keys: [.character("l"), .right], hint: "step", description: "next sampler step", scope: .pane(.stepGroups), command: .action(.moveStep(1)), inHintBar: true),
        KeyBinding(keys: [.character("h"), .left], hint: "", description: "previous sampler step", scope: .pane(.stepGroups), command: .action(.moveStep(-1)), inHintBar: false),
        KeyBinding(keys: [.home], hint: "", description: "first step (noisiest)", scope: .pane(.stepGroups), command: .action(.firstStep), inHintBar: false),
        KeyBinding(keys: [.end], hint: "", description: "last step", scope: .pane(.stepGroups), command: .action(.lastStep), inHintBar: false),
        KeyBinding(keys: [.character("s")], hint: "split", description: "split the step group at the selected step (the step starts a new group)", scope: .pane(.stepGroups), command: .action(.splitStepGroup), inHintBar: true),
        KeyBinding(keys: [.character("x"), .backspace], hint: "merge", description: "merge the selected step's group into the group before it", scope: .pane(.stepGroups), command: .action(.mergeStepGroup), inHintBar: true),
        KeyBinding(keys: [.character("+")], hint: "α+", description: "raise the block's α of the selected step's group by 0.05 (time-step-wise smoothing)", scope: .pane(.stepGroups), command: .action(.adjustGroupAlpha(0.05)), inHintBar: true),
        KeyBinding(keys: [.character("-")], hint: "α-", description: "lower the block's α of that group by 0.05", scope: .pane(.stepGroups), command: .action(.adjustGroupAlpha(-0.05)), inHintBar: true),
        KeyBinding(keys: [.character("]")], hint: "", description: "raise the group's α by 0.25", scope: .pane(.stepGroups), command: .action(.adjustGroupAlpha(0.25)), inHintBar: false),
        KeyBinding(keys: [.character("[")], hint: "", description: "lower the group's α by 0.25", scope: .pane(.stepGroups), command: .action(.adjustGroupAlpha(-0.25)), inHintBar: false),
        // Plan (tuning)
        KeyBinding(keys: [.character("j"), .down], hint: "block", description: "next block", scope: .screen(.tuning), command: .action(.moveBlock(1)), inHintBar: true),
        KeyBinding(keys: [.character("k"), .up], hint: "", description: "previous block", scope: .screen(.tuning), command: .action(.moveBlock(-1)), inHintBar: false),
        KeyBinding(keys: [.pageDown], hint: "", description: "8 blocks down", scope: .screen(.tuning), command: .action(.moveBlock(8)), inHintBar: false),
        KeyBinding(keys: [.pageUp], hint: "", description: "8 blocks up", scope: .screen(.tuning), command: .action(.moveBlock(-8)), inHintBar: false),
        KeyBinding(keys: [.character("+"), .right], hint: "α+", description: "raise the block's α by 0.05 (requantizes)", scope: .screen(.tuning), command: .action(.adjustAlpha(0.05)), inHintBar: true),
        KeyBinding(keys: [.character("-"), .left], hint: "α-", description: "lower the block's α by 0.05", scope: .screen(.tuning), command: .action(.adjustAlpha(-0.05)), inHintBar: true),
        KeyBinding(keys: [.character("]")], hint: "", description: "raise the block's α by 0.25", scope: .screen(.tuning), command: .action(.adjustAlpha(0.25)), inHintBar: false),
        KeyBinding(keys: [.character("[")], hint: "", description: "lower the block's α by 0.25", scope: .screen(.tuning), command: .action(.adjustAlpha(-0.25)), inHintBar: false),
        KeyBinding(keys: [.character("="), .enter], hint: "", description: "type the block's α (0…1)", scope: .screen(.tuning), command: .action(.beginAlphaEntry), inHintBar: false),
        KeyBinding(keys: [.character("A")], hint: "auto α", description: "search the block's α (0…1, step 0.05; local error of its layers) and apply the best; on the step groups pane, the selected group's α alone", scope: .screen(.tuning), command: .action(.autoAlpha), inHintBar: true),
        KeyBinding(keys: [.character("m")], hint: "", description: "aggregated ↔ time-step-wise smoothing for the block", scope: .screen(.tuning), command: .action(.toggleSmoothing), inHintBar: false),
        KeyBinding(keys: [.character(">")], hint: "", description: "one more step group (equal lengths; time-step-wise smoothing and group scales follow)", scope: .screen(.tuning), command: .action(.changeStepGroups(1)), inHintBar: false),
        KeyBinding(keys: [.character("<")], hint: "", description: "one fewer step group", scope: .screen(.tuning), command: .action(.changeStepGroups(-1)), inHintBar: false),
        KeyBinding(keys: [.character("u")], hint: "undo", description: "undo the last plan edit", scope: .screen(.tuning), command: .action(.undo), inHintBar: true),
        KeyBinding(keys: [.character("U"), .character("\u{12}")], hint: "", description: "redo", scope: .screen(.tuning), command: .action(.redo), inHintBar: false),
        KeyBinding(keys: [.character(" ")], hint: "", description: "play / pause the preview", scope: .screen(.tuning), command: .action(.togglePreviewPlay), inHintBar: false),
        KeyBinding(keys: [.character("P")], hint: "", description: "preview the next prompt (sample-prompts/eval.txt)", scope: .screen(.tuning), command: .action(.nextPreviewPrompt(1)), inHintBar: false),
        KeyBinding(keys: [.character("i")], hint: "", description: "type a prompt of your own for the preview (Enter samples both videos)", scope: .screen(.tuning), command: .action(.beginPromptEntry), inHintBar: false),
        KeyBinding(keys: [.character(".")], hint: "", description: "preview: next frame (pauses)", scope: .screen(.tuning), command: .action(.stepPreviewFrame(1)), inHintBar: false),
        KeyBinding(keys: [.character(",")], hint: "", description: "preview: previous frame (pauses)", scope: .screen(.tuning), command: .action(.stepPreviewFrame(-1)), inHintBar: false),
        KeyBinding(keys: [.character("e")], hint: "export", description: "export plan.json and quantized.safetensors", scope: .screen(.tuning), command: .action(.beginExport), inHintBar: true),
        // Global
        KeyBinding(keys: [.character("p")], hint: "", description: "the plan screen: α per block, requantize, export", scope: .global, command: .action(.showScreen(.tuning)), inHintBar: false),
        KeyBinding(keys: [.character("w")], hint: "", description: "the weights screen", scope: .global, command: .action(.showScreen(.weights)), inHintBar: false),
        KeyBinding(keys: [.character("a")], hint: "", description: "the activations screen (by sampler step)", scope: .global, command: .action(.showScreen(.activations)), inHintBar: false),
        KeyBinding(keys: [.character("/")], hint: "find", description: "find a layer by name (terms in any order; Enter keeps, Esc returns)", scope: .global, command: .action(.beginSearch), inHintBar: true),
        KeyBinding(keys: [.character("n")], hint: "", description: "next layer matching the last search", scope: .global, command: .action(.repeatSearch(1)), inHintBar: false),
        KeyBinding(keys: [.character("N")], hint: "", description: "previous layer matching the last search", scope: .global, command: .action(.repeatSearch(-1)), inHintBar: false),
        KeyBinding(keys: [.tab], hint: "pane", description: "focus the next pane", scope: .global, command: .action(.focusNext), inHintBar: true),
        KeyBinding(keys: [.backTab], hint: "", description: "focus the previous pane", scope: .global, command: .action(.focusPrevious), inHintBar: false),
        KeyBinding(keys: [.character("1")], hint: "", description: "focus the model tree", scope: .global, command: .action(.focusNumber(1)), inHintBar: false),
        KeyBinding(keys: [.character("2")], hint: "", description: "focus the second pane (weight ranges, histogram)", scope: .global, command: .action(.focusNumber(2)), inHintBar: false),
        KeyBinding(keys: [.character("3")], hint: "", description: "focus the third pane (outliers, channels × steps, preview)", scope: .global, command: .action(.focusNumber(3)), inHintBar: false),
        KeyBinding(keys: [.character("4")], hint: "", description: "focus the layer × step SQNR map, or the plan's step groups", scope: .global, command: .action(.focusNumber(4)), inHintBar: false),
        KeyBinding(keys: [.character("z")], hint: "zoom", description: "zoom the focused pane to the whole screen (again: back)", scope: .global, command: .action(.toggleZoom), inHintBar: true),
        KeyBinding(keys: [.character("t")], hint: "theme", description: "next colour theme", scope: .global, command: .cycleTheme, inHintBar: true),
        KeyBinding(keys: [.character("c")], hint: "", description: "next colour mode (truecolor, 256, 16, none)", scope: .global, command: .cycleColorMode, inHintBar: false),
        KeyBinding(keys: [.character("?")], hint: "help", description: "this help; / filters it", scope: .global, command: .action(.showHelp), inHintBar: true),
        KeyBinding(keys: [.function(1)], hint: "", description: "help (as ?)", scope: .global, command: .action(.showHelp), inHintBar: false),
        KeyBinding(keys: [.function(10)], hint: "", description: "quit (as q)", scope: .global, command: .action(.quit), inHintBar: false),
        KeyBinding(keys: [.escape], hint: "", description: "close help, clear the message", scope: .global, command: .action(.clearMessage), inHintBar: false),
        KeyBinding(keys: [.character("q")], hint: "quit", description: "quit", scope: .global, command: .action(.quit), inHintBar: true),
    ]

    /// The command for `key` with `focus` focused on `screen`: the pane's binding first, then the
    /// screen's, then the global one.
    public static func command(for key: Key, focus: Pane, screen: Screen = .weights) -> Command? {
        for scope in [BindingScope.pane(focus), .screen(screen), .global] {
            if let b = all.first(where: { $0.scope == scope && $0.keys.contains(key) }) { return b.command }
        }
        return nil
    }

    /// Hint-bar entries for the focused pane, the screen, then the global ones.
    public static func hints(focus: Pane, screen: Screen = .weights) -> [KeyBinding] {
        // A binding whose keys an earlier scope already takes is not what those keys do here.
        var taken = Set<Key>()
        var result: [KeyBinding] = []
        for scope in [BindingScope.pane(focus), .screen(screen), .global] {
            let bindings = all.filter { $0.scope == scope }
            result += bindings.filter { $0.inHintBar && !$0.keys.allSatisfy(taken.contains) }
            for b in bindings { taken.formUnion(b.keys) }
        }
        return result
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

import Workbench

/// The top line: program, the screen tabs, checkpoint and totals, and on the activations screen
/// the selected step.
enum HeaderView {
    static func draw(_ state: WorkbenchState, in rect: Rect, grid: inout CellGrid) {
        let style = Style(foreground: .role(.headerText), background: .role(.header))
        grid.fill(rect, " ", style)
        var x = rect.x
        x += grid.text(x, rect.y, " stsq-tui ", Style(foreground: .role(.headerText), background: .role(.header), bold: true))
        for (screen, tab) in tabs(state, from: x) {
            let selected = screen == state.screen
            grid.text(tab.x, rect.y, label(screen), Style(foreground: .role(selected ? .accent : .dim), background: .role(.header), bold: selected))
            x = tab.maxX + 1
        }
        let catalog = state.catalog
        var parts = [state.checkpointName, catalog.architecture.rawValue]
        if state.screen == .tuning, let t = state.tuning {
            // The plan first: at 80 columns the checkpoint name is what gets cut.
            var plan = ["plan \(t.name)" + (t.isModified ? " [+]" : "")]
            switch t.requantize {
            case .pending: plan.append("requantizing…")
            case .done(let ms): plan.append("requantized in \(NumberFormat.fixed(ms, 0)) ms")
            case .failed: plan.append("requantize failed")
            }
            parts = plan + parts
        } else if state.screen == .activations, let data = state.activations {
            switch state.step {
            case .step(let s): parts.append("step \(s)/\(data.steps - 1) t \(NumberFormat.fixed(Double(data.timesteps[s]), 1))")
            case .all: parts.append("all \(data.steps) steps")
            }
            parts.append("calibration \(data.calibrationDigest.prefix(8)) · \(data.samples) samples")
        } else {
            parts += ["\(NumberFormat.grouped(catalog.totalParameters)) params", NumberFormat.bytes(catalog.totalBytes),
                      "\(catalog.blocks.count) blocks · \(catalog.quantizableLinears.count) quantizable linears"]
        }
        for part in parts where x < rect.maxX {
            x += grid.text(x, rect.y, "│ ", Style(foreground: .role(.dim), background: .role(.header)), maxWidth: rect.maxX - x)
            x += grid.text(x, rect.y, part + " ", style, maxWidth: rect.maxX - x)
        }
    }

    private static func label(_ screen: Screen) -> String {
        switch screen {
        case .weights: return "w Weights"
        case .activations: return "a Activations"
        case .tuning: return "p Plan"
        }
    }

    private static func tabs(_ state: WorkbenchState, from x: Int) -> [(Screen, Rect)] {
        var position = x
        return Screen.allCases.map { screen in
            defer { position += label(screen).count + 1 }
            return (screen, Rect(x: position, y: 0, width: label(screen).count, height: 1))
        }
    }

    /// The screen whose tab is at column `x` (mouse clicks).
    static func screenTab(at x: Int, _ state: WorkbenchState, in rect: Rect) -> Screen? {
        tabs(state, from: rect.x + " stsq-tui ".count).first { $0.1.contains(x: x, y: 0) }?.0
    }
}

import Tensors
import Workbench
#if canImport(Glibc)
import Glibc
#endif

/// Options of the interactive workbench.
public struct TerminalOptions: Sendable {
    public var theme: String
    public var colorMode: ColorMode?
    public var ascii: Bool

    public init(theme: String = "dark", colorMode: ColorMode? = nil, ascii: Bool = false) {
        self.theme = theme
        self.colorMode = colorMode
        self.ascii = ascii
    }
}

/// The interactive loop: input → action → state → cells → screen. ncurses is only touched on
/// this thread; background jobs post their results, drained between input timeouts.
public final class TerminalApp {
    private let workbench: Workbench
    private let terminal: Terminal
    private var theme: Theme
    private var themeNames: [String]
    /// Width, height, screen, zoomed pane and lower activation pane at the last layout.
    private var lastViewport: (Int, Int, Screen, Pane?, Pane) = (0, 0, .weights, nil, .heatmap)

    public init(workbench: Workbench, options: TerminalOptions, environment: [String: String]) throws {
        self.workbench = workbench
        let (theme, themeError) = ThemeLibrary.loadOrDefault(options.theme)
        self.theme = theme
        themeNames = ThemeLibrary.availableNames()
        if !themeNames.contains(theme.name) { themeNames.append(theme.name) }
        let mode = ColorMode.preferred(requested: options.colorMode, environment: environment)
        terminal = try Terminal(colorMode: mode, ascii: options.ascii, environment: environment)
        if let themeError {
            workbench.dispatch(.showMessage(StatusMessage("\(themeError) — using the default theme", severity: .error)))
        } else if let notice = terminal.notice {
            workbench.dispatch(.showMessage(StatusMessage(notice)))
        }
    }

    /// Runs until the user quits; the terminal is restored on return.
    public func run() {
        defer { terminal.shutdown() }
        var dirty = true
        var immediateTimeouts = 0
        var lastTick = monotonicSeconds()
        while !workbench.state.shouldQuit {
            let (width, height) = terminal.size
            let state = workbench.state
            if (width, height, state.screen, state.zoomed, state.lowerPane) != lastViewport {
                lastViewport = (width, height, state.screen, state.zoomed, state.lowerPane)
                let viewport = WorkbenchScreen.viewport(state, width: width, height: height)
                workbench.dispatch(.viewport(treeRows: viewport.treeRows, channelColumns: viewport.channelColumns,
                                             heatColumns: viewport.heatColumns, outlierRows: viewport.outlierRows))
                dirty = true
            }
            if dirty {
                let grid = WorkbenchScreen.render(workbench.state, theme: theme, width: width, height: height,
                                                  busy: workbench.hasRunningJobs)
                terminal.draw(grid, theme: theme)
                dirty = false
            }
            let asked = monotonicSeconds()
            if let key = terminal.readKey() {
                handle(key, width: width, height: height)
                // Keys that arrived together (a held key, a paste the terminal did not bracket)
                // are handled before the next frame is drawn.
                var burst = 0
                while burst < 256, !workbench.state.shouldQuit, let more = terminal.readKey(timeoutMilliseconds: 0) {
                    handle(more, width: width, height: height)
                    burst += 1
                }
                dirty = true
                immediateTimeouts = 0
            } else if monotonicSeconds() - asked < 0.005 {
                // "No key" without waiting out the input timeout: the terminal's input is gone
                // (closed pty, EOF). Stop instead of spinning a core.
                immediateTimeouts += 1
                if immediateTimeouts >= 200 { break }
            } else {
                immediateTimeouts = 0
            }
            if workbench.drainCompletedJobs() { dirty = true }
            // The preview's animation clock: 8 frames a second while it plays on screen.
            if workbench.state.screen == .tuning, workbench.state.preview?.playing == true, monotonicSeconds() - lastTick >= 0.125 {
                lastTick = monotonicSeconds()
                workbench.dispatch(.tickPreview)
                dirty = true
            }
        }
    }

    private func handle(_ key: Key, width: Int, height: Int) {
        if key == .resize { return }
        if case .paste(let text) = key {
            handlePaste(text)
            return
        }
        if workbench.state.help != nil {
            handleHelp(key, width: width, height: height)
            return
        }
        if let search = workbench.state.search {
            handleSearch(key, search)
            return
        }
        if let dialog = workbench.state.tuning?.export {
            handleExport(key, dialog)
            return
        }
        if let entry = workbench.state.tuning?.alphaEntry {
            handleAlphaEntry(key, entry)
            return
        }
        if let entry = workbench.state.preview?.promptEntry {
            handlePromptEntry(key, entry)
            return
        }
        if case .mouse(let x, let y, let button) = key {
            handleMouse(x: x, y: y, button: button, width: width, height: height)
            return
        }
        if !ScreenLayout.fits(width: width, height: height) {
            if key == .character("q") { workbench.dispatch(.quit) }
            return
        }
        guard let command = KeyBindings.command(for: key, focus: workbench.state.focus, screen: workbench.state.screen) else {
            if case .character(let c) = key {
                workbench.dispatch(.showMessage(StatusMessage("'\(c)' does nothing here — ? lists the keys")))
            }
            return
        }
        run(command)
    }

    private func run(_ command: Command) {
        switch command {
        case .action(let action):
            if case .showHelp = action { workbench.dispatch(.clearMessage) }
            workbench.dispatch(action)
        case .cycleTheme:
            let i = themeNames.firstIndex(of: theme.name) ?? -1
            let name = themeNames[(i + 1) % themeNames.count]
            let (next, error) = ThemeLibrary.loadOrDefault(name)
            theme = next
            workbench.dispatch(.showMessage(error.map { StatusMessage("\($0) — using the default theme", severity: .error) }
                                            ?? StatusMessage("theme: \(name)")))
        case .cycleColorMode:
            let modes = terminal.availableColorModes
            let i = modes.firstIndex(of: terminal.colorMode) ?? -1
            let next = modes[(i + 1) % modes.count]
            terminal.setColorMode(next)
            workbench.dispatch(.showMessage(StatusMessage("colour mode: \(next.rawValue)")))
        }
    }

    /// Pasted text goes to the text field being edited (its first line); elsewhere it is dropped,
    /// never run as keys.
    private func handlePaste(_ text: String) {
        let line = String(text.split(separator: "\n", omittingEmptySubsequences: true).first ?? "")
            .filter { !$0.isNewline && $0 != "\t" && !($0.asciiValue.map { $0 < 32 } ?? false) }
        if let help = workbench.state.help, help.isEditingFilter {
            workbench.dispatch(.setHelpFilter(help.filter + line))
        } else if let search = workbench.state.search {
            workbench.dispatch(.setSearch(search.query + line))
        } else if let dialog = workbench.state.tuning?.export, !dialog.isWriting {
            workbench.dispatch(.setExportDirectory(dialog.directory + line))
        } else if let entry = workbench.state.tuning?.alphaEntry {
            workbench.dispatch(.setAlphaEntry(entry + line))
        } else if let entry = workbench.state.preview?.promptEntry {
            workbench.dispatch(.setPromptEntry(entry + line))
        } else {
            workbench.dispatch(.showMessage(StatusMessage("ignored \(text.count) pasted characters — paste into / (find a layer)")))
        }
    }

    private func handleExport(_ key: Key, _ dialog: ExportDialog) {
        switch key {
        case .tab, .backTab: workbench.dispatch(.toggleExportField)
        case .character(" ") where dialog.isOnModelOption: workbench.dispatch(.toggleExportModel)
        case .function(10): workbench.dispatch(.quit)
        case .enter, .escape: workbench.dispatch(.endExport(accept: key == .enter))
        default:
            if !dialog.isOnModelOption { editLine(key, dialog.directory, set: Action.setExportDirectory, end: Action.endExport) }
        }
    }

    private func handlePromptEntry(_ key: Key, _ entry: String) {
        if key == .function(10) { return workbench.dispatch(.quit) }
        editLine(key, entry, set: Action.setPromptEntry, end: Action.endPromptEntry)
    }

    private func handleAlphaEntry(_ key: Key, _ entry: String) {
        editLine(key, entry, set: Action.setAlphaEntry, end: Action.endAlphaEntry)
    }

    /// One line being typed: Enter accepts, Esc cancels, Backspace deletes, a printable character
    /// appends (what the line accepts beyond that is the reducer's to decide).
    private func editLine(_ key: Key, _ text: String, set: (String) -> Action, end: (Bool) -> Action) {
        switch key {
        case .enter: workbench.dispatch(end(true))
        case .escape: workbench.dispatch(end(false))
        case .backspace: workbench.dispatch(set(String(text.dropLast())))
        case .character(let c) where !(c.asciiValue.map { $0 < 32 } ?? false): workbench.dispatch(set(text + String(c)))
        default: break
        }
    }

    private func handleSearch(_ key: Key, _ search: LayerSearch) {
        switch key {
        case .enter: workbench.dispatch(.endSearch(accept: true))
        case .escape: workbench.dispatch(.endSearch(accept: false))
        case .backspace: workbench.dispatch(.setSearch(String(search.query.dropLast())))
        case .character(let c): workbench.dispatch(.setSearch(search.query + String(c)))
        default: break
        }
    }

    private func handleHelp(_ key: Key, width: Int, height: Int) {
        guard let help = workbench.state.help else { return }
        if help.isEditingFilter {
            switch key {
            case .enter: workbench.dispatch(.endHelpFilter)
            case .escape:
                workbench.dispatch(.setHelpFilter(""))
                workbench.dispatch(.endHelpFilter)
            case .backspace: workbench.dispatch(.setHelpFilter(String(help.filter.dropLast())))
            case .character(let c): workbench.dispatch(.setHelpFilter(help.filter + String(c)))
            default: break
            }
            return
        }
        let last = HelpOverlay.maxScroll(filter: help.filter, in: Rect(x: 0, y: 0, width: width, height: height))
        let scrollTo = { [workbench] (line: Int) in workbench.dispatch(.scrollHelp(max(0, min(line, last)) - help.scroll)) }
        switch key {
        case .escape, .character("q"), .character("?"), .function(1): workbench.dispatch(.hideHelp)
        case .function(10): workbench.dispatch(.quit)
        case .character("/"): workbench.dispatch(.beginHelpFilter)
        case .character("j"), .down: scrollTo(help.scroll + 1)
        case .character("k"), .up: scrollTo(help.scroll - 1)
        case .pageDown, .character(" "): scrollTo(help.scroll + 10)
        case .pageUp: scrollTo(help.scroll - 10)
        case .character("g"), .home: scrollTo(0)
        case .character("G"), .end: scrollTo(last)
        default: break
        }
    }

    private func handleMouse(x: Int, y: Int, button: Int, width: Int, height: Int) {
        guard ScreenLayout.fits(width: width, height: height) else { return }
        let state = workbench.state
        let layout = WorkbenchScreen.layout(state, width: width, height: height)
        if layout.hints.contains(x: x, y: y), button == 1 {
            if let (_, key) = FooterViews.hintRegions(focus: state.focus, screen: state.screen, in: layout.hints).first(where: { $0.0.contains(x: x, y: y) }),
               let command = KeyBindings.command(for: key, focus: state.focus, screen: state.screen) {
                run(command)
            }
            return
        }
        if layout.header.contains(x: x, y: y), button == 1, let screen = HeaderView.screenTab(at: x, state, in: layout.header) {
            workbench.dispatch(.showScreen(screen))
            return
        }
        for (pane, rect) in layout.panes where rect.contains(x: x, y: y) {
            if button == 1 {
                workbench.dispatch(.focus(pane))
                if pane == .ranges { workbench.dispatch(.selectRangesPlot(y < rect.y + rect.height / 2 ? .outputs : .inputs)) }
                if pane == .stepGroups, let steps = state.tuning?.plan.steps, let step = StepGroupsView.step(atColumn: x, in: rect, steps: steps) {
                    if case .step(let current) = state.step {
                        workbench.dispatch(.moveStep(step - current))
                    } else {
                        workbench.dispatch(.firstStep)
                        workbench.dispatch(.moveStep(step))
                    }
                }
                if pane == .tree {
                    let row = state.treeScroll + (y - rect.y - 1)
                    if y > rect.y, row < state.rows.count {
                        if row == state.cursor { workbench.dispatch(.toggleExpanded) } else { workbench.dispatch(.selectRow(row)) }
                    }
                }
            } else {
                let delta = button == 4 ? -3 : 3
                switch pane {
                case .tree: workbench.dispatch(.moveCursor(delta))
                case .ranges:
                    // The wheel scrolls the plot under the pointer: outputs above, inputs below.
                    workbench.dispatch(.selectRangesPlot(y < rect.y + rect.height / 2 ? .outputs : .inputs))
                    workbench.dispatch(.scrollChannels(delta * 4))
                case .outliers: workbench.dispatch(.scrollOutliers(delta))
                case .histogram: workbench.dispatch(.moveStep(delta > 0 ? 1 : -1))
                case .heatmap: workbench.dispatch(.moveHeatChannel(delta * 4))
                case .quality: workbench.dispatch(.moveQualityCursor(layers: delta, steps: 0))
                case .blocks, .blockLayers: workbench.dispatch(.moveBlock(delta > 0 ? 1 : -1))
                case .preview: workbench.dispatch(.stepPreviewFrame(delta > 0 ? 1 : -1))
                case .stepGroups: workbench.dispatch(.moveStep(delta > 0 ? 1 : -1))
                }
            }
        }
    }
}

import Foundation
import Testing

// The real binary in tmux: open a fixture, browse, open a layer, help, resize, quit — and the
// terminal must come back clean (exit status, no alternate screen) on every way out.

@Suite(.serialized) struct WorkbenchEndToEnd {
    @Test func browseHelpResizeAndQuit() throws {
        let tmux = try TmuxSession(arguments: [TmuxSession.fixture("stdit3-layout.safetensors")])
        try tmux.waitFor("Weight ranges · spatial_blocks.0.attn.qkv [192×64] F16")
        #expect(tmux.alternateScreenOn)
        try tmux.waitFor("per-channel ")                        // statistics arrived from the job

        try tmux.send("j", "j")                                  // to cross_attn.q_linear
        try tmux.waitFor("spatial_blocks.0.cross_attn.q_linear [64×64]")
        try tmux.send("h", "h")                                  // to the block, collapse it
        try tmux.send("j", "l", "l")                             // open temporal_blocks.0, enter its qkv
        try tmux.waitFor("Weight ranges · temporal_blocks.0.attn.qkv")

        try tmux.send("Tab")                                     // focus the weight ranges
        try tmux.waitFor("[2] Weight ranges")
        try tmux.send("]")                                       // next page of channels
        try tmux.waitUntil("the channel range to move past 0") { $0.contains("of 192 ←/→") && !$0.contains(" 0–") }

        try tmux.send("?")
        try tmux.waitFor("Keys · Esc closes · / filters")
        try tmux.send("/", "z", "o", "o", "m")
        try tmux.waitUntil("the help list filtered to zoom") {
            $0.contains("zoom the focused pane") && !$0.contains("scroll channels right")
        }
        try tmux.send("Escape", "Escape")
        try tmux.waitUntil("help to close") { !$0.contains("Keys · Esc closes") && $0.contains("j/↓ layer") }

        try tmux.resize(width: 70, height: 20)
        try tmux.waitFor("need 80×24, have 70×20")
        try tmux.resize(width: 100, height: 30)
        try tmux.waitFor("Weight ranges · temporal_blocks.0.attn.qkv")

        try tmux.send("q")
        try tmux.waitFor("EXIT:0")
        #expect(!tmux.alternateScreenOn)
    }

    /// A paste is text, not keys: the `q` in 5.5 KB of it does not quit, and pasted into `/` it
    /// finds a layer. F1 opens help, G goes to its end, F10 quits.
    @Test func pastingSearchingAndFunctionKeys() throws {
        let tmux = try TmuxSession(arguments: [TmuxSession.fixture("stdit3-layout.safetensors")])
        try tmux.waitFor("Weight ranges · spatial_blocks.0.attn.qkv")
        try tmux.tmux(["set-buffer", "--", String(repeating: "jjkq hello ", count: 500)])
        let start = Date()
        try tmux.tmux(["paste-buffer", "-p"])
        try tmux.waitFor("ignored 5500 pasted characters")
        #expect(Date().timeIntervalSince(start) < 5, "a paste must not be replayed key by key")
        try tmux.send("/")
        try tmux.tmux(["set-buffer", "--", "temp fc2"])
        try tmux.tmux(["paste-buffer", "-p"])
        try tmux.waitFor("/temp fc2▏ 2 layers")
        try tmux.waitFor("Weight ranges · temporal_blocks.0.mlp.fc2")
        try tmux.send("Enter", "n")
        try tmux.waitFor("Weight ranges · temporal_blocks.1.mlp.fc2")
        try tmux.send("F1")
        try tmux.waitFor("Keys · Esc closes")
        try tmux.send("G")
        try tmux.waitFor("quit (as q)")
        try tmux.send("F10")
        try tmux.waitFor("EXIT:0")
        #expect(!tmux.alternateScreenOn)
    }

    @Test func controlCRestoresTheTerminal() throws {
        let tmux = try TmuxSession(arguments: [TmuxSession.fixture("stdit-layout.safetensors")])
        try tmux.waitFor("blocks.0.attn.qkv")
        try tmux.send("C-c")
        try tmux.waitFor("EXIT:130")
        #expect(!tmux.alternateScreenOn)
    }

    @Test(arguments: [(SIGTERM, 143), (SIGILL, 132)])
    func signalsRestoreTheTerminal(signal: Int32, status: Int) throws {
        // SIGILL is what a Swift runtime trap raises.
        let tmux = try TmuxSession(arguments: [TmuxSession.fixture("stdit-layout.safetensors")])
        try tmux.waitFor("blocks.0.attn.qkv")
        let pid = try #require(try tmux.programPID())
        kill(pid, signal)
        try tmux.waitFor("EXIT:\(status)")
        #expect(!tmux.alternateScreenOn)
    }

    @Test func asciiWithoutColour() throws {
        let tmux = try TmuxSession(arguments: [TmuxSession.fixture("stdit3-layout.safetensors"), "--ascii"],
                                   environment: ["NO_COLOR": "1"])
        let screen = try tmux.waitFor("Weight ranges")
        #expect(screen.contains("+- [1] Model"))
        #expect(!screen.contains("╭"))
        #expect(screen.allSatisfy { $0.isASCII })
        try tmux.send("q")
        try tmux.waitFor("EXIT:0")
    }

    /// `TERM=xterm` has 8 colours: the app uses them (not 16 or 256), the selected row stays
    /// visible (reverse video where its shade is lost), and `c` offers only what terminfo has.
    @Test func eightColourTerminalKeepsTheSelectionVisible() throws {
        let tmux = try TmuxSession(arguments: [TmuxSession.fixture("stdit3-layout.safetensors")], environment: ["TERM": "xterm", "COLORTERM": "", "NO_COLOR": ""])
        try tmux.waitFor("Weight ranges · spatial_blocks.0.attn.qkv")
        let styled = try tmux.tmux(["capture-pane", "-e", "-p"])
        let selected = try #require(styled.split(separator: "\n").first { $0.contains("attn.qkv ") && $0.contains("12.5K") })
        let before = selected[..<selected.range(of: "attn.qkv")!.lowerBound]
        #expect(before.contains("\u{1b}[0;7m") || before.contains("\u{1b}[7m"), "the selected row is not reverse video: \(selected.debugDescription)")
        #expect(!styled.contains("\u{1b}[9") && !styled.contains("\u{1b}[38;5"), "bright or 256-colour codes on an 8-colour terminal")
        try tmux.send("c")
        try tmux.waitFor("colour mode: none")
        try tmux.send("c")
        try tmux.waitFor("colour mode: 8")
        try tmux.send("q")
        try tmux.waitFor("EXIT:0")
    }

    @Test func brokenThemeFallsBackWithAMessage() throws {
        let path = NSTemporaryDirectory() + "e2e-theme-\(UUID().uuidString).toml"
        try "[colors]\ntext = \"#ffffff\"\nglow = \"#000000\"\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let tmux = try TmuxSession(arguments: [TmuxSession.fixture("stdit3-layout.safetensors"), "--theme", path])
        try tmux.waitFor(":3: 'glow': unknown colour role")
        try tmux.send("t")                                       // cycling themes still works
        try tmux.waitFor("theme: ")
        try tmux.send("q")
        try tmux.waitFor("EXIT:0")
    }

    @Test func badCheckpointExitsWithAMessage() throws {
        let tmux = try TmuxSession(arguments: ["/no/such/file.safetensors"])
        try tmux.waitFor("EXIT:1")
        #expect(try tmux.screen().contains("/no/such/file.safetensors"))
        #expect(!tmux.alternateScreenOn)
    }
}

@Suite(.serialized) struct DemoModelEndToEnd {
    @Test func opensTheBundledDemoModelWithNoArgument() throws {
        let tmux = try TmuxSession(arguments: [])
        try tmux.waitFor("model.safetensors │ STDiT3")
        try tmux.waitFor("Weight ranges · spatial_blocks.0.attn.qkv [384×128]")
        try tmux.send("q")
        try tmux.waitFor("EXIT:0")
    }

    /// A 2-prompt, 2-step calibration cached by `stsq-tui calibrate`, opened by the workbench:
    /// browse steps, the heat map and the quality map; the heat map's top outlier channel is the
    /// one `stsq-tui stats` reports headless.
    @Test func activationsByStepFromACachedCalibration() throws {
        let (directory, options) = try preparedCalibration("e2e-activations")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let statsText = try runProcess([TmuxSession.binary, "stats", "--layer", "spatial_blocks.0.attn.qkv", "--json"] + options, capture: true)
        let stats = try #require(try JSONSerialization.jsonObject(with: Data(statsText.utf8)) as? [String: Any])
        let layer = try #require((stats["layers"] as? [[String: Any]])?.first)
        let top = try #require((layer["outliers"] as? [[String: Any]])?.first)
        let (channel, peakStep) = (try #require(top["channel"] as? Int), try #require(top["peak_step"] as? Int))
        let digest = try #require(stats["calibration"] as? String)

        let tmux = try TmuxSession(arguments: options)
        try tmux.waitFor("Weight ranges · spatial_blocks.0.attn.qkv")
        try tmux.send("a")
        try tmux.waitFor("step 0/1 t 1000.0")
        let screen = try tmux.waitFor("outliers ÷ median")
        #expect(screen.contains("calibration \(digest.prefix(8))"))
        let lines = screen.split(separator: "\n", omittingEmptySubsequences: false).map { Array(String($0)) }
        let header = try #require(lines.firstIndex { String($0).contains("outliers ÷ median") })
        let column = try #require(Array(String(lines[header])).indices.first { String(lines[header][$0...]).hasPrefix("outliers") })
        let firstOutlier = header + 1 < lines.count && lines[header + 1].count > column ? String(lines[header + 1][column...]) : ""
        #expect(firstOutlier.contains("ch \(channel) ") && firstOutlier.contains("s\(peakStep)"),
                "the heat map's first outlier row '\(firstOutlier)' is not ch \(channel) at s\(peakStep) (stsq-tui stats)")
        try tmux.send(".")
        try tmux.waitFor("step 1/1 t ")
        try tmux.send("A")
        try tmux.waitFor("all 2 steps")
        try tmux.send("3", "l", "l")
        try tmux.waitFor("[3] Channels × steps")
        try tmux.waitFor("ch 2 ")
        try tmux.send("4")
        try tmux.waitFor("[4] Layer × step SQNR")
        try tmux.waitUntil("the quality map's numbers") { $0.contains(" dB · Enter opens") }
        try tmux.send("w")
        try tmux.waitFor("Weight ranges · spatial_blocks.0.attn.qkv")
        try tmux.send("q")
        try tmux.waitFor("EXIT:0")

        // Our own export opened by mistake: the workbench says what it is and shows its source.
        _ = try runProcess([TmuxSession.binary, "plan", "--out", directory + "/plan.json"] + options, capture: true)
        _ = try runProcess([TmuxSession.binary, "quantize", "--plan", directory + "/plan.json", "--out", directory + "/q",
                            "--cache-directory", directory + "/cache"], capture: true)
        let exported = try TmuxSession(arguments: [directory + "/q/quantized.safetensors"] + options)
        try exported.waitFor("quantized.safetensors is a quantized model (stsq-quantized/6) of the bundled demo model")
        try exported.waitFor("Weight ranges · spatial_blocks.0.attn.qkv [384×128]")
        try exported.send("q")
        try exported.waitFor("EXIT:0")
    }

    /// The tuning story: open with a cached calibration, find the block of the worst cell of the
    /// activations screen's layer × step map, go to the plan screen (on that block), raise its α,
    /// see it requantize and its layers' SQNR move, split another block's step groups and give
    /// one group its own α, export, be asked before quitting with an
    /// unsaved edit; then `stsq-tui quantize` on the exported plan reproduces the exported model
    /// byte for byte, and the workbench reopens the exported plan.
    @Test func tuneAlphaRequantizeExportAndReproduceHeadless() throws {
        let (directory, options) = try preparedCalibration("e2e-tuning")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let tmux = try TmuxSession(arguments: options)
        try tmux.waitFor("Weight ranges · spatial_blocks.0.attn.qkv")
        // The block flagged by the activations screen: the worst cell of the layer × step map.
        try tmux.send("a", "4")
        let map = try tmux.waitUntil("the worst cells listed") { $0.contains("worst cells") && $0.contains(" dB") }
        let rows = map.split(separator: "\n").map(String.init)
        let header = try #require(rows.firstIndex { $0.contains("worst cells") })
        // Columns as characters: the rows hold multi-byte glyphs, each one cell wide.
        let headerRow = rows[header]
        let column = headerRow.distance(from: headerRow.startIndex, to: try #require(headerRow.range(of: "worst cells")).lowerBound)
        let worst = String(Array(rows[header + 1]).dropFirst(column)).split(separator: " ").first.map(String.init) ?? ""
        let block = try #require(Self.block(ofShortName: worst), "worst cell '\(worst)'")
        try tmux.send("/")
        try tmux.send("-l", block + ".")
        try tmux.send("Enter")
        try tmux.send("p")
        try tmux.waitFor("Layers of \(block)")
        try tmux.waitFor("requantized in ")
        let row = "▸" + block.padding(toLength: 19, withPad: " ", startingAt: 0)
        try tmux.send("+", "+")
        let edited = try tmux.waitUntil("the α edit requantized with SQNR changes") {
            $0.contains("plan default plan [+]") && $0.contains("requantized in ") && $0.contains(row + "0.10 ")
                && ($0.contains("▲+") || $0.contains("▼"))
        }
        // The preview re-renders the quantized video of the edited plan (the bundled eval prompt).
        try tmux.waitFor("a red circle moving left on a gray background")
        try tmux.waitFor("edit → preview ")
        let qkvLine = try #require(edited.split(separator: "\n").first { $0.contains("│ attn.qkv ") })
        let shownSQNR = try #require(qkvLine.components(separatedBy: "→ ").last?.split(separator: " ").first.map(String.init))
        // Step groups of another block: split at step 1, time-step-wise smoothing, α of the
        // second group alone (the export below must reproduce that too).
        let other = block == "spatial_blocks.0" ? "temporal_blocks.0" : "spatial_blocks.0"
        try tmux.send(block == "spatial_blocks.0" ? "j" : "PageUp")
        try tmux.send("m", "4")
        try tmux.waitFor("Step groups · 1 of 2 steps · \(other) time-step-wise")
        try tmux.send("Home", "l", "s")
        try tmux.waitFor("split at step 1: 0–0 1–1")
        try tmux.send("+")
        try tmux.waitUntil("the group's α in the blocks list") {
            $0.contains("▸" + other.padding(toLength: 19, withPad: " ", startingAt: 0) + "0.00–0.05 timestep")
        }
        try tmux.send("q")
        try tmux.waitFor("unsaved changes")
        try tmux.send("e")
        try tmux.waitFor("Enter writes · Tab")
        try tmux.send("C-u")
        for _ in 0..<120 { try tmux.send("BSpace") }
        try tmux.send("-l", directory + "/export")
        try tmux.send("Enter")
        try tmux.waitFor("exported to \(directory)/export: plan.json")
        try tmux.waitUntil("the plan marked saved") { $0.contains("plan export/plan.json │") }
        try tmux.send("q")
        try tmux.waitFor("EXIT:0")

        _ = try runProcess([TmuxSession.binary, "quantize", "--plan", directory + "/export/plan.json", "--out", directory + "/headless",
                            "--cache-directory", directory + "/cache"], capture: true)
        #expect(FileManager.default.contents(atPath: directory + "/export/quantized.safetensors")
                == FileManager.default.contents(atPath: directory + "/headless/quantized.safetensors"))
        #expect(FileManager.default.contents(atPath: directory + "/export/plan.json")
                == FileManager.default.contents(atPath: directory + "/headless/plan.json"))
        // Headless parity: `quantize --explain` prints the SQNR the plan screen showed.
        let explained = try runProcess([TmuxSession.binary, "quantize", "--plan", directory + "/export/plan.json", "--explain",
                                        "--cache-directory", directory + "/cache"], capture: true)
        let line = try #require(explained.split(separator: "\n").first { $0.hasPrefix(block + ".attn.qkv:") })
        #expect(line.hasSuffix("local SQNR \(shownSQNR) dB"), "screen \(shownSQNR) dB, headless: \(line)")

        let reopened = try TmuxSession(arguments: ["--plan", directory + "/export/plan.json", "--cache-directory", directory + "/cache"])
        try reopened.waitFor("Weight ranges · spatial_blocks.0.attn.qkv")
        try reopened.send("/")
        try reopened.send("-l", block + " attn.qkv")
        try reopened.send("Enter")
        try reopened.send("p")
        try reopened.waitFor("plan plan.json │")
        try reopened.waitUntil("the exported α on its block") { $0.contains(row + "0.10 ") }
        try reopened.send("q")
        try reopened.waitFor("EXIT:0")
    }

    /// `t2.mlp.fc2` (the quality map's short layer names) → `temporal_blocks.2`.
    static func block(ofShortName name: String) -> String? {
        guard let head = name.split(separator: ".").first, let kind = head.first, let index = Int(head.dropFirst()) else { return nil }
        switch kind {
        case "s": return "spatial_blocks.\(index)"
        case "t": return "temporal_blocks.\(index)"
        default: return nil
        }
    }

    /// A private folder with a 2-prompt, 2-step calibration cached by `stsq-tui calibrate`, and
    /// the workbench options that find it.
    private func preparedCalibration(_ name: String) throws -> (directory: String, options: [String]) {
        let directory = NSTemporaryDirectory() + "\(name)-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let prompts = directory + "/prompts.txt"
        try "a red circle moving left on a blue background\na green square growing on a black background\n"
            .write(toFile: prompts, atomically: true, encoding: .utf8)
        _ = try runProcess([TmuxSession.binary, "calibrate", "--prompts", prompts, "--steps", "2", "--cache-directory", directory + "/cache"],
                           capture: true)
        return (directory, ["--calibration-prompts", prompts, "--steps", "2", "--cache-directory", directory + "/cache"])
    }
}

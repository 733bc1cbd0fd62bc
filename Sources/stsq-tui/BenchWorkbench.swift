import ArgumentParser
import DemoModel
import Foundation
import Tensors
import TerminalUI
import Workbench

/// `stsq-tui bench workbench`: the app's own path with a cached calibration — open the
/// checkpoint, load the calibration in the background job and draw the first activations frame;
/// then the frame time of switching layer and step on each activations view; and the peak
/// resident memory; then the tuning loop (α edit → requantized model and the block's SQNR on
/// screen). Frames are rendered to a cell grid (the terminal's diff output is not timed).
struct BenchWorkbench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "workbench",
        abstract: "Time the workbench with a cached calibration: first activations frame, layer and step switches, α edit → requantize, peak memory.")

    @Argument(help: "An STDiT3 checkpoint; default: the bundled demo model. Without a text encoder (or in latent space) the preview is not timed.")
    var checkpoint: String?
    @OptionGroup var calibration: CalibrationOptions
    @Option(help: "Terminal size for the frames, WIDTHxHEIGHT.") var size = "120x36"
    @Option(help: "α edits timed on the plan screen.") var edits = 20
    @Option(help: "A plan.json to tune (its calibration is used); default: the checkpoint's default plan.") var plan: String?
    @Flag(help: "Print one JSON object instead of text.") var json = false

    func run() throws {
        try reportingErrors {
            let parts = size.split(separator: "x").compactMap { Int($0) }
            guard parts.count == 2, ScreenLayout.fits(width: parts[0], height: parts[1]) else {
                throw ValidationError("--size takes WIDTHxHEIGHT of at least 80x24, got '\(size)'")
            }
            let (width, height) = (parts[0], parts[1])
            guard let path = checkpoint ?? DemoModel.checkpointPath else { throw ValidationError("no checkpoint given and no demo model") }
            let source = try calibration.source(plan: plan)

            // First view: what `stsq-tui CHECKPOINT` then `a` does, jobs in the background as in the app.
            let start = monotonicSeconds()
            let workbench = Workbench(session: try CheckpointSession(path: path), calibration: source)
            _ = WorkbenchScreen.render(workbench.state, theme: .dark, width: width, height: height, busy: true)
            let firstFrame = monotonicSeconds() - start
            workbench.dispatch(.showScreen(.activations))
            while workbench.state.activations == nil {
                if case .missing = workbench.state.calibration {
                    throw ValidationError("no cached calibration for these options: run `stsq-tui calibrate` with them first")
                }
                if case .failed(let why) = workbench.state.calibration { throw ValidationError(why) }
                if case .damaged(let why) = workbench.state.calibration { throw ValidationError(why) }
                if case .unavailable(let why) = workbench.state.calibration { throw ValidationError(why) }
                workbench.drainCompletedJobs()
                usleep(500)
            }
            let render = { () -> CellGrid in
                let viewport = WorkbenchScreen.viewport(workbench.state, width: width, height: height)
                workbench.dispatch(.viewport(treeRows: viewport.treeRows, channelColumns: viewport.channelColumns,
                                             heatColumns: viewport.heatColumns, outlierRows: viewport.outlierRows))
                return WorkbenchScreen.render(workbench.state, theme: .dark, width: width, height: height, busy: false)
            }
            _ = render()
            let firstView = monotonicSeconds() - start
            let peakAtFirstView = Self.peakResidentBytes()
            let deadline = monotonicSeconds() + 120
            while workbench.state.qualityMap == nil && monotonicSeconds() < deadline {
                workbench.drainCompletedJobs()
                usleep(1000)
            }
            let qualityMapReady = monotonicSeconds() - start

            // Frame times: one action then a full frame, over every layer and every step, on the
            // heat map and on the quality map below the histogram.
            let data = workbench.state.activations!
            let layers = workbench.state.catalog.quantizableLinears.count
            var cases: [(String, [Double])] = []
            for lower in [Pane.heatmap, .quality] {
                workbench.dispatch(.focus(lower))
                workbench.dispatch(.moveToFirst)
                workbench.dispatch(.moveLayer(1))
                workbench.dispatch(.firstStep)
                _ = render()
                var layerTimes: [Double] = [], stepTimes: [Double] = []
                for _ in 1..<layers {
                    let t = monotonicSeconds()
                    workbench.dispatch(.moveLayer(1))
                    _ = render()
                    layerTimes.append(monotonicSeconds() - t)
                }
                for _ in 1..<data.steps {
                    let t = monotonicSeconds()
                    workbench.dispatch(.moveStep(1))
                    _ = render()
                    stepTimes.append(monotonicSeconds() - t)
                }
                let name = lower == .heatmap ? "heat map" : "quality map"
                cases += [("layer switch, \(name)", layerTimes), ("step switch, \(name)", stepTimes)]
            }
            // The tuning loop: α edits of one block at a time on the plan screen; each waits for its
            // requantize (the model built, the block's local SQNR measured, the result applied).
            workbench.dispatch(.showScreen(.tuning))
            func waitForRequantize() throws {
                let limit = monotonicSeconds() + 120
                while workbench.state.tuning.map({ $0.requantize == .pending }) ?? true {
                    guard monotonicSeconds() < limit else { throw ValidationError("requantize did not finish in 120 s") }
                    workbench.drainCompletedJobs()
                    usleep(200)
                }
                if case .failed(let why)? = workbench.state.tuning?.requantize { throw ValidationError(why) }
            }
            try waitForRequantize()
            var editTimes: [Double] = [], buildTimes: [Double] = []
            let blockCount = workbench.state.tuning?.blocks.count ?? 1
            for edit in 0..<edits {
                workbench.dispatch(.moveBlock(edit % blockCount == 0 ? -blockCount : 1))
                let t = monotonicSeconds()
                workbench.dispatch(.adjustAlpha(edit % 2 == 0 ? 0.05 : 0.1))
                try waitForRequantize()
                _ = render()
                editTimes.append(monotonicSeconds() - t)
                if case .done(let ms)? = workbench.state.tuning?.requantize { buildTimes.append(ms / 1000) }
            }
            cases += [("α edit → requantized frame", editTimes), ("  of which the model build", buildTimes)]
            // Then the preview: each edit waits for the quantized video of its plan on screen. A
            // checkpoint this tool cannot sample (latent space, no text encoder) has none: said, not timed.
            var previewUnavailable: String?
            func waitForPreview() throws {
                let limit = monotonicSeconds() + 300
                while workbench.state.preview?.quantizedGeneration != workbench.state.tuning?.generation
                        || workbench.state.tuning?.requantize == .pending {
                    guard monotonicSeconds() < limit else { throw ValidationError("the preview did not follow in 300 s") }
                    if let why = workbench.state.preview?.failure { previewUnavailable = why; return }
                    workbench.drainCompletedJobs()
                    usleep(500)
                }
            }
            try waitForPreview()
            var previewTimes: [Double] = []
            for edit in 0..<edits where previewUnavailable == nil {
                workbench.dispatch(.moveBlock(edit % blockCount == 0 ? -blockCount : 1))
                workbench.dispatch(.adjustAlpha(0.05))
                try waitForPreview()
                _ = render()
                if let ms = workbench.state.preview?.editToPreviewMilliseconds { previewTimes.append(ms / 1000) }
            }
            if previewUnavailable == nil { cases.append(("α edit → quantized preview on screen", previewTimes)) }
            let peak = Self.peakResidentBytes()
            workbench.shutdown()

            func ms(_ seconds: Double) -> String { formatFixed(1000 * seconds, decimals: 2) }
            func median(_ v: [Double]) -> Double { v.sorted()[v.count / 2] }
            if json {
                print(JSONValue.object([
                    ("frame", .string("\(width)x\(height)")), ("layers", .int(layers)), ("steps", .int(data.steps)),
                    ("first_frame_s", .double(firstFrame)), ("first_activation_view_s", .double(firstView)),
                    ("peak_rss_at_first_activation_view_bytes", .int(peakAtFirstView)), ("quality_map_ready_s", .double(qualityMapReady)),
                    ("frames", .array(cases.map { name, times in
                        .object([("case", .string(name)), ("count", .int(times.count)), ("median_ms", .double(1000 * median(times))),
                                 ("max_ms", .double(1000 * (times.max() ?? 0)))])
                    })),
                    ("peak_rss_bytes", .int(peak)), ("preview_unavailable", previewUnavailable.map { .string($0) } ?? .null),
                ] + BenchEnvironment.json(load: 0)).serialized(pretty: true))
            } else {
                BenchEnvironment.lines(load: 0).forEach { print($0) }
                print("\(path.split(separator: "/").last ?? ""): \(layers) layers × \(data.steps) steps, calibration \(data.calibrationDigest), frames \(width)×\(height)")
                print("first frame (open, weights screen): \(ms(firstFrame)) ms")
                print("first activations frame (open, load the cached calibration, draw): \(ms(firstView)) ms, peak memory by then "
                      + "\(formatFixed(Double(peakAtFirstView) / 1_048_576, decimals: 1)) MiB")
                print("layer × step SQNR map ready (background): \(ms(qualityMapReady)) ms")
                for (name, times) in cases {
                    print("\(name): median \(ms(median(times))) ms, max \(ms(times.max() ?? 0)) ms over \(times.count) frames")
                }
                if let previewUnavailable { print("preview: not timed — \(previewUnavailable)") }
                print("peak resident memory: \(formatFixed(Double(peak) / 1_048_576, decimals: 1)) MiB")
            }
        }
    }

    /// VmHWM from /proc/self/status, in bytes (0 where there is no /proc).
    static func peakResidentBytes() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
              // "VmHWM:\t  308000 kB", and no space at all after the tab from 10 GB on.
              let kilobytes = Int(line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first ?? "") else { return 0 }
        return kilobytes * 1024
    }
}

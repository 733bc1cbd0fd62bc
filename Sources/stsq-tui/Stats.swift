import ArgumentParser
import Foundation
import Quantization
import Tensors
import VideoDiT
import Workbench

/// `stsq-tui stats`: the activations screen's numbers, headless — per step the input range of a
/// layer, the default plan's scale, what it clips, and the channels that stand out over the steps.
struct Stats: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Per-step activation statistics of block linears from the calibration (what the activations screen shows).")

    @Argument(help: "An STDiT3 checkpoint; default: the bundled demo model. Without a text encoder of its own, its statistics come from stsq-collect.")
    var checkpoint: String?
    @Option(help: "Block linears to show (repeatable); default: all.") var layer: [String] = []
    @Option(help: "Outlier channels to list per layer.") var outliers = 16
    @Flag(help: "Print one JSON object instead of text.") var json = false
    @OptionGroup var calibration: CalibrationOptions

    func run() throws {
        try reportingErrors {
            let setup = try QuantizationSetup(checkpoint: checkpoint, options: calibration)
            let statistics = try setup.statistics(cacheDirectory: calibration.cacheDirectory)
            let data = try ActivationData(model: setup.model, statistics: statistics, plan: CheckpointSession.defaultPlan(setup.setup))
            let names = setup.model.blockLinears.map(\.name)
            for name in layer where !names.contains(name) {
                throw ValidationError("--layer \(name): not a block linear of \(setup.path) (e.g. \(names[0]))")
            }
            let chosen = layer.isEmpty ? names : names.filter(layer.contains)
            let reports = chosen.map { report($0, data) }
            if json {
                print(JSONValue.object([("calibration", .string(data.calibrationDigest)), ("steps", .int(data.steps)),
                                        ("samples", .int(data.samples)), ("layers", .array(reports.map(\.json)))])
                    .serialized(pretty: true))
            } else {
                print("calibration \(data.calibrationDigest): \(data.samples) samples, \(data.steps) steps; default plan (int8, per-step min-max)")
                for r in reports { r.lines.forEach { print($0) } }
            }
        }
    }

    private struct Report {
        let json: JSONValue
        let lines: [String]
    }

    private func report(_ name: String, _ data: ActivationData) -> Report {
        var rows: [JSONValue] = [], table: [[String]] = []
        for s in 0..<data.steps {
            guard let st = data.statistics(name, .step(s)), let e = data.encoding(name, .step(s)) else { continue }
            let clipped = ActivationAnalysis.clippedFraction(st.histogram, above: ActivationAnalysis.clipThreshold(e))
            rows.append(.object([("step", .int(s)), ("t", .float(data.timesteps[s])), ("min", .float(st.minimum)), ("max", .float(st.maximum)),
                                 ("scale", .float(e.scale)), ("zero_point", .int(Int(e.zeroPoint))), ("clipped", .double(clipped))]))
            table.append(["\(s)", formatFixed(Double(data.timesteps[s]), decimals: 1), "\(st.minimum)", "\(st.maximum)", "\(e.scale)",
                          formatFixed(100 * clipped, decimals: 3) + "%"])
        }
        let ranked = ActivationAnalysis.outlierChannels(data.channelAbsMax(name), count: outliers)
        let global = data.globalEncodings[name]
        let json = JSONValue.object([
            ("name", .string(name)), ("steps", .array(rows)), ("global_scale", global.map { .float($0.scale) } ?? .null),
            ("outliers", .array(ranked.map { .object([("channel", .int($0.channel)), ("ratio", .float($0.ratio)), ("peak", .float($0.peak)),
                                                      ("peak_step", .int($0.peakStep))]) })),
        ])
        var lines = ["", name + (global.map { " · one global scale \($0.scale)" } ?? "")]
        lines += formatTable(header: ["step", "t", "min", "max", "scale", "clipped"], rows: table, rightAligned: [0, 1, 2, 3, 4, 5])
        lines.append("outlier channels (max|x| ÷ the step's median, at their worst step): "
                     + ranked.prefix(8).map { "ch \($0.channel) ×\(formatFixed(Double($0.ratio), decimals: 1)) s\($0.peakStep)" }.joined(separator: ", "))
        return Report(json: json, lines: lines)
    }
}

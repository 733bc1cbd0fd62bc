import ArgumentParser
import Foundation
import Quantization
import Tensors
import VideoDiT

/// `stsq-tui bench quantize`: requantization latency and a quantized demo video on each path.
struct BenchQuantize: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quantize",
        abstract: "Requantize the demo model from cached statistics after one block's α changes, and time one video on the FP32, int8 and fake-quant paths.")

    @Argument(help: "An STDiT3 checkpoint with its own text encoder; default: the bundled demo model.")
    var checkpoint: String?
    @OptionGroup var calibration: CalibrationOptions
    @OptionGroup var competing: CompetingLoadOption
    @Option(help: "Timed repetitions per case (median reported).") var repeats = 5
    @Option(help: "Comma-separated paths to time: fp32, int8, fake-quant.") var paths = "fp32,int8,fake-quant"
    @Flag(help: "Print one JSON object instead of text.") var json = false

    private static let allPaths = ["fp32", "int8", "fake-quant"]

    func validate() throws {
        let chosen = paths.split(separator: ",").map(String.init)
        guard !chosen.isEmpty, chosen.allSatisfy(Self.allPaths.contains) else {
            throw ValidationError("--paths takes a comma-separated list of \(Self.allPaths.joined(separator: ", ")), got '\(paths)'")
        }
        guard repeats >= 1 else { throw ValidationError("--repeats must be at least 1") }
    }

    func run() throws {
        try reportingErrors {
            let setup = try QuantizationSetup(checkpoint: checkpoint, options: calibration)
            let statistics = try setup.statistics(cacheDirectory: calibration.cacheDirectory)
            var defaults = LayerSettings()
            defaults.alpha = 0.5
            var plan = setup.plan(defaults: defaults, groups: 1)
            func median(_ times: [Double]) -> Double { times.sorted()[times.count / 2] }
            func timed(_ body: () throws -> Void) rethrows -> Double {
                let start = monotonicSeconds()
                try body()
                return monotonicSeconds() - start
            }
            let chosen = Self.allPaths.filter(paths.split(separator: ",").map(String.init).contains)
            let sampler = RectifiedFlowSampler(model: setup.model, cfgScale: setup.cfgScale, fps: setup.fps)
            let condition = try setup.textEncoder().encode(["a red circle moving left on a gray background"])
            var generator = NoiseGenerator(seed: 0)
            let noise = generator.gaussian(shape: [1, setup.model.config.inChannels] + setup.size)

            let (builds, times) = try competing.during { () throws -> ([Double], [String: [Double]]) in
                _ = try QuantizedModel(model: setup.model, statistics: statistics, plan: plan)   // warm-up
                let block = QuantizationPlan.block(of: setup.model.blockLinears[0].name)
                var builds: [Double] = []
                var quantized: QuantizedModel?
                for i in 0..<repeats {
                    plan.blocks = [(block, .object([("alpha", .double(0.3 + 0.1 * Double(i % 5)))]))]
                    builds.append(try timed { quantized = try QuantizedModel(model: setup.model, statistics: statistics, plan: plan) })
                }
                // One executor per path for all rounds: weights are packed once, as in the app.
                let executors: [String: LinearExecutor] = [
                    "fp32": Float32Executor(),
                    "int8": QuantizedModelExecutor(model: quantized!, mode: .int8),
                    "fake-quant": QuantizedModelExecutor(model: quantized!, mode: .fakeQuant),
                ]
                var times: [String: [Double]] = [:]
                for round in 0...repeats {   // round 0 warms up; paths interleave so noise hits all alike
                    for name in chosen {
                        let t = try timed {
                            _ = try sampler.sample(noise: noise, condition: condition, schedule: setup.schedule,
                                                   height: Float(setup.size[1]), width: Float(setup.size[2]), executor: executors[name]!)
                        }
                        if round > 0 { times[name, default: []].append(t) }
                    }
                }
                return (builds, times)
            }

            let requantize = median(builds)
            let baseline = times["fp32"].map(median)
            if json {
                let video = JSONValue.object(chosen.map { name in
                    (name, .object([("median_seconds", .number(formatFixed(median(times[name]!), decimals: 4))),
                                    ("seconds", .array(times[name]!.map { .number(formatFixed($0, decimals: 4)) }))]))
                })
                print(JSONValue.object(BenchEnvironment.json(load: competing.load) + [
                    ("layers", .int(setup.model.blockLinears.count)), ("steps", .int(plan.steps)),
                    ("requantize_median_ms", .number(formatFixed(1000 * requantize, decimals: 2))),
                    ("video", video),
                ]).serialized(pretty: true))
                return
            }
            BenchEnvironment.lines(load: competing.load).forEach { print($0) }
            print(String(format: "requantize after one block's α changes (whole model, %d layers, %d steps, per-step scales, aggregated SmoothQuant): median %.1f ms of %d",
                         setup.model.blockLinears.count, plan.steps, 1000 * requantize, builds.count))
            print("one video (\(setup.schedule.timesteps.count) steps, CFG batch 2), median of \(repeats):")
            for name in chosen {
                let m = median(times[name]!)
                let ratio = baseline.map { String(format: "   %.2f× the FP32 time", m / $0) } ?? ""
                print(String(format: "  %-10@ %7.3f s", name as NSString, m) + ratio)
            }
        }
    }
}

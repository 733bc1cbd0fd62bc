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
    @Option(help: "Timed repetitions per case (median reported).") var repeats = 5

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
            _ = try QuantizedModel(model: setup.model, statistics: statistics, plan: plan)   // warm-up
            let block = QuantizationPlan.block(of: setup.model.blockLinears[0].name)
            var builds: [Double] = []
            var quantized: QuantizedModel?
            for i in 0..<max(repeats, 1) {
                plan.blocks = [(block, .object([("alpha", .double(0.3 + 0.1 * Double(i % 5)))]))]
                builds.append(try timed { quantized = try QuantizedModel(model: setup.model, statistics: statistics, plan: plan) })
            }
            print(String(format: "requantize after %@ α changes (whole model, %d layers, %d steps, per-step scales, aggregated SmoothQuant): median %.1f ms of %d",
                         block, setup.model.blockLinears.count, plan.steps, 1000 * median(builds), builds.count))

            let sampler = RectifiedFlowSampler(model: setup.model, cfgScale: setup.cfgScale, fps: setup.fps)
            let condition = try setup.encoder.encode(["a red circle moving left on a gray background"])
            var generator = NoiseGenerator(seed: 0)
            let noise = generator.gaussian(shape: [1, setup.model.config.inChannels] + setup.size)
            // One executor per path for all rounds: weights are packed once, as in the app.
            let executors: [(String, LinearExecutor)] = [
                ("fp32", Float32Executor()),
                ("int8", QuantizedModelExecutor(model: quantized!, mode: .int8)),
                ("fake-quant", QuantizedModelExecutor(model: quantized!, mode: .fakeQuant)),
            ]
            var times: [String: [Double]] = [:]
            for round in 0...max(repeats, 1) {   // round 0 warms up; paths interleave so noise hits all alike
                for (name, executor) in executors {
                    let t = try timed {
                        _ = try sampler.sample(noise: noise, condition: condition, schedule: setup.schedule,
                                               height: Float(setup.size[1]), width: Float(setup.size[2]), executor: executor)
                    }
                    if round > 0 { times[name, default: []].append(t) }
                }
            }
            let fp = median(times["fp32"]!)
            print("one video (\(setup.schedule.timesteps.count) steps, CFG batch 2), median of \(max(repeats, 1)):")
            for (name, _) in executors {
                let m = median(times[name]!)
                print(String(format: "  %-10@ %7.3f s   %.2f× the FP32 time", name as NSString, m, m / fp))
            }
        }
    }
}

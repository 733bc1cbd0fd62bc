import ArgumentParser
import DemoModel
import Evaluation
import Foundation
import Quantization
import Tensors
import VideoDiT

/// `stsq-tui calibrate [CHECKPOINT] [--prompts FILE] [--steps --cfg --seeds]`.
struct Calibrate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Record per-step activation statistics of every block linear over the calibration prompts (cached).")

    @Argument(help: "An STDiT3 checkpoint with its own text encoder; default: the bundled demo model.")
    var checkpoint: String?
    @Option(help: "Prompt list, one a line.") var prompts = "sample-prompts/calibration.txt"
    @Option(help: "Comma-separated noise seeds.") var seeds = "0"
    @Option(help: "Sampler steps (default: the checkpoint's).") var steps: Int?
    @Option(help: "CFG scale (default: the checkpoint's).") var cfg: Float?
    @Option(help: "Cache folder.") var cacheDirectory = CalibrationCache.defaultDirectory

    func run() throws {
        try reportingErrors {
            var options = try CalibrationOptions.parse([])
            options.calibrationPrompts = prompts
            options.calibrationSeeds = try parseSeeds(seeds, option: "--seeds").map(String.init).joined(separator: ",")
            options.steps = steps
            options.cfg = cfg
            options.cacheDirectory = cacheDirectory
            let setup = try QuantizationSetup(checkpoint: checkpoint, options: options)
            let key = setup.key
            let start = monotonicSeconds()
            do {
                if let cached = try CalibrationCache(directory: cacheDirectory).load(key) {
                    print("calibration \(key.digest): loaded from \(cacheDirectory) (\(cached.count) layers) in \(String(format: "%.2f", monotonicSeconds() - start)) s")
                    return
                }
            } catch let damaged as CalibrationCacheDamaged {
                FileHandleStderr.write("warning: \(damaged); recalibrating\n")
            }
            let statistics = try setup.calibrate(cacheDirectory: cacheDirectory)
            let entries = statistics.values.reduce(0) { $0 + $1.count }
            print(String(format: "calibration %@: %d prompts × %d seeds × %d steps, %d layers × steps recorded in %.1f s; saved to %@",
                         key.digest, key.prompts.count, key.seeds.count, key.steps, entries, monotonicSeconds() - start, cacheDirectory))
        }
    }
}

import ArgumentParser
import DemoModel
import Evaluation
import Foundation
import Workbench
import Quantization
import Tensors
import VideoDiT

/// The calibration a plan is built from: options shared by `plan`, `quantize` and `eval`.
struct CalibrationOptions: ParsableArguments {
    @Option(help: "Calibration prompt list, one a line.") var calibrationPrompts = "sample-prompts/calibration.txt"
    @Option(help: "Comma-separated calibration noise seeds.") var calibrationSeeds = "0"
    @Option(help: "Sampler steps (default: the checkpoint's).") var steps: Int?
    @Option(help: "CFG scale (default: the checkpoint's).") var cfg: Float?
    @Option(help: "Calibration cache folder.") var cacheDirectory = CalibrationCache.defaultDirectory
}

/// The command line's view of `CalibrationSetup`: options parsed from the flags, progress on
/// stderr, errors as one line.
struct QuantizationSetup {
    let setup: CalibrationSetup
    var path: String { setup.path }
    var model: STDiT3 { setup.model }
    /// The text encoder, or a one-line error saying why this checkpoint cannot be sampled here.
    func textEncoder() throws -> WordTextEncoder {
        do { return try setup.textEncoder() } catch let error as CalibrationSetupError { throw ValidationError(error.description) }
    }
    var schedule: RectifiedFlowSchedule { setup.schedule }
    var cfgScale: Float { setup.cfgScale }
    var fps: Float { setup.fps }
    var size: [Int] { setup.size }
    var key: CalibrationCache.Key { setup.key }
    var checkpointHash: String { setup.checkpointHash }

    init(checkpoint: String?, options: CalibrationOptions, overridingKey: CalibrationCache.Key? = nil) throws {
        guard let path = checkpoint ?? DemoModel.checkpointPath else { throw ValidationError("no checkpoint and no bundled demo model") }
        let prompts = overridingKey == nil ? try readPromptFile(options.calibrationPrompts) : []
        let seeds = overridingKey == nil ? try parseSeeds(options.calibrationSeeds, option: "--calibration-seeds") : []
        do {
            setup = try CalibrationSetup(path: path, options: .init(prompts: prompts, seeds: seeds, steps: options.steps, cfg: options.cfg),
                                         overridingKey: overridingKey)
        } catch let error as CalibrationSetupError {
            throw ValidationError(error.description)
        }
    }

    /// Cached statistics, or a calibration run (progress on stderr) saved to the cache.
    func statistics(cacheDirectory: String) throws -> [String: [Int: LayerStepStatistics]] {
        do {
            if let cached = try setup.cachedStatistics(in: cacheDirectory) { return cached }
        } catch let damaged as CalibrationCacheDamaged {
            FileHandleStderr.write("warning: \(STSQ.oneLine(damaged.description)); recalibrating\n")
        }
        let start = monotonicSeconds()
        let statistics = try calibrate(cacheDirectory: cacheDirectory)
        FileHandleStderr.write(String(format: "calibrated %d prompts × %d seeds in %.1f s\n", key.prompts.count, key.seeds.count,
                                      monotonicSeconds() - start))
        return statistics
    }

    /// Records the statistics now (progress on stderr) and saves them to the cache, whose folder
    /// is checked first: minutes of calibration are not run to be lost on a read-only cache.
    func calibrate(cacheDirectory: String) throws -> [String: [Int: LayerStepStatistics]] {
        guard setup.encoder != nil else {
            throw ValidationError("\(cacheDirectory) has no calibration \(key.digest) (\(key.prompts.count) prompts × \(key.seeds.count) seeds × \(key.steps) steps), and "
                                  + CalibrationSetup.cannotSample(path))
        }
        try OutputFolder.checkWritable(cacheDirectory, purpose: "the calibration cache")
        let statistics = try setup.calibrate { done, total in
            FileHandleStderr.write("\rcalibrating: \(done)/\(total) sampler steps")
        }
        FileHandleStderr.write("\n")
        try CalibrationCache(directory: cacheDirectory).save(statistics, for: key)
        return statistics
    }

    func plan(defaults: LayerSettings, groups: Int) -> QuantizationPlan { setup.plan(defaults: defaults, groups: groups) }

    func check(_ plan: QuantizationPlan, source: String) throws {
        do { try setup.check(plan, source: source) } catch let error as CalibrationSetupError { throw ValidationError(error.description) }
    }
}

/// The prompts of a prompt file. A relative path that does not exist from the working directory
/// is also looked up from the folders above the executable, so the bundled `sample-prompts/` are
/// found when the binary runs from anywhere inside the checkout.
func readPromptFile(_ path: String) throws -> [String] {
    var candidates = [path]
    if !path.hasPrefix("/"), let executable = Bundle.main.executableURL?.resolvingSymlinksInPath() {
        var folder = executable.deletingLastPathComponent()
        while folder.path != "/" {
            candidates.append(folder.appendingPathComponent(path).path)
            folder = folder.deletingLastPathComponent()
        }
    }
    guard let found = candidates.first(where: FileInput.exists) else {
        throw ValidationError("\(path): no such prompt file (looked in the working directory and beside the executable)")
    }
    do { return CalibrationSetup.readPrompts(try FileInput.readText(found, limit: FileInput.Limit.prompts)) } catch let error as FileInputError {
        throw ValidationError(error.description)
    }
}

func parseSeeds(_ text: String, option: String) throws -> [UInt64] {
    let seeds = try text.split(separator: ",").map { s -> UInt64 in
        guard let v = UInt64(s.trimmingCharacters(in: .whitespaces)) else { throw ValidationError("\(option): bad seed '\(s)'") }
        return v
    }
    guard !seeds.isEmpty else { throw ValidationError("\(option): no seeds") }
    return seeds
}

/// Reads and parses a `plan.json`.
func readPlan(_ path: String) throws -> QuantizationPlan {
    let text: String
    do { text = try FileInput.readText(path, limit: FileInput.Limit.plan) } catch let error as FileInputError { throw ValidationError(error.description) }
    let json: JSONValue
    do { json = try JSONValue.parse(text) } catch { throw ValidationError("\(path): not valid JSON: \(error)") }
    do { return try QuantizationPlan(json: json, source: path) } catch let e as PlanError { throw ValidationError(e.description) }
}

extension CalibrationOptions {
    /// Where the workbench finds (or makes) its calibration with these options.
    /// `plan`: a plan file to tune; its calibration replaces these options'. `previewPrompt`: what
    /// the plan screen previews first (then the bundled `sample-prompts/eval.txt`, which `P` cycles).
    func source(plan: String? = nil, previewPrompt: String? = nil) throws -> CalibrationSource {
        let opened = try plan.map { (plan: try readPlan($0), path: $0) }
        return CalibrationSource(options: .init(prompts: opened == nil ? try readPromptFile(calibrationPrompts) : [],
                                                seeds: try parseSeeds(calibrationSeeds, option: "--calibration-seeds"), steps: steps, cfg: cfg),
                                 cacheDirectory: cacheDirectory, plan: opened,
                                 previewPrompts: (previewPrompt.map { [$0] } ?? []) + ((try? readPromptFile("sample-prompts/eval.txt")) ?? []))
    }
}

import ArgumentParser
import DemoModel
import Evaluation
import Foundation
import Quantization
import Tensors
import VideoDiT

/// `stsq-tui fidelity [CHECKPOINT] --prompts FILE --seeds 0,1`: the demo model's prompt fidelity.
struct Fidelity: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sample scene-world prompts and judge the videos from their frames (colour, shape, motion, background).")

    @Argument(help: "A checkpoint with its own text encoder; default: the bundled demo model.")
    var checkpoint: String?

    @Option(help: "Prompt list, one a line.") var prompts = "sample-prompts/eval.txt"
    @Option(help: "Comma-separated noise seeds.") var seeds = "0,1"
    @Option(help: "Sampler steps (default: the checkpoint's).") var steps: Int?
    @Option(help: "CFG scale (default: the checkpoint's).") var cfg: Float?
    @Flag(help: "Print every video's judgement.") var verbose = false

    func run() throws {
        try reportingErrors {
            guard let path = checkpoint ?? DemoModel.checkpointPath else { throw ValidationError("no checkpoint and no bundled demo model") }
            let loaded = try ModelLoader.load(path: path)
            guard let model = loaded.model as? STDiT3, let encoder = loaded.textEncoder else {
                throw ValidationError("\(path): fidelity needs an STDiT3 checkpoint with its own text encoder (the demo model)")
            }
            let list = try readPromptFile(prompts)
            // Checked before sampling: a prompt the judge cannot read is an error, an impossible scene a warning.
            for (i, prompt) in list.enumerated() {
                guard let scene = SceneWorld.parse(prompt) else {
                    throw ValidationError("\(prompts): prompt \(i + 1) \"\(prompt)\" is not of the scene grammar (\"a COLOUR SHAPE moving DIRECTION on a BACKGROUND background\" or \"… growing on …\")")
                }
                if SceneWorld.isInvisible(scene) {
                    FileHandleStderr.write("warning: prompt \(i + 1) \"\(STSQ.oneLine(prompt))\" puts a \(scene.colour!) object on a \(scene.background!) background: it cannot be seen, so its colour, shape and motion score 0 whatever the model does\n")
                }
            }
            let seedList = try parseSeeds(seeds, option: "--seeds")
            let d = loaded.samplerDefaults
            let size = [d?.frames ?? 8, d?.height ?? 32, d?.width ?? 32]
            let schedule = try RectifiedFlowSchedule.forSampling(steps: steps ?? d?.steps ?? 30, defaults: d, disableTransform: false,
                                                                 frames: size[0], pixelHeight: Float(size[1]), pixelWidth: Float(size[2]),
                                                                 pixelSpace: true)
            let run = FidelityRun(model: model, encoder: encoder, schedule: schedule, cfgScale: cfg ?? d?.cfgScale ?? 5,
                                  size: size, fps: d?.fps ?? 24)
            let result = try run.run(prompts: list, seeds: seedList) { i, n in FileHandleStderr.write("\rvideo \(i)/\(n)") }
            FileHandleStderr.write("\n")
            if verbose {
                for v in result.videos {
                    print("seed \(v.seed)  \(String(format: "%.2f", v.score.fidelity))  \(v.prompt)  → \(v.judged.colour ?? "-") \(v.judged.shape ?? "-") \(v.judged.motion ?? "-") \(v.judged.background ?? "-")")
                }
            }
            let m = result.mean
            print(String(format: "%d prompts × %d seeds, %d steps, CFG %.1f: fidelity %.3f  colour %.3f  shape %.3f  motion %.3f  background %.3f  (%.1f s, %.2f s/video)",
                         result.prompts, seedList.count, run.steps, run.cfgScale, m.fidelity, m.colour, m.shape, m.motion, m.background,
                         result.seconds, result.seconds / Double(max(result.videos.count, 1))))
        }
    }
}

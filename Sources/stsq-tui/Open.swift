import ArgumentParser
import Foundation
import DemoModel
import Quantization
import TerminalUI
import Workbench
import Tensors

/// `stsq-tui [CHECKPOINT]`: the interactive workbench.
struct Open: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "open",
        abstract: "Open the terminal workbench on a checkpoint (the default command).")

    @Argument(help: "A .safetensors checkpoint (config.json beside it or in its metadata); default: the bundled demo model.")
    var checkpoint: String?

    @Option(help: "Colour theme: dark, light, high-contrast, a name under ~/.config/stsq-tui/themes, or a .toml path.")
    var theme = "dark"

    @Option(help: "Colour mode: truecolor, 256, 16, 8 or none (default: from COLORTERM and NO_COLOR).")
    var color: ColorMode?

    @Flag(help: "Draw with ASCII characters only, for terminals without Unicode.")
    var ascii = false

    @Option(help: "A plan.json to tune on the plan screen (from `stsq-tui plan` or an export); its calibration is used. Default: the checkpoint's default plan.")
    var plan: String?

    @Option(help: "The prompt the plan screen previews, FP against quantized (default: the first of sample-prompts/eval.txt).")
    var previewPrompt: String?

    @OptionGroup(title: "Calibration (the activations screen; the same cache as `stsq-tui calibrate`)")
    var calibration: CalibrationOptions

    func run() throws {
        guard let checkpoint = checkpoint ?? DemoModel.checkpointPath else {
            FileHandleStderr.write("error: no checkpoint given and the bundled demo model is missing from this build\nusage: stsq-tui CHECKPOINT.safetensors\n")
            throw ExitCode(2)
        }
        guard isatty(STDIN_FILENO) == 1, isatty(STDOUT_FILENO) == 1 else {
            FileHandleStderr.write("error: the workbench needs a terminal; for scripts use `stsq-tui inspect \(TerminalText.escaped(checkpoint))`\n")
            throw ExitCode(2)
        }
        let session: CheckpointSession
        var opened: StatusMessage?
        do {
            session = try CheckpointSession(path: checkpoint)
        } catch let quantized as QuantizedModelOpened {
            // Our own export of the bundled model: show the checkpoint it came from.
            guard let demo = DemoModel.checkpointPath, (try? CalibrationCache.checkpointHash(path: demo)) == quantized.checkpointHash,
                  let demoSession = try? CheckpointSession(path: demo) else {
                FileHandleStderr.write("error: \(STSQ.oneLine("\(quantized)"))\n")
                throw ExitCode(1)
            }
            session = demoSession
            opened = StatusMessage("\(quantized.file.split(separator: "/").last ?? "") is a quantized model (\(quantized.format)) of the bundled demo model: showing the checkpoint it came from")
        } catch {
            FileHandleStderr.write("error: \(STSQ.oneLine("\(error)"))\n")
            throw ExitCode(1)
        }
        let source: CalibrationSource?
        let problem: String?
        do {
            source = try calibration.source(plan: plan, previewPrompt: previewPrompt)
            problem = nil
        } catch {
            // A plan given but unreadable is the user's mistake to fix now, not a screen later.
            if plan != nil {
                FileHandleStderr.write("error: \(STSQ.oneLine("\(error)"))\n")
                throw ExitCode(1)
            }
            (source, problem) = (nil, "\(error)")
        }
        let workbench = Workbench(session: session, calibration: source, calibrationProblem: problem)
        if let opened { workbench.dispatch(.showMessage(opened)) }
        let app = try TerminalApp(workbench: workbench, options: TerminalOptions(theme: theme, colorMode: color, ascii: ascii),
                                  environment: ProcessInfo.processInfo.environment)
        app.run()
        workbench.shutdown()
    }
}

extension ColorMode: ExpressibleByArgument {}

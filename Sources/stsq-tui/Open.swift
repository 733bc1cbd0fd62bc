import ArgumentParser
import Foundation
import DemoModel
import TerminalUI
import Workbench

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

    @OptionGroup(title: "Calibration (the activations screen; the same cache as `stsq-tui calibrate`)")
    var calibration: CalibrationOptions

    func run() throws {
        guard let checkpoint = checkpoint ?? DemoModel.checkpointPath else {
            FileHandleStderr.write("error: no checkpoint given and the bundled demo model is missing from this build\nusage: stsq-tui CHECKPOINT.safetensors\n")
            throw ExitCode(2)
        }
        guard isatty(STDIN_FILENO) == 1, isatty(STDOUT_FILENO) == 1 else {
            FileHandleStderr.write("error: the workbench needs a terminal; for scripts use `stsq-tui inspect \(checkpoint)`\n")
            throw ExitCode(2)
        }
        let session: CheckpointSession
        do {
            session = try CheckpointSession(path: checkpoint)
        } catch {
            FileHandleStderr.write("error: \(error)\n")
            throw ExitCode(1)
        }
        let source: CalibrationSource?
        let problem: String?
        do {
            let prompts = try readPromptFile(calibration.calibrationPrompts)
            source = CalibrationSource(options: .init(prompts: prompts, seeds: try parseSeeds(calibration.calibrationSeeds, option: "--calibration-seeds"),
                                                      steps: calibration.steps, cfg: calibration.cfg),
                                       cacheDirectory: calibration.cacheDirectory)
            problem = nil
        } catch {
            (source, problem) = (nil, "\(error)")
        }
        let app = try TerminalApp(workbench: Workbench(session: session, calibration: source, calibrationProblem: problem),
                                  options: TerminalOptions(theme: theme, colorMode: color, ascii: ascii),
                                  environment: ProcessInfo.processInfo.environment)
        app.run()
    }
}

extension ColorMode: ExpressibleByArgument {}

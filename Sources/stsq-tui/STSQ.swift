import ArgumentParser
import Tensors

@main
struct STSQ: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stsq-tui",
        abstract: "Static per-step SmoothQuant workbench for OpenSora video diffusion transformers.",
        subcommands: [Open.self, Inspect.self, Forward.self, Sample.self, Calibrate.self, Stats.self, Plan.self, Quantize.self, Export.self, Eval.self, Fidelity.self, Bench.self, SelfTest.self],
        defaultSubcommand: Open.self
    )

    static func main() {
        OpenMPWaitPolicy.applyBeforeOpenMPWork()
        var command: ParsableCommand
        do { command = try parseAsRoot(nil) } catch { exit(withError: error) }
        do {
            try command.run()
        } catch let error as ExitCode {
            exit(withError: error)
        } catch let error as CleanExit {
            exit(withError: error)
        } catch let error as ValidationError {
            exit(withError: ValidationError(oneLine(error.message)))
        } catch where String(reflecting: type(of: error)).hasPrefix("ArgumentParser.") {
            exit(withError: error)  // help and version requests (`HelpCommand` throws them from run)
        } catch {
            // Our own errors: one escaped line, no usage text (they are not mistakes of the flags).
            FileHandleStderr.write("Error: \(oneLine(String(describing: error)))\n")
            exit(withError: ExitCode(1))
        }
    }

    /// Errors quote names and values from files: printed escaped (no terminal control sequence, no
    /// second line) and cut with their length when huge.
    static func oneLine(_ message: String) -> String { TerminalText.short(message, limit: 2000) }
}

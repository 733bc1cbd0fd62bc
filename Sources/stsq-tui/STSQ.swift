import ArgumentParser

@main
struct STSQ: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stsq-tui",
        abstract: "Static per-step SmoothQuant workbench for OpenSora video diffusion transformers.",
        subcommands: [Open.self, Inspect.self, Forward.self, Sample.self, Calibrate.self, Stats.self, Plan.self, Quantize.self, Eval.self, Fidelity.self, Bench.self, SelfTest.self],
        defaultSubcommand: Open.self
    )

    static func main() {
        OpenMPWaitPolicy.applyBeforeOpenMPWork()
        main(nil)
    }
}

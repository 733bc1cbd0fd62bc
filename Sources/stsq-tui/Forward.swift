import ArgumentParser
import Tensors
import VideoDiT

/// `stsq-tui forward CHECKPOINT --inputs IN --output OUT [--capture PATTERN]`.
struct Forward: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "One model evaluation on given inputs (x, timestep, y, mask, fps, height, width), written as tensor 'out'.")

    @Argument(help: "An STDiT3 or STDiT .safetensors checkpoint.")
    var checkpoint: String

    @Option(help: "Inputs named and shaped as OpenSora's forward takes them.")
    var inputs: String

    @Option(help: "Output .safetensors: 'out' [B, Cout, T, H, W] (+ captures).")
    var output: String

    @Option(help: "Also write 'capture.<layer>' (input) and 'capture_out.<layer>' (output) of every block linear matching this pattern, e.g. 'spatial_blocks.*.attn.qkv'.")
    var capture: String?

    func run() throws {
        try reportingErrors {
            let model = try ModelLoader.load(path: checkpoint).model
            let inputFile = try SafetensorsFile(path: inputs)
            let capturing = capture.map { CapturingExecutor(pattern: $0) }
            let out = try model.forward(try ModelInputs(file: inputFile), executor: capturing ?? Float32Executor(), step: nil)
            var writer = SafetensorsWriter()
            writer.metadata = [("checkpoint", checkpoint), ("inputs", inputs)]
            writer.add("out", out)
            for c in capturing?.captures ?? [] where !writer.contains("capture." + c.layer) {
                let layer = model.blockLinears.first { $0.name == c.layer }!
                writer.add("capture." + c.layer, Tensor(shape: [c.rows, layer.inputs], scalars: c.input))
                writer.add("capture_out." + c.layer, Tensor(shape: [c.rows, layer.outputs], scalars: c.output))
            }
            try writer.write(to: output)
            print("wrote \(output): out \(out.shape)" + (capturing.map { ", \($0.captures.count) captured layer calls" } ?? ""))
        }
    }
}

/// Runs `body`; engine and file errors become one line on stderr and exit status 1.
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as ExitCode {
        throw error
    } catch {
        FileHandleStderr.write("error: \(error)\n")
        throw ExitCode(1)
    }
}

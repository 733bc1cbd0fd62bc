import ArgumentParser
import Quantization
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

    @Option(help: "Evaluate the quantized model exported to this folder (its quantized.safetensors) at --step, on the int8 path.")
    var quantized: String?
    @Option(help: "With --quantized: the sampler step whose scales and weight set are used.")
    var step: Int?
    @Flag(help: "With --quantized: fake-quant instead of int8 products.")
    var fakeQuant = false

    func run() throws {
        try reportingErrors {
            try OutputFolder.checkWritable(AtomicFile.folder(of: output), purpose: "the output")
            let model = try ModelLoader.load(path: checkpoint).model
            let inputFile = try SafetensorsFile(path: inputs)
            try inputFile.checkFinite()
            let modelInputs = try ModelInputs(file: inputFile)
            try Self.checkSize(modelInputs, model.config, source: inputs)
            let capturing = capture.map { CapturingExecutor(pattern: $0) }
            var executor: LinearExecutor = capturing ?? Float32Executor()
            guard quantized != nil || (step == nil && !fakeQuant) else { throw ValidationError("--step and --fake-quant go with --quantized DIR") }
            if let quantized {
                guard capturing == nil else { throw ValidationError("--capture records the float model; leave it out with --quantized") }
                guard let stdit3 = model as? STDiT3 else { throw ValidationError("--quantized evaluates STDiT3 checkpoints") }
                let file = try QuantizedModelFile(path: quantized + "/quantized.safetensors", model: stdit3)
                try file.requireBuilt(for: checkpoint, folder: quantized)
                guard let step, (0..<file.steps).contains(step) else {
                    throw ValidationError("--quantized needs --step 0…\(file.steps - 1): the export's scales are per sampler step")
                }
                executor = QuantizedFileExecutor(file: file, fakeQuant: fakeQuant)
            }
            let out = try model.forward(modelInputs, executor: executor, step: quantized == nil ? nil : step)
            try refuseNonFinite(out, what: "the forward pass's output 'out'")
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

extension Forward {
    /// Largest T, H, W of `x`; most tokens per sample (T'·H'·W' after patching) and per frame (H'·W',
    /// whose square the spatial attention holds per head). OpenSora's 720p × 102 frames has 93,600
    /// tokens, 3,600 per frame.
    static let maximumDimension = 4096
    static let maximumTokens = 1 << 20
    static let maximumFrameTokens = 1 << 14

    /// Refuses inputs whose sizes are zero or would overflow the model's buffers, before it runs.
    static func checkSize(_ inputs: ModelInputs, _ config: ModelConfig, source: String) throws {
        let shape = inputs.x.shape
        guard shape.count == 5, shape.allSatisfy({ $0 > 0 }) else {
            throw ValidationError("\(source): 'x' must be [B, Cin, T, H, W] with every size positive, found \(shape)")
        }
        guard shape[2...].allSatisfy({ $0 <= maximumDimension }) else {
            throw ValidationError("\(source): 'x' is \(shape); T, H and W may be at most \(maximumDimension)")
        }
        let patched = (0..<3).map { (shape[2 + $0] + config.patchSize[$0] - 1) / config.patchSize[$0] }
        let frameTokens = patched[1] * patched[2], tokens = patched[0] * frameTokens
        guard tokens <= maximumTokens, frameTokens <= maximumFrameTokens else {
            throw ValidationError("\(source): 'x' \(shape) makes \(tokens) tokens per sample (\(frameTokens) per frame); at most \(maximumTokens) (\(maximumFrameTokens) per frame) are taken")
        }
        guard inputs.y.shape.count == 4, inputs.y.shape.allSatisfy({ $0 > 0 }) else {
            throw ValidationError("\(source): 'y' must be [B, 1, L, caption_channels] with every size positive, found \(inputs.y.shape)")
        }
    }
}

/// An output with NaN or ±Inf is an error, not a file: it means the weights or inputs overflow.
func refuseNonFinite(_ tensor: Tensor, what: String) throws {
    let bad = tensor.scalars.reduce(0) { $0 + ($1.isFinite ? 0 : 1) }
    guard bad == 0 else {
        throw ValidationError("\(what) holds \(bad) NaN or ±Inf values of \(tensor.scalars.count): the model overflows on these inputs; nothing was written")
    }
}

/// Runs `body`; engine and file errors become one line on stderr and exit status 1.
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as ExitCode {
        throw error
    } catch {
        FileHandleStderr.write("error: \(STSQ.oneLine("\(error)"))\n")
        throw ExitCode(1)
    }
}
